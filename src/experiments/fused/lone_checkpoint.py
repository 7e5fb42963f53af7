"""A fused trial's snapshot as the checkpoint its lone run would have written: Lightning's layout, with the
lone run's optimizer (torch.optim's own state_dict, built over the lone module's parameters), its
scheduler, the loop progress, the states of the lone run's callbacks, and the module's extras (RNG, loss
history, checks). So `ckpt_path=` and `resume=` continue a fused trial as they continue any run, and
evaluation, `predict` and the pictures read it unchanged.
"""

from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from experiments.fused.snapshots import TrialSnapshot
from experiments.module import ClassifierModule
from experiments.trainer import build_callbacks


def lone_checkpoint(
    cfg: DictConfig, run_dir: Path, module: ClassifierModule, snapshot: TrialSnapshot, record, paths: dict
) -> dict:
    """`paths`: the trial's "best" and "last" checkpoint files, which ModelCheckpoint's state names."""
    module.load_state_dict(snapshot.weights)
    checkpoint = {
        "epoch": snapshot.epoch,
        "global_step": snapshot.global_step,
        "pytorch-lightning_version": L.__version__,
        "state_dict": module.state_dict(),
        "loops": snapshot.loops,
        "callbacks": callback_states(cfg, run_dir, snapshot, record, paths),
        "optimizer_states": [optimizer_state(module, snapshot)],
        "lr_schedulers": [snapshot.scheduler] if snapshot.scheduler is not None else [],
        ClassifierModule.CHECKPOINT_HYPER_PARAMS_KEY: dict(module.hparams),
        # ClassifierModule.on_save_checkpoint's extras
        "torch_rng_state": snapshot.rng,
        "loss_history": snapshot.history,
        "checks_before_training": module.checks_before_training,
        "warmup_until": module.warmup_until,
    }
    return checkpoint | snapshot.datamodule


def optimizer_state(module: ClassifierModule, snapshot: TrialSnapshot) -> dict:
    """torch.optim's state_dict for the trial: the lone run's optimizer over the lone module's parameter
    groups, holding the trial's slice of the stacked state and, when scheduled, its groups' settings."""
    optimizer = instantiate(module.hparams.optimizer)(module.optimizer_groups())
    if snapshot.groups is not None:
        for group, settings in zip(optimizer.param_groups, snapshot.groups, strict=True):
            group.update(settings)
    parameters = dict(module.named_parameters())
    adam_like = isinstance(optimizer, torch.optim.Adam | torch.optim.AdamW | torch.optim.RMSprop)
    with_momentum = any(group.get("momentum", 0) for group in optimizer.param_groups)
    for name, state in snapshot.optimizer_state.items():
        # the stack keeps a momentum buffer for every trial once any has momentum; torch keeps none without
        kept = [key for key in state if key != "step" and (key != "momentum_buffer" or with_momentum)]
        lone = {key: state[key] for key in kept}
        if adam_like and state:  # torch counts steps in a tensor; the stacked RMSprop does not count them
            lone["step"] = torch.tensor(float(state.get("step", snapshot.global_step)))
        if lone:
            optimizer.state[parameters[f"net.{name}"]] = lone
    return optimizer.state_dict()


def callback_states(cfg: DictConfig, run_dir: Path, snapshot: TrialSnapshot, record, paths: dict) -> dict:
    """The lone run's callbacks, given the trial's figures, in the form Lightning saves them: {state_key: state}."""
    callbacks = build_callbacks(cfg, run_dir)
    best_acc = record.best_val_acc if snapshot is record.last_snapshot else snapshot.val_acc
    best = torch.tensor(best_acc) if best_acc is not None and paths["best"] else None
    best_path = str(paths["best"]) if best is not None else ""  # ModelCheckpoint's "none yet"
    callbacks.checkpointing.load_state_dict(
        {
            "monitor": "val/acc",
            "best_model_score": best,
            "best_model_path": best_path,
            "current_score": torch.tensor(snapshot.val_acc) if snapshot.val_acc is not None else None,
            "dirpath": callbacks.checkpointing.dirpath,
            "best_k_models": {best_path: best} if best is not None else {},
            "kth_best_model_path": best_path,
            "kth_value": best,
            "last_model_path": "",  # save_last is off: the second checkpoint writes last.ckpt (trainer.py)
        }
    )
    newest = snapshot is record.last_snapshot
    callbacks.last.load_state_dict(
        {
            "monitor": None,
            "best_model_score": None,
            "best_model_path": str(paths["last"]) if newest else "",
            "current_score": None,
            "dirpath": callbacks.last.dirpath,
            "best_k_models": {},
            "kth_best_model_path": "",
            "kth_value": torch.tensor(float("inf")),
            "last_model_path": "",
        }
    )
    callbacks.timer.load_state_dict({**snapshot.timer, "run": callbacks.timer.run})  # the set's times, as the trial's
    if callbacks.divergence is not None:
        callbacks.divergence.load_state_dict({"initial_loss": record.first_loss})
    if callbacks.update_ratio is not None:
        callbacks.update_ratio.load_state_dict({"medians": snapshot.update_medians})
    for callback in callbacks.others:
        if isinstance(callback, L.pytorch.callbacks.EarlyStopping):
            best_loss = torch.tensor(snapshot.val_loss_best)
            state = {"wait_count": snapshot.wait, "stopped_epoch": 0, "best_score": best_loss}
            callback.load_state_dict({**state, "patience": callback.patience})
    states = {callback.state_key: callback.state_dict() for callback in callbacks.all()}
    return {key: state for key, state in states.items() if state}  # as Lightning leaves out empty states
