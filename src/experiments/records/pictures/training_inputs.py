"""A grid of training inputs per class before training starts, after augmentation: what the net sees.

Examples come from the training split (the same ones every run), pass through the datamodule's own
augmentation (random parameters drawn from a fixed seed, so the picture depends on the data and its
augmentation settings only) and are drawn before the model's preprocessing. The global RNG is restored
afterwards, so drawing them changes nothing in the training that follows. A picture already drawn in this
process is reused: the trials of a sweep, or of a fused set, mostly share one."""

import hashlib
from pathlib import Path

import numpy as np
import torch

from experiments.records.figures import plt, publish_pixels, render, tile_figure

PER_CLASS = 8
MAX_CLASSES = 10  # CIFAR-100 shows its first ten classes
POOL = 2000  # training examples searched for each class's row
_drawn: dict[str, np.ndarray] = {}  # pictures by a digest of what they show


def draw_training_inputs(datamodule, class_names: list[str], loggers: list, run_dir: str | Path) -> Path:
    """train/inputs_per_class (each logger) and figures/train_inputs_per_class.png."""
    pixels, labels = datamodule.probe_batch(POOL)
    shown = range(min(len(class_names), MAX_CLASSES))
    rows = {label: pixels[labels == label][:PER_CLASS] for label in shown}
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(0)  # the CPU's only: a GPU's RNG is not forked here
        rows = {label: datamodule.augment(images) for label, images in rows.items() if len(images)}
    augmented = datamodule.augmenter is not None
    key = _digest(rows, class_names, augmented)
    if key not in _drawn:
        if len(_drawn) >= 8:  # a long-lived process that draws many datasets keeps a few
            _drawn.clear()
        _drawn[key] = render(input_grid(rows, class_names, augmented))
    return publish_pixels(_drawn[key], "train/inputs_per_class", loggers, run_dir)


def _digest(rows: dict[int, torch.Tensor], names: list[str], augmented: bool) -> str:
    digest = hashlib.sha1(repr((sorted(rows), names, augmented)).encode())
    for label in sorted(rows):
        digest.update(rows[label].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def input_grid(rows: dict[int, torch.Tensor], names: list[str], augmented: bool) -> plt.Figure:
    """One row per class, PER_CLASS examples each (blank where a rare class ran short)."""
    shape = next(iter(rows.values())).shape[1:]
    tiles = []
    for label in sorted(rows):
        images = [_unit_scale(image) for image in rows[label].cpu()]
        tiles += images + [torch.ones(shape)] * (PER_CLASS - len(images))
    how = "after augmentation" if augmented else "no augmentation"
    return tile_figure(
        torch.stack(tiles),
        columns=PER_CLASS,
        title=f"training inputs per class, as the network gets them ({how})",
        row_labels=[names[label][:12] for label in sorted(rows)],
    )


def _unit_scale(image: torch.Tensor) -> torch.Tensor:
    return image.float() / 255.0 if image.dtype == torch.uint8 else image.float().clamp(0, 1)
