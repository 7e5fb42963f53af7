"""TrialRecord: what one trial of a fused set produces, filled in as the fused fit goes (fused/module.py)."""

import math


class TrialRecord:
    def __init__(self) -> None:
        self.status = "completed"
        self.stopped_step: int | None = None
        self.diverged_loss: float | None = None
        self.first_loss: float | None = None
        self.last_loss: float | None = None
        self.best_val_acc: float | None = None
        self.best_epoch: int | None = None
        self.best_snapshot = self.last_snapshot = None  # fused/snapshots.py: its state at those epochs' ends
        self.val_loss_best = math.inf
        self.wait = 0
        self.step_losses: list[float] = []
        self.step_penalties: list[float | None] = []  # the L1 term in each step's loss; None without L1
        self.epochs: dict[int, dict] = {}  # epoch -> train/loss, train/acc, val/loss, val/acc
        self.epoch_end_steps: dict[int, int] = {}  # epoch -> the global step when its training batches ended
        self.update_readings: list[tuple[int, dict[str, float]]] = []  # fused/watch.py: (step, layer -> ratio)
        self.histograms: list[tuple[int, str, dict]] = []  # (epoch, tag, binned values)

    def early_stopping_says_stop(self, loss: float, patience: int, min_delta: float) -> bool:
        """Lightning's EarlyStopping rule on val/loss (mode min), for this trial's epoch: an improvement by more
        than min_delta resets the wait, anything else adds to it, and a wait of `patience` epochs stops it."""
        if loss < self.val_loss_best - min_delta:
            self.val_loss_best, self.wait = loss, 0
            return False
        self.wait += 1
        return self.wait >= patience

    def last_epoch_loss(self) -> float | None:
        """The last epoch's mean training loss, as a lone run reports it (train/loss_epoch)."""
        losses = self.history()["train_epoch"]
        return losses[-1] if losses else None

    def history(self) -> dict[str, list[float]]:
        """The curves in ClassifierModule.history's form, for the loss-curve verdict."""
        epochs = [figures for _, figures in sorted(self.epochs.items())]
        return {
            "train_steps": list(self.step_losses),
            "train_epoch": [figures["train/loss"] for figures in epochs if "train/loss" in figures],
            "val_epoch": [figures["val/loss"] for figures in epochs if "val/loss" in figures],
        }
