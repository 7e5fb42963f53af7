"""Max-norm regularization: after every optimizer step, each hidden unit's incoming weight vector is
rescaled to norm <= c (a row of a Linear weight, an output channel's kernel of a Conv weight)."""

import lightning as L
import torch
from torch import nn


def hidden_weight_names(model: nn.Module) -> list[str]:
    """Weights of every Linear/Conv layer except the last Linear (the output layer's units are classes)."""
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d)]
    if layers and isinstance(layers[-1][1], nn.Linear):
        layers = layers[:-1]
    return [f"{name}.weight" if name else "weight" for name, _ in layers]


def clamp_unit_norms(weights: torch.Tensor, max_norm: float) -> None:
    """In place, over a leading trial axis ([trials, units, ...]; a lone run is a set of one): each unit's
    incoming weight vector (a row of a Linear weight, an output channel's kernel) rescaled to norm <= c."""
    units = weights.flatten(0, 1)  # renorm over dim 0: one row per trial's unit, flattened across the rest
    weights.copy_(torch.renorm(units, p=2, dim=0, maxnorm=max_norm).view_as(weights))


class MaxNorm(L.Callback):
    def __init__(self, max_norm: float):
        self.max_norm = max_norm
        self.names: list[str] | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.names is None:
            self.names = hidden_weight_names(pl_module)
        parameters = dict(pl_module.named_parameters())
        with torch.no_grad():
            for name in self.names:
                clamp_unit_norms(parameters[name].unsqueeze(0), self.max_norm)
