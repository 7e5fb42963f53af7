"""Ctrl-C (SIGINT), a cluster's pre-emption notice (SIGTERM) and SLURM's time-limit warning (SIGUSR1, which
trainer=slurm answers with a requeue) stop a run at the next step boundary.

The signal handler only records the request, so it can never be lost in a window where an exception
would be swallowed (a destructor, a library's cleanup). `StopAtStep` acts on it after the next training
step: it saves checkpoints/last.ckpt (written atomically), then raises `Interrupted` out of the fit; the
run records the status `interrupted`, exits with 128 + the signal's number, and resumes with
`python train.py resume=RUN_DIR`. A stop asked at an epoch's last training step waits for that epoch's
validation and end instead: Lightning, resumed from that step, would count the epoch done without them.
During validation or testing one process stops after the batch (DDP ranks at their next training step),
and the last epoch's checkpoint stays the newest. A second Ctrl-C quits at once. Under DDP the ranks agree
at every step (one tiny all-reduce): a signal that reaches one rank stops them all at the same step, where
a rank stopping alone would leave the others waiting in their next collective.
"""

import logging
import signal
from pathlib import Path

import lightning as L
import torch

log = logging.getLogger(__name__)


class Interrupted(Exception):
    """Raised at a step boundary after a stop was requested; `run` reports the run as interrupted."""


class StopRequest:
    """The process's pending stop: the signal that asked for it, or None."""

    received: signal.Signals | None = None

    @classmethod
    def pending(cls) -> bool:
        return cls.received is not None

    @classmethod
    def exit_code(cls) -> int:
        return 128 + int(cls.received or signal.SIGINT)

    @classmethod
    def asks_requeue(cls) -> bool:
        return cls.received == signal.SIGUSR1


def install_stop_handlers() -> None:
    """From here on, SIGINT and SIGTERM ask the run to stop at its next step instead of killing it."""

    def request_stop(signum: int, frame) -> None:
        if StopRequest.pending() and signum == signal.SIGINT:  # the second Ctrl-C: no more waiting
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        StopRequest.received = signal.Signals(signum)
        log.warning(
            f"{StopRequest.received.name} received: stopping after this step and saving a checkpoint "
            "(Ctrl-C again to quit at once)"
        )

    for stop_signal in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
        signal.signal(stop_signal, request_stop)


class StopAtStep(L.Callback):
    def __init__(self, last_checkpoint: Path):
        self.last_checkpoint = last_checkpoint
        self.stop_after_epoch = False  # asked at an epoch's last step: finish the epoch, then stop

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs, batch, batch_idx) -> None:
        if not stop_agreed(trainer):
            return
        if batch_idx + 1 >= trainer.num_training_batches:
            self.stop_after_epoch = True
            return
        loader = trainer.train_dataloader
        if hasattr(loader, "stop_mid_epoch"):
            loader.stop_mid_epoch(batch_idx + 1)  # the fast data path resumes at the next batch
        trainer.save_checkpoint(self.last_checkpoint)
        raise Interrupted(f"{StopRequest.received.name} at step {trainer.global_step}")

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self.stop_after_epoch:
            trainer.should_stop = True  # the epoch's own hooks and logging still run; fit ends after them

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self.stop_after_epoch:  # saved with the epoch complete: the resumed run starts the next one
            trainer.save_checkpoint(self.last_checkpoint)
            raise Interrupted(f"{StopRequest.received.name} at the end of epoch {trainer.current_epoch}")

    # Under DDP, ranks may hold one evaluation batch more than others, so no collective here: they stop
    # together at the next training step instead.
    def on_validation_batch_end(self, trainer: L.Trainer, *args) -> None:
        if trainer.world_size == 1 and StopRequest.pending() and not self.stop_after_epoch:
            raise Interrupted(f"{StopRequest.received.name} during validation")

    def on_test_batch_end(self, trainer: L.Trainer, *args) -> None:
        if trainer.world_size == 1 and StopRequest.pending():
            raise Interrupted(f"{StopRequest.received.name} during testing")


def stop_agreed(trainer: L.Trainer) -> bool:
    """Whether any rank was asked to stop; a rank that was not adopts the signal of the ones that were."""
    if trainer.world_size == 1:
        return StopRequest.pending()
    asked = torch.tensor(float(StopRequest.received or 0), device=trainer.strategy.root_device)
    agreed = int(trainer.strategy.reduce(asked, reduce_op="max").item())
    if agreed and not StopRequest.pending():
        StopRequest.received = signal.Signals(agreed)
    return agreed > 0
