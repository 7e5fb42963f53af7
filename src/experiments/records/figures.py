"""Every picture a run draws goes to a PNG under run_dir/figures/ and to each of the run's loggers."""

import math
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image

matplotlib.use("Agg")  # headless: figures go to files and TensorBoard, never to a window

import matplotlib.pyplot as plt  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402

from experiments.records.tracking.publish import publish_image  # noqa: E402


def publish(figure: plt.Figure, tag: str, loggers: list, run_dir: str | Path, step: int = 0) -> Path:
    """Save `figure` as run_dir/figures/<tag with / as _>.png and publish it to each of `loggers` under
    `tag`; the figure is closed afterwards. It is drawn once, for all: savefig and TensorBoard's add_figure
    would each draw it again, about 0.1 s a figure."""
    return publish_pixels(render(figure), tag, loggers, run_dir, step)


def render(figure: plt.Figure) -> np.ndarray:
    """The figure drawn once, as (H, W, 3) bytes; the figure is closed."""
    figure.set_dpi(100)
    figure.canvas.draw()
    pixels = np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
    plt.close(figure)
    return pixels


def publish_pixels(pixels: np.ndarray, tag: str, loggers: list, run_dir: str | Path, step: int = 0) -> Path:
    """A drawn picture to run_dir/figures/<tag with / as _>.png and to each of `loggers` under `tag`."""
    path = Path(run_dir) / "figures" / f"{tag.replace('/', '_')}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, compress_level=1)
    publish_image(loggers, tag, pixels, path, step)
    return path


def tile_figure(
    tiles,
    columns: int,
    title: str,
    labels: list[str] | None = None,
    colors: list[str] | None = None,
    row_labels: list[str] | None = None,
    cmap: str | None = "gray",
    limits: tuple[float, float] = (0.0, 1.0),
    inches: float = 1.1,
) -> plt.Figure:
    """Many small images as ONE image (torchvision's make_grid), labels written over it: a grid of 64
    matplotlib axes takes about a second to draw, this about a tenth. `tiles` is (N, C, H, W) with values
    within `limits`; one channel is drawn with `cmap`, three as RGB. `labels` go above each tile (the
    padding leaves room for two lines), `row_labels` left of each row."""
    count, channels, height, width = tiles.shape
    pad = max(2, height // 2) if labels else 2
    background = (limits[0] + limits[1]) / 2 if cmap and cmap != "gray" else limits[1]  # white either way
    grid = make_grid(tiles.float(), nrow=columns, padding=pad, pad_value=background)
    image = grid[0] if channels == 1 else grid.permute(1, 2, 0).clamp(0, 1)
    rows = math.ceil(count / columns)
    extra = 1.2 if row_labels else 0.0
    figure, ax = plt.subplots(figsize=(inches * columns + extra, inches * rows + 0.6))
    colormap = cmap if channels == 1 else None
    ax.imshow(image.numpy(), cmap=colormap, vmin=limits[0], vmax=limits[1], interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    for index, label in enumerate(labels or []):
        row, column = divmod(index, columns)
        x = pad + column * (width + pad) + width / 2
        y = pad + row * (height + pad) - 1
        color = colors[index] if colors else "black"
        ax.text(x, y, label, ha="center", va="bottom", fontsize=5.5 * inches, color=color, linespacing=0.9)
    if row_labels:
        ax.set_yticks(
            [pad + row * (height + pad) + height / 2 for row in range(len(row_labels))], row_labels, fontsize=9
        )
        ax.tick_params(axis="y", length=0)
    ax.set_title(title, fontsize=10)
    figure.tight_layout()
    return figure
