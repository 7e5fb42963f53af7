"""Each fused trial's lone run, kept in step with the set: its own Trainer and callbacks (trainer.build_trainer),
its module, and an optimizer of its lone run's class over that module's parameters.

At the end of every training epoch, where Lightning calls a lone run's ModelCheckpoint and EarlyStopping
(after the module's own hook), each trial still in the stack hands its state to its lone run: its weights,
its slice of the stacked optimizer's state, its scheduler, the set's loop progress, data order and RNG, and
its epoch's val/loss and val/acc as the Trainer's callback metrics. Then the lone run's own callbacks act:
Lightning's EarlyStopping decides whether the trial stops, and Lightning's ModelCheckpoint writes its best
and last checkpoints through Trainer.save_checkpoint. So a fused trial's checkpoints are its lone run's,
written by Lightning, and `ckpt_path=` and `resume=` continue it as they continue any run.

A diverged trial writes nothing at the epoch it diverged in (a lone run that diverges writes no checkpoint
either); a trial that early stopping stops writes its last checkpoint at that epoch, before it leaves.
"""

import logging
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Checkpoint, EarlyStopping, LearningRateMonitor
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.types import LRSchedulerConfig
from omegaconf import DictConfig

from experiments.fused.watch import reading_medians
from experiments.sweeps.report_to_study import ReportToStudy
from experiments.training.callbacks.epoch_timer import EpochTimer
from experiments.training.callbacks.histograms import WeightHistograms
from experiments.training.module import ClassifierModule, rate_curve_name, warmup_steps
from experiments.training.trainer import build_trainer

LOOPS = ("fit_loop", "validate_loop", "test_loop", "predict_loop")


class LoneRun(L.Callback):
    """Also a callback of its own Trainer: what it saves holds the set's loops, the ones the trial ran in
    (their progress and the data loader's state); its own Trainer never ran them."""

    def __init__(self, cfg: DictConfig, run_dir: Path, module: ClassifierModule, datamodule: L.LightningDataModule):
        self.trainer, self.callbacks = build_trainer(cfg, Path(run_dir), ReportToStudy.for_trial(Path(run_dir)))
        self.module = module
        self.optimizer = instantiate(module.hparams.optimizer)(module.optimizer_groups())
        self.parameters = dict(module.named_parameters())
        self.trainer.strategy.connect(module)
        self.trainer.strategy.optimizers = [self.optimizer]
        self.trainer.datamodule = datamodule
        self.trainer.state.fn = TrainerFn.FITTING  # its checkpoint callbacks save during a fit only
        module.trainer = self.trainer
        self.trainer.callbacks.append(self)
        self.set_trainer: L.Trainer | None = None
        stopping = [callback for callback in self.callbacks.others if isinstance(callback, EarlyStopping)]
        self.histograms = next((c for c in self.callbacks.others if isinstance(c, WeightHistograms)), None)
        self.rates = next((c for c in self.callbacks.others if isinstance(c, LearningRateMonitor)), None)
        # Lightning's order at an epoch's end: the monitoring callbacks, checkpoints last
        pruning = [self.callbacks.pruning] if self.callbacks.pruning is not None else []  # a sweep=optuna trial's
        self.deciding = stopping + pruning + [self.callbacks.checkpointing, self.callbacks.last]
        for callback in self.deciding:
            callback.setup(self.trainer, module, stage="fit")

    def end_epoch(
        self, fused, set_trainer: L.Trainer, position: int, trial: int, timer: EpochTimer, gradients: dict | None
    ) -> bool:
        """The lone run's epoch-end callbacks on the trial's state; True when its EarlyStopping stops it.
        `gradients`: the trial's at the epoch's last step, by parameter name (None: not kept)."""
        record, self.set_trainer = fused.records[trial], set_trainer
        self.module.load_state_dict(fused.trial_state(position))
        self.module.history, self.module.val_acc_by_epoch = record.history(), record.val_acc_by_epoch()
        self.take_optimizer_state(fused, position, trial)
        for name in LOOPS:
            getattr(self.trainer, name).load_state_dict(getattr(set_trainer, name).state_dict())
        callbacks = self.callbacks
        callbacks.timer.load_state_dict({**timer.state_dict(), "run": callbacks.timer.run})  # the set's times
        if callbacks.divergence is not None:
            callbacks.divergence.load_state_dict({"initial_loss": record.first_loss})
        if callbacks.update_ratio is not None:
            callbacks.update_ratio.load_state_dict({"medians": reading_medians(record)})
        figures = record.epochs.get(set_trainer.current_epoch, {})
        metrics = {key: torch.tensor(figures[key]) for key in ("val/loss", "val/acc") if key in figures}
        self.trainer.callback_metrics.update(metrics)
        if self.histograms is not None and gradients is not None:
            self.draw_histograms(gradients)
        if "val/acc" in metrics:  # Lightning's own rules say which of the two hooks saves and decides
            for callback in self.deciding:
                callback.on_validation_end(self.trainer, self.module)
        for callback in self.deciding:
            callback.on_train_epoch_end(self.trainer, self.module)
        return self.trainer.should_stop

    def draw_histograms(self, gradients: dict) -> None:
        """The lone run's WeightHistograms on the trial's weights and its epoch's last gradients."""
        for name, gradient in gradients.items():
            self.parameters[f"net.{name}"].grad = gradient
        self.histograms.on_before_optimizer_step(self.trainer, self.module, self.optimizer)
        self.histograms.on_train_epoch_end(self.trainer, self.module)
        self.module.zero_grad()  # twenty lone copies of the gradients would double the set's memory

    def take_optimizer_state(self, fused, position: int, trial: int) -> None:
        """The trial's slice of the stacked optimizer's state, in torch.optim's own form for the lone module's
        parameters; with a scheduler, its groups' settings and the scheduler itself (fused/schedules.py)."""
        optimizer = self.optimizer
        schedules = fused.schedules
        if schedules is not None:
            for group, settings in zip(optimizer.param_groups, schedules.stand_ins[trial].param_groups, strict=True):
                group.update({key: value for key, value in settings.items() if key != "params"})
        stacked = fused.trainer.optimizers[0]
        state = stacked.state.get(fused.stack.flat, {})
        by_key = {key: fused.stack.views(value) for key, value in state.items() if torch.is_tensor(value)}
        adam_like = isinstance(optimizer, torch.optim.Adam | torch.optim.AdamW | torch.optim.RMSprop)
        with_momentum = any(group.get("momentum", 0) for group in optimizer.param_groups)
        for name in fused.stack.names:
            # the stack keeps a momentum buffer for every trial once any has momentum; torch keeps none without
            kept = [key for key in by_key if key != "momentum_buffer" or with_momentum]
            lone = {key: by_key[key][name][position].cpu().clone(memory_format=torch.contiguous_format) for key in kept}
            if adam_like and lone:  # torch counts steps in a tensor; the stacked RMSprop does not count them
                lone["step"] = torch.tensor(float(state.get("step", fused.global_step)))
            if lone:
                optimizer.state[self.parameters[f"net.{name}"]] = lone

    def on_save_checkpoint(self, trainer: L.Trainer, module: ClassifierModule, checkpoint: dict) -> None:
        checkpoint["loops"] = {name: getattr(self.set_trainer, name).state_dict() for name in LOOPS}

    @property
    def best_checkpoint(self) -> str | None:
        return self.callbacks.checkpointing.best_model_path or None


class LoneRunsAtEpochEnd(Checkpoint):
    """A Checkpoint callback, so Lightning calls it where a lone run's ModelCheckpoint is called: after the
    module's on_train_epoch_end. Every trial that validated this epoch goes through its lone run's callbacks;
    then the fused module ends the epoch (stopped trials leave the stack, epoch schedulers step)."""

    def __init__(self, lone_runs: list[LoneRun], timer: EpochTimer):
        self.lone_runs, self.timer = lone_runs, timer
        self.gradients: dict[int, dict] = {}  # trial -> its gradients at the epoch's last step, for histograms

    def on_before_optimizer_step(self, trainer: L.Trainer, fused, optimizer) -> None:
        grad = fused.stack.flat.grad
        if trainer.is_last_batch and grad is not None and any(lone.histograms for lone in self.lone_runs):
            views = fused.stack.views(grad.detach().cpu())  # a trial may leave before the epoch's end
            self.gradients = {
                trial: {name: view[row].clone(memory_format=torch.contiguous_format) for name, view in views.items()}
                for row, trial in enumerate(fused.positions)
            }

    def on_train_start(self, trainer: L.Trainer, fused) -> None:
        steps = int(trainer.estimated_stepping_batches)  # the schedule's length, as a lone run's module knows it
        for trial, lone in enumerate(self.lone_runs):
            lone.module.warmup_until = warmup_steps(lone.module.hparams.scheduler, steps)
            if fused.schedules is not None:  # the trial's own scheduler, saved in its checkpoints, read by its monitor
                trial_scheduler = fused.schedules.schedulers[trial]
                name, interval = rate_curve_name(trial_scheduler), fused.schedules.interval
                scheduler = LRSchedulerConfig(trial_scheduler, name=name, interval=interval)
                lone.trainer.strategy.lr_scheduler_configs = [scheduler]
                if lone.rates is not None:
                    lone.rates.on_train_start(lone.trainer)

    def on_train_batch_start(self, trainer: L.Trainer, fused, batch, batch_idx: int) -> None:
        if (trainer.global_step + 1) % trainer.log_every_n_steps == 0:  # where a lone run logs (one step a batch)
            self.log_rates(trainer, fused, "on_train_batch_start")

    def on_train_epoch_start(self, trainer: L.Trainer, fused) -> None:
        self.log_rates(trainer, fused, "on_train_epoch_start")

    def log_rates(self, trainer: L.Trainer, fused, hook: str) -> None:
        """Each running trial's LearningRateMonitor, called as Lightning calls it, at the set's loop progress."""
        if fused.schedules is None or not any(lone.rates for lone in self.lone_runs):
            return
        # a trial the 3x rule stopped has no rate after that step; reading the mask waits for the device, but
        # only every log_every_n_steps steps, as a lone run's logging does
        running = fused.running.tolist() if fused.running is not None else [True] * len(fused.positions)
        progress = trainer.fit_loop.state_dict()
        for trial, still_running in zip(fused.positions, running, strict=True):
            lone = self.lone_runs[trial]
            if lone.rates is not None and still_running:
                lone.trainer.fit_loop.load_state_dict(progress)
                getattr(lone.rates, hook)(lone.trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, fused) -> None:
        for position, trial in enumerate(fused.positions):
            record = fused.records[trial]
            if record.status == "diverged":
                continue
            gradients = self.gradients.get(trial)
            if self.lone_runs[trial].end_epoch(fused, trainer, position, trial, self.timer, gradients):
                record.status, record.stopped_step = "completed", trainer.global_step
                fused.leaving.append(position)
        self.gradients = {}
        fused.end_epoch()


def build_lone_runs(cfgs: list[DictConfig], run_dirs: list[Path], modules: list, datamodule) -> list[LoneRun]:
    """Each trial's lone run, without each Trainer printing the device lines the set's Trainer prints once."""
    lines = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    level = lines.level
    lines.setLevel(logging.WARNING)
    try:
        return [
            LoneRun(cfg, run_dir, module, datamodule)
            for cfg, run_dir, module in zip(cfgs, run_dirs, modules, strict=True)
        ]
    finally:
        lines.setLevel(level)
