"""ClassifierModule: wraps any backbone with cross-entropy, torchmetrics accuracy and a config-built optimizer."""

import lightning as L
import torch
from hydra.utils import instantiate
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy


class ClassifierModule(L.LightningModule):
    """Every constructor argument is a plain container, so checkpoints load with weights_only=True
    and carry what `predict` and evaluation need: the backbone config, preprocessing, class names."""

    def __init__(self, model: dict, optimizer: dict, input_shape: list[int], num_classes: int, data: dict):
        super().__init__()
        # logger=False: the real HParams entry, with final metrics, is written once at the end of a run.
        self.save_hyperparameters(logger=False)
        self.net = instantiate(model, input_shape=tuple(input_shape), num_classes=num_classes)
        self.loss_fn = nn.CrossEntropyLoss()
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")

    def forward(self, images: Tensor) -> Tensor:
        return self.net(images)

    def _loss(self, batch: tuple[Tensor, Tensor], accuracy: MulticlassAccuracy) -> Tensor:
        images, labels = batch
        logits = self(images)
        accuracy.update(logits.detach(), labels)  # computed once per epoch, not per step
        return self.loss_fn(logits, labels)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = self._loss(batch, self.train_acc)
        # The per-step curve keeps the plain name (it is the loss curve the seed says to watch);
        # the epoch mean gets its own name instead of Lightning's automatic _step/_epoch suffixes.
        self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True)
        self.log("train/loss_epoch", loss, on_step=False, on_epoch=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.log("val/loss", self._loss(batch, self.val_acc), prog_bar=True)
        self.log("val/acc", self.val_acc, prog_bar=True)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.log("test/loss", self._loss(batch, self.test_acc))
        self.log("test/acc", self.test_acc)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        build_optimizer = instantiate(self.hparams.optimizer)  # a partial: parameters still missing
        return build_optimizer(self.parameters())

    # Lightning does not save the global RNG; dropout and augmentation draws must resume where they were.
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["torch_rng_state"] = torch.get_rng_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "torch_rng_state" in checkpoint:
            torch.set_rng_state(checkpoint["torch_rng_state"])
