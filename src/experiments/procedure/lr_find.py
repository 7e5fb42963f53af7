"""Step 6a, tune=lr_find: Lightning's learning-rate range test (Tuner.lr_find), its curve and its suggestion.

The search trains `lr_find.num_training` steps from the untrained weights, raising the rate exponentially
from min_lr to max_lr, and stops early once the loss passes 4x its best. Lightning then restores the
untrained weights. The suggestion is the rate at the steepest fall of the (smoothed) loss curve.
"""

import logging
import math
from pathlib import Path

import lightning as L
from lightning.pytorch.tuner import Tuner
from omegaconf import DictConfig, OmegaConf, open_dict

from experiments.config.errors import UserError
from experiments.data.in_memory import InMemoryDataModule
from experiments.procedure.quiet import quiet_lightning
from experiments.records.figures import plt, publish
from experiments.training.module import ClassifierModule

log = logging.getLogger(__name__)


# The search's first smoothed losses start biased low; Lightning's suggestion skips them, and so does the plot.
SKIP_BEGIN = 10


def find_learning_rate(
    cfg: DictConfig, trainer: L.Trainer, module: ClassifierModule, datamodule: InMemoryDataModule
) -> dict:
    """Run the search, save the loss-vs-lr curve (figures/tune_lr_find.png and TensorBoard), print the
    suggestion, and with lr_find.then_train=true set it as the rate the module trains with."""
    options = cfg.lr_find
    with quiet_lightning():
        finder = Tuner(trainer).lr_find(
            module,
            datamodule=datamodule,
            min_lr=options.min_lr,
            max_lr=options.max_lr,
            num_training=options.num_training,
            update_attr=False,  # the rate lives in the optimizer config; it is set below, and only when asked
        )
    suggestion = finder.suggestion(skip_begin=SKIP_BEGIN)
    losses = [loss for loss in finder.results["loss"][SKIP_BEGIN:] if math.isfinite(loss)]
    figure = plot_search(finder.results["lr"], finder.results["loss"], suggestion)
    path = publish(figure, "tune/lr_find", trainer.loggers, Path(trainer.default_root_dir))
    if suggestion is None and options.then_train:
        raise UserError(
            f"tune=lr_find found no suggestion: the search ran {len(finder.results['lr'])} of "
            f"{options.num_training} steps (it stops where the loss diverges, or after trainer.max_epochs epochs "
            "of training batches); raise lr_find.num_training or lr_find.max_lr, or allow more batches"
        )
    if suggestion is not None:
        verb = "training with it" if options.then_train else "train with it: lr_find.then_train=true"
        log.info(f"lr_find suggests optimizer.lr={suggestion:.3g} (was {cfg.optimizer.lr:g}); {verb}")
    if options.then_train:  # every reader of the rate: the optimizer, one-cycle's max_lr, the checkpoint, the records
        with open_dict(cfg):
            cfg.optimizer.lr = suggestion
        module.hparams.optimizer["lr"] = suggestion
        module.hparams.scheduler = OmegaConf.to_container(cfg.scheduler, resolve=True) or None
    return {
        "lr_find": {
            "suggestion": suggestion,
            "steps": len(finder.results["lr"]),
            "lowest_loss": min(losses) if losses else None,
            "curve": str(path),
        }
    }


def plot_search(rates: list[float], losses: list[float], suggestion: float | None) -> plt.Figure:
    """Smoothed training loss against the learning rate (log scale), the suggestion marked in red."""
    figure, axes = plt.subplots(figsize=(7, 4.5))
    axes.plot(rates[SKIP_BEGIN:], losses[SKIP_BEGIN:], color="tab:blue")
    axes.set_xscale("log")
    axes.set_xlabel("learning rate (log scale)")
    axes.set_ylabel("training loss (smoothed)")
    axes.grid(True, which="both", alpha=0.3)
    if suggestion is not None:
        axes.axvline(suggestion, color="tab:red", linestyle="--", label=f"suggested lr = {suggestion:.3g}")
        axes.legend(loc="upper left")
    shown = f"suggestion {suggestion:.3g}" if suggestion else "no suggestion: too few finite losses"
    axes.set_title(f"learning-rate range test: {len(rates)} steps, {shown}")
    figure.tight_layout()
    return figure
