"""A fused trial's TensorBoard run, written while the set trains (at the end of every epoch, the points since
the last write) with the tags and step numbers a lone run logs: the step and epoch losses, the update/weight
ratios and, with a scheduler, the learning rate (LearningRateMonitor's `lr-<Optimizer>/pg1`, `/pg2`)."""

import statistics

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger

from experiments.fused.records import TrialRecord
from experiments.fused.watch import finished_readings


class TrialLog:
    """`every`: log_every_n_steps. `with_l1`: the trial's L1 strength is above 0, so its lone run logs the
    penalty (train/l1_penalty) beside its step loss."""

    def __init__(self, logger: TensorBoardLogger, every: int, with_l1: bool) -> None:
        self.logger, self.every, self.with_l1 = logger, every, with_l1
        self.steps = self.readings = 0  # how many of each the run holds already
        self.epochs: set[int] = set()

    def write(self, record: TrialRecord, schedule: dict | None) -> None:
        """What the record gained since the last write. `schedule`: the trial's rates as its scheduler set them
        ((from step, rate) pairs), their interval (step or epoch) and the optimizer's class name; None without
        a scheduler."""
        logger, done = self.logger, self.steps
        pairs = list(zip(record.step_losses, record.step_penalties, strict=True))
        for step, (loss, penalty) in enumerate(pairs[done:], start=done):
            if (step + 1) % self.every == 0:
                extra = {"train/l1_penalty": penalty} if self.with_l1 else {}
                logger.log_metrics({"train/loss": loss, **extra}, step=step)
        self.steps = len(pairs)
        for epoch, figures in sorted(record.epochs.items()):  # at the epoch's last step, as Lightning logs them
            if epoch in self.epochs:
                continue
            named = {("train/loss_epoch" if key == "train/loss" else key): value for key, value in figures.items()}
            logger.log_metrics({**named, "epoch": epoch}, step=record.epoch_end_steps[epoch] - 1)
            self.epochs.add(epoch)
        readings = finished_readings(record)
        for step, ratios in readings[self.readings :]:
            scalars = {f"diag/update_ratio/{name}": ratio for name, ratio in ratios.items()}
            logger.log_metrics({**scalars, "diag/update_ratio/median": statistics.median(ratios.values())}, step=step)
        self.readings = len(readings)
        if schedule is not None:
            if schedule["interval"] == "step":
                logged = [step for step in range(done, self.steps) if (step + 1) % self.every == 0]
            else:  # each epoch's first step
                logged = [s for s in (0, *record.epoch_end_steps.values()) if done <= s < self.steps]
            write_rates(logger, schedule["rates"], logged, schedule["optimizer"])
        logger.experiment.flush()


class LiveTrialLogs(L.Callback):
    """Each trial's TrialLog written at the start of every epoch after the first (the last epoch's points,
    validation included) and, by train_fused, once more after the fit."""

    def __init__(self, logs: list[TrialLog], schedules) -> None:
        self.logs, self.schedules = logs, schedules  # schedules(trial): write's `schedule` for that trial

    def on_train_epoch_start(self, trainer: L.Trainer, fused) -> None:
        if trainer.current_epoch > 0:
            self.write(fused)

    def write(self, fused) -> None:
        for trial, log in enumerate(self.logs):
            log.write(fused.records[trial], self.schedules(trial))


def write_rates(logger, rates: list[tuple[int, float]], logged, optimizer: str) -> None:
    """The rate in force at each of the `logged` steps: where LearningRateMonitor logs, every log_every_n_steps
    steps for a per-batch scheduler, at each epoch's first step for a per-epoch one."""
    index = 0
    for step in logged:
        while index + 1 < len(rates) and rates[index + 1][0] <= step:
            index += 1
        rate = rates[index][1]
        logger.log_metrics({f"lr-{optimizer}/pg1": rate, f"lr-{optimizer}/pg2": rate}, step=step)
