"""Each fused trial's training state at the end of every epoch, taken where a lone run's ModelCheckpoint
saves (the end of the training epoch, after the module's own hook), so that the trial's checkpoints
(fused/lone_checkpoint.py) hold what its lone run's would: its weights, its slice of the optimizer's
state, its scheduler, Lightning's loop progress, the data order and the RNG.

The loop progress, the datamodule's shuffling state and the RNG are the set's: every trial in the stack
took the same steps on the same batches. A diverged trial takes no snapshot at the epoch it diverged in
(a lone run that diverges writes no checkpoint either); a trial stopped early takes its last one at the
epoch it stopped. Snapshots live on the CPU; each trial keeps its newest and its best.
"""

import copy
from dataclasses import dataclass

import lightning as L
import torch
from lightning.pytorch.callbacks import Checkpoint
from torch import Tensor

from experiments.callbacks.epoch_timer import EpochTimer
from experiments.fused.watch import reading_medians

LOOPS = ("fit_loop", "validate_loop", "test_loop", "predict_loop")  # the Trainer's loops, as Lightning saves them


@dataclass
class TrialSnapshot:
    epoch: int
    global_step: int
    weights: dict[str, Tensor]  # the lone module's state dict
    optimizer_state: dict[str, dict]  # stack parameter name -> the trial's slice of each state entry
    groups: list[dict] | None  # the trial's parameter-group settings when a scheduler moves them, else None
    scheduler: dict | None  # the trial's scheduler's state_dict
    loops: dict
    datamodule: dict  # {the datamodule's class name: its state}, Lightning's key, or {} without a state
    rng: Tensor
    history: dict[str, list[float]]
    val_acc: float | None
    timer: dict
    update_medians: list[float]
    wait: int
    val_loss_best: float


class TrialCheckpoints(Checkpoint):
    """A Checkpoint callback, so Lightning calls it where ModelCheckpoint would be called: after the
    module's on_train_epoch_end. It snapshots every trial that validated this epoch, then lets the fused
    module end the epoch (stopped trials leave the stack, epoch schedulers step)."""

    def __init__(self, timer: EpochTimer):
        self.timer = timer

    def on_train_epoch_end(self, trainer: L.Trainer, fused) -> None:
        shared = {
            "epoch": trainer.current_epoch,
            "global_step": trainer.global_step,
            "loops": {name: copy.deepcopy(getattr(trainer, name).state_dict()) for name in LOOPS},
            "datamodule": datamodule_state(trainer.datamodule),
            "rng": torch.get_rng_state(),
            "timer": copy.deepcopy(self.timer.state_dict()),
        }
        for position, trial in enumerate(fused.positions):
            record = fused.records[trial]
            if record.status == "diverged":
                continue
            snapshot = take_snapshot(fused, position, trial, shared)
            record.last_snapshot = snapshot
            if record.best_epoch == trainer.current_epoch:
                record.best_snapshot = snapshot
        fused.end_epoch()


def take_snapshot(fused, position: int, trial: int, shared: dict) -> TrialSnapshot:
    record = fused.records[trial]
    optimizer = fused.trainer.optimizers[0]
    state = optimizer.state.get(fused.stack.flat, {})
    by_name = {key: fused.stack.views(value) for key, value in state.items() if torch.is_tensor(value)}
    optimizer_state = {
        name: {
            key: by_name[key][name][position].cpu().clone(memory_format=torch.contiguous_format)
            if key in by_name
            else value
            for key, value in state.items()
        }
        for name in fused.stack.names
    }
    schedules, groups, scheduler = fused.schedules, None, None
    if schedules is not None:
        groups = [
            {key: copy.deepcopy(value) for key, value in group.items() if key != "params"}
            for group in schedules.stand_ins[trial].param_groups
        ]
        scheduler = copy.deepcopy(schedules.schedulers[trial].state_dict())
    return TrialSnapshot(
        epoch=shared["epoch"],
        global_step=shared["global_step"],
        weights=fused.trial_state(position),
        optimizer_state=optimizer_state,
        groups=groups,
        scheduler=scheduler,
        loops=shared["loops"],
        datamodule=shared["datamodule"],
        rng=shared["rng"],
        history=record.history(),
        val_acc=record.epochs.get(shared["epoch"], {}).get("val/acc"),
        timer=shared["timer"],
        update_medians=reading_medians(record),
        wait=record.wait,
        val_loss_best=record.val_loss_best,
    )


def datamodule_state(datamodule) -> dict:
    """The datamodule's state under Lightning's key for it (its class's qualified name); {} without one."""
    state = datamodule.state_dict() if datamodule is not None else {}
    return {type(datamodule).__qualname__: copy.deepcopy(state)} if state else {}
