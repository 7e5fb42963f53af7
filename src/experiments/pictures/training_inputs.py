"""A grid of training inputs per class before training starts, after augmentation: what the net sees.

Examples come from the training split (the same ones every run), pass through the datamodule's own
augmentation (fresh random parameters, as in training) and are drawn before the model's preprocessing.
The global RNG is restored afterwards, so drawing them changes nothing in the training that follows."""

from pathlib import Path

import torch

from experiments.figures import plt, publish, tile_figure

PER_CLASS = 8
MAX_CLASSES = 10  # CIFAR-100 shows its first ten classes
POOL = 2000  # training examples searched for each class's row


def draw_training_inputs(datamodule, class_names: list[str], loggers: list, run_dir: str | Path) -> Path:
    """train/inputs_per_class (each logger) and figures/train_inputs_per_class.png."""
    pixels, labels = datamodule.probe_batch(POOL)
    shown = range(min(len(class_names), MAX_CLASSES))
    rows = {label: pixels[labels == label][:PER_CLASS] for label in shown}
    with torch.random.fork_rng(devices=[]):
        rows = {label: datamodule.augment(images) for label, images in rows.items() if len(images)}
    figure = input_grid(rows, class_names, augmented=datamodule.augmenter is not None)
    return publish(figure, "train/inputs_per_class", loggers, run_dir)


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
