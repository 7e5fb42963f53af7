"""The first layer's weights as pictures at the end of training: LeNet's first convolution filters, or the
MLP's first dense units as images of the input's shape. A trained first layer shows strokes and blobs;
a broken one shows noise (too little training) or identical tiles (symmetric initialization)."""

import math
from pathlib import Path

import torch
from torch import nn

from experiments.records.figures import plt, publish, tile_figure

UNITS = 64  # dense units shown, in an 8 x 8 grid


def draw_first_layer(module, loggers: list, run_dir: str | Path, step: int) -> Path | None:
    """weights/first_layer (each logger) and figures/weights_first_layer.png; None for recurrent models,
    which read rows, not images: their first weights are not pictures."""
    shape = tuple(module.hparams.input_shape)
    layer = next((m for m in module.net.modules() if isinstance(m, nn.Conv2d | nn.Linear)), None)
    if layer is None:
        return None
    weights = torch.nan_to_num(layer.weight.detach().float().cpu())  # a diverged run's NaNs drawn as 0
    if isinstance(layer, nn.Conv2d):
        figure = filter_grid(weights)
    elif layer.in_features == math.prod(shape):
        figure = unit_grid(weights[:UNITS].view(-1, *shape))
    else:
        return None
    return publish(figure, "weights/first_layer", loggers, run_dir, step)


def filter_grid(kernels: torch.Tensor) -> plt.Figure:
    """(out, in, k, k) kernels: one tile each, RGB for 3 input channels, else the mean over channels."""
    count = len(kernels)
    columns = min(count, 8)
    rows = math.ceil(count / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.8 * rows + 0.6), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index >= count:
            continue
        kernel = kernels[index]
        if kernel.shape[0] == 3:
            low, high = kernel.min(), kernel.max()
            ax.imshow(((kernel - low) / (high - low + 1e-12)).permute(1, 2, 0).numpy(), interpolation="nearest")
        else:
            _diverging(ax, kernel.mean(dim=0))
        ax.set_title(f"filter {index}", fontsize=9)
    colours = "RGB, each filter scaled to its own range" if kernels.shape[1] == 3 else "red +, blue -"
    size = f"{kernels.shape[-2]}x{kernels.shape[-1]}"
    figure.suptitle(f"first convolution: {count} filters of {size} ({colours})", fontsize=11)
    figure.tight_layout()
    return figure


def unit_grid(weights: torch.Tensor) -> plt.Figure:
    """(units, C, H, W): each unit's incoming weights as an image, each on its own symmetric scale;
    red positive, blue negative (one channel), or RGB scaled to the unit's range (three)."""
    count, channels = weights.shape[:2]
    if channels == 3:
        low = weights.amin(dim=(1, 2, 3), keepdim=True)
        high = weights.amax(dim=(1, 2, 3), keepdim=True)
        tiles, cmap, limits, colours = (weights - low) / (high - low + 1e-12), None, (0.0, 1.0), "RGB"
    else:
        scale = weights.abs().amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)
        tiles, cmap, limits, colours = weights.mean(dim=1, keepdim=True) / scale, "RdBu_r", (-1.0, 1.0), "red +, blue -"
    return tile_figure(
        tiles,
        columns=8,
        title=f"first dense layer: incoming weights of units 0-{count - 1}, row by row ({colours})",
        cmap=cmap,
        limits=limits,
    )


def _diverging(ax, image: torch.Tensor) -> None:
    """Zero in white, positive red, negative blue, on a scale symmetric around zero."""
    limit = float(image.abs().max()) or 1.0
    ax.imshow(image.numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
