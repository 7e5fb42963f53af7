"""Shared helpers: run the real `python train.py` in a subprocess, in a temporary working directory."""

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Small-but-real runs: a couple of batches per epoch is enough to exercise the whole pipeline.
SMOKE = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=2"]


@dataclass
class TrainResult:
    returncode: int
    stdout: str
    stderr: str
    cwd: Path

    @property
    def run_dirs(self) -> list[Path]:
        return sorted((self.cwd / "outputs" / "runs").glob("*"))

    @property
    def metrics(self) -> dict:
        assert self.returncode == 0, f"train.py failed:\n{self.stdout[-3000:]}\n{self.stderr[-3000:]}"
        return json.loads((self.run_dirs[-1] / "metrics.json").read_text())


def train(cwd: Path, *overrides: str, timeout: int = 600) -> TrainResult:
    """`python train.py OVERRIDES` with outputs/ under cwd."""
    cwd.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [sys.executable, str(REPO / "train.py"), *overrides],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return TrainResult(done.returncode, done.stdout, done.stderr, cwd)


@pytest.fixture(scope="session")
def dataset_root(tmp_path_factory) -> Path:
    """One folder holding tiny MNIST, FashionMNIST, CIFAR-10 and CIFAR-100 files in torchvision's formats."""
    from experiments.data.synthetic_files import WRITERS

    root = tmp_path_factory.mktemp("datasets")
    for write in WRITERS.values():
        write(root)
    return root
