"""A fused trial's logger runs, written while the set trains (at the end of every epoch, the points since
the last write) with the tags and step numbers a lone run logs: the step and epoch losses and the
update/weight ratios. (Its learning rate and histograms are its lone run's own: fused/lone_runs.py.)"""

import lightning as L
from lightning.pytorch.loggers import Logger

from experiments.fused.records import TrialRecord
from experiments.fused.watch import finished_readings
from experiments.records.tracking.publish import flush, publish_scalars
from experiments.training.callbacks.update_ratio import ratio_scalars


class TrialLog:
    """`every`: log_every_n_steps. `with_l1`: the trial's L1 strength is above 0, so its lone run logs the
    penalty (train/l1_penalty) beside its step loss."""

    def __init__(self, loggers: list[Logger], every: int, with_l1: bool) -> None:
        self.loggers, self.every, self.with_l1 = loggers, every, with_l1
        self.steps = self.readings = 0  # how many of each the run holds already
        self.epochs: set[int] = set()

    def write(self, record: TrialRecord) -> None:
        """What the record gained since the last write."""
        loggers, done = self.loggers, self.steps
        pairs = list(zip(record.step_losses, record.step_penalties, strict=True))
        for step, (loss, penalty) in enumerate(pairs[done:], start=done):
            if (step + 1) % self.every == 0:
                extra = {"train/l1_penalty": penalty} if self.with_l1 else {}
                publish_scalars(loggers, {"train/loss": loss, **extra}, step)
        self.steps = len(pairs)
        for epoch, figures in sorted(record.epochs.items()):  # at the epoch's last step, as Lightning logs them
            if epoch in self.epochs:
                continue
            named = {("train/loss_epoch" if key == "train/loss" else key): value for key, value in figures.items()}
            publish_scalars(loggers, {**named, "epoch": epoch}, record.epoch_end_steps[epoch] - 1)
            self.epochs.add(epoch)
        readings = finished_readings(record)
        for step, ratios in readings[self.readings :]:
            publish_scalars(loggers, ratio_scalars(ratios), step)
        self.readings = len(readings)
        flush(loggers)


class LiveTrialLogs(L.Callback):
    """Each trial's TrialLog written at the start of every epoch after the first (the last epoch's points,
    validation included) and, by train_fused, once more after the fit."""

    def __init__(self, logs: list[TrialLog]) -> None:
        self.logs = logs

    def on_train_epoch_start(self, trainer: L.Trainer, fused) -> None:
        if trainer.current_epoch > 0:
            self.write(fused)

    def write(self, fused) -> None:
        for trial, log in enumerate(self.logs):
            log.write(fused.records[trial])
