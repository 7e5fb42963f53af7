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
        end = _now(module)
        self.train_seconds.append(round((self._train_end or end) - self._start, 4))
        self.epoch_seconds.append(round(end - self._start, 4))
