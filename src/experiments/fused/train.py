"""train_fused(cfgs, run_dirs): train a set of trials as one batched model, then give each trial what a lone
run leaves in its directory: metrics.json, a run in each of its loggers with its scalars and its lone run's
own histograms (written as the set trains, an epoch at a time) and hyperparameters, and its best and last
checkpoints, written as the set trains by its lone run's own ModelCheckpoint (fused/lone_runs.py), which
resume as a lone run's do.

Only values that leave the model's shapes and the data stream unchanged may differ across a set (FUSED);
`fusion_key` tells sets apart. Each trial starts from the weights its lone run would draw: the data is
built once, and every trial's module is built from the global RNG state the lone run has at that point.
"""

import json
import time
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from experiments.config.devices import check_device
from experiments.config.errors import UserError
from experiments.fused.lone_runs import LoneRun, LoneRunsAtEpochEnd, build_lone_runs
from experiments.fused.module import OPTIMIZERS, FusedModule
from experiments.fused.records import TrialRecord
from experiments.fused.trial_logs import LiveTrialLogs, TrialLog
from experiments.fused.watch import TrialUpdateRatios, reading_medians
from experiments.procedure.loss_curve import report_loss_curve
from experiments.records.metrics import best_epoch, chosen_hparams, swept_keys, varied_columns, write_metrics_json
from experiments.records.pictures.first_layer import draw_first_layer
from experiments.records.pictures.training_inputs import draw_training_inputs
from experiments.records.tracking.publish import publish_final
from experiments.run import build_data, build_module, check_before_training, prepare_process, run_facts, test
from experiments.training.callbacks.epoch_timer import EpochTimer
from experiments.training.callbacks.progress import progress_callback
from experiments.training.callbacks.update_ratio import UpdateRatio
from experiments.training.trainer import cluster_environment, showing_bar, trainer_options

FUSED = (
    "optimizer.lr",
    "optimizer.momentum",
    "regularization.weight_decay",
    "regularization.l1",
    "regularization.dropout",
    "scheduler.max_lr",  # OneCycleLR's peak: the trial's own optimizer.lr unless set
)


def fusion_key(cfg: DictConfig) -> str:
    """The config without the keys that may differ inside a fused set: equal keys, one set."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    for key in FUSED:
        parent, _, leaf = key.rpartition(".")
        if isinstance(plain.get(parent), dict):  # scheduler is null without a schedule
            plain[parent].pop(leaf, None)
    plain.pop("hydra", None)
    # Dropout rates fuse, but a rate of 0 builds a network without dropout layers: another shape.
    plain["regularization"]["dropout_layers"] = bool(cfg.regularization.dropout)
    return json.dumps(plain, sort_keys=True, default=str)  # plain data: no DictConfig built again


def check_fusable(cfgs: list[DictConfig], grouped: bool = False) -> None:
    """One line for the first thing a fused set cannot do, before anything is built. `grouped`: the configs
    were put together by their fusion_key already."""
    first = cfgs[0]
    if not grouped and len({fusion_key(cfg) for cfg in cfgs}) > 1:
        raise UserError(f"these trials differ in more than {', '.join(FUSED)}: they cannot train as one set")
    if "cell" in first.model:
        raise UserError(
            f"model={first.model.cell} does not fuse: torch.func has no batching rule for PyTorch's recurrent layers"
        )
    target = first.optimizer._target_
    if target not in OPTIMIZERS:
        names = ", ".join(f"optimizer={name}" for name in OPTIMIZERS.values())
        raise UserError(f"optimizer={target.rsplit('.', 1)[-1].lower()} does not fuse yet: use {names}")
    if first.get("callbacks"):
        names = ", ".join(f"callbacks.{name}" for name in first.callbacks)
        raise UserError(f"{names}: a fused set runs no extra callbacks (it is not one lone Trainer per trial)")
    if not first.train or first.check != "none" or first.tune != "none" or first.ckpt_path:
        raise UserError("fused sets train from scratch: no train=false, check=..., tune=... or ckpt_path")


def train_fused(
    cfgs: list[DictConfig], run_dirs: list[Path], choices: dict | None = None, callbacks: list | None = None
) -> list[dict]:
    """Train the trials `cfgs` as one model; each writes its results to its own run dir. Returns their metrics.
    `callbacks`: more for the set's fit (bench/step_ops.py counts a step's operations with one)."""
    check_fusable(cfgs)
    check_device(cfgs[0].trainer.accelerator, str(cfgs[0].trainer.precision))  # a SLURM node's too
    started = time.perf_counter()
    seed = prepare_process(cfgs[0])
    datamodule = build_data(cfgs[0])
    after_data = torch.get_rng_state()
    modules, checks = [], []
    for cfg in cfgs:
        torch.set_rng_state(after_data)  # the state a lone run of this trial builds its module from
        modules.append(build_module(cfg, datamodule))
        checks.append(check_before_training(cfg, modules[-1], datamodule))  # the initial loss, per trial
    fused = FusedModule(modules, cfgs[0].divergence_factor)
    timer, watch = EpochTimer(), cfgs[0].watch
    watching = [TrialUpdateRatios(watch.update_ratio_every)] if watch.update_ratio_every is not None else []
    # Each trial's lone run: its logger, written as the set trains, its checkpoints and its test phase.
    lone_runs = build_lone_runs(cfgs, run_dirs, modules, datamodule)
    logs = [
        TrialLog(lone.trainer.loggers, cfg.trainer.log_every_n_steps, cfg.regularization.l1 > 0)
        for lone, cfg in zip(lone_runs, cfgs, strict=True)
    ]
    live = LiveTrialLogs(logs)
    options, profiler = trainer_options(cfgs[0].trainer)
    progress = progress_callback()
    trainer: L.Trainer = instantiate(
        options,
        **profiler,
        logger=False,
        callbacks=[timer, *watching, LoneRunsAtEpochEnd(lone_runs, timer), live, progress] + list(callbacks or []),
        plugins=[environment] if (environment := cluster_environment()) is not None else [],
        enable_progress_bar=showing_bar([progress]),
        enable_model_summary=False,
        default_root_dir=str(run_dirs[0]),
        gradient_clip_val=cfgs[0].regularization.grad_clip.value,  # FusedModule clips per trial
        gradient_clip_algorithm=cfgs[0].regularization.grad_clip.algorithm,
    )
    trainer.fit(fused, datamodule=datamodule)
    seconds = time.perf_counter() - started
    live.write(fused)  # what the last epoch added
    device = str(trainer.strategy.root_device)
    results = []
    for trial, (cfg, run_dir, lone) in enumerate(zip(cfgs, run_dirs, lone_runs, strict=True)):
        record, run_dir, loggers, module = fused.records[trial], Path(run_dir), lone.trainer.loggers, lone.module
        status = trial_status(lone, record)
        tested = finish_trial(cfg, run_dir, lone, status, datamodule, len(record.step_losses))
        judge = lone.callbacks.update_ratio
        watched = {"update_ratio": update_ratio_summary(judge, record)} if judge is not None else {}
        metrics = {
            **checks[trial],
            "status": status,
            "best_val_acc": record.best_val_acc,
            "best_epoch": best_epoch(record.val_acc_by_epoch()),
            **({"pruned_epoch": lone.callbacks.pruning.pruned_epoch} if status == "pruned" else {}),
            **tested,
            "lr": cfg.optimizer.lr,
            "epochs": sum("val/loss" in figures for figures in record.epochs.values()),  # as trainer.current_epoch
            "final_train_loss": record.diverged_loss if record.status == "diverged" else record.last_epoch_loss(),
            "diverged_step": record.stopped_step if record.status == "diverged" else None,
            "fused": {"trials": len(cfgs), "with_others": len(cfgs) - 1, "set_seconds": round(seconds, 2)},
            "train_epoch_seconds": timer.train_seconds,
            "epoch_seconds": timer.epoch_seconds,
            "loss_curve": report_loss_curve(
                record.history(),
                record.status == "diverged",
                loggers,
                run_dir if cfg.watch.pictures else None,
                warmup_until=module.warmup_until,
            ),
            **watched,
            **run_facts(cfg, seed, device, run_dir, started, datamodule.val_images),
            "wall_seconds": round(seconds, 2),  # the whole set's: its trials trained together
        }
        write_metrics_json(run_dir, metrics)
        swept = swept_keys(run_dir)
        hparams = chosen_hparams(cfg, choices or {}, seed, swept, len(datamodule.train_images))
        publish_final(loggers, hparams, metrics, run_dir, varied_columns(swept))
        results.append(metrics)
    return results


def update_ratio_summary(judge: UpdateRatio, record: TrialRecord) -> dict:
    """The lone run's UpdateRatio's verdict on the trial's readings, as its metrics.json gives it."""
    judge.load_state_dict({"medians": reading_medians(record)})
    return judge.summary()


def trial_status(lone: LoneRun, record: TrialRecord) -> str:
    """The record's status, or `pruned` when its study stopped it (a sweep=optuna trial)."""
    pruning = lone.callbacks.pruning
    pruned = pruning is not None and pruning.pruned_epoch is not None and record.status != "diverged"
    return "pruned" if pruned else record.status


def finish_trial(cfg, run_dir: Path, lone: LoneRun, status: str, datamodule, steps: int) -> dict:
    """The trial's best checkpoint tested by its lone run's Trainer and test phase (run.test: every Trainer
    option holds), with the pictures a lone run draws (watch.pictures): its inputs, the test split's, and its
    first layer at its best epoch, which the test loaded."""
    best = lone.best_checkpoint
    if best is None:
        return {"test_acc": None, "test_loss": None, "best_checkpoint": None}
    trained = {"status": status, "best_checkpoint": best}
    tested = test(cfg, lone.trainer, lone.module, datamodule, trained)
    if cfg.watch.pictures:
        draw_training_inputs(datamodule, lone.module.hparams.data["class_names"], lone.trainer.loggers, run_dir)
        draw_first_layer(lone.module, lone.trainer.loggers, run_dir, steps)
    return {"test_acc": None, "test_loss": None, **tested, **trained}
