"""What a run leaves behind for people: the final metrics table, metrics.json and the hyperparameters it records."""

import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.markup import escape
from rich.table import Table

PLAN = "sweep.json"  # written by the sweeper before any trial starts: the trials it means to run

# Config keys whose HParams column has a shorter name; any other key's column is the key itself.
HPARAM_NAMES = {
    "optimizer.lr": "lr",
    "regularization.weight_decay": "weight_decay",
    "data.batch_size": "batch_size",
    "trainer.max_epochs": "max_epochs",
}


def swept_keys(run_dir: Path) -> list[str]:
    """The keys a sweep trial's sweep varies (from the sweep's sweep.json, the folder above the trial);
    none for a run outside a sweep."""
    plan = Path(run_dir).parent / PLAN
    return list(json.loads(plan.read_text()).get("swept_keys", [])) if plan.is_file() else []


def chosen_hparams(cfg: DictConfig, choices: dict, seed: int, swept: list[str] = (), train_examples: int = 0) -> dict:
    """A flat dict of what was chosen, with scalar values only (what TensorBoard's HParams accepts).
    `choices` are the config groups' option names; a run started outside Hydra may have none. Every swept
    key has a column, also one that is not among the usual ones. batch_size is the one the batches held: a
    batch_size above the training split's `train_examples` (the note's full-batch 60000 on the 4,500-image
    sample) is that split."""
    params = {
        "model": choices.get("model"),
        "data": choices.get("data"),
        "optimizer": choices.get("optimizer"),
        "lr": cfg.optimizer.lr,
        "scheduler": choices.get("scheduler"),
        # a multi-select group: its choice is a list (absent when empty), and HParams takes scalars only
        "regularization": ("+".join(choices.get("regularization") or []) or "none") if choices else None,
        "weight_decay": cfg.regularization.weight_decay,
        "batch_size": min(cfg.data.batch_size, train_examples) if train_examples else cfg.data.batch_size,
        "max_epochs": cfg.trainer.max_epochs,
        "seed": seed,
    }
    for group in ("model", "regularization"):
        flat = OmegaConf.to_container(cfg[group], resolve=True)
        for key, value in flat.items():
            if not key.startswith("_") and key != "weight_decay":
                params[f"{group}.{key}"] = value if isinstance(value, int | float | str | bool) else str(value)
    for key in swept:
        name = HPARAM_NAMES.get(key, key)
        if name not in params and (value := OmegaConf.select(cfg, key)) is not None:
            params[name] = value if isinstance(value, int | float | str | bool) else str(value)
    return {key: value for key, value in params.items() if value is not None}


def varied_columns(swept: list[str]) -> set[str]:
    """The hyperparameter columns a sweep varies: TensorBoard shows these first."""
    return {HPARAM_NAMES.get(key, key) for key in swept}


def best_epoch(val_acc_by_epoch: dict[int, float]) -> int | None:
    """The first epoch with the highest val accuracy, from 0 as Lightning counts: the one the best
    checkpoint holds and names (best-epochNN), since a later tie does not replace it."""
    if not val_acc_by_epoch:
        return None
    top = max(val_acc_by_epoch.values())
    return min(epoch for epoch, accuracy in val_acc_by_epoch.items() if accuracy == top)


def write_metrics_json(run_dir: Path, metrics: dict) -> Path:
    """Written beside its name and renamed over it: a reader never sees half a file."""
    path = run_dir / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name("metrics.json.partial")
    partial.write_text(json.dumps(metrics, indent=2) + "\n")
    partial.replace(path)
    return path


def print_metrics_table(metrics: dict, title: str, full: bool = False) -> None:
    """The run's outcome at a glance (short_rows), or with `full` (final_table=full) all of metrics.json."""
    table = Table(title=title, show_header=full, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right", overflow="fold")
    for key, value in _rows(metrics) if full else short_rows(metrics):
        table.add_row(escape(key), escape(value))  # values such as [early_stopping] are text, not Rich markup
    Console().print(table)


def short_rows(metrics: dict) -> list[tuple[str, str]]:
    """At most 12 rows, in reading order: the outcome, the figures, the verdicts, the time, the files. A row
    a run has no value for (a diverged run's test, an evaluation's epochs) is left out."""
    curve, ratio, search = (metrics.get(key) or {} for key in ("loss_curve", "update_ratio", "lr_find"))
    run_dir = Path(metrics["run_dir"])
    epoch = metrics.get("epoch_seconds") or []
    seconds = [f"{sorted(epoch)[len(epoch) // 2]:.2f} an epoch"] if epoch else []
    seconds += [f"{metrics['wall_seconds']:.1f} in all"] if "wall_seconds" in metrics else []
    best = metrics.get("best_checkpoint")
    best = str(Path(best).relative_to(run_dir)) if best and Path(best).is_relative_to(run_dir) else best
    rows = {
        "status": metrics.get("status"),
        "test acc": metrics.get("test_acc"),
        "best val acc": metrics.get("best_val_acc"),
        "test loss": metrics.get("test_loss"),
        "diverged at step": metrics.get("diverged_step"),
        "lr": metrics.get("lr"),
        "suggested lr": search.get("suggestion"),
        "epochs": metrics.get("epochs"),
        "loss curve": curve.get("verdict"),
        "update ratios": ratio.get("verdict"),
        "seconds": ", ".join(seconds) or None,
        "best checkpoint": best,
        "evaluated": metrics.get("evaluated_checkpoint"),
        "run folder": str(run_dir),
    }
    return [(name, _shown(value)) for name, value in rows.items() if value is not None]


def _shown(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return _relative(value) if isinstance(value, str) else str(value)


def _rows(metrics: dict, prefix: str = ""):
    """(name, shown value) pairs: nested sections as `section.key`, check results as PASS/FAIL lines."""
    for key, value in metrics.items():
        name = prefix + key
        if isinstance(value, dict):
            yield from _rows(value, prefix=f"{name}.")
        elif isinstance(value, list) and value and isinstance(value[0], dict):  # the sanity checks' rows
            for row in value:
                yield f"check: {row['label']}", f"{'PASS' if row['passed'] else 'FAIL'} ({row['measured']})"
        elif isinstance(value, list) and value and all(isinstance(v, float | int) for v in value):  # epoch seconds
            yield f"{name} (median)", f"{sorted(value)[len(value) // 2]:.2f}"
        elif isinstance(value, list):
            yield name, ", ".join(map(str, value)) or "-"
        elif isinstance(value, float):
            yield name, f"{value:.1f}" if key.endswith("seconds") else f"{value:.4g}"
        else:
            yield name, _relative(value) if isinstance(value, str) else str(value)


def _relative(text: str) -> str:
    """Paths under the working directory, shown short."""
    try:
        return str(Path(text).relative_to(Path.cwd()))
    except ValueError:
        return text
