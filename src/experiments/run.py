"""run(cfg, run_dir): one configuration, from config to results, in named steps that read top to bottom:

    prepare_process -> build_data -> build_module -> check_before_training -> build_trainer
    -> find_learning_rate (tune=lr_find) -> fit (when training) -> test -> collect_metrics -> write_results

Training and evaluation (`train=false`) share every step; evaluation skips `fit` and tests the module
built from its checkpoint. `check_procedure` (check=procedure) shares the first three and then runs the
note's sanity checks instead of training. Nothing here reads Hydra's global state: the run directory
and the group choices arrive as arguments, the thread count as `cfg.torch_threads`. So the benchmark,
a test or a sweep launcher can call `run` outside a Hydra job.
"""

import logging
import random
import time
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from experiments.checkpoints.reading import (
    check_fits_data,
    read_hparams,
)
from experiments.checkpoints.slurm_requeue import requeue
from experiments.config.rules import CHECKS, PREPROCESSING_KEYS  # check=procedure runs all CHECKS, in order
from experiments.data.in_memory import InMemoryDataModule
from experiments.procedure.loss_curve import report_loss_curve
from experiments.procedure.lr_find import find_learning_rate
from experiments.procedure.report import report_checks, warn_failures
from experiments.procedure.sanity import CheckResult, run_checks
from experiments.records.metrics import (
    best_epoch,
    chosen_hparams,
    print_metrics_table,
    swept_keys,
    varied_columns,
    write_metrics_json,
)
from experiments.records.pictures.first_layer import draw_first_layer
from experiments.records.pictures.training_inputs import draw_training_inputs
from experiments.records.provenance import provenance
from experiments.records.tracking.publish import publish_final
from experiments.training.callbacks.divergence import Diverged
from experiments.training.callbacks.interrupt import Interrupted, StopRequest
from experiments.training.callbacks.prediction_figures import PredictionFigures
from experiments.training.console import quiet_library_noise
from experiments.training.module import ClassifierModule, load_module
from experiments.training.trainer import RunCallbacks, build_trainer

log = logging.getLogger(__name__)


def run(cfg: DictConfig, run_dir: str | Path, choices: dict | None = None, pruning: L.Callback | None = None) -> dict:
    """Train and test (or only evaluate) one configuration; returns the metrics written to metrics.json.

    `choices` are the config-group names picked (model=mlp, data=...), recorded in TensorBoard's HParams;
    `pruning` a sweep trial's study reporter (build_trainer)."""
    started = time.perf_counter()
    run_dir = Path(run_dir)
    seed = prepare_process(cfg)
    datamodule = build_data(cfg)
    module = build_module(cfg, datamodule)
    trainer, callbacks = build_trainer(cfg, run_dir, pruning)
    if trainer.is_global_zero:
        log.info(describe_run(cfg, module, datamodule, str(trainer.strategy.root_device), run_dir))
    checked = check_before_training(cfg, module, datamodule)
    tuned = find_learning_rate(cfg, trainer, module, datamodule) if cfg.tune == "lr_find" else {}
    trained = fit(cfg, trainer, module, datamodule, callbacks) if trains(cfg) else {}
    try:
        tested = test(cfg, trainer, module, datamodule, trained)
    except Interrupted:  # Ctrl-C or SIGTERM while testing: resuming tests again
        trained, tested = {**trained, "status": "interrupted"}, {}
    facts = run_facts(cfg, seed, str(trainer.strategy.root_device), run_dir, started, datamodule.val_images)
    metrics = collect_metrics(cfg, checked | tuned | trained, tested, facts)
    if trainer.is_global_zero:  # under DDP, one process writes what the run leaves behind
        swept = swept_keys(run_dir)
        hparams = chosen_hparams(cfg, choices or {}, seed, swept, len(datamodule.train_images))
        write_results(cfg, trainer, metrics, hparams, swept)
    if metrics.get("status") == "interrupted" and cfg.trainer.get("requeue") and StopRequest.asks_requeue():
        requeue(trainer.is_global_zero)  # SLURM's time-limit warning: the job starts again and resumes
    return metrics


def check_procedure(cfg: DictConfig, run_dir: str | Path) -> list[CheckResult]:
    """check=procedure: the note's sanity checks (steps 3-5) on the untrained model, instead of training.
    Prints their table and writes checks.json; the caller exits non-zero if any failed."""
    prepare_process(cfg)
    datamodule = build_data(cfg)
    module = build_module(cfg, datamodule)
    results = run_checks(CHECKS, cfg, module, datamodule)
    report_checks(results, Path(run_dir))
    return results


def prepare_process(cfg: DictConfig) -> int:
    """Seed every RNG, set the torch thread count and route library logging; returns the seed. The device was
    checked by the preflight (preflight.py)."""
    quiet_library_noise()
    seed = cfg.seed if cfg.seed is not None else random.randrange(2**31)  # `is not None`: 0 is a seed
    L.seed_everything(seed, verbose=False)
    if cfg.torch_threads is not None:
        torch.set_num_threads(cfg.torch_threads)
    return seed


def build_data(cfg: DictConfig) -> InMemoryDataModule:
    """The datamodule, with its splits read into memory: it serves pixels and augments training batches."""
    options = OmegaConf.to_container(cfg.data, resolve=True)
    for key in PREPROCESSING_KEYS:
        options.pop(key, None)
    augment = OmegaConf.to_container(cfg.regularization.augment, resolve=True)
    return instantiate(options, augment=augment).load()


def build_module(cfg: DictConfig, datamodule: InMemoryDataModule) -> ClassifierModule:
    """The checkpoint's own module when evaluating. Otherwise a new one, shaped by the data, whose
    preprocessing is fitted on the training pixels; when resuming, the checkpoint restores its statistics."""
    saved = read_hparams(cfg.ckpt_path) if cfg.ckpt_path else None
    if saved:
        check_fits_data(cfg.ckpt_path, saved, datamodule.input_shape, datamodule.num_classes, datamodule.name)
    if not cfg.train:
        return load_module(cfg.ckpt_path)
    preprocess, epsilon = (cfg.data.get(key) for key in PREPROCESSING_KEYS)
    if preprocess == "pca_whiten" and not cfg.model._target_.endswith("MLP"):
        log.warning(
            "data.preprocess=pca_whiten outputs principal components, not pixels: the image layout this "
            "model reads is lost; data.preprocess=zca_whiten keeps it"
        )
    hparams = {
        "model": OmegaConf.to_container(cfg.model, resolve=True),
        "optimizer": OmegaConf.to_container(cfg.optimizer, resolve=True),
        "regularization": OmegaConf.to_container(cfg.regularization, resolve=True),
        "scheduler": OmegaConf.to_container(cfg.scheduler, resolve=True) or None,
        "input_shape": list(datamodule.input_shape),
        "num_classes": datamodule.num_classes,
        "data": {**datamodule.describe(), "preprocess": preprocess, "whiten_epsilon": epsilon},
    }
    if saved:  # the preflight checked that it has this model, this preprocessing and its optimizer's state
        return ClassifierModule(**hparams)  # an empty transform of the right shape, filled by the checkpoint
    return ClassifierModule.fitted(datamodule.train_images, **hparams)


def describe_run(
    cfg: DictConfig, module: ClassifierModule, datamodule: InMemoryDataModule, device: str, run_dir: Path
) -> str:
    """The run's first line: what it trains (or evaluates) on which data and device, and where its files go."""
    shown_dir = run_dir.relative_to(Path.cwd()) if run_dir.is_relative_to(Path.cwd()) else run_dir
    where = f"on {datamodule.name} on {device} -> {shown_dir}"
    if not cfg.train:
        return f"evaluating {cfg.ckpt_path} {where}"
    model = module.hparams.model["_target_"].rsplit(".", 1)[-1]
    parameters = sum(parameter.numel() for parameter in module.parameters())
    doing = f"{cfg.trainer.max_epochs} epochs" if trains(cfg) else "a learning-rate search"
    resuming = f", resuming {cfg.ckpt_path}" if cfg.ckpt_path else ""
    return f"{model} ({parameters:,} parameters), {doing}{resuming} {where}"


def trains(cfg: DictConfig) -> bool:
    """Whether this run trains: not when evaluating, and not when it only searches a learning rate."""
    return cfg.train and (cfg.tune == "none" or cfg.lr_find.then_train)


def check_before_training(cfg: DictConfig, module: ClassifierModule, datamodule: InMemoryDataModule) -> dict:
    """checks.during_training (by default the initial loss) on a model about to train from scratch;
    a failed check warns and training goes on."""
    if not trains(cfg) or cfg.ckpt_path or not cfg.checks.during_training:
        return {}  # a resumed run reports the checks its checkpoint carries (fit)
    module.checks_before_training = warn_failures(run_checks(cfg.checks.during_training, cfg, module, datamodule))
    return {"checks": module.checks_before_training}


def fit(
    cfg: DictConfig,
    trainer: L.Trainer,
    module: ClassifierModule,
    datamodule: InMemoryDataModule,
    callbacks: RunCallbacks,
) -> dict:
    """Train (resuming from cfg.ckpt_path when given); returns what training leaves to report. With
    watch.pictures, draws the training inputs per class first and the first layer's weights after."""
    run_dir, names = trainer.default_root_dir, module.hparams.data["class_names"]
    pictures = cfg.watch.pictures and trainer.is_global_zero  # under DDP, drawn once
    if pictures and not cfg.ckpt_path:
        draw_training_inputs(datamodule, names, trainer.loggers, run_dir)
    interrupted = False
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
    except Diverged:  # DivergenceAbort recorded the step and the loss; the run ends here, untested
        module.keep_unfinished_epoch()
    except (Interrupted, SIGTERMException):  # StopAtStep saved last.ckpt; Lightning's own SIGTERM stop may come first
        module.keep_unfinished_epoch()
        interrupted = True
    if pictures:
        draw_first_layer(module, trainer.loggers, run_dir, trainer.global_step)
    divergence, checkpointing = callbacks.divergence, callbacks.checkpointing
    diverged = divergence is not None and divergence.diverged_step is not None
    pruned = callbacks.pruning is not None and callbacks.pruning.pruned_epoch is not None
    last_epoch_loss = trainer.callback_metrics.get("train/loss_epoch")  # testing replaces callback_metrics
    best = checkpointing.best_model_score
    drawn_in = run_dir if pictures else None
    curve = report_loss_curve(
        module.history, diverged, trainer.loggers, drawn_in, trainer.global_step, warmup_until=module.warmup_until
    )
    watched = {"loss_curve": curve}
    if module.schedule_restart is not None:  # trained on past its schedule's end: what the rate followed
        watched["schedule_restart"] = module.schedule_restart
    if cfg.ckpt_path and module.checks_before_training is not None:  # made before the run was interrupted
        watched["checks"] = module.checks_before_training
    if callbacks.update_ratio is not None:
        watched["update_ratio"] = callbacks.update_ratio.summary()
    return {
        "lr": module.hparams.optimizer["lr"],  # the rate trained with (lr_find's suggestion with tune=lr_find)
        "status": "interrupted" if interrupted else "diverged" if diverged else "pruned" if pruned else "completed",
        **({"pruned_epoch": callbacks.pruning.pruned_epoch} if pruned else {}),
        "best_val_acc": float(best) if best is not None else None,
        "best_epoch": best_epoch(module.val_acc_by_epoch),
        "epochs": trainer.current_epoch,
        "final_train_loss": divergence.diverged_loss if diverged else _number(last_epoch_loss),
        "diverged_step": divergence.diverged_step if diverged else None,
        "best_checkpoint": checkpointing.best_model_path or None,  # none when it diverged before validating
        "train_epoch_seconds": callbacks.timer.train_seconds,
        "epoch_seconds": callbacks.timer.epoch_seconds,
        **watched,
    }


def test(
    cfg: DictConfig, trainer: L.Trainer, module: ClassifierModule, datamodule: InMemoryDataModule, trained: dict
) -> dict:
    """The official test split: after training, the best checkpoint; when evaluating, the loaded module.
    A diverged run is over, and is not tested: the note moves on to the next setting instead."""
    if not cfg.test or (cfg.train and not trained):  # nothing trained: a learning-rate search only
        return {}
    if cfg.train and trained["status"] == "interrupted":
        return {}
    if cfg.train and trained["status"] == "pruned":  # its study stopped it: only finished trials are tested
        return {"test_acc": None, "test_loss": None}
    if cfg.train and (trained["status"] == "diverged" or not trained["best_checkpoint"]):
        return {"test_acc": None, "test_loss": None}
    if cfg.watch.pictures:  # on every rank: its confusion matrix and mistakes are gathered from all of them
        trainer.callbacks.append(PredictionFigures())  # test hooks only: not called on every training step
    # The best checkpoint by its path: "best" would make Lightning warn that the run has two checkpoint callbacks
    best = trained["best_checkpoint"] if cfg.train else None
    [tested] = trainer.test(module, datamodule=datamodule, ckpt_path=best, verbose=False)
    return {"test_acc": tested["test/acc"], "test_loss": tested["test/loss"]}


def collect_metrics(cfg: DictConfig, trained: dict, tested: dict, facts: dict) -> dict:
    """metrics.json's content, in the order people read it: outcome, test figures, training details, run facts."""
    if cfg.train and not trains(cfg):
        metrics = {"status": "searched", **trained}  # tune=lr_find alone: the search is the result
    elif cfg.train:
        outcome = {"status": trained["status"], "best_val_acc": trained["best_val_acc"]}
        metrics = {**outcome, "test_acc": None, "test_loss": None, **tested, **trained}
    else:
        metrics = {**tested, "evaluated_checkpoint": str(Path(cfg.ckpt_path).resolve())}
    return metrics | facts


def run_facts(cfg: DictConfig, seed: int, device: str, run_dir: Path, started: float, val_images: int) -> dict:
    """The end of metrics.json: how the run was made (its seed, threads, time and folder, and its code,
    packages, device and command: records/provenance.py), and the validation split's size, which says how
    far apart two accuracies must be to differ by more than one image."""
    return {
        "val_images": val_images,
        "seed": seed,
        "torch_threads": torch.get_num_threads(),
        "wall_seconds": round(time.perf_counter() - started, 2),
        "run_dir": str(run_dir),
        "provenance": provenance(list(cfg.get("logger") or {}), device),
    }


def write_results(cfg: DictConfig, trainer: L.Trainer, metrics: dict, hparams: dict, swept: list[str]) -> None:
    """metrics.json, the hyperparameters with the real final metrics in every logger, and the table on the console."""
    run_dir = Path(metrics["run_dir"])
    write_metrics_json(run_dir, metrics)
    publish_final(trainer.loggers, hparams, metrics, run_dir, varied_columns(swept))
    if cfg.train:
        title = "final metrics" if trains(cfg) else "learning-rate search"
    else:
        title = f"evaluation of {cfg.ckpt_path}"
    print_metrics_table(metrics, title=title, full=cfg.final_table == "full")


def _number(value) -> float | None:
    return float(value) if value is not None else None
