"""TrialRecord: what one trial of a fused set produces, filled in as the fused fit goes (fused/module.py)."""


class TrialRecord:
    def __init__(self) -> None:
        self.status = "completed"
        self.stopped_step: int | None = None
        self.diverged_loss: float | None = None
        self.first_loss: float | None = None
        self.last_loss: float | None = None
        self.best_val_acc: float | None = None
        self.step_losses: list[float] = []
        self.step_penalties: list[float | None] = []  # the L1 term in each step's loss; None without L1
        self.epochs: dict[int, dict] = {}  # epoch -> train/loss, train/acc, val/loss, val/acc
        self.epoch_end_steps: dict[int, int] = {}  # epoch -> the global step when its training batches ended
        self.update_readings: list[tuple[int, dict[str, float]]] = []  # fused/watch.py: (step, layer -> ratio)

    def last_epoch_loss(self) -> float | None:
        """The last epoch's mean training loss, as a lone run reports it (train/loss_epoch)."""
        losses = self.history()["train_epoch"]
        return losses[-1] if losses else None

    def val_acc_by_epoch(self) -> dict[int, float]:
        """Epoch (from 0) -> val/acc, as ClassifierModule.val_acc_by_epoch holds it for a lone run."""
        return {epoch: figures["val/acc"] for epoch, figures in self.epochs.items() if "val/acc" in figures}

    def history(self) -> dict[str, list[float]]:
        """The curves in ClassifierModule.history's form, for the loss-curve verdict."""
        epochs = [figures for _, figures in sorted(self.epochs.items())]
        return {
            "train_steps": list(self.step_losses),
            "train_epoch": [figures["train/loss"] for figures in epochs if "train/loss" in figures],
            "val_epoch": [figures["val/loss"] for figures in epochs if "val/loss" in figures],
        }
