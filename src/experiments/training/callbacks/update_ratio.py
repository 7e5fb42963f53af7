"""Step 8 of the note: the ratio of weight updates to weight magnitudes, ||delta theta|| / ||theta||, per
weight tensor, every `every` optimizer steps. The note's rule of thumb puts it near 1e-3 (1e-4 to 1e-2):
far above, the learning rate is too high; far below, too low.

A reading copies the weights just before the optimizer step and compares after it: one copy and a few
norms every `every` steps, 0.2-0.6 ms for the 670k weights of the default MLP (bench/epoch.py measures it).
Each tensor's ratio goes to TensorBoard as `watch/update_ratio/<layer>`, with their median as
`watch/update_ratio/median`: `watch/` sorts after `train/` and `val/`, so the loss and accuracy curves come first.
"""

import logging
import math
import statistics

import lightning as L
import torch

from experiments.records.tracking.publish import publish_scalars

log = logging.getLogger(__name__)

LOW, HIGH = 1e-4, 1e-2  # the note's band around 1e-3
MOST = 0.5  # "for most of training": more than half of the readings


def update_ratios(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> torch.Tensor:
    """||after - before|| / ||before|| for each tensor, over a leading trial axis (a lone run is a set of one):
    [trials, tensors]. The copies in `before` are used up: they become the updates, in place (a new tensor
    per layer made a reading 5x slower). All on the device; the caller makes the one transfer."""
    norm = torch.linalg.vector_norm
    with torch.no_grad():
        sizes = torch.stack([norm(copy.flatten(1), dim=1) for copy in before.values()])
        for name, copy in before.items():
            copy.sub_(after[name])
        moved = torch.stack([norm(copy.flatten(1), dim=1) for copy in before.values()])
    return (moved / sizes).T


def finite_readings(names: list[str], ratios: list[float]) -> dict[str, float]:
    """A reading's ratios by layer; an all-zero tensor (model.init=zeros) has no magnitude to compare with,
    so it is left out."""
    return {name: ratio for name, ratio in zip(names, ratios, strict=True) if math.isfinite(ratio)}


def ratio_scalars(readings: dict[str, float]) -> dict[str, float]:
    """One reading's tags: each weight tensor's ratio and their median."""
    scalars = {f"watch/update_ratio/{name}": ratio for name, ratio in readings.items()}
    return {**scalars, "watch/update_ratio/median": statistics.median(readings.values())}


class UpdateRatio(L.Callback):
    def __init__(self, every: int):
        self.every = every
        self.before: dict[str, torch.Tensor] | None = None
        self.medians: list[float] = []  # one per reading, over the weight tensors

    # One hook per step, not two: the weights just before step k+1's update are the weights just after step
    # k's, so the reading started at step k is finished there. Each Lightning hook costs 5-8 us a step.
    def on_before_optimizer_step(self, trainer: L.Trainer, module: L.LightningModule, optimizer) -> None:
        if self.before is not None:
            self.read(trainer, module)
        if trainer.global_step % self.every == 0:
            self.before = {name: weight.detach().clone().unsqueeze(0) for name, weight in module.named_weights()}

    def read(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        """Finish the reading started before the last optimizer step; it is logged at that step."""
        before, self.before = self.before, None
        weights = {name: weight.unsqueeze(0) for name, weight in module.named_weights()}
        readings = finite_readings(list(before), update_ratios(before, weights)[0].tolist())
        if not readings:
            return
        median = statistics.median(readings.values())
        self.medians.append(median)
        if trainer.loggers:
            publish_scalars(trainer.loggers, ratio_scalars(readings), trainer.global_step - 1)

    def summary(self) -> dict:
        """The run's verdict: was the median ratio outside [1e-4, 1e-2] for most readings, and on which side."""
        if not self.medians:
            return {"readings": 0, "verdict": "no readings"}
        below = sum(m < LOW for m in self.medians) / len(self.medians)
        above = sum(m > HIGH for m in self.medians) / len(self.medians)
        verdict = "within the note's band"
        if above > MOST:
            verdict = "too high: the learning rate is probably too high"
        elif below > MOST:
            verdict = "too low: the learning rate is probably too low"
        return {
            "readings": len(self.medians),
            "median": statistics.median(self.medians),
            "share_above_1e-2": round(above, 3),
            "share_below_1e-4": round(below, 3),
            "verdict": verdict,
        }

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self.before is not None:  # a reading started at the very last step
            self.read(trainer, module)
        summary = self.summary()
        if summary["verdict"].startswith("too"):
            share = summary["share_above_1e-2"] if "high" in summary["verdict"] else summary["share_below_1e-4"]
            log.warning(
                f"update/weight ratio {summary['verdict']} (median {summary['median']:.2g} over "
                f"{summary['readings']} readings, outside [{LOW:g}, {HIGH:g}] in {share:.0%} of them)"
            )

    # A resumed run judges its whole history, not only what came after the restart.
    def state_dict(self) -> dict:
        return {"medians": self.medians}

    def load_state_dict(self, state_dict: dict) -> None:
        self.medians = list(state_dict.get("medians", []))
