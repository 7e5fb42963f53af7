"""Every picture a run draws goes to two places: a TensorBoard image and a PNG under run_dir/figures/."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: figures go to files and TensorBoard, never to a window

import matplotlib.pyplot as plt  # noqa: E402


def publish(figure: plt.Figure, tag: str, logger, run_dir: str | Path, step: int = 0) -> Path:
    """Save `figure` as run_dir/figures/<tag with / as _>.png and log it to the logger's TensorBoard
    writer (when there is one) under `tag`; the figure is closed afterwards."""
    path = Path(run_dir) / "figures" / f"{tag.replace('/', '_')}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    writer = getattr(logger, "experiment", None)
    if writer is not None and hasattr(writer, "add_figure"):
        writer.add_figure(tag, figure, step)  # closes it
    else:
        plt.close(figure)
    return path
