"""Step 8 of the note for every trial of a fused set: the update/weight ratios
(training/callbacks/update_ratio.py), read from the stacked tensors at once and kept in each trial's record;
fused/trial_logs.py writes them to the trial's own TensorBoard run. (Each trial's histograms are its lone
run's own: fused/lone_runs.py.)

A ratio reading copies the stacked weights just before the optimizer step and compares just before the next
one, after max-norm, as UpdateRatio does, or at the end of the epoch, before a stopped trial leaves the
stack; each trial's norms come from its own slice. Copies remember whose rows they hold: a trial the 3x
rule stopped may have left the stack since.
"""

import statistics

import lightning as L
import torch

from experiments.training.callbacks.update_ratio import finite_readings, update_ratios


def lone_name(name: str) -> str:
    return name.removesuffix(".weight")  # ClassifierModule.named_weights's layer names


class TrialUpdateRatios(L.Callback):
    def __init__(self, every: int):
        self.every = every
        self.before: dict[str, torch.Tensor] | None = None
        self.trials: list[int] = []  # whose rows `before` holds

    def on_before_optimizer_step(self, trainer: L.Trainer, fused, optimizer) -> None:
        self.read(trainer, fused)
        if trainer.global_step % self.every == 0:
            weights = fused.stack.weights()
            self.before = {name: weights[name].clone() for name in fused.stack.weight_names}
            self.trials = list(fused.positions)

    def on_train_epoch_end(self, trainer: L.Trainer, fused) -> None:
        self.read(trainer, fused)

    def read(self, trainer: L.Trainer, fused) -> None:
        """Finish the reading started before the last optimizer step."""
        if self.before is None:
            return
        before, self.before = self.before, None
        if self.trials != fused.positions:
            rows = torch.tensor([self.trials.index(trial) for trial in fused.positions])
            before = {name: copy.index_select(0, rows.to(copy.device)) for name, copy in before.items()}
        ratios = update_ratios(before, fused.stack.weights()).tolist()  # [trials, tensors], one transfer
        names = [lone_name(name) for name in before]
        for trial, trial_ratios in zip(fused.positions, ratios, strict=True):
            readings = finite_readings(names, trial_ratios)
            if readings:  # logged at the step of the update, as UpdateRatio logs it
                fused.records[trial].update_readings.append((trainer.global_step - 1, readings))


def finished_readings(record) -> list[tuple[int, dict[str, float]]]:
    """The trial's readings up to where it stopped: a diverged trial's frozen slice reads 0 after that."""
    if record.status != "diverged":
        return record.update_readings
    return [(step, readings) for step, readings in record.update_readings if step < record.stopped_step]


def reading_medians(record) -> list[float]:
    return [statistics.median(readings.values()) for _, readings in finished_readings(record)]
