"""ClassifierModule: pixels -> its own preprocessing -> any backbone, with cross-entropy, torchmetrics
accuracy and a config-built optimizer."""

import copy
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from torch import Tensor, nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from experiments.checkpoints.train_on import adopt_settings, forget_saved_schedule, new_schedule_length
from experiments.data.preprocessing import InputTransform
from experiments.records.tracking.publish import flush, publish_scalars

STAGES = ("train", "val", "test")


def warmup_steps(scheduler: dict | None, total_steps: int) -> int | None:
    """Where a schedule's warm-up ends (one-cycle's rising rate: pct_start of its steps); None without one."""
    if not scheduler or not str(scheduler.get("_target_", "")).endswith("OneCycleLR"):
        return None
    return int(scheduler.get("pct_start", 0.3) * total_steps)


class ClassifierModule(L.LightningModule):
    """Takes pixels (uint8 on 0..255, or floats on [0, 1] after augmentation) and owns their preprocessing:
    `forward` runs the input transform, then the backbone. Built from a checkpoint, the module preprocesses
    exactly as in training, with no help from a datamodule; evaluation, `predict` and the pictures use it so.

    Every constructor argument but the fitted transform is a plain container, so checkpoints load with
    weights_only=True and carry what `predict` and evaluation need: the backbone config, the preprocessing
    kind, class names. The transform's statistics are buffers (`input_transform.*` in the state dict).

    Per-step cost matters: on a CPU a batch-64 MLP step computes in about 1.5 ms, and each fixed cost below
    was measured against that (bench/epoch.py). Each step keeps its predictions, labels and loss on the
    device; torchmetrics computes accuracy and mean loss from them once per epoch, and `self.log` runs
    only then (a `self.log` call costs 0.6-0.8 ms of Lightning bookkeeping, a `Metric.update` 0.05 ms).
    """

    def __init__(
        self,
        model: dict,
        optimizer: dict,
        input_shape: list[int],
        num_classes: int,
        data: dict,
        regularization: dict | None = None,
        scheduler: dict | None = None,
        input_transform: InputTransform | None = None,
    ):
        super().__init__()
        # logger=False: the real HParams entry, with final metrics, is written once at the end of a run.
        self.save_hyperparameters(logger=False, ignore=["input_transform"])
        # Loading a checkpoint builds an empty transform of the right shape; load_state_dict fills it.
        if input_transform is None:
            input_transform = InputTransform(
                data.get("preprocess", "standardize"), input_shape, data.get("whiten_epsilon", 0.1)
            )
        self.input_transform = input_transform
        self.regularization = regularization or {}
        self.net = instantiate(
            model,
            input_shape=tuple(input_shape),
            num_classes=num_classes,
            dropout=self.regularization.get("dropout", 0.0),
            batchnorm=self.regularization.get("batchnorm", False),
        )
        self.loss_fn = nn.CrossEntropyLoss()
        for stage in STAGES:
            setattr(self, f"{stage}_acc", MulticlassAccuracy(num_classes, average="micro"))
            setattr(self, f"{stage}_mean_loss", MeanMetric())
        self._epoch_outputs: dict[str, list[tuple[Tensor, Tensor, Tensor]]] = {stage: [] for stage in STAGES}
        # The loss curves the note says to watch, kept from the step outputs the epoch metrics use anyway
        # (procedure/loss_curve.py reads them at the end): no callback on every step for it.
        self.history: dict[str, list[float]] = {"train_steps": [], "train_epoch": [], "val_epoch": []}
        self.val_acc_by_epoch: dict[int, float] = {}  # epoch (from 0) -> val/acc, for metrics.json's best_epoch
        self.checks_before_training: list[dict] | None = None  # run.check_before_training's rows, for metrics.json
        self.log_to_logger = True  # False for a fit without a logger (the overfit check), which would warn
        self.restored: dict | None = None  # the checkpoint a fit goes on from, until its optimizers are built
        self.schedule_restart: dict | None = (
            None  # a new schedule over what remains (checkpoints/train_on.py), for metrics.json
        )
        self.warmup_until: int | None = None  # the step where one-cycle's warm-up ends, for the loss-curve verdict

    @classmethod
    def fitted(cls, train_images: Tensor, **hparams) -> "ClassifierModule":
        """A new module whose preprocessing (hparams' data.preprocess) is fitted on the training split's pixels."""
        data = hparams["data"]
        return cls(
            **hparams, input_transform=InputTransform.fit(data["preprocess"], train_images, data["whiten_epsilon"])
        )

    def forward(self, pixels: Tensor) -> Tensor:
        return self.net(self.input_transform(pixels))

    def _step(self, stage: str, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """The batch's loss and logits; its predictions, labels and loss are kept for the epoch's metrics."""
        pixels, labels = batch
        logits = self(pixels)
        loss = self.loss_fn(logits, labels)
        self._epoch_outputs[stage].append((logits.detach().argmax(dim=1), labels, loss.detach()))
        return loss, logits

    def _log_epoch(self, stage: str, loss_name: str) -> None:
        outputs, self._epoch_outputs[stage] = self._epoch_outputs[stage], []
        if not outputs:  # e.g. limit_val_batches=0: nothing to report
            return
        predictions, labels, losses = zip(*outputs, strict=True)
        accuracy, mean_loss = getattr(self, f"{stage}_acc"), getattr(self, f"{stage}_mean_loss")
        accuracy.update(torch.cat(predictions), torch.cat(labels))
        sizes = torch.tensor([len(batch) for batch in labels], dtype=torch.float32, device=losses[0].device)
        mean_loss.update(torch.stack(losses), weight=sizes)
        epoch_loss = mean_loss.compute()
        figures = {loss_name: epoch_loss, f"{stage}/acc": accuracy.compute()}
        # Training's epoch figures go to the logger here, before the epoch's checkpoint is written (Lightning
        # would log them after it): a run killed after its checkpoint has them all, and its resume adds none.
        direct = stage == "train" and bool(self.loggers)
        for name, value in figures.items():
            self.log(name, value, prog_bar=stage != "test", logger=self.log_to_logger and not direct)
        if direct:
            publish_scalars(self.loggers, {name: float(value) for name, value in figures.items()}, self.global_step - 1)
        mean_loss.reset(), accuracy.reset()
        if stage == "train":  # one transfer an epoch
            self.history["train_steps"] += torch.stack(losses).float().tolist()
            self.history["train_epoch"].append(float(epoch_loss))
        elif stage == "val" and not self.trainer.sanity_checking:
            self.history["val_epoch"].append(float(epoch_loss))
            self.val_acc_by_epoch[self.current_epoch] = float(figures["val/acc"])

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss, _ = self._step("train", batch)
        scalars = {}
        penalty = self.l1_penalty()
        if penalty is not None:
            loss = loss + penalty
            scalars["train/l1_penalty"] = penalty
        # The per-step curve, the loss curve the note says to watch, every trainer.log_every_n_steps steps
        # at the step numbers Lightning uses for its own step logs. It goes to the logger directly: a
        # `self.log` call costs 0.6-0.8 ms of Lightning bookkeeping here, half a batch-64 MLP step on a CPU.
        # The progress bar shows the step loss from the step outputs (callbacks/progress.py).
        if (self.global_step + 1) % self.trainer.log_every_n_steps == 0 and self.loggers:
            scalars["train/loss"] = loss
            publish_scalars(self.loggers, {name: value.item() for name, value in scalars.items()}, self.global_step)
        return loss

    def on_fit_start(self) -> None:
        # a learning-rate search (Tuner.lr_find) trains steps of its own: none of them belong to epoch 1
        self._epoch_outputs = {stage: [] for stage in STAGES}

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train", "train/loss_epoch")

    def unfinished_epoch_losses(self) -> list[float]:
        """The step losses of the epoch under way, not yet in the history (one transfer)."""
        losses = [loss for *_, loss in self._epoch_outputs["train"]]
        return torch.stack(losses).float().tolist() if losses else []

    def keep_unfinished_epoch(self) -> None:
        """A fit that stopped mid-epoch (the 3x rule, an interrupt): its steps so far join the loss curve."""
        self.history["train_steps"] += self.unfinished_epoch_losses()
        self._epoch_outputs["train"] = []

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step("val", batch)

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val", "val/loss")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> dict[str, Tensor]:
        _, logits = self._step("test", batch)
        confidence, predictions = logits.detach().softmax(dim=1).max(dim=1)
        return {"predictions": predictions, "confidence": confidence}  # for the pictures (PredictionFigures)

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test", "test/loss")

    def named_weights(self) -> list[tuple[str, nn.Parameter]]:
        """The backbone's weight matrices and kernels, by layer name (`layers.1`): what L1 and L2 penalize,
        what the update/weight ratios and histograms follow (biases and norm scales are 1-d)."""
        return [(name.removesuffix(".weight"), p) for name, p in self.net.named_parameters() if p.dim() > 1]

    def _weights(self) -> list[nn.Parameter]:
        return [p for _, p in self.named_weights()]

    def l1_penalty(self) -> Tensor | None:
        """regularization.l1 x sum |w| over the weights, which training adds to the loss; None when off."""
        strength = self.regularization.get("l1", 0.0)
        return strength * sum(w.abs().sum() for w in self._weights()) if strength > 0 else None

    def objective(self, batch: tuple[Tensor, Tensor]) -> float:
        """What training minimizes on this batch, in eval mode: cross-entropy, the L1 penalty, and the weight decay
        of the optimizer this module configures, as the penalty (decay / 2) x sum w^2 that decay is the gradient of."""
        pixels, labels = batch
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                loss = self.loss_fn(self(pixels), labels)
                penalty = self.l1_penalty()
                optimizer = self.configure_optimizers()["optimizer"]
                decay = sum(
                    group["weight_decay"] / 2 * sum(float((p**2).sum()) for p in group["params"])
                    for group in optimizer.param_groups
                    if group.get("weight_decay", 0.0) > 0
                )
        finally:
            self.train(was_training)  # the mode it came in
        return float(loss) + (float(penalty) if penalty is not None else 0.0) + decay

    def with_hparams(self, same_weights: bool = True, **changes) -> "ClassifierModule":
        """Another module with these hyperparameters changed (regularization=..., optimizer=...), the same fitted
        preprocessing, and the same weights, or freshly initialized ones."""
        twin = type(self)(**{**self.hparams, **changes}, input_transform=copy.deepcopy(self.input_transform))
        if same_weights:
            twin.load_state_dict(self.state_dict())
        return twin

    def optimizer_groups(self) -> list[dict]:
        """Weight decay acts on the weights; biases and norm scales sit in a group without it."""
        weights = {id(p) for p in self._weights()}
        others = [p for p in self.parameters() if id(p) not in weights]
        decay = self.regularization.get("weight_decay", 0.0)
        return [{"params": self._weights(), "weight_decay": decay}, {"params": others, "weight_decay": 0.0}]

    def configure_optimizers(self) -> dict:
        build_optimizer = instantiate(self.hparams.optimizer)  # a partial: parameters still missing
        if build_optimizer.func is torch.optim.LBFGS:  # takes no parameter groups and no weight decay
            optimizer = build_optimizer(self.parameters())
        else:
            optimizer = build_optimizer(self.optimizer_groups())
        config: dict = {"optimizer": optimizer}
        restored, self.restored = self.restored, None
        new_length = None
        if self.hparams.scheduler:
            options = dict(self.hparams.scheduler)
            schedule = {"interval": options.pop("interval", "epoch"), "monitor": options.pop("monitor", None)}
            kind = options["_target_"].rsplit(".", 1)[-1]
            if kind == "OneCycleLR":
                options["total_steps"] = int(self.trainer.estimated_stepping_batches)
            new_length = new_schedule_length(kind, options, restored, self.trainer)
            if new_length is not None:  # going on past the saved schedule's end: a new one over what remains
                options |= new_length
                self.schedule_restart = {"scheduler": kind, "from_step": restored.get("global_step", 0), **new_length}
            if restored is None:  # a fit from scratch: its curve opens with the schedule's warm-up, if any
                self.warmup_until = warmup_steps(options, options.get("total_steps", 0))
            scheduler = instantiate(options)(optimizer)
            config["lr_scheduler"] = {"scheduler": scheduler, "name": rate_curve_name(scheduler), **schedule}
        if restored is not None and "optimizer_states" in restored:
            carries_on = bool(self.hparams.scheduler) and new_length is None
            adopt_settings(restored, optimizer, schedule_carries_on=carries_on)
            if new_length is not None:
                forget_saved_schedule(restored)
        return config

    # Lightning does not save the global RNG; dropout and augmentation draws must resume where they were.
    # The loss history travels too: a resumed run diagnoses its whole curve.
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        flush(self.loggers)  # what was logged up to this checkpoint reaches the disk with it
        checkpoint["torch_rng_state"] = torch.get_rng_state()
        pending = self.unfinished_epoch_losses()  # a mid-epoch save (an interrupt) has some
        checkpoint["loss_history"] = {**self.history, "train_steps": self.history["train_steps"] + pending}
        checkpoint["val_acc_by_epoch"] = self.val_acc_by_epoch
        checkpoint["checks_before_training"] = self.checks_before_training
        checkpoint["warmup_until"] = self.warmup_until

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "torch_rng_state" in checkpoint:
            torch.set_rng_state(checkpoint["torch_rng_state"])
        self.history = {key: list(values) for key, values in checkpoint.get("loss_history", self.history).items()}
        self.val_acc_by_epoch = dict(checkpoint.get("val_acc_by_epoch", self.val_acc_by_epoch))
        self.checks_before_training = checkpoint.get("checks_before_training", self.checks_before_training)
        self.warmup_until = checkpoint.get("warmup_until", self.warmup_until)
        if self._fitting():
            self.restored = checkpoint  # configure_optimizers, called next, fits the schedule and settings to it

    def _fitting(self) -> bool:
        try:
            return self.trainer.state.fn == "fit"
        except RuntimeError:  # not attached to a Trainer: a checkpoint loaded for evaluation or predict
            return False


def load_module(path: str | Path) -> ClassifierModule:
    """The ClassifierModule saved in a checkpoint (check it with read_hparams first), on the CPU, in eval
    mode, preprocessing as it did in training. weights_only=True: this project's checkpoints hold plain
    containers only, so nothing in the file gets unpickled into code."""
    return ClassifierModule.load_from_checkpoint(path, map_location="cpu", weights_only=True).eval()


def rate_curve_name(scheduler) -> str:
    """Where LearningRateMonitor logs the rate: under watch/, so TensorBoard lists it after the loss and accuracy
    curves (`watch/lr-Adam/pg1` for the weights' group, `.../pg2` for the rest)."""
    return f"watch/lr-{type(scheduler.optimizer).__name__}"
