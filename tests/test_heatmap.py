"""heatmap.png: a grid sweep's cells, and a sampled (Optuna) sweep's points, drawn from summary rows."""

import pytest
from matplotlib.colors import to_rgba
from PIL import Image

from experiments.sweeps.heatmap import draw_heatmap, heatmap_figure

KEYS = ["optimizer.lr", "regularization.weight_decay"]


def test_the_heatmap_colours_span_the_completed_trials_and_its_text_stays_legible(tmp_path):
    keys = KEYS
    accuracies = {("0.001", "1e-05"): 0.894, ("0.001", "0.0001"): 0.956, ("0.01", "1e-05"): 0.921}
    rows = [
        {"optimizer.lr": lr, "regularization.weight_decay": wd, "status": "completed", "best_val_acc": acc}
        for (lr, wd), acc in accuracies.items()
    ]
    rows.append(
        {"optimizer.lr": "0.01", "regularization.weight_decay": "0.0001", "status": "diverged", "best_val_acc": 0.1}
    )
    plan = {"name": "lr_wd", "swept_keys": keys}
    figure = heatmap_figure(plan, rows)
    [image] = figure.axes[0].images
    assert image.get_clim() == pytest.approx((0.894, 0.956))  # not 0..1: neighbours in accuracy look different
    colours = {text.get_text().split("\n")[0]: to_rgba(text.get_color()) for text in figure.axes[0].texts}
    assert colours["0.894"] == to_rgba("white") and colours["0.956"] == to_rgba("black")  # dark cell, light cell
    draw_heatmap(tmp_path / "heatmap.png", plan, rows)
    with Image.open(tmp_path / "heatmap.png") as picture:
        assert picture.width > 400


def sampled(number: int, lr: float, wd: float, status: str, accuracy: float | None) -> dict:
    return {"trial": f"{number:03d}", "optimizer.lr": str(lr), "regularization.weight_decay": str(wd)} | {
        "status": status,
        "best_val_acc": accuracy,
    }


def test_a_sampled_sweep_draws_every_trial_with_a_mark_per_status_on_one_colour_scale(tmp_path):
    rows = [
        sampled(0, 0.001, 1e-5, "completed", 0.952),
        sampled(1, 0.0003, 1e-4, "completed", 0.94),
        sampled(2, 0.0001, 1e-3, "pruned", 0.90),  # below every completed trial
        sampled(3, 0.0002, 1e-6, "pruned", 0.91),
        sampled(4, 0.02, 1e-5, "diverged", None),  # beyond every other learning rate
        sampled(5, 0.08, 1e-4, "diverged", None),
        sampled(6, 0.005, 1e-2, "failed", None),
    ]
    figure = heatmap_figure({"name": "optuna", "swept_keys": KEYS}, rows)
    ax = figure.axes[0]
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend == ["completed (2)", "pruned (2)", "diverged (2)", "failed (1)"]
    drawn = [tuple(point) for points in ax.collections[:4] for point in points.get_offsets()]
    assert sorted(drawn) == sorted((float(r["optimizer.lr"]), float(r["regularization.weight_decay"])) for r in rows)
    assert ax.get_xlim()[1] > 0.08  # the diverged trials are inside the picture
    [bar] = [image for image in figure.axes[1:]]
    assert bar.get_ylim() == pytest.approx((0.90, 0.952))  # pruned trials' colours are on the bar's scale
    markers = [points.get_paths()[0] for points in ax.collections[:4]]
    assert len({tuple(map(tuple, path.vertices.round(3))) for path in markers}) == 4  # four different marks
    assert "best (red ring): lr=0.001, wd=1e-05, val acc 0.952" in ax.get_title()
    draw_heatmap(tmp_path / "heatmap.png", {"name": "optuna", "swept_keys": KEYS}, rows)
    with Image.open(tmp_path / "heatmap.png") as picture:
        assert picture.width > 600
