"""Epoch seconds: the seed's loop vs a raw PyTorch loop vs the framework, plus the matmul ceiling.

    python bench/epoch.py            # full: 60k MNIST-shaped, 20k CIFAR-shaped images (a few minutes)
    python bench/epoch.py --quick    # small data, one repeat: a smoke run

Every case runs in its own process (clean peak memory) on the same training split: the project's
datamodule carves it, so all three loops see the same images. The framework case is a real
`python train.py` run with its default callbacks, logger and progress bar, timed by its EpochTimer;
it runs once more under a pseudo-terminal so progress-bar redraws are counted.
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
LR = 0.01


# ---- workers: each runs in its own process and prints one JSON line -------------------------------


def _train_split(dataset: str, root: str, batch: int, pipeline: str = "tensor"):
    from experiments.data.torchvision_sets import TorchvisionDataModule

    datamodule = TorchvisionDataModule(
        dataset, root=root, download=False, verify_checksums=False, batch_size=batch, pipeline=pipeline
    )
    datamodule.setup()
    return datamodule


def _model(name: str, datamodule):
    import torch

    from experiments.models.cnn import LeNet
    from experiments.models.mlp import MLP

    torch.manual_seed(0)
    shape, classes = datamodule.input_shape, datamodule.num_classes
    return MLP(shape, classes) if name == "mlp" else LeNet(shape, classes)


def seed_loop(model_name: str, dataset: str, root: str, batch: int, epochs: int) -> list[float]:
    """The note's loop over the project's seed-style path (data.pipeline=torchvision): a DataLoader
    over a dataset that turns each uint8 image into a PIL image, then ToTensor and Normalize."""
    import torch

    datamodule = _train_split(dataset, root, batch, pipeline="torchvision")
    model = _model(model_name, datamodule)
    optimizer, loss_fn = torch.optim.SGD(model.parameters(), lr=LR), torch.nn.CrossEntropyLoss()
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        for step, (images, labels) in enumerate(datamodule.train_dataloader()):
            loss = loss_fn(model(images), labels)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            if step % 100 == 0:
                loss.item()  # the note prints the loss every 100 batches
        seconds.append(time.perf_counter() - start)
    return seconds


def raw_loop(model_name: str, dataset: str, root: str, batch: int, epochs: int) -> list[float]:
    """One in-memory float tensor, sliced by a fresh permutation each epoch: the floor for this model."""
    import torch

    datamodule = _train_split(dataset, root, batch)
    images, labels = datamodule.splits["train"]
    images = datamodule.input_transform(images)  # preprocessed once, up front
    model = _model(model_name, datamodule)
    optimizer, loss_fn = torch.optim.SGD(model.parameters(), lr=LR), torch.nn.CrossEntropyLoss()
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(len(labels))
        for first in range(0, len(labels), batch):
            index = order[first : first + batch]
            loss = loss_fn(model(images[index]), labels[index])
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        seconds.append(time.perf_counter() - start)
    return seconds


def matmul_gflops() -> float:
    import torch

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    for _ in range(3):
        a @ b
    best = min(_timed(lambda: a @ b) for _ in range(10))
    return 2 * 2048**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# ---- orchestration --------------------------------------------------------------------------------


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


def worker_case(kind: str, case: str, root: str, epochs: int) -> tuple[list[float], float]:
    stdout, peak = run_process([sys.executable, __file__, "--worker", kind, case, root, str(epochs)])
    return json.loads(stdout.strip().splitlines()[-1]), peak


def framework_case(case: str, root: str, epochs: int, pty: bool) -> tuple[list[float], float]:
    """A real `python train.py` run with the defaults users get; epochs timed by its EpochTimer."""
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
    return metrics["train_epoch_seconds"], peak


def write_data(root: Path, quick: bool) -> None:
    from experiments.data.synthetic_files import write_cifar10, write_mnist_family

    write_mnist_family(root, train=6_000 if quick else 60_000, test=1_000)
    write_cifar10(root, per_batch=400 if quick else 4_000, test=1_000)  # five batches: 2k or 20k images


def compose_seconds() -> float:
    """`python train.py --cfg job`: composition only, no torch."""
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        run_process([sys.executable, str(REPO / "train.py"), "--cfg", "job"])
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def measure(root: str, epochs: int, repeats: int) -> dict:
    results: dict = {}
    for case in CASES:
        figures: dict[str, list[float]] = {}
        peaks: dict[str, float] = {}
        for _ in range(repeats):
            for kind in ("seed", "raw", "framework"):
                seconds, peak = (
                    framework_case(case, root, epochs, pty=False)
                    if kind == "framework"
                    else (worker_case(kind, case, root, epochs))
                )
                # The first epoch warms allocators and caches; every later epoch is a sample.
                figures.setdefault(kind, []).extend(seconds[1:] if len(seconds) > 1 else seconds)
                peaks[kind] = max(peaks.get(kind, 0.0), peak)
        seconds, peaks["framework_pty"] = framework_case(case, root, epochs, pty=True)
        figures["framework_pty"] = seconds[1:] if len(seconds) > 1 else seconds
        results[case] = {"median_s": {k: statistics.median(v) for k, v in figures.items()}, "peak_mib": peaks}
        print(
            f"measured {case}: " + ", ".join(f"{k} {v:.2f}s" for k, v in results[case]["median_s"].items()),
            file=sys.stderr,
        )
    return results


def mlp_flops_per_epoch(root: str) -> float:
    """6 x parameters x training samples: forward (2) and backward (4) multiply-adds per weight."""
    datamodule = _train_split("mnist", root, 64)
    params = sum(p.numel() for p in _model("mlp", datamodule).parameters())
    return 6.0 * params * len(datamodule.splits["train"][1])


def report(results: dict, gflops: float, mlp_flops: float, compose_s: float) -> dict:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="seconds per training epoch (median)", header_style="bold")
    for column in (
        "case",
        "seed",
        "raw",
        "framework",
        "framework (pty)",
        "fw/raw",
        "seed/fw",
        "matmul share",
        "peak MiB seed/raw/fw",
    ):
        table.add_column(column, justify="right")
    summary: dict = {"matmul_gflops": round(gflops, 1), "compose_s": round(compose_s, 2)}
    for case, figures in results.items():
        m, peak = figures["median_s"], figures["peak_mib"]
        framework = max(m["framework"], m["framework_pty"])  # the slower of the two is what users get
        share = mlp_flops / framework / (gflops * 1e9) if case.startswith("mlp") else None
        summary[case] = {
            "seed_s": round(m["seed"], 3),
            "raw_s": round(m["raw"], 3),
            "framework_s": round(m["framework"], 3),
            "framework_pty_s": round(m["framework_pty"], 3),
            "framework_over_raw": round(framework / m["raw"], 3),
            "seed_over_framework": round(m["seed"] / framework, 2),
            "matmul_share": round(share, 3) if share else None,
            "peak_mib": {k: round(v) for k, v in peak.items()},
        }
        row = summary[case]
        table.add_row(
            case,
            f"{m['seed']:.2f}",
            f"{m['raw']:.2f}",
            f"{m['framework']:.2f}",
            f"{m['framework_pty']:.2f}",
            f"{row['framework_over_raw']:.2f}",
            f"{row['seed_over_framework']:.2f}",
            f"{share:.0%}" if share else "-",
            f"{peak['seed']:.0f}/{peak['raw']:.0f}/{peak['framework']:.0f}",
        )
    Console(width=150).print(table)
    print(f"fp32 matmul 2048x2048: {gflops:.0f} GFLOP/s; `python train.py --cfg job`: {compose_s:.2f} s")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small data, one repeat: a smoke run")
    parser.add_argument("--repeats", type=int, default=None, help="processes per case (default 2; 1 with --quick)")
    parser.add_argument("--worker", nargs=4, metavar=("KIND", "CASE", "ROOT", "EPOCHS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, case, root, epochs = args.worker
        model, dataset, batch = CASES[case]
        loop = seed_loop if kind == "seed" else raw_loop
        print(json.dumps(loop(model, dataset, root, batch, int(epochs))))
        return
    repeats = args.repeats or (1 if args.quick else 2)
    epochs = 2 if args.quick else 3
    with tempfile.TemporaryDirectory() as root:
        write_data(Path(root), args.quick)
        results = measure(root, epochs, repeats)
        summary = report(results, matmul_gflops(), mlp_flops_per_epoch(root), compose_seconds())
    summary |= {"quick": args.quick, "epochs_per_process": epochs, "repeats": repeats}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
