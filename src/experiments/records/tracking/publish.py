"""The one way a run shows something: every function takes the run's loggers (trainer.loggers, any number,
none included) and hands the thing to each, through its tracker's outlet (outlets.py), under the same name.
A fused trial's lone run publishes through here too, one logger run per trial."""

from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.loggers import Logger

from experiments.records.provenance import as_tags
from experiments.records.tracking.outlets import outlet

# Tags of the final metrics beside the hyperparameters, in the groups of the curves they summarize (TensorBoard
# sorts its groups by name: test, train and val come before watch). Every run has them, NaN where it has none.
FINAL_METRICS = {
    "best_val_acc": "val/best_acc",
    "test_acc": "test/final_acc",
    "test_loss": "test/final_loss",
}


def publish_scalars(loggers: list[Logger], scalars: dict, step: int) -> None:
    for logger in loggers:
        logger.log_metrics(scalars, step=step)


def publish_image(loggers: list[Logger], tag: str, pixels: np.ndarray, path: Path, step: int) -> None:
    """`pixels`: the picture as (H, W, 3) bytes; `path`: the PNG the run wrote of it."""
    for logger in loggers:
        outlet(logger).image(tag, pixels, path, step)


def publish_histograms(loggers: list[Logger], tensors: dict[str, torch.Tensor], epoch: int, step: int) -> None:
    """One histogram per tag, of the finite values (a diverged run's NaNs have none)."""
    if not loggers:
        return
    finite = {tag: values[torch.isfinite(values)].float().cpu() for tag, values in tensors.items()}
    finite = {tag: values for tag, values in finite.items() if len(values)}
    for logger in loggers:
        outlet(logger).histograms(finite, epoch, step)


def publish_final(loggers: list[Logger], params: dict, metrics: dict, run_dir: Path, swept: set[str]) -> None:
    """The run's hyperparameters beside its final metrics, its checks' table and its files; each logger's run
    ends here. Every run declares every final metric, NaN where it has none (a diverged run has no test)."""
    finals = {tag: float("nan") if metrics.get(key) is None else metrics[key] for key, tag in FINAL_METRICS.items()}
    checks = [row for row in metrics.get("checks") or [] if isinstance(row, dict)]
    tags = as_tags(metrics["provenance"]) if "provenance" in metrics else {}
    for logger in loggers:
        outlet(logger).tags(tags)
        outlet(logger).final(params, finals, checks, Path(run_dir), swept)


def flush(loggers: list[Logger]) -> None:
    """What was logged so far reaches the disk: before each checkpoint, so a killed run's logs match it."""
    for logger in loggers:
        outlet(logger).flush()
