"""Epoch seconds: the seed's loop, a raw PyTorch loop, bare Lightning and the framework, plus the matmul ceiling.

    python bench/epoch.py            # full: 60k MNIST-shaped, 20k CIFAR-shaped images (about 7 minutes)
    python bench/epoch.py --quick    # small data, one repeat: a smoke run

Every loop runs in its own process (clean peak memory) on the same training split (see bench/loops.py).
The framework case is a real `python train.py` run with its default callbacks, logger and progress bar,
timed by its EpochTimer; it also runs under a pseudo-terminal so progress-bar redraws are counted.

A shared 2-core VM drifts by 20-50% over minutes, so each repeat runs every loop back to back and the
ratios are taken within a repeat, then their median over repeats is reported. The matmul ceiling is
measured inside each raw-loop process, next to the loop it is compared with.
"""

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CASES = {  # name: (model, dataset, batch size)
    "mlp_b64": ("mlp", "mnist", 64),
    "mlp_b256": ("mlp", "mnist", 256),
    "lenet_b64": ("cnn", "cifar10", 64),
}
KINDS = ("raw", "lightning", "framework", "framework_pty", "seed")  # the order each repeat runs them in


def run_process(command: list[str], pty: bool = False) -> tuple[str, float]:
    """Run a command; return its stdout and its own peak resident memory in MiB (GNU time's %M)."""
    with tempfile.NamedTemporaryFile("r", suffix=".peak") as peak_file:
        command = ["/usr/bin/time", "-f", "%M", "-o", peak_file.name, *command]
        if pty:  # `script` gives the command a terminal, so Rich redraws as a user would see it
            command = ["script", "-qec", shlex.join(command), "/dev/null"]
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"benchmark step failed: {shlex.join(command)}\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}")
        peak_kib = int(peak_file.read().split()[-1])
    return done.stdout, peak_kib / 1024


def worker_case(kind: str, case: str, root: str, epochs: int) -> tuple[dict, float]:
    stdout, peak = run_process([sys.executable, __file__, "--worker", kind, case, root, str(epochs)])
    return json.loads(stdout.strip().splitlines()[-1]), peak


def framework_case(case: str, root: str, epochs: int, pty: bool) -> tuple[dict, float]:
    """A real `python train.py` run with the defaults users get; epochs timed by its EpochTimer."""
    from loops import LR

    model, dataset, batch = CASES[case]
    with tempfile.TemporaryDirectory() as outputs:
        command = [
            sys.executable,
            str(REPO / "train.py"),
            f"model={model}",
            f"data={dataset}",
            f"data.root={root}",
            "data.download=false",
            "data.verify_checksums=false",
            f"data.batch_size={batch}",
            "optimizer=sgd",
            f"optimizer.lr={LR}",
            f"trainer.max_epochs={epochs}",
            "test=false",
            f"hydra.run.dir={outputs}/run",
        ]
        _, peak = run_process(command, pty=pty)
        metrics = json.loads((Path(outputs) / "run" / "metrics.json").read_text())
    return {"seconds": metrics["train_epoch_seconds"]}, peak


def write_data(root: Path, quick: bool) -> None:
    from experiments.data.synthetic_files import write_cifar10, write_mnist_family

    write_mnist_family(root, train=6_000 if quick else 60_000, test=1_000)
    write_cifar10(root, per_batch=400 if quick else 4_000, test=1_000)  # five batches: 2k or 20k images


def compose_seconds() -> float:
    """`python train.py --cfg job`: composition only, no torch."""
    import time

    runs = []
    for _ in range(3):
        start = time.perf_counter()
        run_process([sys.executable, str(REPO / "train.py"), "--cfg", "job"])
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def one_repeat(case: str, root: str, epochs: int) -> dict:
    """Every loop once, back to back: {kind: median epoch seconds after the first (warm-up) epoch}."""
    repeat: dict = {"peak_mib": {}}
    for kind in KINDS:
        if kind.startswith("framework"):
            result, peak = framework_case(case, root, epochs, pty=kind == "framework_pty")
        else:  # the seed loop is slow and its ratio target is loose: one warm-up and one timed epoch
            result, peak = worker_case(kind, case, root, min(epochs, 2) if kind == "seed" else epochs)
        seconds = result["seconds"]
        repeat[kind] = statistics.median(seconds[1:] if len(seconds) > 1 else seconds)
        repeat["peak_mib"][kind] = peak
        if "gflops" in result:
            repeat["gflops"] = result["gflops"]
    return repeat


def summarize(repeats: list[dict], mlp_flops: float | None) -> dict:
    """Medians over repeats; each ratio is formed within a repeat first."""

    def median_of(value) -> float:
        return statistics.median(value(r) for r in repeats)

    def framework(r: dict) -> float:  # the slower of the two runs is what users get
        return max(r["framework"], r["framework_pty"])

    summary = {f"{kind}_s": round(median_of(lambda r, k=kind: r[k]), 3) for kind in KINDS}
    summary |= {
        "lightning_over_raw": round(median_of(lambda r: r["lightning"] / r["raw"]), 3),
        "framework_over_raw": round(median_of(lambda r: framework(r) / r["raw"]), 3),
        "framework_over_lightning": round(median_of(lambda r: framework(r) / r["lightning"]), 3),
        "seed_over_framework": round(median_of(lambda r: r["seed"] / framework(r)), 2),
        "matmul_gflops": round(median_of(lambda r: r["gflops"]), 1),
        "matmul_share": None,
        "raw_matmul_share": None,
        "peak_mib": {kind: round(max(r["peak_mib"][kind] for r in repeats)) for kind in KINDS},
    }
    if mlp_flops:  # FLOPs / seconds / (GFLOP/s measured in the same repeat)
        summary["matmul_share"] = round(median_of(lambda r: mlp_flops / framework(r) / (r["gflops"] * 1e9)), 3)
        summary["raw_matmul_share"] = round(median_of(lambda r: mlp_flops / r["raw"] / (r["gflops"] * 1e9)), 3)
    return summary


def mlp_flops_per_epoch(root: str) -> float:
    """6 x parameters x training samples: forward (2) and backward (4) multiply-adds per weight."""
    from loops import build_model, train_split

    datamodule = train_split("mnist", root, 64)
    params = sum(p.numel() for p in build_model("mlp", datamodule).parameters())
    return 6.0 * params * len(datamodule.splits["train"][1])


def print_table(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="seconds per training epoch (median); ratios within a repeat, then median", header_style="bold")
    columns = ("case", "seed", "raw", "lightning", "framework", "fw (pty)", "lightning/raw", "fw/raw", "seed/fw")
    for column in (*columns, "matmul share fw (raw)", "peak MiB seed/raw/fw"):
        table.add_column(column, justify="right")
    for case in CASES:
        row = summary[case]
        share = f"{row['matmul_share']:.0%} ({row['raw_matmul_share']:.0%})" if row["matmul_share"] else "-"
        peaks = row["peak_mib"]
        table.add_row(
            case,
            *(f"{row[f'{kind}_s']:.2f}" for kind in ("seed", "raw", "lightning", "framework", "framework_pty")),
            f"{row['lightning_over_raw']:.2f}",
            f"{row['framework_over_raw']:.2f}",
            f"{row['seed_over_framework']:.2f}",
            share,
            f"{peaks['seed']}/{peaks['raw']}/{max(peaks['framework'], peaks['framework_pty'])}",
        )
    Console(width=170).print(table)
    print(
        f"fp32 matmul 2048x2048: {summary['mlp_b64']['matmul_gflops']:.0f} GFLOP/s (median, mlp_b64 repeats); ", end=""
    )
    print(f"`python train.py --cfg job`: {summary['compose_s']:.2f} s")


def run_worker(kind: str, case: str, root: str, epochs: int) -> None:
    from loops import LOOPS, matmul_gflops

    model, dataset, batch = CASES[case]
    result: dict = {}
    if kind == "raw":
        result["gflops"] = matmul_gflops()
    result["seconds"] = LOOPS[kind](model, dataset, root, batch, epochs)
    if kind == "raw":  # the best of before and after: the ceiling while this loop ran
        result["gflops"] = max(result["gflops"], matmul_gflops())
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small data, one repeat: a smoke run")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per case (default 2; 1 with --quick)")
    parser.add_argument("--worker", nargs=4, metavar=("KIND", "CASE", "ROOT", "EPOCHS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))  # bench/loops.py, also inside worker processes
    if args.worker:
        kind, case, root, epochs = args.worker
        run_worker(kind, case, root, int(epochs))
        return
    repeats = args.repeats or (1 if args.quick else 2)
    epochs = 2 if args.quick else 3
    summary: dict = {}
    with tempfile.TemporaryDirectory() as root:
        write_data(Path(root), args.quick)
        mlp_flops = mlp_flops_per_epoch(root)
        for case in CASES:
            runs = []
            for number in range(repeats):
                runs.append(one_repeat(case, root, epochs))
                figures = ", ".join(f"{kind} {runs[-1][kind]:.2f}s" for kind in KINDS)
                print(
                    f"{case} repeat {number + 1}: {figures}, matmul {runs[-1]['gflops']:.0f} GFLOP/s", file=sys.stderr
                )
            summary[case] = summarize(runs, mlp_flops if case.startswith("mlp") else None)
    summary["compose_s"] = round(compose_seconds(), 2)
    print_table(summary)
    summary |= {"quick": args.quick, "epochs_per_process": epochs, "repeats": repeats}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
