"""A fused trial's TensorBoard run, written after the set trained, with the tags and step numbers a lone run
logs: the step and epoch losses, the update/weight ratios, the weight and gradient histograms and, with a
scheduler, the learning rate (LearningRateMonitor's `lr-<Optimizer>/pg1`, `/pg2`)."""

import statistics

from lightning.pytorch.loggers import TensorBoardLogger

from experiments.fused.records import TrialRecord
from experiments.fused.watch import finished_readings


def write_trial_logs(
    logger: TensorBoardLogger, record: TrialRecord, every: int, schedule: dict | None, with_l1: bool
) -> None:
    """`schedule`: the trial's rates as its scheduler set them ((from step, rate) pairs), their interval
    (step or epoch) and the optimizer's class name; None without a scheduler. `with_l1`: the trial's L1
    strength is above 0, so its lone run logs the penalty (train/l1_penalty) beside its step loss."""
    steps = len(record.step_losses)
    for step, (loss, penalty) in enumerate(zip(record.step_losses, record.step_penalties, strict=True)):
        if (step + 1) % every == 0:
            logger.log_metrics({"train/loss": loss, **({"train/l1_penalty": penalty} if with_l1 else {})}, step=step)
    for epoch, figures in sorted(record.epochs.items()):  # at the epoch's last step, as Lightning logs them
        named = {("train/loss_epoch" if key == "train/loss" else key): value for key, value in figures.items()}
        logger.log_metrics({**named, "epoch": epoch}, step=record.epoch_end_steps[epoch] - 1)
    for step, readings in finished_readings(record):
        scalars = {f"diag/update_ratio/{name}": ratio for name, ratio in readings.items()}
        logger.log_metrics({**scalars, "diag/update_ratio/median": statistics.median(readings.values())}, step=step)
    for epoch, tag, binned in record.histograms:
        logger.experiment.add_histogram_raw(tag, global_step=epoch, **binned)
    if schedule is not None:
        if schedule["interval"] == "step":
            logged = [step for step in range(steps) if (step + 1) % every == 0]
        else:
            logged = [0, *(end for end in record.epoch_end_steps.values() if end < steps)]  # each epoch's first step
        write_rates(logger, schedule["rates"], logged, schedule["optimizer"])
    logger.experiment.flush()


def write_rates(logger, rates: list[tuple[int, float]], logged, optimizer: str) -> None:
    """The rate in force at each of the `logged` steps: where LearningRateMonitor logs, every log_every_n_steps
    steps for a per-batch scheduler, at each epoch's first step for a per-epoch one."""
    index = 0
    for step in logged:
        while index + 1 < len(rates) and rates[index + 1][0] <= step:
            index += 1
        rate = rates[index][1]
        logger.log_metrics({f"lr-{optimizer}/pg1": rate, f"lr-{optimizer}/pg2": rate}, step=step)
