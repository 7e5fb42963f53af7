"""Weight and gradient histograms per layer, each epoch, in the loggers that draw histograms (TensorBoard, W&B);
watch.histograms=false turns them off.

Gradients are taken just before the epoch's last optimizer step, while they still exist."""

import lightning as L
import torch

from experiments.records.tracking.publish import publish_histograms


class WeightHistograms(L.Callback):
    def __init__(self) -> None:
        self.gradients: dict[str, torch.Tensor] = {}

    def on_before_optimizer_step(self, trainer: L.Trainer, module: L.LightningModule, optimizer) -> None:
        if trainer.is_last_batch:
            self.gradients = {
                name: weight.grad.detach().clone() for name, weight in module.named_weights() if weight.grad is not None
            }

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        tensors = {f"watch/weights/{name}": weight.detach() for name, weight in module.named_weights()}
        tensors |= {f"watch/gradients/{name}": gradient for name, gradient in self.gradients.items()}
        publish_histograms(trainer.loggers, tensors, trainer.current_epoch, trainer.global_step - 1)
        self.gradients = {}
