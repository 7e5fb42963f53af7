"""`python -m experiments.scratch [data=NAME] [data.KEY=VALUE ...] [--hidden H] [--lr LR] [--iterations N]
[--init uniform|he] [--seed S]`

The note's NumPy net ("Implementation of Neural Net in Python"): 784-10-10, ReLU and softmax, weights and
biases uniform(-1, 1), full-batch gradient descent at lr 0.1 for 500 iterations, the training accuracy
printed every 10 iterations. Any dataset train.py loads works, flattened; the default is the embedded sample.
Writes metrics.json and a TensorBoard run under outputs/runs/ (paths.output_root), next to train.py's runs.
"""

import json
import sys
import time

import numpy as np

from experiments.scratch import network
from experiments.scratch.command_line import OneLineParser, load_arrays, new_run_dir, positive, run_command

NOTE_ACCURACY = 0.77  # the note's final training accuracy, on all 60,000 MNIST training digits


def parse_args(argv: list[str] | None):
    parser = OneLineParser(prog="python -m experiments.scratch", description=__doc__.split("\n\n")[1])
    parser.add_argument("overrides", nargs="*", help="data=NAME, data.KEY=VALUE and paths.*=DIR, as for train.py")
    parser.add_argument("--hidden", type=positive(int), default=10, help="hidden units (the note: 10)")
    parser.add_argument("--lr", type=positive(float), default=0.1, help="gradient-descent step size (the note: 0.1)")
    parser.add_argument("--iterations", type=positive(int), default=500, help="full-batch steps (the note: 500)")
    parser.add_argument("--init", choices=network.INITS, default="uniform", help="uniform(-1, 1) as the note, or he")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial weights (default 0)")
    parser.add_argument("--every", type=positive(int), default=10, help="iterations between printed readings")
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error(f"argument --seed: {args.seed} is not allowed: it must be an integer >= 0")
    return args


def columns(images: np.ndarray) -> np.ndarray:
    """uint8 (N, C, H, W) -> float64 (C*H*W, N) in [0, 1]: one flattened image per column, as the note lays out X."""
    return images.reshape(len(images), -1).T / 255.0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    splits, class_names, data_name, output_root = load_arrays(args.overrides)
    arrays = {name: (columns(images), labels) for name, (images, labels) in splits.items()}
    X, labels = arrays["train"]
    features, classes = X.shape[0], len(class_names)
    shape = f"{features}-{args.hidden}-{classes}"
    init = "uniform(-1, 1)" if args.init == "uniform" else "He normal"
    print(
        f"scratch MLP {shape} (ReLU, softmax) on {data_name}: {init} init, full batch of {labels.size}, "
        f"lr {args.lr}, {args.iterations} iterations, seed {args.seed}"
    )
    run_dir = new_run_dir(output_root, "scratch_mlp", data_name)
    from torch.utils.tensorboard import SummaryWriter  # only for the event file; the net itself is NumPy

    # The same tags as train.py's runs, so both curves share a chart in one TensorBoard.
    writer = SummaryWriter(str(run_dir / "tensorboard"))

    def report(reading: network.Reading, params: network.Params) -> None:
        val_acc = network.accuracy(network.predict(params, arrays["val"][0]), arrays["val"][1])
        print(
            f"iteration {reading.iteration:5d}   train acc {reading.train_acc:.4f}   "
            f"loss {reading.train_loss:.4f}   val acc {val_acc:.4f}"
        )
        for tag, value in (("train/acc", reading.train_acc), ("train/loss", reading.train_loss), ("val/acc", val_acc)):
            writer.add_scalar(tag, value, reading.iteration)

    started = time.perf_counter()
    params = network.initialize(features, args.hidden, classes, args.init, np.random.default_rng(args.seed))
    params, readings = network.gradient_descent(params, X, labels, args.lr, args.iterations, args.every, report)
    seconds = time.perf_counter() - started
    final = {
        f"{name}_acc": network.accuracy(network.predict(params, split_X), split_labels)
        for name, (split_X, split_labels) in arrays.items()
    }
    writer.add_scalar("test/acc", final["test_acc"], args.iterations)
    writer.close()
    metrics = {
        "status": "completed",
        "network": shape,
        "data": data_name,
        "settings": {key: getattr(args, key) for key in ("hidden", "lr", "iterations", "init", "seed")},
        **final,
        "note_train_acc": NOTE_ACCURACY,
        "curve": [vars(reading) for reading in readings],
        "seconds": round(seconds, 3),
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(
        f"final: train acc {final['train_acc']:.4f}   val acc {final['val_acc']:.4f}   test acc "
        f"{final['test_acc']:.4f}   in {seconds:.1f} s   "
        f"(the note: {NOTE_ACCURACY:.0%} train acc on 60,000 MNIST digits)"
    )
    print(f"run directory: {run_dir}   (tensorboard --logdir {output_root / 'runs'})")
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main, None))
