"""What pruning saves: `python train.py -m sweep=optuna` with TPE and the median pruner (and successive halving)
against TPE without a pruner, one trial at a time and with `hydra/launcher=fused`, on the embedded sample.

    python bench/pruning.py            # 30 trials of at most 10 epochs over lr, weight decay, dropout; 5 ways, 3 seeds
    python bench/pruning.py --quick    # 12 trials of at most 4 epochs
    python bench/pruning.py --smoke --seeds 0   # 5 trials, a few batches, one seed: checks the table (a test runs it)
    python bench/pruning.py --json bench/results/pruning.json   # also record it for the docs (bench/report.py)

Each way is one real `python train.py -m sweep=optuna` command with the user's defaults, timed as a whole,
in its own folder. The table gives each way's wall time, the trials pruned, the trial-epochs trained, the
best trial's val accuracy, and pruning's share of the unpruned time with the difference in best val accuracy
(points). Each way runs once per sampler seed (hydra.sweeper.sampler.seed, `--seeds`): one TPE trajectory
moves the best val accuracy by about a point, so the figures are means over the seeds, each seed's kept
beside them. The fused ways ask `--set` suggestions at a time (hydra.sweeper.n_jobs), and each batch trains
as one fused set. The last line is the same as JSON.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPACE = [
    "optimizer.lr=tag(log, interval(0.0001, 0.1))",
    "regularization.weight_decay=tag(log, interval(0.000001, 0.01))",
    "regularization.dropout=interval(0.0, 0.5)",
]
MODES = {
    "full": {"trials": 30, "epochs": 10, "extra": []},
    "quick": {"trials": 12, "epochs": 4, "extra": []},
    "smoke": {
        "trials": 5,
        "epochs": 3,
        "extra": ["trainer.limit_train_batches=4", "trainer.limit_val_batches=2", "trainer.limit_test_batches=2"],
    },
}
WAYS = {  # name -> overrides
    "pruned": [],
    "unpruned": ["hydra.sweeper.pruner.name=none"],
    "halving": ["hydra.sweeper.pruner.name=successive_halving"],  # Optuna's most aggressive: against the median
    "fused_pruned": ["hydra/launcher=fused"],
    "fused_unpruned": ["hydra/launcher=fused", "hydra.sweeper.pruner.name=none"],
}

COMPARED = {  # what the summary compares: (pruned way, unpruned way)
    "one_at_a_time": ("pruned", "unpruned"),
    "successive_halving": ("halving", "unpruned"),
    "fused": ("fused_pruned", "fused_unpruned"),
}


def run_study(workdir: Path, overrides: list[str]) -> dict:
    """One timed sweep=optuna command in its own folder: its trials' metrics.json and the time."""
    workdir.mkdir(parents=True)
    command = [sys.executable, str(REPO / "train.py"), "-m", "sweep=optuna", *overrides]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"error: {' '.join(command[1:])} failed:\n{done.stderr[-3000:]}")
    [sweep_dir] = (workdir / "outputs" / "sweeps").glob("*")
    trials = [json.loads(p.read_text()) for p in sorted(sweep_dir.glob("*/metrics.json"))]
    return {"seconds": seconds, "trials": trials}


def figures(study: dict) -> dict:
    trials = study["trials"]
    accuracies = [t["best_val_acc"] for t in trials if t.get("best_val_acc") is not None]
    return {
        "seconds": round(study["seconds"], 1),
        "trials": len(trials),
        "pruned": sum(t["status"] == "pruned" for t in trials),
        "diverged": sum(t["status"] == "diverged" for t in trials),
        "trial_epochs": sum(t["epochs"] for t in trials),
        "best_val_acc": max(accuracies) if accuracies else None,
    }


def mean_over_seeds(per_seed: list[dict]) -> dict:
    """A way's figures averaged over its seeds (rounded as one seed's are), with each seed's figures kept."""
    mean = {}
    for key in ("seconds", "trials", "pruned", "diverged", "trial_epochs", "best_val_acc"):
        values = [figures[key] for figures in per_seed]
        known = [value for value in values if value is not None]
        mean[key] = round(sum(known) / len(known), 4 if key == "best_val_acc" else 1) if known else None
    return mean | {"per_seed": per_seed}


def compare(summary: dict, pruned: str, unpruned: str) -> dict:
    """Pruning's share of the unpruned wall time, and its best val accuracy minus the unpruned one, in points,
    from the means over seeds."""
    with_pruning, without = summary[pruned], summary[unpruned]
    share = round(with_pruning["seconds"] / without["seconds"], 3)
    both = with_pruning["best_val_acc"] is not None and without["best_val_acc"] is not None
    points = round(100 * (with_pruning["best_val_acc"] - without["best_val_acc"]), 2) if both else None
    return {"time_share": share, "best_val_acc_points": points}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--quick", action="store_true", help="12 trials of at most 4 epochs")
    modes.add_argument("--smoke", action="store_true", help="5 trials, a few batches: checks the table")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2], metavar="S", help="sampler seeds (default 0 1 2)"
    )
    parser.add_argument("--set", type=int, default=6, metavar="N", help="suggestions per fused set (default 6)")
    parser.add_argument("--ways", nargs="+", choices=list(WAYS), default=list(WAYS), help="which ways (default all)")
    parser.add_argument("overrides", nargs="*", help="more overrides for every way (KEY=VALUE)")
    parser.add_argument("--json", metavar="PATH", help="also write the summary and its provenance here")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    settings = MODES[mode]
    common = [
        *SPACE,
        f"hydra.sweeper.n_trials={settings['trials']}",
        f"trainer.max_epochs={settings['epochs']}",
        *settings["extra"],
        *args.overrides,
    ]
    summary = {"mode": mode, "data": "mnist_sample", "epochs": settings["epochs"], "fused_set": args.set}
    summary["seeds"], summary["overrides"] = args.seeds, args.overrides
    with tempfile.TemporaryDirectory() as root:
        for way in args.ways:
            overrides = WAYS[way]
            batch = [f"hydra.sweeper.n_jobs={args.set}"] if way.startswith("fused") else []
            per_seed = []
            for seed in args.seeds:
                seeded = [*common, *overrides, *batch, f"hydra.sweeper.sampler.seed={seed}"]
                per_seed.append(figures(run_study(Path(root) / f"{way}_{seed}", seeded)))
            summary[way] = mean_over_seeds(per_seed)
    for key, (pruned, unpruned) in COMPARED.items():
        if pruned in summary and unpruned in summary:
            summary[key] = compare(summary, pruned, unpruned)
    print(
        f"sweep=optuna (TPE) on {summary['data']} ({mode}): {settings['trials']} trials of at most "
        f"{settings['epochs']} epochs; fused sets of {args.set}; means over sampler seeds {args.seeds}"
    )
    for way in args.ways:
        s = summary[way]
        best = "-" if s["best_val_acc"] is None else f"{s['best_val_acc']:.4f}"
        print(
            f"  {way:15s} {s['seconds']:8.1f} s  {s['pruned']:5.1f} pruned  {s['diverged']:5.1f} diverged  "
            f"{s['trial_epochs']:6.1f} trial-epochs  best val acc {best}"
        )
    for key in (key for key in COMPARED if key in summary):
        share, points = summary[key]["time_share"], summary[key]["best_val_acc_points"]
        print(f"  {key.replace('_', ' ')}: pruning takes {share:.2f} of the time, best val acc {points} points")
    print(json.dumps(summary))
    if args.json:
        sys.path.insert(0, str(Path(__file__).parent))
        from provenance import write_result

        print(f"written: {write_result(args.json, summary)}")


if __name__ == "__main__":
    main()
