"""Progress as a run trains: in a terminal, Lightning's Rich progress bar, with the per-batch work throttled by
time, showing the live step loss; piped to a file or a CI log, one line per epoch (a bar's last frame would
wrap into several lines of metrics there).

Lightning's RichProgressBar updates, collects metrics (a .item() each) and re-renders on every batch;
on small models that costs as much as the training step. Here a batch updates the bar at most
`max_per_second` times a second (4: each redraw in a terminal costs several milliseconds), and always
on an epoch's last batch, so the final counts are exact.
The training loss shown is read from the step's outputs at those updates: the module logs its step
loss straight to TensorBoard, not through `self.log`, which is what would otherwise feed the bar.
"""

import logging
import math
import time

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar
from rich.console import Console

log = logging.getLogger(__name__)
SHOWN = ("train/loss_epoch", "val/loss", "val/acc")  # an epoch's line: the figures the curves are judged by


def progress_callback() -> L.Callback:
    """The Rich bar in a terminal, one line an epoch elsewhere (Rich's own test of a terminal)."""
    return SteadyRichProgressBar() if Console().is_terminal else EpochLines()


class EpochLines(L.Callback):
    """`epoch 3/10  train/loss 0.1234  val/loss 0.2310  val/acc 0.942  (1.7 s)`, once an epoch, on rank zero.
    Written when the next epoch starts (or training ends): an epoch's own train/loss_epoch is logged by the
    module's on_train_epoch_end, which Lightning calls after the callbacks'."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.seconds: float | None = None  # of the epoch finished and not yet written

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.write(trainer)  # the epoch before, now complete
        self.started = time.monotonic()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.seconds = time.monotonic() - self.started

    def on_train_end(self, trainer, pl_module) -> None:
        self.write(trainer)  # the last epoch; not one stopped part-way (Ctrl-C, divergence)

    def write(self, trainer) -> None:
        if self.seconds is None or not trainer.is_global_zero:
            return
        figures = {name: trainer.callback_metrics[name] for name in SHOWN if name in trainer.callback_metrics}
        shown = "  ".join(f"{name.removesuffix('_epoch')} {float(value):.4f}" for name, value in figures.items())
        epoch = f"{trainer.current_epoch:>{len(str(trainer.max_epochs))}}/{trainer.max_epochs}"
        log.info(f"epoch {epoch}  {shown}  ({self.seconds:.1f} s)")
        self.seconds = None


class SteadyRichProgressBar(RichProgressBar):
    def __init__(self, max_per_second: float = 4.0, **kwargs):
        super().__init__(**kwargs)
        self.min_interval = 1.0 / max_per_second
        self._last_update = -math.inf
        self.step_loss: float | None = None

    def _due(self, batch_idx: int, total: float) -> bool:
        now = time.monotonic()
        if batch_idx + 1 >= total or now - self._last_update >= self.min_interval:
            self._last_update = now
            return True
        return False

    # Disabled on every rank but zero under DDP: nothing to count or draw there.
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if not self.is_disabled and self._due(batch_idx, trainer.num_training_batches):
            if isinstance(outputs, dict) and "loss" in outputs:
                self.step_loss = float(outputs["loss"])
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def get_metrics(self, trainer, pl_module) -> dict:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)  # a tracker's run id (W&B, MLflow): not a figure of the run
        return metrics if self.step_loss is None else {"train/loss": self.step_loss, **metrics}

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if not self.is_disabled and self._due(batch_idx, self.total_val_batches_current_dataloader):
            super().on_validation_batch_end(trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if not self.is_disabled and self._due(batch_idx, self.total_test_batches_current_dataloader):
            super().on_test_batch_end(trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)
