"""Epoch seconds: the note's loop, a raw PyTorch loop, bare Lightning and the framework, plus the matmul ceiling.

    python bench/epoch.py            # full: 60k MNIST-shaped, 20k CIFAR-shaped images, 4 rounds
    python bench/epoch.py --quick    # small data, one round
    python bench/epoch.py --smoke    # tiny data, one process, no pty or memory runs: checks the table
    python bench/epoch.py --json bench/results/epoch.json   # also record it for the docs (bench/report.py)

The loops are described in bench/loops.py. A shared 2-core VM drifts by 20-70% from one minute to the
next (other tenants share its caches), so one process per case runs every loop in turn, round after
round, and each ratio is taken within a round before the median over rounds is reported. The matmul
ceiling is measured at the start of every round. A second process per case repeats the raw and
framework loops under a pseudo-terminal (`script -qec`), so progress-bar redraws are counted, and the
slower of the two framework figures is used. Peak memory comes from one short process per loop, the
framework's being a real `python train.py` run.
"""

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CASES = {  # name: (model, dataset, batch size)
    "mlp_b64": ("mlp", "mnist", 64),
    "mlp_b256": ("mlp", "mnist", 256),
    "lenet_b64": ("cnn", "cifar10", 64),
}
ORDER = ("raw", "lightning", "framework", "note")  # every round runs the loops in this order
RATIO_OFF = "framework_no_ratio"  # after them, the framework without the update/weight ratio
MAIN = (*ORDER, RATIO_OFF)
TRACKERS = ("csv", "mlflow")  # framework_csv, framework_mlflow: priced against the TensorBoard default
TRACKER_CASE = "mlp_b64"  # the smallest step, where a per-step logging cost would show most


def loops_of(case: str) -> tuple[str, ...]:
    return (*MAIN, *(f"framework_{name}" for name in TRACKERS)) if case == TRACKER_CASE else MAIN


def run_process(command: list[str], pty: bool = False) -> float:
    """Run a command; return its own peak resident memory in MiB (GNU time's %M)."""
    with tempfile.NamedTemporaryFile("r", suffix=".peak") as peak_file:
        command = ["/usr/bin/time", "-f", "%M", "-o", peak_file.name, *command]
        if pty:  # `script` gives the command a terminal, so Rich redraws as a user would see it
            command = ["script", "-qec", shlex.join(command), "/dev/null"]
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"benchmark step failed: {shlex.join(command)}\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}")
        return int(peak_file.read().split()[-1]) / 1024


def rounds_in_a_process(case: str, root: str, epochs: int, rounds: int, kinds: tuple, pty: bool = False) -> list:
    with tempfile.NamedTemporaryFile("r", suffix=".json") as out:
        arguments = [case, root, str(epochs), str(rounds), ",".join(kinds), out.name]
        run_process([sys.executable, __file__, "--worker", *arguments], pty=pty)
        return json.load(out)


def run_rounds(case: str, root: str, epochs: int, rounds: int, kinds: str) -> list[dict]:
    from loops import LOOPS, matmul_gflops

    model, dataset, batch = CASES[case]
    results = []
    for number in range(rounds):
        entry = {"gflops": matmul_gflops()}
        # Every other round runs the loops in reverse, so no loop always follows the same neighbour (the
        # per-sample note loop, say, leaves the allocator and caches in a state the next loop inherits).
        order = kinds.split(",") if number % 2 == 0 else kinds.split(",")[::-1]
        for kind in order:
            # The note's loop is slow and its target loose: one warm-up and one timed epoch per round.
            seconds = LOOPS[kind](model, dataset, root, batch, min(epochs, 2) if kind == "note" else epochs)
            entry[kind] = statistics.median(seconds[1:] or seconds)  # every run's first epoch warms up
        results.append(entry)
    return results


def run_worker(case: str, root: str, epochs: int, rounds: int, kinds: str, out: str) -> None:
    Path(out).write_text(json.dumps(run_rounds(case, root, epochs, rounds, kinds)))


def peak_memory(case: str, root: str) -> dict[str, float]:
    """One short process per loop (one epoch): its peak resident memory."""
    from loops import framework_overrides

    model, dataset, batch = CASES[case]
    peaks = {}
    for kind in ORDER:
        if kind == "framework":
            with tempfile.TemporaryDirectory() as outputs:
                overrides = framework_overrides(model, dataset, root, batch, epochs=1)
                command = [sys.executable, str(REPO / "train.py"), *overrides, f"hydra.run.dir={outputs}/run"]
                peaks[kind] = run_process(command)
        else:
            with tempfile.NamedTemporaryFile("r", suffix=".json") as out:
                peaks[kind] = run_process([sys.executable, __file__, "--worker", case, root, "1", "1", kind, out.name])
    return peaks


def summarize(main: list[dict], pty: list[dict], flops: float | None, peaks: dict) -> dict:
    """Seconds are medians over rounds; every ratio is formed within a round (against that round's raw
    loop) before taking the median over rounds. `pty` and `peaks` are empty in a smoke run."""

    def median(values) -> float:
        return statistics.median(list(values))

    def per_raw(rounds: list[dict], kind: str) -> float:
        return median(r[kind] / r["raw"] for r in rounds)

    framework_over_raw = max(per_raw(rounds, "framework") for rounds in (main, pty) if rounds)  # the slower counts
    summary = {f"{kind}_s": round(median(r[kind] for r in main), 3) for kind in (*ORDER, RATIO_OFF)}
    summary |= {
        "update_ratio_cost": round(median(r["framework"] / r[RATIO_OFF] - 1 for r in main), 4),
        **{
            f"{name}_over_tensorboard": round(median(r[f"framework_{name}"] / r["framework"] for r in main), 3)
            for name in TRACKERS
            if f"framework_{name}" in main[0]
        },
        "framework_pty_s": round(median(r["framework"] for r in pty), 3) if pty else None,
        "lightning_over_raw": round(per_raw(main, "lightning"), 3),
        "framework_over_raw": round(framework_over_raw, 3),
        "framework_over_lightning": round(framework_over_raw / per_raw(main, "lightning"), 3),
        "note_over_framework": round(per_raw(main, "note") / framework_over_raw, 2),
        "matmul_gflops": round(median(r["gflops"] for r in main + pty), 1),
        "matmul_share": None,
        "raw_matmul_share": None,
        "peak_mib": {kind: round(peak) for kind, peak in peaks.items()},
        "rounds": {"main": main, "pty": pty},
    }
    if flops:  # FLOPs / seconds / (GFLOP/s measured in the same round)
        raw_share = median(flops / r["raw"] / (r["gflops"] * 1e9) for r in main + pty)
        summary["raw_matmul_share"] = round(raw_share, 3)
        summary["matmul_share"] = round(raw_share / framework_over_raw, 3)
    return summary


def mlp_flops_per_epoch(root: str) -> float:
    """6 x parameters x training samples: forward (2) and backward (4) multiply-adds per weight."""
    from loops import build_model, train_split

    datamodule = train_split("mnist", root, 64)
    params = sum(p.numel() for p in build_model("mlp", datamodule).parameters())
    return 6.0 * params * len(datamodule.splits["train"][1])


SIZES = {  # mode: (MNIST-shaped training images, CIFAR images per batch file; five files)
    "full": (60_000, 4_000),
    "quick": (6_000, 400),
    "smoke": (700, 64),
}


def write_data(root: Path, mode: str) -> None:
    from experiments.data.synthetic_files import write_cifar10, write_mnist_family

    mnist, cifar_per_batch = SIZES[mode]
    write_mnist_family(root, train=mnist, test=100 if mode == "smoke" else 1_000)
    write_cifar10(root, per_batch=cifar_per_batch, test=100 if mode == "smoke" else 1_000)


def compose_seconds(times: int = 3) -> float:
    """`python train.py --cfg job`: composition only, no torch."""
    runs = []
    for _ in range(times):
        start = time.perf_counter()
        run_process([sys.executable, str(REPO / "train.py"), "--cfg", "job"])
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def print_table(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="seconds per training epoch (median over rounds)", header_style="bold")
    columns = ("case", "note", "raw", "lightning", "framework", "fw (pty)", "lightning/raw", "fw/raw", "note/fw")
    columns += ("update-ratio cost",)
    for column in (*columns, "matmul share fw (raw)", "peak MiB note/raw/lightning/fw"):
        table.add_column(column, justify="right")
    for case in CASES:
        row = summary[case]
        share = f"{row['matmul_share']:.0%} ({row['raw_matmul_share']:.0%})" if row["matmul_share"] else "-"
        table.add_row(
            case,
            *(_seconds(row[f"{kind}_s"]) for kind in ("note", "raw", "lightning", "framework", "framework_pty")),
            *(f"{row[ratio]:.2f}" for ratio in ("lightning_over_raw", "framework_over_raw", "note_over_framework")),
            f"{row['update_ratio_cost']:+.1%}",
            share,
            "/".join(str(row["peak_mib"].get(kind, "-")) for kind in ("note", "raw", "lightning", "framework")),
        )
    Console(width=170).print(table)
    gflops = summary["mlp_b64"]["matmul_gflops"]
    print(f"fp32 matmul 2048x2048: {gflops:.0f} GFLOP/s; `python train.py --cfg job`: {summary['compose_s']:.2f} s")
    trackers = summary[TRACKER_CASE]
    shown = ", ".join(f"logger=[{name}] {trackers[f'{name}_over_tensorboard']:.3f}x" for name in TRACKERS)
    print(f"{TRACKER_CASE}, epoch seconds against the TensorBoard default: {shown}")


def _seconds(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "-"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--quick", action="store_true", help="small data, one round")
    modes.add_argument("--smoke", action="store_true", help="tiny data in this process, no pty or memory runs")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per case (default 4; 1 with --quick)")
    parser.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    parser.add_argument(
        "--json", metavar="PATH", help="also write the summary and its provenance here (bench/results/)"
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.path.insert(0, str(Path(__file__).parent))  # bench/loops.py, also inside worker processes
    if args.worker:
        case, root, epochs, rounds, kinds, out = args.worker
        run_worker(case, root, int(epochs), int(rounds), kinds, out)
        return
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    rounds = args.rounds or (4 if mode == "full" else 1)  # even: half the rounds in each order
    epochs = {"full": 3, "quick": 2, "smoke": 1}[mode]
    summary: dict = {}
    with tempfile.TemporaryDirectory() as root:
        write_data(Path(root), mode)
        flops = mlp_flops_per_epoch(root)
        for case in CASES:
            if mode == "smoke":  # every loop once, in this process: the figures mean nothing, the table's shape does
                main_rounds, pty_rounds, peaks = (
                    run_rounds(case, root, epochs, rounds, ",".join(loops_of(case))),
                    [],
                    {},
                )
            else:
                main_rounds = rounds_in_a_process(case, root, epochs, rounds, loops_of(case))
                pty_rounds = rounds_in_a_process(case, root, epochs, rounds, ("raw", "framework"), pty=True)
                peaks = peak_memory(case, root)
            summary[case] = summarize(main_rounds, pty_rounds, flops if case.startswith("mlp") else None, peaks)
            for name, entries in (("", main_rounds), (" pty", pty_rounds)):
                for number, entry in enumerate(entries, 1):
                    figures = ", ".join(f"{k} {v:.2f}s" for k, v in entry.items() if k != "gflops")
                    print(f"{case}{name} round {number}: {figures}, matmul {entry['gflops']:.0f}", file=sys.stderr)
    summary["compose_s"] = round(compose_seconds(1 if mode == "smoke" else 3), 2)
    print_table(summary)
    summary |= {"mode": mode, "epochs_per_run": epochs, "rounds": rounds}
    print(json.dumps(summary))
    if args.json:
        from provenance import write_result

        print(f"written: {write_result(args.json, summary)}")


if __name__ == "__main__":
    main()
