"""The presets' accuracy and time: each `experiment=` preset (and the note's NumPy net) run as a user runs it.

    python bench/presets.py --json bench/results/presets.json            # every preset; best_* over 3 seeds
    python bench/presets.py --only best_cnn --seeds 42 --json /tmp/p.json  # one preset, one seed
    python bench/presets.py --fashion --json bench/results/presets_fashion.json  # the best_*_fashion presets, 3 seeds
    python bench/presets.py --only best_cnn_fashion --update --json bench/results/presets_fashion.json  # re-measure one

Each run is stored with its own provenance, so `--update` replaces the named presets' runs in an existing
file and keeps every other preset's runs, each still credited to the command that measured it.

Each run is one real `python train.py experiment=NAME ...` command in a fresh folder, timed as a whole.
The note's presets whose dataset must be downloaded (FashionMNIST, CIFAR-10) run on the embedded sample,
`data=mnist_sample`, and are recorded as such. bench/report.py turns the file into docs/results.md.
"""

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from provenance import provenance, write_result

REPO = Path(__file__).resolve().parents[1]
NOTE = ["note_quickstart", "note_mnist_mlp", "note_lenet_cifar10", "note_rnn_rows", "note_lstm_rows", "note_gru_rows"]
BEST = ["best_mlp", "best_cnn", "best_cnn_wide", "best_lstm"]
# On the full Fashion-MNIST: Debian's package (apt-get install -y dataset-fashion-mnist)
FASHION = ["best_mlp_fashion", "best_lenet_fashion", "best_cnn_fashion", "best_lstm_fashion"]
SCRATCH = "scratch"  # python -m experiments.scratch: the note's NumPy net
OFFLINE = ["data=mnist_sample"]  # the note presets' own datasets are downloads


def command_for(preset: str, seed: int) -> list[str]:
    if preset == SCRATCH:
        return ["-m", "experiments.scratch", "--seed", str(seed)]
    extra = OFFLINE if preset in NOTE else []
    return [str(REPO / "train.py"), f"experiment={preset}", *extra, f"seed={seed}"]


def timed_run(command: list[str]) -> tuple[float, dict]:
    """`command` run in a fresh folder and timed as a whole: (seconds, its run's metrics.json)."""
    with tempfile.TemporaryDirectory() as workdir:
        started = time.perf_counter()
        done = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"error: {shlex.join(command)} failed:\n{done.stderr[-3000:]}")
        [metrics_file] = Path(workdir).glob("outputs/runs/*/metrics.json")
        return seconds, json.loads(metrics_file.read_text())


def run_preset(preset: str, seed: int) -> dict:
    """One timed command in its own folder; the figures of its metrics.json."""
    command = [sys.executable, *command_for(preset, seed)]
    seconds, metrics = timed_run(command)
    keys = ("status", "best_val_acc", "test_acc", "epochs", "train_acc", "val_acc", "data")
    shown = ["python", *(part.replace(str(REPO) + "/", "") for part in command[1:])]
    run = {"preset": preset, "seed": seed, "command": shlex.join(shown), "seconds": round(seconds, 1)}
    return run | {key: metrics[key] for key in keys if key in metrics} | {"provenance": provenance()}


def earlier_runs(record: dict, replaced: list[str]) -> list[dict]:
    """The runs of every preset not in `replaced`, each with its provenance (the file's, when it has none)."""
    runs = record["summary"]["runs"]
    return [{"provenance": record["provenance"]} | run for run in runs if run["preset"] not in replaced]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="PRESET", help="these presets only (default: all, and scratch)")
    parser.add_argument("--fashion", action="store_true", help="the best_*_fashion presets instead, on the real set")
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 0, 1], help="seeds of the best_* presets")
    parser.add_argument("--json", metavar="PATH", help="write the runs and their provenance here")
    parser.add_argument("--update", action="store_true", help="keep the other presets' runs already in --json")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    presets = args.only or (FASHION if args.fashion else [*NOTE, SCRATCH, *BEST])
    kept = []
    if args.update:
        if not (args.json and Path(args.json).is_file()):
            parser.error(f"--update needs --json naming an existing result file, got {args.json!r}")
        kept = earlier_runs(json.loads(Path(args.json).read_text()), presets)
    runs = []
    for preset in presets:
        for seed in args.seeds if preset in BEST + FASHION else [42 if preset != SCRATCH else 0]:
            run = run_preset(preset, seed)
            runs.append(run)
            accuracy = run.get("test_acc")
            print(f"{preset} seed {seed}: test acc {accuracy}, {run['seconds']} s", flush=True)
    if args.json:
        print(f"written: {write_result(args.json, {'runs': kept + runs})}")


if __name__ == "__main__":
    main()
