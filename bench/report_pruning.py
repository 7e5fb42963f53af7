"""docs/performance.md's table of what pruning saves (bench/pruning.py's result file): each way's means over
the sampler seeds, with each seed's best val accuracy beside them."""

from tables import not_measured, origin, percent, table

ROWS = [  # (way, label, the way without a pruner it is read against)
    ("unpruned", "one at a time, no pruner", None),
    ("pruned", "one at a time, median pruner", "unpruned"),
    ("halving", "one at a time, successive halving", "unpruned"),
    ("fused_unpruned", "fused, no pruner", None),
    ("fused_pruned", "fused, median pruner", "fused_unpruned"),
]


def pruning_table(record: dict | None) -> str:
    if record is None:
        return not_measured("python bench/pruning.py --json bench/results/pruning.json")
    s = record["summary"]
    header = [
        "sweep=optuna (TPE)",
        "wall time",
        "pruned",
        "trial-epochs",
        "best val acc",
        "by seed",
        "against no pruner",
    ]
    rows = []
    for way, label, unpruned in ROWS:
        shown = f"{label} (sets of {s['fused_set']})" if way.startswith("fused") else label
        rows.append(pruning_row(s[way], shown, s[unpruned] if unpruned else None))
    seeds = ", ".join(str(seed) for seed in s["seeds"])
    space = f"{s['pruned']['trials']:g} trials of at most {s['epochs']} epochs on {s['data']}"
    space += f"; means over sampler seeds {seeds}"
    return f"{space}.\n\n" + table(header, rows) + "\n" + origin(record)


def pruning_row(figures: dict, label: str, unpruned: dict | None) -> list[str]:
    """A way's row; a pruned way's last cell is its share of the unpruned time and of the trial-epochs (what
    the time would be were a trial's start and end free), and its difference in best val accuracy."""
    against = "-"
    if unpruned:
        share = figures["seconds"] / unpruned["seconds"]
        epochs = figures["trial_epochs"] / unpruned["trial_epochs"]
        both = figures["best_val_acc"] is not None and unpruned["best_val_acc"] is not None
        points = f"{100 * (figures['best_val_acc'] - unpruned['best_val_acc']):+.2f}" if both else "-"
        against = f"{share:.2f} of the time ({epochs:.2f} of the trial-epochs), best val acc {points} points"
    by_seed = " / ".join(percent(seed["best_val_acc"]) for seed in figures["per_seed"])
    return [
        label,
        f"{figures['seconds']:.1f} s",
        f"{figures['pruned']:g}",
        f"{figures['trial_epochs']:g}",
        percent(figures["best_val_acc"]),
        by_seed,
        against,
    ]
