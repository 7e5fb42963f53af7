"""heatmap.png: the swept grid (e.g. lr x wd) coloured by best val acc, every cell annotated."""

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: the picture goes to a file

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.cm import ScalarMappable  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402

from experiments.sweeps.naming import format_value, short_keys  # noqa: E402

MARKS = {"diverged": "diverged", "failed": "failed", "running": "running", "missing": "not run"}


def _axis_values(rows: list[dict], key: str) -> list[str]:
    values = {str(row[key]) for row in rows}
    try:
        return sorted(values, key=float)
    except ValueError:
        return sorted(values)


def draw_heatmap(path: Path, plan: dict, rows: list[dict]) -> None:
    figure = heatmap_figure(plan, rows)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def heatmap_figure(plan: dict, rows: list[dict]) -> plt.Figure:
    """A cell per grid point; sampled sweeps (Optuna), whose points are not a grid, get a scatter map."""
    keys = list(plan["swept_keys"])
    x_key, y_key = keys[0], keys[1] if len(keys) > 1 else None
    xs = _axis_values(rows, x_key)
    ys = _axis_values(rows, y_key) if y_key else [""]
    if y_key and len(xs) * len(ys) > len(rows):
        return _draw_scatter(plan, rows, x_key, y_key)
    return _draw_grid(plan, rows, x_key, y_key, xs, ys)


def _title(plan: dict, what: str) -> str:
    return what + "\n" + "\n".join(textwrap.wrap(f"sweep {plan['name']}", 70))


def _draw_grid(plan: dict, rows: list[dict], x_key: str, y_key: str | None, xs, ys) -> plt.Figure:
    names = short_keys(list(plan["swept_keys"]))
    grid = np.full((len(ys), len(xs)), np.nan)
    labels = [["" for _ in xs] for _ in ys]
    for row in rows:
        i = ys.index(str(row[y_key])) if y_key else 0
        j = xs.index(str(row[x_key]))
        accuracy = row["best_val_acc"]
        if accuracy is not None and row["status"] in ("completed", "diverged"):
            grid[i, j] = accuracy
        text = f"{accuracy:.3f}" if accuracy is not None else ""
        if row["status"] != "completed":
            text = f"{text}\n{MARKS.get(row['status'], row['status'])}".strip()
        labels[i][j] = text

    figure, ax = plt.subplots(figsize=(max(6.0, 2.0 + 1.4 * len(xs)), 1.8 + 0.9 * len(ys)))
    low, high = colour_range(grid, [row for row in rows if row["status"] == "completed"])
    image = ax.imshow(grid, cmap="viridis", origin="lower", aspect="auto", vmin=low, vmax=high)
    ranked = [r for r in rows if r["best_val_acc"] is not None]  # rows come sorted: the first is best.yaml's
    best_cell = (ys.index(str(ranked[0][y_key])) if y_key else 0, xs.index(str(ranked[0][x_key]))) if ranked else None
    statuses = {(ys.index(str(r[y_key])) if y_key else 0, xs.index(str(r[x_key]))): r["status"] for r in rows}
    for i, row_labels in enumerate(labels):
        for j, text in enumerate(row_labels):
            status = statuses.get((i, j), "missing")
            if np.isnan(grid[i, j]):  # no accuracy at all: a grey cell
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="#dddddd", edgecolor="white"))
            if status != "completed":  # diverged, failed, running, missing: hatched on top of the colour
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///", edgecolor="#cc3333"))
            if (i, j) == best_cell:
                ax.add_patch(
                    plt.Rectangle((j - 0.46, i - 0.46), 0.92, 0.92, fill=False, edgecolor="red", linewidth=2.5)
                )
                text += "\nbest"
            colour = "black" if np.isnan(grid[i, j]) else text_colour(image.cmap(image.norm(grid[i, j])))
            ax.text(j, i, text, ha="center", va="center", fontsize=9, color=colour, fontweight="bold")
    ax.set_xticks(range(len(xs)), [format_value(x) for x in xs])
    ax.set_xlabel(names[x_key])
    if y_key:
        ax.set_yticks(range(len(ys)), [format_value(y) for y in ys])
        ax.set_ylabel(names[y_key])
    else:
        ax.set_yticks([])
    figure.colorbar(image, ax=ax, label="best val acc (over the completed trials' range)", extend="min")
    ax.set_title(
        _title(plan, "best val acc per trial (red frame: best; hatched: diverged, failed or not run)"), fontsize=9
    )
    return figure


def colour_range(grid: np.ndarray, completed: list[dict]) -> tuple[float, float]:
    """The colours span the completed trials' accuracies, so 0.894 and 0.956 look different; a diverged
    trial below that range gets the lowest colour. A single value gets a small range around it."""
    values = [row["best_val_acc"] for row in completed if row["best_val_acc"] is not None]
    if not values:
        values = [v for v in grid.ravel() if not np.isnan(v)] or [0.0, 1.0]
    low, high = min(values), max(values)
    if high - low < 1e-3:
        low, high = low - 0.005, high + 0.005
    return low, high


def text_colour(rgba) -> str:
    """Black on light cells, white on dark ones, by the cell colour's luminance."""
    red, green, blue = rgba[:3]
    return "black" if 0.299 * red + 0.587 * green + 0.114 * blue > 0.5 else "white"


# A sampled trial's mark by its status: (marker, face colour or None for its accuracy's colour, edge colour)
SCATTER_MARKS = {
    "completed": ("o", None, "black"),
    "pruned": ("v", None, "#555555"),
    "diverged": ("X", "#cc3333", "#cc3333"),
    "failed": ("s", "#888888", "black"),
}
OTHER_MARK = ("D", "#dddddd", "#888888")  # running, interrupted, not run


def _draw_scatter(plan: dict, rows: list[dict], x_key: str, y_key: str) -> plt.Figure:
    """Every sampled trial as a point, its mark saying its status (legend with counts) and its colour its best
    val acc on one scale for all the trials that have one; the best is circled and named in the title."""
    names = short_keys(list(plan["swept_keys"]))
    figure, ax = plt.subplots(figsize=(7.5, 5))
    scored = [r["best_val_acc"] for r in rows if r["best_val_acc"] is not None]
    low, high = colour_range(np.array(scored or [0.0, 1.0]), [r for r in rows if r["best_val_acc"] is not None])
    colours = Normalize(vmin=low, vmax=high)
    for status in dict.fromkeys(r["status"] for r in rows):  # in the order the summary ranks them
        group = [r for r in rows if r["status"] == status]
        marker, face, edge = SCATTER_MARKS.get(status, OTHER_MARK)
        palette = matplotlib.colormaps["viridis"]
        accuracies = [r["best_val_acc"] for r in group]
        faces = [face or (palette(colours(a)) if a is not None else "#dddddd") for a in accuracies]
        ax.scatter(
            [float(r[x_key]) for r in group],
            [float(r[y_key]) for r in group],
            c=faces,
            marker=marker,
            s=80,
            edgecolors=edge,
            linewidths=0.8,
            label=f"{MARKS.get(status, status)} ({len(group)})",
            zorder=3,
        )
    bar = ScalarMappable(norm=colours, cmap="viridis")
    figure.colorbar(bar, ax=ax, label="best val acc (every trial that has one)")
    ranked = [r for r in rows if r["best_val_acc"] is not None]  # rows come sorted: the first is best.yaml's
    best_text = "no trial reached a validation"
    if ranked:
        best = ranked[0]
        ax.scatter([float(best[x_key])], [float(best[y_key])], s=320, facecolors="none", edgecolors="red", linewidths=2)
        values = ", ".join(f"{names[k]}={format_value(str(best[k]))}" for k in (x_key, y_key))
        best_text = f"best (red ring): {values}, val acc {best['best_val_acc']:.3f}"
    for axis, key in (("x", x_key), ("y", y_key)):
        if all(float(r[key]) > 0 for r in rows):
            getattr(ax, f"set_{axis}scale")("log")
    ax.margins(0.08)
    ax.legend(fontsize=8, loc="best", title="status (trials)", title_fontsize=8)
    ax.set_xlabel(names[x_key])
    ax.set_ylabel(names[y_key])
    ax.set_title(_title(plan, f"best val acc per sampled trial; {best_text}"), fontsize=9)
    return figure
