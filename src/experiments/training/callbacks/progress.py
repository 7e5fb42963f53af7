"""Lightning's Rich progress bar, with the per-batch work throttled by time, showing the live step loss.

Lightning's RichProgressBar updates, collects metrics (a .item() each) and re-renders on every batch;
on small models that costs as much as the training step. Here a batch updates the bar at most
`max_per_second` times a second (4: each redraw in a terminal costs several milliseconds), and always
on an epoch's last batch, so the final counts are exact.
The training loss shown is read from the step's outputs at those updates: the module logs its step
loss straight to TensorBoard, not through `self.log`, which is what would otherwise feed the bar.
"""

import math
import time

from lightning.pytorch.callbacks import RichProgressBar


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
