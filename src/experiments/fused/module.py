"""FusedModule: a set of trials that differ only in the fused keys (fused/train.py: learning rate, momentum,
weight decay, L1 strength, dropout rate), trained as one LightningModule, while each trial keeps its own
outcome.

- A learning-rate scheduler is per trial (fused/schedules.py): each trial's rate follows its lone run's.

- The 3x rule is applied per trial, as the lone run's DivergenceAbort applies it: after a step, a trial
  whose loss is not finite or is above factor x its first loss is `diverged` at that step. Its slice is
  frozen (learning rate 0, no gradient) at once, and it leaves the stack, so it stops costing compute,
  when the losses next reach the host: after steps 2, 4, 8, 16 and 32, then every FLUSH_STEPS steps. The
  rule runs on the device (a bool mask per trial), so a step never waits for the device, which is what a
  fused set's speed on a GPU rests on. The others go on.
- At the end of every epoch, each trial's state goes to its lone run, whose own callbacks act on it
  (fused/lone_runs.py): Lightning's EarlyStopping decides whether it stops, and Lightning's
  ModelCheckpoint writes its best and last checkpoints. A stopped trial leaves the stack.
- The fit ends when every trial has stopped or the epochs run out.
"""

import itertools

import lightning as L
import torch
from torch import Tensor, nn

from experiments.fused.optimizers import StackedAdam, StackedRMSprop, StackedSGD
from experiments.fused.records import TrialRecord
from experiments.fused.schedules import TrialSchedules
from experiments.fused.stack import TrialStack
from experiments.training.callbacks.divergence import loss_limit, within_limit
from experiments.training.callbacks.interrupt import Interrupted, StopRequest
from experiments.training.callbacks.max_norm import clamp_unit_norms
from experiments.training.module import ClassifierModule

FLUSH_STEPS = 50  # steps between two transfers of the step losses to the host
EARLY_FLUSHES = (2, 4, 8, 16, 32)  # and after these steps

OPTIMIZERS = {
    "torch.optim.SGD": "sgd",
    "torch.optim.Adam": "adam",
    "torch.optim.AdamW": "adamw",
    "torch.optim.RMSprop": "rmsprop",
}


class FusedModule(L.LightningModule):
    def __init__(self, modules: list[ClassifierModule], divergence_factor: float | None):
        super().__init__()
        self.input_transform = modules[0].input_transform  # fitted on the same training pixels for all
        self.stack = TrialStack([module.net for module in modules])
        self.trial_hparams = [dict(module.hparams) for module in modules]
        self.l1 = torch.tensor([module.regularization.get("l1", 0.0) for module in modules])  # [active trials]
        self.with_l1 = bool((self.l1 > 0).any())
        self.divergence_factor = divergence_factor
        self.max_norm = modules[0].regularization.get("max_norm")
        self.positions = list(range(len(modules)))  # trial number of each slice of the stack
        self.frozen: set[int] = set()  # diverged trials waiting for their last validation
        # On the device, one entry per active trial: still running, and its first step's loss.
        self.running: Tensor | None = None
        self.limits: Tensor | None = None
        self._steps: list[tuple] = []  # (positions, global step, objective, running before, running after)
        self.leaving: list[int] = []  # positions that leave the stack once their lone runs ended the epoch
        self.records = [TrialRecord() for _ in modules]
        self.schedules: TrialSchedules | None = None  # each trial's own scheduler, when the set has one
        self._outputs: dict[str, list] = {"train": [], "val": []}

    def forward(self, pixels: Tensor) -> Tensor:
        return self.stack(self.input_transform(pixels))

    def _losses(self, batch: tuple[Tensor, Tensor]) -> Tensor:
        """Each active trial's mean loss on the batch, [active]; its correct count is kept for the epoch."""
        pixels, labels = batch
        logits = self(pixels)  # [active trials, batch, classes]
        expanded = labels.expand(logits.shape[0], -1)
        losses = nn.functional.cross_entropy(logits.transpose(1, 2), expanded, reduction="none").mean(dim=1)
        correct = (logits.argmax(dim=2) == expanded).sum(dim=1)  # argmax records no graph
        stage = "train" if self.training else "val"
        # Which trials were in the stack for this batch: a trial may leave mid-epoch (the 3x rule).
        self._outputs[stage].append((tuple(self.positions), losses.detach(), correct, len(labels)))
        return losses

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        losses = self._losses(batch)
        objective, self._last_penalty = losses, None
        if self.with_l1:
            self.l1 = self.l1.to(losses.device)  # once
            penalty = self.l1 * self.stack.weight_l1()
            objective, self._last_penalty = losses + penalty, penalty.detach()
        self._last_objective = objective.detach()
        if self.running is None:
            self.running = torch.ones_like(objective, dtype=torch.bool)
            self.trainer.optimizers[0].running = self.running
        # where, not a product: a frozen trial's NaN loss must not reach any gradient
        objective = torch.where(self.running, objective, 0.0)
        return objective.sum()  # trial i's slice gets trial i's gradient only

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        """Max-norm, then the 3x rule per trial, after the step as in a lone run (on the device)."""
        if StopRequest.pending():  # Ctrl-C or SIGTERM, at a step boundary (training/callbacks/interrupt.py)
            raise Interrupted(f"{StopRequest.received.name} at step {self.global_step}")
        if self.schedules is not None and self.schedules.steps_after_batch(self.trainer.is_last_batch):
            self.schedules.step(self.positions)  # after the step, as Lightning steps them
            self.schedules.apply(self.trainer.optimizers[0], self.positions)
        if self.max_norm is not None:
            self.apply_max_norm(self.max_norm)
        objective, before = self._last_objective, self.running
        if self.limits is None:
            self.limits = loss_limit(objective, self.divergence_factor)  # the 3x rule, one limit per trial
        after = before & within_limit(objective, self.limits)
        self.running = self.trainer.optimizers[0].running = after
        self._steps.append((tuple(self.positions), self.global_step, objective, before, after, self._last_penalty))
        # Early on too, so the trials the 3x rule stops in their first steps leave the stack at once.
        if len(self._steps) >= FLUSH_STEPS or self.global_step in EARLY_FLUSHES:
            self._record_steps()

    def _record_steps(self) -> None:
        """The steps since the last call reach each trial's record: its step losses (and L1 penalties), and
        the step where the 3x rule stopped it. One transfer per run of steps with the same trials."""
        steps, self._steps = self._steps, []
        for positions, group in itertools.groupby(steps, key=lambda step: step[0]):
            group = list(group)
            losses, before, after = (torch.stack([step[k] for step in group]).tolist() for k in (2, 3, 4))
            no_penalty = [[None] * len(positions)] * len(group)
            penalties = torch.stack([step[5] for step in group]).tolist() if self.with_l1 else no_penalty
            for (_, global_step, *_), step_losses, ran, runs, step_penalties in zip(
                group, losses, before, after, penalties, strict=True
            ):
                for trial, loss, was_running, still_running, penalty in zip(
                    positions, step_losses, ran, runs, step_penalties, strict=True
                ):
                    if not was_running:
                        continue
                    record = self.records[trial]
                    record.step_losses.append(loss)
                    record.step_penalties.append(penalty)
                    record.last_loss = loss
                    if record.first_loss is None:
                        record.first_loss = loss
                    if not still_running:
                        record.status, record.stopped_step, record.diverged_loss = "diverged", global_step, loss
                        self.frozen.add(trial)
        if self.positions and len(self.frozen) == len(self.positions):
            self.trainer.should_stop = True  # Lightning still validates once, as for a lone run that stops
        elif self.frozen:  # they leave now: a lone run that diverged trains no further either
            self._drop([position for position, trial in enumerate(self.positions) if trial in self.frozen])
            self.frozen.clear()

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._losses(batch)

    def on_train_epoch_end(self) -> None:
        self._record_steps()
        for trial in self.positions:  # where the trial's epoch points go in its logs (fused/trial_logs.py)
            self.records[trial].epoch_end_steps[self.current_epoch] = self.global_step
        self._epoch_figures("train")

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            self._outputs["val"] = []
            return
        self._record_steps()
        figures = self._epoch_figures("val")  # a diverged trial's exploded weights are not validated
        for trial, (_, accuracy) in figures.items():
            record = self.records[trial]
            if record.best_val_acc is None or accuracy > record.best_val_acc:
                record.best_val_acc = accuracy
        self.leaving = [position for position, trial in enumerate(self.positions) if trial in self.frozen]
        self.frozen.clear()

    def end_epoch(self) -> None:
        """After the trials' lone runs ended the epoch (fused/lone_runs.py): stopped trials leave, epoch
        schedulers step."""
        leaving, self.leaving = self.leaving, []
        self._drop(leaving)
        if self.schedules is not None and self.schedules.by_validation and self.positions:
            epoch = self.current_epoch  # validated already: plateau reads each trial's own val/loss
            losses = {trial: self.records[trial].epochs.get(epoch, {}).get("val/loss") for trial in self.positions}
            self.schedules.step(self.positions, losses)
            self.schedules.apply(self.trainer.optimizers[0], self.positions)

    def _epoch_figures(self, stage: str) -> dict[int, tuple[float, float]]:
        """trial -> (mean loss, accuracy) over the epoch's batches it took part in; kept in its record."""
        outputs, self._outputs[stage] = self._outputs[stage], []
        totals: dict[int, list[float]] = {}
        for positions, group in itertools.groupby(outputs, key=lambda output: output[0]):
            _, means, correct, sizes = zip(*group, strict=True)
            # one transfer per run of batches with the same trials (usually the whole epoch)
            counts = torch.tensor(sizes, dtype=means[0].dtype, device=means[0].device).unsqueeze(1)
            loss_sums = (torch.stack(means) * counts).sum(dim=0).tolist()
            correct = torch.stack(correct).sum(dim=0).tolist()
            for trial, loss_sum, hits in zip(positions, loss_sums, correct, strict=True):
                total = totals.setdefault(trial, [0.0, 0.0, 0])
                total[0], total[1], total[2] = total[0] + loss_sum, total[1] + hits, total[2] + sum(sizes)
        # A diverged trial's last epoch ended at the step it exploded: a lone run reports nothing for it.
        figures = {
            trial: (loss / count, hits / count)
            for trial, (loss, hits, count) in totals.items()
            if self.records[trial].status != "diverged"
        }
        for trial, (loss, accuracy) in figures.items():
            self.records[trial].epochs.setdefault(self.current_epoch, {}).update(
                {f"{stage}/loss": loss, f"{stage}/acc": accuracy}
            )
        return figures

    def trial_state(self, position: int) -> dict[str, Tensor]:
        """A lone ClassifierModule's state dict for the trial at `position`: its net and the shared transform."""
        state = {f"net.{name}": value.cpu() for name, value in self.stack.trial_state(position).items()}
        transform = self.input_transform.state_dict()
        state.update({f"input_transform.{name}": value.detach().cpu() for name, value in transform.items()})
        return state

    def _drop(self, stopped: list[int]) -> None:
        if not stopped:
            return
        kept = [position for position in range(len(self.positions)) if position not in stopped]
        if not kept:
            self.trainer.should_stop = True
            self.positions = []
            return
        replaced = self.stack.keep(kept)
        optimizer = self.trainer.optimizers[0]
        optimizer.keep(kept, replaced)
        index = torch.tensor(kept, dtype=torch.long)
        self.l1 = self.l1.index_select(0, index.to(self.l1.device))
        if self.running is not None:
            self.running = optimizer.running  # kept's slice of it
            self.limits = self.limits.index_select(0, index.to(self.limits.device))
        self.positions = [self.positions[position] for position in kept]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        spec = dict(self.trial_hparams[0]["optimizer"])
        kind = OPTIMIZERS.get(spec.pop("_target_"))
        spec.pop("_partial_", None)
        spec.pop("lr")
        lr = torch.tensor([hparams["optimizer"]["lr"] for hparams in self.trial_hparams])
        regularization = [hparams["regularization"] or {} for hparams in self.trial_hparams]
        decay = torch.tensor([options.get("weight_decay", 0.0) for options in regularization])
        if kind == "sgd":
            optimizer = StackedSGD(
                self.stack, lr, decay, momentum=self._momenta(), nesterov=spec.get("nesterov", False)
            )
        elif kind == "rmsprop":
            spec.pop("momentum", None)
            optimizer = StackedRMSprop(self.stack, lr, decay, momentum=self._momenta(), **spec)
        else:
            optimizer = StackedAdam(self.stack, lr, decay, decoupled=kind == "adamw", **spec)
        if self.trial_hparams[0].get("scheduler"):
            self.schedules = TrialSchedules(self.trial_hparams, int(self.trainer.estimated_stepping_batches))
            self.schedules.apply(optimizer, self.positions)
        return optimizer

    def _momenta(self) -> Tensor:
        return torch.tensor([hparams["optimizer"].get("momentum", 0.0) for hparams in self.trial_hparams])

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        """The Trainer's clipping, per trial, through the torch functions Lightning clips a lone run with:
        clip_grad_value_ as it is; clip_grad_norm_'s scaling step with each trial's own total norm (of its row)."""
        if not gradient_clip_val or self.stack.flat.grad is None:
            return
        if gradient_clip_algorithm == "value":
            nn.utils.clip_grad_value_([self.stack.flat], gradient_clip_val)
            return
        total = torch.linalg.vector_norm(self.stack.flat.grad, dim=1, keepdim=True)  # [trials, 1]
        nn.utils.clip_grads_with_norm_([self.stack.flat], gradient_clip_val, total, foreach=False)  # broadcast per row

    def apply_max_norm(self, max_norm: float) -> None:
        """MaxNorm's rule on every trial's hidden units: each incoming weight vector rescaled to norm <= c."""
        weights = self.stack.weights()  # views into the flat parameters
        for name in self.stack.hidden_weight_names:
            clamp_unit_norms(weights[name], max_norm)
