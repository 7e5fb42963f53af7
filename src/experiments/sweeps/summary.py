"""`python -m experiments.sweeps.summary outputs/sweeps/NAME`: summary.csv, summary.md, heatmap.png and
best.yaml for a sweep directory, finished or not. The sweepers call it when a sweep ends."""

import argparse
import csv
import json
import logging
import statistics
import sys
import textwrap
from pathlib import Path

from experiments.config.errors import UserError
from experiments.config.overrides import override_key
from experiments.records.metrics import PLAN
from experiments.records.status import read_status
from experiments.sweeps.naming import format_value, short_keys

NOT_IN_RERUN = ("sweep", "sweep_name", "ckpt_path")
log = logging.getLogger(__name__)

COLUMNS = ("status", "best_val_acc", "best_epoch", "final_train_loss", "seconds", "diverged_step", "error")


def read_plan(sweep_dir: Path) -> dict:
    plan_file = sweep_dir / PLAN
    if not plan_file.is_file():
        raise UserError(f"{sweep_dir} is not a sweep directory: no {PLAN} (made by `python train.py -m ...`)")
    return json.loads(plan_file.read_text())


def trial_record(trial_dir: Path) -> dict:
    """What a trial directory says about itself; `missing` when it was never started."""
    record = read_status(trial_dir)
    if (trial_dir / "metrics.json").is_file():
        metrics = json.loads((trial_dir / "metrics.json").read_text())
        record |= {
            key: metrics.get(key)
            for key in ("best_val_acc", "best_epoch", "pruned_epoch", "final_train_loss", "wall_seconds")
        } | {"val_images": metrics.get("val_images"), "fused": bool(metrics.get("fused"))}
    return record


def collect(sweep_dir: Path) -> tuple[dict, list[dict]]:
    """One row per planned trial: its swept values and its record, best val acc first."""
    plan = read_plan(sweep_dir)
    rows = []
    for trial in plan["trials"]:
        record = trial_record(sweep_dir / trial["name"])
        row = {"trial": trial["name"], **trial["values"], "status": record["status"]}
        row["best_val_acc"] = record.get("best_val_acc")
        row["best_epoch"] = record.get("best_epoch")
        row["final_train_loss"] = record.get("final_train_loss")
        row["seconds"] = record.get("wall_seconds")
        row["diverged_step"] = record.get("diverged_step")
        row["pruned_epoch"] = record.get("pruned_epoch")
        row["error"] = record.get("error")
        row["val_images"], row["fused"] = record.get("val_images"), record.get("fused", False)
        row["overrides"] = trial["overrides"]
        rows.append(row)
    rows.sort(key=lambda r: (r["best_val_acc"] is None, -(r["best_val_acc"] or 0.0)))
    return plan, rows


def write_summary(sweep_dir: Path) -> tuple[dict, list[dict]]:
    sweep_dir = Path(sweep_dir)
    plan, rows = collect(sweep_dir)
    keys = list(plan["swept_keys"])
    header = ["trial", *keys, *COLUMNS]
    with open(sweep_dir / "summary.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    (sweep_dir / "summary.md").write_text(_markdown(plan, rows, header) + _seed_means_markdown(keys, rows))
    best = next((r for r in rows if r["best_val_acc"] is not None), None)
    if best is not None:
        (sweep_dir / "best.yaml").write_text(_best_yaml(plan, best, ties_line(rows)))
    elif rows:  # every trial diverged before its first validation, or failed: there is no best to name
        (sweep_dir / "best.yaml").unlink(missing_ok=True)
        log.warning(f"no best.yaml: no trial reached a validation in {sweep_dir.name} (all diverged or failed)")
    if len(keys) in (1, 2) and rows:
        from experiments.sweeps.heatmap import draw_heatmap

        draw_heatmap(sweep_dir / "heatmap.png", plan, rows)
    return plan, rows


def tied_with_best(rows: list[dict]) -> list[dict]:
    """The other trials whose best val acc is within one validation image of the best's: the split cannot
    rank them, so the summary names them instead of crowning one. Rows come best first."""
    ranked = [row for row in rows if row["best_val_acc"] is not None]
    if not ranked or not ranked[0].get("val_images"):
        return []
    best, image = ranked[0]["best_val_acc"], 1 / ranked[0]["val_images"]
    return [row for row in ranked[1:] if best - row["best_val_acc"] <= image + 1e-6]


def ties_line(rows: list[dict]) -> str:
    tied = tied_with_best(rows)
    if not tied:
        return ""
    best = next(row for row in rows if row["best_val_acc"] is not None)
    image = 1 / best["val_images"]
    names = ", ".join(f"{row['trial']} ({row['best_val_acc']:.4f})" for row in tied)
    return (
        f"Within one validation image ({image:.4f}) of the best, {best['trial']} ({best['best_val_acc']:.4f}): "
        f"{names}. The validation split cannot rank these; compare them over seeds (seed=0,1,2) or on more data."
    )


def _show(value, column: str = "") -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.1f}" if column == "seconds" or value >= 100 else f"{value:.4f}"
    return str(value)


def _markdown(plan: dict, rows: list[dict], header: list[str]) -> str:
    counts = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    lines = [
        f"# Sweep {plan['name']}",
        "",
        f"Fixed overrides: {' '.join(plan['fixed_overrides']) or '(none)'}. "
        + ", ".join(f"{n} {status}" for status, n in counts.items())
        + f" of {len(rows)} trials. Sorted by best val acc.",
        *([ties, ""] if (ties := ties_line(rows)) else []),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    swept = set(plan["swept_keys"])  # sampled values rounded as the trial folders are; summary.csv keeps them whole
    for row in rows:
        shown = [format_value(str(row[c])) if c in swept else _show(row.get(c), c) for c in header]
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in shown) + " |")
    return "\n".join(lines) + "\n"


def seed_means(keys: list[str], rows: list[dict]) -> list[dict]:
    """With `seed` swept beside other keys: each setting of the others with its mean best val acc over the
    seeds that reached a validation, best mean first (one seed can move val acc by a point on the sample)."""
    others = [key for key in keys if key != "seed"]
    if "seed" not in keys or not others:
        return []
    settings: dict[tuple, list] = {}
    for row in rows:
        settings.setdefault(tuple(row[key] for key in others), []).append(row["best_val_acc"])
    means = []
    for setting, accuracies in settings.items():
        reached = [accuracy for accuracy in accuracies if accuracy is not None]
        mean = statistics.mean(reached) if reached else None
        spread = (max(reached) - min(reached)) / 2 if reached else None
        means.append(
            dict(zip(others, setting, strict=True))
            | {"seeds": f"{len(reached)} of {len(accuracies)}", "mean": mean, "half_range": spread}
        )
    return sorted(means, key=lambda m: (m["mean"] is None, -(m["mean"] or 0.0)))


def _seed_means_markdown(keys: list[str], rows: list[dict]) -> str:
    means = seed_means(keys, rows)
    if not means:
        return ""
    header = [key for key in keys if key != "seed"] + ["seeds", "mean best val acc", "half-range"]
    lines = ["", "## Mean over seeds", "", "Best mean first.", "", "| " + " | ".join(header) + " |"]
    lines.append("|" + "---|" * len(header))
    for mean in means:
        cells = [str(value) for value in list(mean.values())[:-2]] + [_show(mean["mean"]), _show(mean["half_range"])]
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def _best_yaml(plan: dict, best: dict, ties: str = "") -> str:
    # A preset (sweep=lr_wd) only makes sense with -m, so the rerun spells out the settings it made.
    chosen = [o for o in best["overrides"] if override_key(o) not in NOT_IN_RERUN]
    typed = {override_key(o) for o in chosen}
    rerun = [o for o in plan.get("preset_overrides", []) if override_key(o) not in typed] + chosen
    command = "python train.py " + " ".join(f"'{o}'" if "(" in o or " " in o else o for o in rerun)
    lines = [
        f"# Best trial of sweep {plan['name']}: {best['trial']}, best val acc {best['best_val_acc']:.4f}.",
        *(f"# {part}" for part in textwrap.wrap(ties, 110)),
        f"# Rerun it: {command}",
        *(
            [
                "# It trained in a fused set: the sweep's command with a new sweep_name= gives this figure again;",
                "# this lone command takes the same steps in another float order and may differ by a few",
                "# validation images (docs/sweeps.md, 'Fused and lone').",
            ]
            if best.get("fused")
            else []
        ),
        f"trial: {best['trial']}",
        f"best_val_acc: {best['best_val_acc']}",
        "overrides:",
        *(f"  - {json.dumps(o)}" for o in rerun),
    ]
    return "\n".join(lines) + "\n"


def print_summary(plan_name: str, rows: list[dict], keys: list[str]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"sweep {plan_name}", header_style="bold")
    figures = {
        "best_val_acc": "best val acc",
        "best_epoch": "epoch",
        "final_train_loss": "train loss",
        "seconds": "seconds",
    }
    for column in (*short_keys(keys).values(), "status", *figures.values()):
        table.add_column(column)
    for row in rows:
        values = [format_value(str(row[key])) for key in keys]
        where = {"diverged": f" @ step {row['diverged_step']}", "pruned": f" @ epoch {row.get('pruned_epoch')}"}
        status = row["status"] + where.get(row["status"], "")
        shown = [*values, status, *(_show(row[c], c) for c in figures)]
        table.add_row(*(escape(str(text)) for text in shown))  # swept values such as [256,128] are text
    Console().print(table)
    means = seed_means(keys, rows)
    if means:
        others = [key for key in keys if key != "seed"]
        averaged = Table(title="mean over seeds, best first", header_style="bold")
        for column in (*short_keys(others).values(), "seeds", "mean best val acc", "half-range"):
            averaged.add_column(column)
        for mean in means:
            values = [format_value(str(mean[key])) for key in others]
            shown = [*values, mean["seeds"], _show(mean["mean"]), _show(mean["half_range"])]
            averaged.add_row(*(escape(text) for text in shown))
        Console().print(averaged)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="a directory under outputs/sweeps/")
    args = parser.parse_args(argv)
    try:
        plan, rows = write_summary(args.sweep_dir)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print_summary(plan["name"], rows, plan["swept_keys"])
    print(f"wrote summary.csv, summary.md, best.yaml and heatmap.png in {args.sweep_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
