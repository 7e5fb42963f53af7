"""The pictures of a `sweep=optuna` study, drawn by Optuna's own matplotlib views when the sweep ends:
the optimization history, the importances of the parameters that varied and, when two or more did, a
contour plot of the first two. The history and the contour mark the trials the pruner stopped and the ones
that diverged; the importances are over the finished trials. Each is a PNG in the sweep's folder, which the sweep's
trackers receive with the summary (records/tracking/sweep_runs.py)."""

import logging
import warnings
from pathlib import Path

import matplotlib

from experiments.records.figures import plt

log = logging.getLogger(__name__)

FIGURES = ("optimization_history.png", "param_importances.png", "contour.png")
MARKS = {"pruned": ("x", "tab:gray"), "diverged": ("v", "tab:red")}  # status: marker, colour


def draw_study_figures(study, sweep_dir: Path, statuses: dict[int, str]) -> list[Path]:
    """`statuses`: each trial number's status in its folder (completed, pruned, diverged, ...)."""
    import optuna
    import optuna.visualization.matplotlib as views

    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    names = varied_params(finished)
    drawn = []
    # Optuna's views set a style sheet for the whole process: the rc context puts it back for the heatmap
    with warnings.catch_warnings(), matplotlib.rc_context():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # its views are "experimental"
        if finished:
            axes = views.plot_optimization_history(study)
            mark(axes, study, statuses, lambda trial: (trial.number, last_value(trial)))
            drawn.append(save(axes, sweep_dir / FIGURES[0]))
        if len(finished) >= 2 and names:
            drawn.append(save(views.plot_param_importances(study, params=names), sweep_dir / FIGURES[1]))
        if len(finished) >= 2 and len(names) >= 2:
            axes = views.plot_contour(study, params=names[:2])
            x_name, y_name = axes.get_xlabel(), axes.get_ylabel()
            mark(axes, study, statuses, lambda trial: (trial.params.get(x_name), trial.params.get(y_name)))
            drawn.append(save(axes, sweep_dir / FIGURES[2]))
    return drawn


def varied_params(trials) -> list[str]:
    """The parameters that took two values or more among `trials`: only those have an importance or a contour."""
    names = dict.fromkeys(name for trial in trials for name in trial.params)
    return [name for name in names if len({repr(trial.params.get(name)) for trial in trials}) >= 2]


def last_value(trial) -> float | None:
    values = trial.intermediate_values
    return values[max(values)] if values else trial.value


def mark(axes, study, statuses: dict[int, str], where) -> None:
    """A marker over each pruned and each diverged trial, at `where(trial)`, with a legend entry."""
    marked = False
    for status, (marker, colour) in MARKS.items():
        points = [where(trial) for trial in study.trials if statuses.get(trial.number) == status]
        points = [(x, y) for x, y in points if x is not None and y is not None]
        if points:
            xs, ys = zip(*points, strict=True)
            axes.scatter(xs, ys, marker=marker, color=colour, s=60, label=status, zorder=5)
            marked = True
    if marked:
        axes.legend(loc="best", fontsize=8)


def save(axes, path: Path) -> Path:
    figure = axes.get_figure()
    figure.set_size_inches(7, 4.5)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
