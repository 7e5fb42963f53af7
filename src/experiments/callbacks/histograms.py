"""Weight and gradient histograms per layer in TensorBoard, each epoch (watch.histograms=false turns them off).

Gradients are taken just before the epoch's last optimizer step, while they still exist."""

import lightning as L
import torch

BINS = 64  # fixed bins: TensorBoard's default ("tensorflow" bucketing) takes twice as long on 400k weights


class WeightHistograms(L.Callback):
    def __init__(self) -> None:
        self.gradients: dict[str, torch.Tensor] = {}

    def on_before_optimizer_step(self, trainer: L.Trainer, module: L.LightningModule, optimizer) -> None:
        if trainer.is_last_batch:
            self.gradients = {
                name: weight.grad.detach().clone() for name, weight in module.named_weights() if weight.grad is not None
            }

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        writer = getattr(trainer.logger, "experiment", None)
        if writer is None or not hasattr(writer, "add_histogram"):
            return
        epoch = trainer.current_epoch
        tensors = {f"weights/{name}": weight.detach() for name, weight in module.named_weights()}
        tensors |= {f"gradients/{name}": gradient for name, gradient in self.gradients.items()}
        for tag, values in tensors.items():
            finite = values[torch.isfinite(values)].float().cpu()  # a diverged run's NaNs have no histogram
            if len(finite):
                writer.add_histogram(tag, finite, epoch, bins=BINS)
        self.gradients = {}
