"""Sweep seconds: `python train.py -m sweep=lr_wd` with Hydra's one-trial-at-a-time launcher against
`hydra/launcher=fused`, in the same run of this script, on the embedded sample.

    python bench/sweep.py              # the note's grid: 20 trials x 10 epochs, each way
    python bench/sweep.py --quick      # 2 epochs per trial
    python bench/sweep.py --smoke      # 2 learning rates x 1 weight decay, a few batches: checks the table
    python bench/sweep.py --mnist 60000 --epochs 10   # on 60k synthetic MNIST-shaped images: the GPU comparison
    python bench/sweep.py --json bench/results/sweep.json   # also record it for the docs (bench/report.py)

Each way is one real `python train.py` command, timed as a whole; Hydra's basic launcher runs its
trials one after another in that one process. The table gives both wall times, their ratio, the best cell
of each sweep (they must agree), the throughput in trial-epochs per second, and the cost of one trial: a
lone trial's median time against the fused set's time per trial, each way's seconds per trial outside the
trials' epochs (the whole command less the imports every command pays, timed here, and less the epochs)
against a lone trial's median epoch, the top-level aten calls of one training
step for a lone run and fused sets of 1, 5 and 20 trials (bench/step_ops.py), and each way's training
batches as a share of the machine's fp32 matmul rate. The last line is the same as JSON.
`--mnist N` trains on N synthetic MNIST-shaped images written in torchvision's format (`data=mnist`),
instead of the embedded sample; `--epochs E` sets the epochs per trial.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODES = {
    "full": [],
    "quick": ["trainer.max_epochs=2"],
    "smoke": [
        "optimizer.lr=0.001,20",
        "regularization.weight_decay=0.0001",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=4",
        "trainer.limit_val_batches=2",
        "trainer.limit_test_batches=2",
    ],
}


def mnist_overrides(root: Path, train_images: int) -> list[str]:
    """Synthetic MNIST-shaped files (10k test images) under ROOT, and the overrides that read them."""
    from experiments.data.synthetic_files import write_mnist_family

    write_mnist_family(root, train=train_images, test=10_000)
    return ["data=mnist", f"data.root={root}", "data.download=false"]


def device_name() -> str:
    import platform

    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({platform.processor() or 'cpu'})"


def training_throughput(trials: list[dict], fused: bool) -> float | None:
    """Trial-epochs per second of training batches alone (no start-up, validation or testing), over the
    epochs after the first (its warm-up). A fused set's epoch counts once for every trial in it then."""
    if fused:  # every trial of the set holds the set's epoch times; a trial took part in its first `epochs`
        seconds = trials[0]["train_epoch_seconds"][1:]
        counts = [sum(t["epochs"] > epoch for t in trials) for epoch in range(1, len(seconds) + 1)]
        return round(sum(counts) / sum(seconds), 2) if seconds else None
    seconds = [s for t in trials if t["status"] == "completed" for s in t["train_epoch_seconds"][1:]]
    return round(len(seconds) / sum(seconds), 2) if seconds else None


def import_seconds() -> float:
    """What every command pays before it does anything: a fresh interpreter importing torch, lightning,
    torchvision and hydra (the median of three)."""
    command = [sys.executable, "-c", "import torch, lightning, torchvision, hydra"]
    times = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run(command, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def epoch_seconds(trials: list[dict]) -> float:
    """Seconds the trials spent in their train+validation epochs; a fused set's epochs counted once."""
    sets = {tuple(t["epoch_seconds"]) for t in trials if "fused" in t}  # every trial of a set holds its epochs
    return sum(map(sum, sets)) + sum(sum(t["epoch_seconds"]) for t in trials if "fused" not in t)


def outside_epochs_per_trial(sweep: dict, startup: float) -> float:
    """The whole command's seconds, less the start-up and the epochs, per trial: composing, preparing,
    testing, checkpoints, records, trackers."""
    trials = list(sweep["trials"].values())
    return (sweep["seconds"] - startup - epoch_seconds(trials)) / len(trials)


def run_sweep(workdir: Path, extra: list[str]) -> dict:
    """One timed `python train.py -m sweep=lr_wd` in its own directory; its summary rows and best trial."""
    workdir.mkdir(parents=True)
    command = [sys.executable, str(REPO / "train.py"), "-m", "sweep=lr_wd", "watch.pictures=false", *extra]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:  # with the failed trials' own errors: the sweep's folder goes with this script
        errors = "".join(
            f"\n{p.parent.name}: {p.read_text()[-1500:]}" for p in workdir.glob("outputs/sweeps/*/*/error.txt")
        )
        sys.exit(f"error: {' '.join(command[1:])} failed:\n{done.stderr[-3000:]}{errors}")
    [sweep_dir] = (workdir / "outputs" / "sweeps").glob("*")
    trials = {p.parent.name: json.loads(p.read_text()) for p in sorted(sweep_dir.glob("*/metrics.json"))}
    best = next(line for line in (sweep_dir / "best.yaml").read_text().splitlines() if line.startswith("trial:"))
    return {"seconds": seconds, "trials": trials, "best": best.removeprefix("trial: ")}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--quick", action="store_true", help="2 epochs per trial")
    modes.add_argument("--smoke", action="store_true", help="2 trials, a few batches: checks the table")
    parser.add_argument("--mnist", type=int, metavar="N", help="train on N synthetic MNIST-shaped images")
    parser.add_argument("--epochs", type=int, metavar="E", help="epochs per trial (default: the mode's)")
    parser.add_argument(
        "--json", metavar="PATH", help="also write the summary and its provenance here (bench/results/)"
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    with tempfile.TemporaryDirectory() as root:
        overrides = list(MODES[mode])
        if args.epochs is not None:
            overrides = [o for o in overrides if not o.startswith("trainer.max_epochs=")]
            overrides.append(f"trainer.max_epochs={args.epochs}")
        data_overrides = mnist_overrides(Path(root) / "data", args.mnist) if args.mnist is not None else []
        overrides += data_overrides
        startup = import_seconds()
        sequential = run_sweep(Path(root) / "sequential", overrides)
        fused = run_sweep(Path(root) / "fused", ["hydra/launcher=fused", *overrides])
        sys.path.insert(0, str(Path(__file__).parent))
        from step_ops import flops_per_trial_epoch

        flops = flops_per_trial_epoch(*data_overrides)  # of one trial-epoch: for the matmul ceiling's share
    epochs = args.epochs or (1 if mode == "smoke" else 2 if mode == "quick" else 10)
    completed = [t["wall_seconds"] for t in sequential["trials"].values() if t["status"] == "completed"]
    set_seconds = next(iter(fused["trials"].values()))["fused"]["set_seconds"]
    lone_epochs = [s for t in sequential["trials"].values() if t["status"] == "completed" for s in t["epoch_seconds"]]
    summary = {
        "mode": mode,
        "data": f"{args.mnist} MNIST-shaped images" if args.mnist else "mnist_sample",
        "device": device_name(),
        "epochs": epochs,
        "trials": len(fused["trials"]),
        "diverged": sum(t["status"] == "diverged" for t in fused["trials"].values()),
        "sequential_s": round(sequential["seconds"], 1),
        "fused_s": round(fused["seconds"], 1),
        "speedup": round(sequential["seconds"] / fused["seconds"], 2),
        # trial-epochs asked for, per second of the whole command: the throughput the issue compares
        "sequential_trial_epochs_per_s": round(len(fused["trials"]) * epochs / sequential["seconds"], 2),
        "fused_trial_epochs_per_s": round(len(fused["trials"]) * epochs / fused["seconds"], 2),
        "sequential_train_trial_epochs_per_s": training_throughput(list(sequential["trials"].values()), False),
        "fused_train_trial_epochs_per_s": training_throughput(list(fused["trials"].values()), True),
        "best_sequential": sequential["best"],
        "best_fused": fused["best"],
        "lone_trial_s": round(statistics.median(completed), 2) if completed else None,
        "fused_per_trial_s": round(set_seconds / len(fused["trials"]), 2),
        "import_s": round(startup, 2),
        "lone_epoch_s": round(statistics.median(lone_epochs), 3) if lone_epochs else None,
        "sequential_outside_epochs_per_trial_s": round(outside_epochs_per_trial(sequential, startup), 3),
        "fused_outside_epochs_per_trial_s": round(outside_epochs_per_trial(fused, startup), 3),
        # best val acc of every cell both ways: where the best cells differ, by how much
        "cells": {
            name: [t["best_val_acc"], fused["trials"][name]["best_val_acc"]] for name, t in sequential["trials"].items()
        },
    }
    print(
        f"sweep=lr_wd on {summary['data']} ({mode}, {epochs} epochs, {summary['device']}): "
        f"{summary['trials']} trials, {summary['diverged']} diverged"
    )
    ways = (("sequential", "sequential (hydra's basic launcher)"), ("fused", "fused (hydra/launcher=fused)"))
    for way, label in ways:
        print(
            f"  {label:36s} {summary[f'{way}_s']:8.1f} s   {summary[f'{way}_trial_epochs_per_s']:7.2f} "
            f"trial-epochs/s   best {summary[f'best_{way}']}"
        )
    seq_train, fused_train = summary["sequential_train_trial_epochs_per_s"], summary["fused_train_trial_epochs_per_s"]
    summary["train_speedup"] = round(fused_train / seq_train, 2) if seq_train and fused_train else None
    if summary["train_speedup"]:
        print(
            f"  training batches alone, epochs after the first: {seq_train:.2f} against {fused_train:.2f} "
            f"trial-epochs/s ({summary['train_speedup']:.2f}x)"
        )
    print(f"  speed-up {summary['speedup']:.2f}x; one trial: {summary['lone_trial_s']} s alone (median of the")
    print(f"  completed trials), {summary['fused_per_trial_s']} s inside the fused set (the set's time / trials)")
    for way in ("sequential", "fused"):  # against a lone trial's median train+validation epoch
        outside = summary[f"{way}_outside_epochs_per_trial_s"]
        ratio = round(outside / summary["lone_epoch_s"], 2) if summary["lone_epoch_s"] else None
        summary[f"{way}_outside_epochs_ratio"] = ratio
    print(
        f"  outside the epochs, per trial (less {summary['import_s']:.1f} s of imports): sequential "
        f"{summary['sequential_outside_epochs_per_trial_s']:.2f} s ({summary['sequential_outside_epochs_ratio']}x a "
        f"lone epoch of {summary['lone_epoch_s']} s), fused {summary['fused_outside_epochs_per_trial_s']:.2f} s "
        f"({summary['fused_outside_epochs_ratio']}x)"
    )
    from loops import matmul_gflops
    from step_ops import bare_batched_gflops, print_operations, step_operations

    summary["step_operations"], summary["step_working_operations"] = step_operations()
    print_operations(summary["step_operations"], summary["step_working_operations"])
    summary["matmul_gflops"] = round(matmul_gflops(), 1)
    for way, train in (("sequential", seq_train), ("fused", fused_train)):
        summary[f"{way}_matmul_share"] = round(train * flops / (summary["matmul_gflops"] * 1e9), 3) if train else None
    # the floor: the same 20 networks as bare batched matmuls, measured beside the ceiling
    summary["bare_batched_matmul_share"] = round(bare_batched_gflops() / summary["matmul_gflops"], 3)
    print(
        f"  training batches against the matmul ceiling ({summary['matmul_gflops']:.0f} GFLOP/s): "
        f"sequential {summary['sequential_matmul_share']}, fused {summary['fused_matmul_share']}; "
        f"a bare batched loop of 20 of these networks {summary['bare_batched_matmul_share']}"
    )
    print(json.dumps(summary))
    if args.json:
        from provenance import write_result

        print(f"written: {write_result(args.json, summary)}")


if __name__ == "__main__":
    main()
