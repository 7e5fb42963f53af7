"""Steps 7 and 8 of the note for every trial of a fused set: the update/weight ratios (callbacks/update_ratio.py)
and the weight and gradient histograms (callbacks/histograms.py), read from the stacked tensors at once and
kept in each trial's record; fused/train.py writes them to the trial's own TensorBoard run.

A ratio reading copies the stacked weights just before the optimizer step and compares just before the next
one, after max-norm, as UpdateRatio does, or at the end of the epoch, before a stopped trial leaves the
stack; each trial's norms come from its own slice. Copies remember whose rows they hold: a trial the 3x
rule stopped may have left the stack since.
"""

import statistics

import lightning as L
import torch

from experiments.callbacks.histograms import BINS
from experiments.callbacks.update_ratio import finite_readings, update_ratios


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


class TrialHistograms(L.Callback):
    """Each trial's weights and (the epoch's last step's) gradients per layer, binned as WeightHistograms bins them."""

    def __init__(self) -> None:
        self.gradients: dict[str, torch.Tensor] = {}
        self.rows: dict[int, int] = {}  # trial -> its row in the gradients

    def on_before_optimizer_step(self, trainer: L.Trainer, fused, optimizer) -> None:
        if trainer.is_last_batch:
            grad = fused.stack.flat.grad
            gradients = fused.stack.views(grad.detach()) if grad is not None else {}
            self.gradients = {name: gradients[name].cpu() for name in fused.stack.weight_names if name in gradients}
            self.rows = {trial: row for row, trial in enumerate(fused.positions)}

    def on_train_epoch_end(self, trainer: L.Trainer, fused) -> None:
        rows = {trial: row for row, trial in enumerate(fused.positions)}
        stacked = fused.stack.weights()
        weights = {name: stacked[name].cpu() for name in fused.stack.weight_names}
        tensors = {f"weights/{lone_name(name)}": (stacked, rows) for name, stacked in weights.items()}
        tensors |= {f"gradients/{lone_name(name)}": (grad, self.rows) for name, grad in self.gradients.items()}
        self.gradients = {}
        for tag, (stacked, rows_of) in tensors.items():
            for trial in fused.positions:
                record = fused.records[trial]
                if trial not in rows_of:
                    continue
                values = stacked[rows_of[trial]].flatten().float()
                finite = values[torch.isfinite(values)]  # a diverged trial's NaNs have no histogram
                if record.status != "diverged" and len(finite):
                    record.histograms.append((trainer.current_epoch, tag, binned(finite)))


def binned(values: torch.Tensor) -> dict:
    """add_histogram_raw's arguments for `values`: BINS equal bins between their min and max."""
    low, high = values.min().item(), values.max().item()
    if high <= low:
        high = low + 1e-12  # one value repeated: one narrow bin
    counts, edges = torch.histogram(values, bins=BINS, range=(low, high))
    return {
        "min": low,
        "max": high,
        "num": len(values),
        "sum": values.sum().item(),
        "sum_squares": values.square().sum().item(),
        "bucket_limits": edges[1:].tolist(),
        "bucket_counts": counts.tolist(),
    }
