"""What the from-scratch commands share with train.py: `data=...` overrides composed from conf/ and checked
by the same rules, the splits as NumPy arrays, one-line errors, and a run directory under
paths.output_root/runs/ (outputs/runs/ unless this machine's conf/local/ or paths.output_root=DIR says)."""

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from experiments.config.errors import UserError
from experiments.config.overrides import override_key
from experiments.config.paths import CONF_DIR

# data.* keys that mean nothing here: the note's net trains full batch on pixels / 255.
NOT_USED = {
    "data.batch_size": "the note's net trains full batch",
    "data.pipeline": "the arrays are read directly",
    "data.preprocess": "the note's net reads pixels / 255",
    "data.whiten_epsilon": "the note's net reads pixels / 255",
}


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line, `error: ...`, like train.py's, with exit status 2."""

    def error(self, message: str):
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def positive(kind):
    """An argparse type: `kind` (int or float) above zero, or a one-line error naming what is allowed."""

    noun = "an integer" if kind is int else "a number"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        if not (value > 0 and math.isfinite(value)):  # also refuses nan and inf
            raise argparse.ArgumentTypeError(f"{text} is not allowed: it must be {noun} > 0")
        return value

    return parse


TAKEN = ("data", "paths.data_root", "paths.output_root")  # data=NAME, data.KEY=VALUE and where files are


def compose_data_config(overrides: list[str]):
    """conf/ composed with `data=NAME`, `data.KEY=VALUE` and `paths.*` overrides, checked as train.py
    checks them."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    from experiments.preflight import describe_hydra_error, preflight

    for override in overrides:
        key = override_key(override)
        if "=" not in override or not (key in TAKEN or key.startswith("data.")):
            raise UserError(
                f"{override}: these commands take data=NAME, data.KEY=VALUE, paths.data_root=DIR and "
                "paths.output_root=DIR; see --help for the rest"
            )
        if key in NOT_USED:
            raise UserError(f"{key} is not used here: {NOT_USED[key]}")
    if not CONF_DIR.is_dir():
        raise UserError(f"no conf/ folder at {CONF_DIR}: run from a clone of the project (pip install -e .)")
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose("config", overrides=list(overrides))
    except HydraException as err:
        raise UserError(describe_hydra_error(err, CONF_DIR)) from None
    preflight(cfg, overrides)
    return cfg


def load_arrays(overrides: list[str]) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[str], str, Path]:
    """The chosen dataset's train/val/test splits as uint8 (N, C, H, W) arrays and int64 labels, read
    through the framework's own datamodule; plus the class names, the dataset's name and paths.output_root."""
    cfg = compose_data_config(overrides)  # bad input is refused before torch and Lightning load (4 s)
    from experiments.run import build_data

    datamodule = build_data(cfg)
    splits = {name: (images.numpy(), labels.numpy()) for name, (images, labels) in datamodule.splits.items()}
    return splits, list(datamodule.class_names), datamodule.name, Path(cfg.paths.output_root)


def new_run_dir(output_root: Path, label: str, data: str) -> Path:
    """OUTPUT_ROOT/runs/<time>_<label>_<data>_p<pid>, named as train.py names its runs."""
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    run_dir = output_root / "runs" / f"{stamp}_{label}_{data}_p{os.getpid()}"
    run_dir.mkdir(parents=True)
    return run_dir


def run_command(main, argv: list[str] | None) -> int:
    """Run a command's main; a UserError becomes `error: ...` on stderr and exit status 2."""
    try:
        return main(argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
