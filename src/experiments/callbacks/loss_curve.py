"""Keeps the run's loss curves (every step's training loss, each epoch's training and validation loss) and,
at the end, names the curve's shape with procedure/loss_curve.py and draws it: the note's step 7."""

import logging
import statistics

import lightning as L
import torch

from experiments.figures import plt, publish
from experiments.procedure.loss_curve import diagnose, smooth

log = logging.getLogger(__name__)


class LossCurve(L.Callback):
    def __init__(self) -> None:
        self.step_losses: list[float] = []
        self.train_epoch: list[float] = []
        self.val_epoch: list[float] = []
        self._pending: list[torch.Tensor] = []  # this epoch's step losses, still on the device

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if isinstance(outputs, dict) and "loss" in outputs:
            self._pending.append(outputs["loss"].detach())

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._flush()

    def _flush(self) -> None:
        if self._pending:  # one transfer per epoch
            losses = torch.stack(self._pending).float().tolist()
            self.step_losses += losses
            self.train_epoch.append(statistics.fmean(losses))
            self._pending = []

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        # after the module's epoch-end hook has logged this epoch's val/loss
        value = trainer.callback_metrics.get("val/loss")
        if value is not None and not trainer.sanity_checking:
            self.val_epoch.append(float(value))

    def verdict(self, diverged: bool, trainer: L.Trainer | None = None) -> dict:
        """The curve's shape with its numbers, warned about unless the run simply settled or is still improving.
        With a trainer, the curve is also drawn with its verdict (figures/train_loss_curve.png, TensorBoard)."""
        self._flush()  # a run stopped mid-epoch (divergence) still counts its last steps
        found = diagnose(self.step_losses, self.train_epoch, self.val_epoch, diverged)
        if trainer is not None and self.step_losses:
            figure = curve_figure(self.step_losses, self.val_epoch, found)
            publish(figure, "train/loss_curve", trainer.logger, trainer.default_root_dir, trainer.global_step)
        if found["verdict"] in ("exploded", "flat, then decreasing", "flat throughout", "overfitting"):
            log.warning(f"loss curve: {found['verdict']} ({_numbers(found['evidence'])}); {found['advice']}")
        else:
            log.info(f"loss curve: {found['verdict']} ({_numbers(found['evidence'])}); {found['advice']}")
        return found

    # A resumed run diagnoses its whole curve, not only what came after the restart.
    def state_dict(self) -> dict:
        return {"step_losses": self.step_losses, "train_epoch": self.train_epoch, "val_epoch": self.val_epoch}

    def load_state_dict(self, state_dict: dict) -> None:
        self.step_losses = list(state_dict.get("step_losses", []))
        self.train_epoch = list(state_dict.get("train_epoch", []))
        self.val_epoch = list(state_dict.get("val_epoch", []))


def curve_figure(step_losses: list[float], val_epoch: list[float], found: dict) -> plt.Figure:
    """Every step's training loss (light), its moving average (dark), validation loss at each epoch's end."""
    figure, ax = plt.subplots(figsize=(8, 4.5))
    steps = range(1, len(step_losses) + 1)
    ax.plot(steps, step_losses, color="tab:blue", alpha=0.25, linewidth=0.8, label="training loss, each step")
    window = max(3, len(step_losses) // 50)
    ax.plot(steps, smooth(step_losses, window), color="tab:blue", label=f"moving average ({window} steps)")
    if val_epoch:
        per_epoch = len(step_losses) / len(val_epoch)
        ends = [round(per_epoch * (epoch + 1)) for epoch in range(len(val_epoch))]
        ax.plot(ends, val_epoch, "o-", color="tab:orange", label="validation loss, each epoch")
    flat = found["evidence"].get("flat_steps")
    if flat:
        ax.axvspan(1, flat, color="tab:red", alpha=0.1, label=f"flat for {flat} steps")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize=9)
    ax.set_title(f"loss curve: {found['verdict']}\n{found['advice']}", fontsize=10)
    figure.tight_layout()
    return figure


def _numbers(evidence: dict) -> str:
    shown = (f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}" for key, value in evidence.items())
    return ", ".join(shown)
