"""run(cfg): seed -> datamodule -> model (dims from the data) -> trainer -> fit -> test -> metrics."""

import logging
import os
import random
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from experiments.callbacks.divergence import DivergenceAbort
from experiments.callbacks.epoch_timer import EpochTimer
from experiments.callbacks.max_norm import MaxNorm
from experiments.callbacks.progress import SteadyRichProgressBar
from experiments.callbacks.test_images import TestImages
from experiments.checkpoints import check_fits_data, check_same_model, read_hparams
from experiments.data.in_memory import InMemoryDataModule
from experiments.lean_profiler import LeanPassThroughProfiler
from experiments.module import ClassifierModule
from experiments.reporting import chosen_hparams, log_hparams, print_metrics_table, write_metrics_json


def _quiet_library_noise() -> None:
    # Lightning and torchmetrics install console handlers of their own; Hydra's root handlers already
    # print each record and file it in train.log, so route everything through those once.
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "torchmetrics"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # Advertising tips ("💡 Tip: ... litlogger") come through rank_zero_info; they are not about this run.
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(lambda record: "💡" not in record.getMessage())
    # Raised inside Lightning's own code against torch >= 2.10; nothing a user can act on.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")


def optional_callbacks(cfg: DictConfig) -> list[L.Callback]:
    """Callbacks that the regularization and scheduler choices switch on."""
    regularization = cfg.regularization
    callbacks: list[L.Callback] = []
    if regularization.max_norm is not None:
        callbacks.append(MaxNorm(regularization.max_norm))
    if regularization.early_stopping.patience is not None:
        stopping = regularization.early_stopping
        callbacks.append(EarlyStopping("val/loss", patience=stopping.patience, min_delta=stopping.min_delta))
    if cfg.scheduler:
        callbacks.append(LearningRateMonitor())
    return callbacks


log = logging.getLogger(__name__)


def torch_threads(cfg: DictConfig) -> int:
    """cfg.torch_threads, or the cores shared out among trials that a parallel launcher runs at once."""
    if cfg.torch_threads is not None:
        threads = cfg.torch_threads
    else:
        launcher = HydraConfig.get().launcher
        parallel = launcher.get("n_jobs", 1) if "joblib" in str(launcher.get("_target_", "")) else 1
        cores = os.cpu_count() or 1
        parallel = cores if parallel is None or parallel < 1 else parallel  # joblib's -1: one per core
        threads = max(1, cores // parallel) if parallel > 1 else torch.get_num_threads()
    torch.set_num_threads(threads)
    return threads


def _number(value) -> float | None:
    return float(value) if value is not None else None


def run(cfg: DictConfig) -> dict:
    """Train (or only evaluate) one configuration; returns the final metrics also written to metrics.json."""
    started = time.perf_counter()
    _quiet_library_noise()
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    seed = cfg.seed if cfg.seed is not None else random.randrange(2**31)  # `is not None`: 0 is a seed
    L.seed_everything(seed, verbose=False)
    threads = torch_threads(cfg)

    if cfg.train and cfg.data.get("preprocess") == "pca_whiten" and not cfg.model._target_.endswith("MLP"):
        log.warning(
            "data.preprocess=pca_whiten outputs principal components, not pixels: the image layout this "
            "model reads is lost; data.preprocess=zca_whiten keeps it"
        )
    datamodule: InMemoryDataModule = instantiate(cfg.data)
    ckpt_hparams = read_hparams(cfg.ckpt_path) if cfg.ckpt_path else None
    if not cfg.train:  # evaluation preprocesses with the checkpoint's transform, so none is fitted here
        module = ClassifierModule.load_from_checkpoint(cfg.ckpt_path, map_location="cpu", weights_only=True)
        datamodule.use_input_transform(module.input_transform)
    datamodule.setup()
    datamodule.use_augmentation(OmegaConf.to_container(cfg.regularization.augment))
    if ckpt_hparams:
        check_fits_data(cfg.ckpt_path, ckpt_hparams, datamodule.input_shape, datamodule.num_classes, datamodule.name)

    logger = TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version="", default_hp_metric=False)
    checkpointing = ModelCheckpoint(
        dirpath=run_dir / "checkpoints",
        filename="best-epoch{epoch:02d}-val_acc{val/acc:.4f}",
        auto_insert_metric_name=False,
        monitor="val/acc",
        mode="max",
        save_last=True,
    )
    timer = EpochTimer()
    divergence = DivergenceAbort(cfg.divergence_factor) if cfg.divergence_factor is not None else None
    clip = cfg.regularization.grad_clip
    profiler = {} if "profiler" in cfg.trainer else {"profiler": LeanPassThroughProfiler()}
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        **profiler,
        logger=logger,
        callbacks=[
            checkpointing,
            timer,
            *([divergence] if divergence else []),
            *optional_callbacks(cfg),
            SteadyRichProgressBar(),
            TestImages(),
        ],
        default_root_dir=str(run_dir),
        gradient_clip_val=clip.value,
        gradient_clip_algorithm=clip.algorithm,
    )

    if cfg.train:
        module = ClassifierModule(
            model=OmegaConf.to_container(cfg.model, resolve=True),
            optimizer=OmegaConf.to_container(cfg.optimizer, resolve=True),
            regularization=OmegaConf.to_container(cfg.regularization, resolve=True),
            scheduler=OmegaConf.to_container(cfg.scheduler, resolve=True) or None,
            input_shape=list(datamodule.input_shape),
            num_classes=datamodule.num_classes,
            data=datamodule.describe(),
            input_transform=datamodule.input_transform,
        )
        if ckpt_hparams:
            check_same_model(cfg.ckpt_path, ckpt_hparams, module.hparams.model)
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
        diverged = divergence is not None and divergence.diverged_step is not None
        # A diverged run is over: the note moves on to the next setting instead of testing it.
        testing = cfg.test and not diverged and checkpointing.best_model_path
        final_loss = trainer.callback_metrics.get("train/loss_epoch")  # read before testing replaces them
        tested = trainer.test(module, datamodule=datamodule, ckpt_path="best", verbose=False) if testing else [{}]
        best = checkpointing.best_model_score
        metrics = {
            "status": "diverged" if diverged else "completed",
            "best_val_acc": float(best) if best is not None else None,
            "test_acc": tested[0].get("test/acc"),
            "test_loss": tested[0].get("test/loss"),
            "epochs": trainer.current_epoch,
            "final_train_loss": divergence.diverged_loss if diverged else _number(final_loss),
            "diverged_step": divergence.diverged_step if diverged else None,
            "best_checkpoint": checkpointing.best_model_path,
            "train_epoch_seconds": timer.train_seconds,
            "epoch_seconds": timer.epoch_seconds,
        }
    else:
        tested = trainer.test(module, datamodule=datamodule, verbose=False)
        metrics = {
            "test_acc": tested[0]["test/acc"],
            "test_loss": tested[0]["test/loss"],
            "evaluated_checkpoint": str(Path(cfg.ckpt_path).resolve()),
        }

    metrics |= {"seed": seed, "torch_threads": threads, "wall_seconds": round(time.perf_counter() - started, 2)}
    metrics["run_dir"] = str(run_dir)
    log_hparams(logger, chosen_hparams(cfg, HydraConfig.get().runtime.choices, seed), metrics)
    write_metrics_json(run_dir, metrics)
    print_metrics_table(metrics, title="final metrics" if cfg.train else f"evaluation of {cfg.ckpt_path}")
    return metrics
