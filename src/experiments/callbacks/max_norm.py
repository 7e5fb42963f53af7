"""Max-norm regularization: after every optimizer step, each hidden unit's incoming weight vector is
rescaled to norm <= c (a row of a Linear weight, an output channel's kernel of a Conv weight)."""

import lightning as L
import torch
from torch import nn


def hidden_weights(model: nn.Module) -> list[torch.Tensor]:
    """Weights of every Linear/Conv layer except the last Linear (the output layer's units are classes)."""
    layers = [m for m in model.modules() if isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d)]
    if layers and isinstance(layers[-1], nn.Linear):
        layers = layers[:-1]
    return [layer.weight for layer in layers]


class MaxNorm(L.Callback):
    def __init__(self, max_norm: float):
        self.max_norm = max_norm

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        with torch.no_grad():
            for weight in hidden_weights(pl_module):
                # renorm over dim 0: each output unit's incoming weights, flattened across the rest
                weight.copy_(torch.renorm(weight, p=2, dim=0, maxnorm=self.max_norm))
