"""What the first command gives on the full Fashion-MNIST: `python train.py model=X data=fashion_mnist` at the
defaults (10 epochs) for each of the five models, and the note's quickstart, each run as a user runs it.

    python bench/fashion.py --json bench/results/fashion.json   # the six commands, one after another
    python bench/fashion.py --smoke --only cnn                  # a few batches: checks the table (a test runs it)

Each command runs in a fresh folder without ./data, so it reads the installed copy of Debian's package
(apt-get install -y dataset-fashion-mnist), as a student's first run does. bench/report.py turns the file
into docs/results.md.
"""

import argparse
import json
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from presets import timed_run  # noqa: E402  (a sibling script of bench/)

REPO = Path(__file__).resolve().parents[1]
INSTALLED = Path("/usr/share/datasets/fashion-mnist")
COMMANDS = {  # what the table calls it: the command's overrides
    **{model: [f"model={model}", "data=fashion_mnist"] for model in ("mlp", "cnn", "rnn", "lstm", "gru")},
    "quickstart": ["experiment=note_quickstart"],
}
SMOKE = ["trainer.max_epochs=1", "trainer.limit_train_batches=3", "trainer.limit_val_batches=2"]
SMOKE += ["trainer.limit_test_batches=2"]


def run_command(label: str, overrides: list[str]) -> dict:
    """One timed `python train.py OVERRIDES` in its own folder: the figures of its metrics.json."""
    seconds, metrics = timed_run([sys.executable, str(REPO / "train.py"), *overrides])
    figures = {key: metrics.get(key) for key in ("test_acc", "best_val_acc", "epochs", "status")}
    shown = shlex.join(["python", "train.py", *overrides])
    return {"label": label, "command": shown, "seconds": round(seconds, 1)} | figures


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a few batches per command: checks the table")
    parser.add_argument("--only", nargs="+", choices=list(COMMANDS), help="these commands only (default: all)")
    parser.add_argument("--json", metavar="PATH", help="write the figures and their provenance here")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if not any(INSTALLED.glob("train-images-idx3-ubyte*")):
        sys.exit(f"error: no Fashion-MNIST in {INSTALLED}: apt-get install -y dataset-fashion-mnist (as root)")
    runs = []
    for label in args.only or COMMANDS:
        overrides = COMMANDS[label]
        run = run_command(label, [*overrides, *(SMOKE if args.smoke else [])])
        runs.append(run)
        print(f"{run['command']}: test acc {run['test_acc']:.4f}, {run['epochs']} epochs, {run['seconds']} s")
    summary = {"mode": "smoke" if args.smoke else "full", "data": "fashion_mnist", "runs": runs}
    print(json.dumps(summary))
    if args.json:
        from provenance import write_result

        print(f"written: {write_result(args.json, summary)}")


if __name__ == "__main__":
    main()
