"""Seconds per epoch, for metrics.json and the benchmark: the training batches alone, and with validation.

The timings are the run's own. A run resumed in place keeps those of its epochs before the interruption,
and the epoch it was stopped in counts the time spent in it before and after (a requeued SLURM job's epochs
all appear). A new run started from another run's checkpoint times only the epochs it trains."""

import time
from pathlib import Path

import lightning as L
import torch


def _now(module: L.LightningModule) -> float:
    if module.device.type == "cuda":  # GPU work is asynchronous; wait for it before reading the clock
        torch.cuda.synchronize(module.device)
    return time.perf_counter()


class EpochTimer(L.Callback):
    def __init__(self, run_dir: str = "") -> None:
        self.run = Path(run_dir).name  # whose timings these are: a run keeps its folder's name when moved
        self.train_seconds: list[float] = []  # first training batch to last, per epoch
        self.epoch_seconds: list[float] = []  # the same plus that epoch's validation
        self._start = self._train_end = None
        self._carried: float | None = None  # seconds spent in the epoch under way before an interruption

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self._carried is not None:  # resumed mid-epoch: Lightning does not start that epoch again
            self._start, self._carried = _now(module) - self._carried, None

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._start, self._train_end = _now(module), None

    def on_validation_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self._start is not None and not trainer.sanity_checking:
            self._train_end = _now(module)

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self._start is None:
            return
        end = _now(module)
        self.train_seconds.append(round((self._train_end or end) - self._start, 4))
        self.epoch_seconds.append(round(end - self._start, 4))
        self._start = None  # a checkpoint written from here on is at an epoch's end: nothing under way

    def state_dict(self) -> dict:
        under_way = round(time.perf_counter() - self._start, 4) if self._start is not None else None
        return {
            "run": self.run,
            "train_seconds": list(self.train_seconds),
            "epoch_seconds": list(self.epoch_seconds),
            "under_way": under_way,  # written by a mid-epoch checkpoint (an interrupt)
        }

    def load_state_dict(self, state_dict: dict) -> None:
        if state_dict.get("run", self.run) != self.run:
            return  # another run's checkpoint, trained on in a new run: its epochs are not this run's
        self.train_seconds = list(state_dict.get("train_seconds", []))
        self.epoch_seconds = list(state_dict.get("epoch_seconds", []))
        self._carried = state_dict.get("under_way")
