"""Shared helpers: run the real `python train.py` in a subprocess, in a temporary working directory."""

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# With `-n auto` pytest-xdist runs the suite on every core, one worker each: each worker's torch, and
# the `python train.py` it starts, takes its share of the cores, so that workers do not slow each other down.
if workers := int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0")):
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))

# Small-but-real runs: a couple of batches per epoch is enough to exercise the whole pipeline. The pictures
# (0.5-1 s a run to draw) are off here; test_watch.py and the smoke run in test_runs.py check them.
SMOKE = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=2", "watch.pictures=false"]


def started(run_dir: Path) -> int:
    config = run_dir / ".hydra" / "config.yaml"
    return (config if config.is_file() else run_dir).stat().st_mtime_ns


@dataclass
class TrainResult:
    returncode: int
    stdout: str
    stderr: str
    cwd: Path

    @property
    def run_dirs(self) -> list[Path]:
        """Oldest first, by when each run wrote its config (a run's name starts with what its command changed,
        so names do not sort by time)."""
        return sorted((self.cwd / "outputs" / "runs").glob("*"), key=started)

    @property
    def metrics(self) -> dict:
        assert self.returncode == 0, f"train.py failed:\n{self.stdout[-3000:]}\n{self.stderr[-3000:]}"
        return json.loads((self.run_dirs[-1] / "metrics.json").read_text())


def train(cwd: Path, *overrides: str, timeout: int = 600, env: dict | None = None) -> TrainResult:
    """`python train.py OVERRIDES` with outputs/ under cwd (env: the whole environment, default this one)."""
    cwd.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [sys.executable, str(REPO / "train.py"), *overrides],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    return TrainResult(done.returncode, done.stdout, done.stderr, cwd)


def compose_config(*overrides: str):
    """conf/ composed with overrides, as `python train.py OVERRIDES` would compose it (no Hydra job)."""
    return composed_with_choices(*overrides)[0]


def composed_with_choices(*overrides: str):
    """The composed config and the config-group choices (model=..., data=...) Hydra's job would record."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf, open_dict

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
    choices = OmegaConf.to_container(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, choices


def run_here(run_dir: Path, *overrides: str) -> dict:
    """What `python train.py OVERRIDES` runs, in this process: the config composed and checked as train.py
    does, the same preparation (a checkpoint's configuration adopted), then the same `experiments.run.run`.
    For tests of what an option does; it saves the imports a subprocess pays. The command line itself is
    driven by the tests that call `train`. Pictures are off unless the overrides turn them on."""
    from experiments.preflight import preflight
    from experiments.run import run

    overrides = ("watch.pictures=false", *overrides)  # 0.5-1 s a run to draw; tests of pictures turn them on
    cfg, choices = composed_with_choices(*overrides)
    return run(cfg, run_dir, preflight(cfg, list(overrides), choices))


def logged_scalars(run_dir: Path) -> dict[str, list[float]]:
    """Every scalar curve a run wrote to TensorBoard: tag -> values in step order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return {tag: [e.value for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


@pytest.fixture
def batch_probe():
    """tests/fixtures/batch_probe.py, importable as a callback target (`+callbacks.probe._target_=
    batch_probe.FirstBatch`) in this process; what it kept is cleared before each test."""
    sys.path.insert(0, str(REPO / "tests" / "fixtures"))
    import batch_probe as probe

    probe.FirstBatch.seen.clear()
    yield probe
    sys.path.remove(str(REPO / "tests" / "fixtures"))


@pytest.fixture(scope="session")
def dataset_root(tmp_path_factory) -> Path:
    """One folder holding tiny MNIST, FashionMNIST, CIFAR-10 and CIFAR-100 files in torchvision's formats."""
    from experiments.data.synthetic_files import WRITERS

    root = tmp_path_factory.mktemp("datasets")
    for write in WRITERS.values():
        write(root)
    return root


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on, for a real server a test starts."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """One real one-node SLURM cluster for the session (tests/slurm_cluster.py), stopped at its end. Where
    none can start, its tests skip with the reason; EXPERIMENTS_REQUIRE_SLURM=1 (.ci/run) fails them instead."""
    from slurm_cluster import Cluster, unavailable

    if reason := unavailable():
        if os.environ.get("EXPERIMENTS_REQUIRE_SLURM") == "1":
            pytest.fail(f"EXPERIMENTS_REQUIRE_SLURM=1 but {reason}")
        pytest.skip(reason)
    cluster = Cluster(tmp_path_factory.mktemp("slurm")).start()
    print(f"SLURM cluster up in {cluster.startup_seconds} s")
    yield cluster
    cluster.stop()
