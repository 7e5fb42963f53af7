"""The note's 3x rule, checked every optimizer step: a training loss above factor x the first step's
loss, or one that is not finite, means the run exploded. It stops at once instead of at the epoch's end,
by raising `Diverged` out of the fit: the exploded weights are never validated and never reach a
checkpoint, so last.ckpt keeps the last good epoch and the best checkpoint and best val acc are what the
run reached before it diverged. With the rule off (divergence_factor=null) a loss that is not finite still
stops the run: NaN weights never reach a checkpoint."""

import logging
import math

import lightning as L
import torch
from torch import Tensor

log = logging.getLogger(__name__)


def loss_limit(initial: Tensor, factor: float | None) -> Tensor:
    """The highest training loss the rule allows, per trial: factor x the first loss; the dtype's largest
    finite number with the rule off or a first loss that is infinite (so an infinite loss always stops)."""
    largest = torch.finfo(initial.dtype).max
    return torch.full_like(initial, largest) if factor is None else (initial * factor).clamp(max=largest)


def within_limit(losses, limit):
    """The rule, for a lone run's loss (floats) and a fused set's trials ([N] tensors) alike: True where the
    loss is at most its limit. NaN compares False, so a NaN loss stops as an infinite one does."""
    return losses <= limit


class Diverged(Exception):
    """Raised at the step where the rule fired; `run.fit` catches it and reports the run as diverged."""


class DivergenceAbort(L.Callback):
    def __init__(self, factor: float | None):  # None: the 3x rule is off, a non-finite loss still stops
        self.factor = factor
        self.initial_loss: float | None = None
        self.diverged_step: int | None = None
        self.diverged_loss: float | None = None
        self.last_loss: float | None = None
        self.limit: float | None = None

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs, batch, batch_idx) -> None:
        if not isinstance(outputs, dict) or "loss" not in outputs:
            return
        loss = float(outputs["loss"])  # one host sync per step: on a CPU this is free, and it is the point
        self.last_loss = loss
        if self.initial_loss is None:
            self.initial_loss = loss
        if self.limit is None:
            self.limit = float(loss_limit(torch.tensor(self.initial_loss, dtype=torch.float64), self.factor))
        if within_limit(loss, self.limit):
            return
        self.diverged_step, self.diverged_loss = trainer.global_step, loss
        rule = (
            "is not finite" if not math.isfinite(loss) else f"> {self.factor:g} x the initial {self.initial_loss:.4g}"
        )
        log.warning(f"diverged at step {trainer.global_step}: training loss {loss:.4g} {rule}; stopping this run")
        raise Diverged(f"step {trainer.global_step}")

    # A resumed run compares against the first loss of the original run, not of the resumed one.
    def state_dict(self) -> dict:
        return {"initial_loss": self.initial_loss}

    def load_state_dict(self, state_dict: dict) -> None:
        self.initial_loss, self.limit = state_dict.get("initial_loss"), None
