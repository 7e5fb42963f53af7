"""Seconds per epoch, for metrics.json and the benchmark: the training batches alone, and with validation."""

import time

import lightning as L
import torch


def _now(module: L.LightningModule) -> float:
    if module.device.type == "cuda":  # GPU work is asynchronous; wait for it before reading the clock
        torch.cuda.synchronize(module.device)
    return time.perf_counter()


class EpochTimer(L.Callback):
    def __init__(self) -> None:
        self.train_seconds: list[float] = []  # first training batch to last, per epoch
        self.epoch_seconds: list[float] = []  # the same plus that epoch's validation
        self._start = self._train_end = None

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._start, self._train_end = _now(module), None

    def on_validation_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self._start is not None and not trainer.sanity_checking:
            self._train_end = _now(module)

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self._start is None:  # resumed mid-epoch (after an interrupt): Lightning skips the epoch's start
            return
        end = _now(module)
        self.train_seconds.append(round((self._train_end or end) - self._start, 4))
        self.epoch_seconds.append(round(end - self._start, 4))

    # A resumed run reports every epoch's seconds, those before the interruption too.
    def state_dict(self) -> dict:
        return {"train_seconds": list(self.train_seconds), "epoch_seconds": list(self.epoch_seconds)}

    def load_state_dict(self, state_dict: dict) -> None:
        self.train_seconds = list(state_dict.get("train_seconds", []))
        self.epoch_seconds = list(state_dict.get("epoch_seconds", []))
