"""build_trainer(cfg, run_dir): Lightning's Trainer with this project's loggers and callbacks.

The loggers are those the `logger` group chose (records/tracking/build.py). Always on: best and last checkpoints,
epoch timing, the note's divergence rule (with divergence_factor=null only a loss that is not finite stops
the run) and a throttled Rich progress bar. The `watch` keys switch the update/weight ratios and the
histograms; the regularization and scheduler choices switch on max-norm, early stopping and the
learning-rate monitor. Lightning calls every callback for every hook, about 6 a training step, so a
callback with nothing to do during training is not attached then: the test-split pictures join for
testing (run.test), the other pictures are drawn outside the loop, the loss curve is kept by the module,
and the run prints its own model summary instead of Lightning's RichModelSummary callback.
"""

import logging
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from lightning.fabric.plugins.environments import (
    ClusterEnvironment,
    LightningEnvironment,
    LSFEnvironment,
    MPIEnvironment,
    SLURMEnvironment,
    TorchElasticEnvironment,
)
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint, ProgressBar
from omegaconf import DictConfig, OmegaConf

from experiments.checkpoints.atomic_io import AtomicCheckpointIO
from experiments.checkpoints.reading import load_checkpoint
from experiments.config.errors import UserError
from experiments.records.tracking.build import build_loggers
from experiments.training.callbacks.divergence import DivergenceAbort
from experiments.training.callbacks.epoch_timer import EpochTimer
from experiments.training.callbacks.histograms import WeightHistograms
from experiments.training.callbacks.interrupt import StopAtStep
from experiments.training.callbacks.max_norm import MaxNorm
from experiments.training.callbacks.progress import progress_callback
from experiments.training.callbacks.update_ratio import UpdateRatio
from experiments.training.lean_profiler import LeanPassThroughProfiler

log = logging.getLogger(__name__)

HISTOGRAM_LOGGERS = {"tensorboard", "wandb"}  # the trackers that draw histograms


class RunCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint with its state key computed once. Lightning formats every callback's
    state key on each hook call (6 a step), and this one's is a repr of five settings: 5 us a step. The
    key keeps ModelCheckpoint's name, so checkpoints written before this class existed still resume."""

    @cached_property
    def state_key(self) -> str:
        return super().state_key.replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)

    def load_state_dict(self, state_dict: dict) -> None:
        saved_run = Path(state_dict.get("dirpath") or self.dirpath).parent.name
        if saved_run != Path(self.dirpath).parent.name:
            return  # a new run trained on from another run's checkpoint: its best is its own, in its own folder

        # The same run, perhaps moved since: its checkpoints are found where the folder is now.
        def here(path):
            return str(Path(self.dirpath) / Path(path).name) if path else path

        moved = {
            key: here(state_dict.get(key)) for key in ("best_model_path", "kth_best_model_path", "last_model_path")
        }
        best_k = {here(path): score for path, score in state_dict.get("best_k_models", {}).items()}
        super().load_state_dict({**state_dict, **moved, "best_k_models": best_k, "dirpath": self.dirpath})


@dataclass
class RunCallbacks:
    """The callbacks whose results a run reports, and the rest."""

    checkpointing: ModelCheckpoint
    last: ModelCheckpoint
    timer: EpochTimer
    divergence: DivergenceAbort | None
    update_ratio: UpdateRatio | None
    pruning: L.Callback | None = None  # a sweep=optuna trial's: reports to its study, stops when pruned
    others: list[L.Callback] = field(default_factory=list)

    def all(self) -> list[L.Callback]:
        reporting = [self.checkpointing, self.last, self.timer, self.divergence, self.update_ratio, self.pruning]
        return [callback for callback in reporting if callback is not None] + self.others


def build_trainer(cfg: DictConfig, run_dir: Path, pruning: L.Callback | None = None) -> tuple[L.Trainer, RunCallbacks]:
    """`pruning`: a sweep trial's callback that reports to its study and stops the trial when it is pruned
    (it has `pruned_epoch`, None until then); the job hands it in (sweeps/report_to_study.py)."""
    options, profiler = trainer_options(cfg.trainer)
    callbacks = build_callbacks(cfg, run_dir, pruning)
    every_callback = callbacks.all()
    resumed_step = resumed_global_step(cfg, run_dir)
    loggers = build_loggers(cfg, run_dir, resumed_step)
    clip = cfg.regularization.grad_clip
    trainer: L.Trainer = instantiate(
        options,
        **profiler,
        logger=loggers or False,  # logger=[]: none, only the run's own files
        callbacks=every_callback,
        default_root_dir=str(run_dir),
        plugins=plugins(),
        enable_progress_bar=showing_bar(every_callback),  # piped: EpochLines, and no bar Lightning adds itself
        enable_model_summary=False,  # run.py prints one line: Lightning's callback would be called every step
        gradient_clip_val=clip.value,
        gradient_clip_algorithm=clip.algorithm,
    )
    return trainer, callbacks


def trainer_options(trainer_cfg: DictConfig) -> tuple[DictConfig, dict]:
    """cfg.trainer without this project's own keys (requeue), and the profiler for a lone run's Trainer and a
    fused set's alike: a real one is one override away (+trainer.profiler=simple); by default, a no-op
    without per-hook cost."""
    options = OmegaConf.masked_copy(trainer_cfg, [key for key in trainer_cfg if key != "requeue"])
    return options, {} if "profiler" in trainer_cfg else {"profiler": LeanPassThroughProfiler()}


def build_callbacks(cfg: DictConfig, run_dir: Path, pruning: L.Callback | None = None) -> RunCallbacks:
    """A lone run's callbacks. A fused set builds them too, to write each trial's checkpoints in their format."""
    return RunCallbacks(
        checkpointing=RunCheckpoint(
            dirpath=run_dir / "checkpoints",
            filename="best-epoch{epoch:02d}-val_acc{val/acc:.4f}",
            auto_insert_metric_name=False,
            monitor="val/acc",
            mode="max",
        ),
        # Since Lightning 2.6, save_last writes last.ckpt only when a best checkpoint is saved at the same step;
        # a second checkpoint without a monitor keeps last.ckpt at the newest epoch, which resume= needs.
        last=RunCheckpoint(dirpath=run_dir / "checkpoints", filename="last", enable_version_counter=False),
        timer=EpochTimer(run_dir),
        divergence=DivergenceAbort(cfg.divergence_factor),  # with the factor null, it still stops a NaN loss
        update_ratio=UpdateRatio(every) if (every := cfg.watch.update_ratio_every) is not None else None,
        pruning=pruning,
        others=[
            *optional_callbacks(cfg),
            *build_extra_callbacks(cfg),  # callbacks: from the config, checked by extra_callbacks.py
            StopAtStep(run_dir / "checkpoints" / "last.ckpt"),
            progress_callback(),
        ],
    )


def build_extra_callbacks(cfg: DictConfig) -> list:
    """The callbacks `callbacks:` names, in its order."""
    return [built(name, spec) for name, spec in (cfg.get("callbacks") or {}).items()]


def built(name: str, spec: DictConfig):
    """One callback from its entry; a value its class refuses is one line naming the entry and the cause."""
    try:
        return instantiate(spec)
    except Exception as err:
        cause = str(err.__cause__ or err).strip()  # Hydra wraps the class's own error
        reason = cause.splitlines()[0] if cause else type(err.__cause__ or err).__name__
        message = f"callbacks.{name}: {spec._target_.rsplit('.', 1)[-1]} refused its arguments: {reason}"
        raise UserError(message) from err


def plugins() -> list:
    """Atomic checkpoint writes: a kill while a checkpoint is written leaves the previous one whole. And the
    cluster environment (cluster_environment)."""
    environment = cluster_environment()
    return [AtomicCheckpointIO()] + ([environment] if environment is not None else [])


def cluster_environment() -> ClusterEnvironment | None:
    """Inside a SLURM job, Lightning's SLURM environment without its own requeue: trainer=slurm requeues
    (checkpoints/slurm_requeue.py). Under torchrun, LSF or MPI: None, and Lightning finds which, in its own
    order. Otherwise the plain environment, so that Lightning does not guess at SLURM on a machine that merely
    has `srun`: it warns on every login node that the command is not run with srun."""
    if TorchElasticEnvironment.detect():  # first, as Lightning orders them: torchrun inside a SLURM job
        return None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The `srun` command is available")  # asked here, not guessed
        if SLURMEnvironment.detect():
            return SLURMEnvironment(auto_requeue=False)
    return None if LSFEnvironment.detect() or MPIEnvironment.detect() else LightningEnvironment()


def showing_bar(callbacks: list) -> bool:
    return any(isinstance(callback, ProgressBar) for callback in callbacks)


def resumed_global_step(cfg: DictConfig, run_dir: Path) -> int | None:
    """The step a resumed run continues from. Half-written checkpoints a kill left behind are removed."""
    if not (cfg.train and cfg.ckpt_path):
        return None
    for partial in (run_dir / "checkpoints").glob("*.partial"):
        partial.unlink(missing_ok=True)  # under DDP every rank looks
    return load_checkpoint(cfg.ckpt_path).get("global_step")


def optional_callbacks(cfg: DictConfig) -> list[L.Callback]:
    """Callbacks that the regularization, scheduler and watch choices switch on."""
    regularization = cfg.regularization
    callbacks: list[L.Callback] = []
    if regularization.max_norm is not None:
        callbacks.append(MaxNorm(regularization.max_norm))
    if regularization.early_stopping.patience is not None:
        stopping = regularization.early_stopping
        callbacks.append(EarlyStopping("val/loss", patience=stopping.patience, min_delta=stopping.min_delta))
    if cfg.scheduler and cfg.get("logger"):  # the rate curve goes to the loggers; with none, nobody reads it
        callbacks.append(LearningRateMonitor())
    if cfg.watch.histograms and HISTOGRAM_LOGGERS & set(cfg.get("logger") or {}):
        callbacks.append(WeightHistograms())
    return callbacks
