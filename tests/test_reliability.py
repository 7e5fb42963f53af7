"""What a user can trust with hours of work: checkpoints that survive crashes, a diverged run that keeps
only what it reached before it exploded, and runs that resume in place."""

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import REPO, logged_scalars, run_here, train

from experiments.checkpoints.atomic_io import AtomicCheckpointIO
from experiments.records.tracking.publish import FINAL_METRICS

# SGD at lr 0.8 on the sample validates once (epoch 1 of 3) and explodes at step 23, in epoch 2.
EXPLODES_IN_EPOCH_2 = [
    "optimizer=sgd",
    "optimizer.lr=0.8",
    "trainer.max_epochs=3",
    "trainer.limit_train_batches=20",
    "trainer.limit_val_batches=2",
    "watch.update_ratio_every=null",
]


def test_a_diverged_run_keeps_what_it_reached_before_it_exploded(tmp_path):
    metrics = run_here(tmp_path, *EXPLODES_IN_EPOCH_2)
    assert metrics["status"] == "diverged" and metrics["diverged_step"] == 23
    assert metrics["test_acc"] is None  # a diverged run is not tested
    # ... but declares the HParams tab's test columns all the same (NaN), so every run has the same columns
    assert math.isnan(logged_scalars(tmp_path)["test/final_acc"][0])
    # validated once, before the explosion: the exploded weights were never validated
    assert len(logged_scalars(tmp_path)["val/acc"]) == 1
    assert metrics["best_val_acc"] == logged_scalars(tmp_path)["val/acc"][0]
    checkpoints = tmp_path / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == [
        f"best-epoch00-val_acc{metrics['best_val_acc']:.4f}.ckpt",
        "last.ckpt",
    ]
    last = torch.load(checkpoints / "last.ckpt", weights_only=True)
    assert last["epoch"] == 0 and last["global_step"] == 20  # the last good epoch, not step 23
    assert all(bool(torch.isfinite(value).all()) for value in last["state_dict"].values() if value.is_floating_point())


def test_a_run_that_explodes_before_validating_has_no_checkpoint_and_no_best(tmp_path):
    metrics = run_here(tmp_path, "optimizer.lr=20", "trainer.max_epochs=2")
    assert metrics["status"] == "diverged" and metrics["best_val_acc"] is None
    assert metrics["best_checkpoint"] is None and not (tmp_path / "checkpoints").exists()


def test_a_checkpoint_is_written_beside_its_name_and_renamed_over_it(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"step": 1}, path)
    seen = []
    real_save = torch.save

    def watching_save(obj, file):  # what is on disk while the new checkpoint is being written
        seen.append(sorted(p.name for p in path.parent.iterdir()))
        seen.append(torch.load(path, weights_only=True))
        real_save(obj, file)

    monkeypatch.setattr(torch, "save", watching_save)
    AtomicCheckpointIO().save_checkpoint({"step": 2}, path)
    assert seen == [["last.ckpt", "last.ckpt.partial"], {"step": 1}]  # the old one stays whole meanwhile
    assert torch.load(path, weights_only=True) == {"step": 2} and sorted(p.name for p in path.parent.iterdir()) == [
        "last.ckpt"
    ]


# --- resume in place after a kill -------------------------------------------------------------------

LAST = Path("checkpoints") / "last.ckpt"
FOUR_EPOCHS = ["trainer.max_epochs=4", "trainer.limit_train_batches=20", "trainer.limit_val_batches=4"]
# Where two runs of the same training differ: their times, folders and the command that made each (provenance)
TIMINGS = {"wall_seconds", "train_epoch_seconds", "epoch_seconds", "run_dir", "best_checkpoint", "provenance"}


def start(run_dir, *overrides: str) -> subprocess.Popen:
    command = [sys.executable, str(REPO / "train.py"), *overrides, f"hydra.run.dir={run_dir}"]
    # its own process group: a DDP run's other ranks can be killed with it (os.killpg)
    return subprocess.Popen(
        command, cwd=run_dir.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )


def wait_for(process: subprocess.Popen, condition, what: str) -> None:
    """Poll every millisecond until `condition()` holds; fail if the run ends first."""
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the run ended before {what}:\n{process.stdout.read()[-2000:]}")
        time.sleep(0.001)


def checkpoint_writes(last: Path):
    """A condition factory: true once last.ckpt has been (re)written `count` times."""
    seen = set()

    def written(count: int) -> bool:
        with contextlib.suppress(FileNotFoundError):
            seen.add(last.stat().st_mtime_ns)
        return len(seen) >= count

    return written


def assert_same_as_unbroken(resumed_dir, unbroken_dir, unbroken: dict) -> None:
    """metrics.json apart from timings and paths, the final weights, and every TensorBoard curve step by step."""
    resumed = json.loads((resumed_dir / "metrics.json").read_text())
    assert {k: v for k, v in resumed.items() if k not in TIMINGS} == {
        k: v for k, v in unbroken.items() if k not in TIMINGS
    }
    assert Path(resumed["best_checkpoint"]).name == Path(unbroken["best_checkpoint"]).name
    assert Path(resumed["best_checkpoint"]).name.startswith(f"best-epoch{resumed['best_epoch']:02d}-")
    assert len(resumed["train_epoch_seconds"]) == 4  # the epochs before the kill are reported too
    weights = [
        torch.load(d / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
        for d in (resumed_dir, unbroken_dir)
    ]
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[1])
    assert logged_scalars(resumed_dir) == logged_scalars(unbroken_dir)  # no step twice, none missing
    assert sorted(p.name for p in (resumed_dir / "checkpoints").iterdir()) == sorted(
        p.name for p in (unbroken_dir / "checkpoints").iterdir()
    )


@pytest.fixture(scope="module")
def unbroken_four_epochs(tmp_path_factory) -> tuple[Path, dict]:
    """The unbroken run two tests compare their resumed runs with (read only)."""
    run_dir = tmp_path_factory.mktemp("unbroken")
    return run_dir, run_here(run_dir, *FOUR_EPOCHS)


@pytest.fixture
def stop_handlers():
    """train.py's Ctrl-C and SIGTERM handlers, in this process for one test, then the previous ones back."""
    from experiments.training.callbacks.interrupt import StopRequest, install_stop_handlers

    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)}
    install_stop_handlers()
    yield
    StopRequest.received = None
    for number, handler in previous.items():
        signal.signal(number, handler)


def test_sigterm_mid_epoch_then_resume_trains_each_batch_once(tmp_path, unbroken_four_epochs, stop_handlers):
    """The quick twin of the SIGTERM test below, in this process: stopped at batch 7 of epoch 2, resumed, the
    run takes every batch once, in the unbroken order: the unbroken run's figures, weights and step curve."""
    from experiments.training.callbacks.interrupt import StopRequest

    run_dir = tmp_path / "stopped"
    at_batch_7 = [
        "+callbacks.stop._target_=signal_at.SignalAtBatch",
        "+callbacks.stop.epoch=1",
        "+callbacks.stop.batch=7",
        "+callbacks.stop.name=SIGTERM",
    ]
    sys.path.insert(0, str(REPO / "tests" / "fixtures"))
    try:
        stopped = run_here(run_dir, *FOUR_EPOCHS, *at_batch_7)
    finally:
        sys.path.remove(str(REPO / "tests" / "fixtures"))
    assert stopped["status"] == "interrupted"
    assert torch.load(run_dir / LAST, weights_only=True)["global_step"] == 28
    StopRequest.received = None
    # what `resume=RUN` expands to (checkpoints/resume.py), less the signal
    resumed = run_here(run_dir, *FOUR_EPOCHS, f"resume={run_dir}", f"ckpt_path={run_dir / LAST}")
    assert resumed["status"] == "completed" and resumed["loss_curve"]["evidence"]["steps"] == 80
    unbroken_dir, unbroken = unbroken_four_epochs
    assert {k: v for k, v in resumed.items() if k not in TIMINGS} == {
        k: v for k, v in unbroken.items() if k not in TIMINGS
    }
    weights = [torch.load(d / LAST, weights_only=True)["state_dict"] for d in (run_dir, unbroken_dir)]
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[1])
    # the step curve, point by point (the split epoch's own epoch figures cover its resumed part only)
    assert logged_scalars(run_dir)["train/loss"] == logged_scalars(unbroken_dir)["train/loss"]


@pytest.mark.slow
def test_a_run_killed_in_epoch_3_resumes_in_place_to_the_unbroken_result(tmp_path, unbroken_four_epochs):
    unbroken_dir, unbroken = unbroken_four_epochs
    run_dir = tmp_path / "killed"
    run_dir.mkdir()
    process = start(run_dir, *FOUR_EPOCHS, "watch.pictures=false")
    wait_for(process, lambda: (run_dir / "checkpoints" / "last.ckpt").exists(), "its first checkpoint")
    written = checkpoint_writes(run_dir / "checkpoints" / "last.ckpt")
    wait_for(process, lambda: written(2), "the end of epoch 2")  # now in epoch 3 of 4
    process.kill()
    process.wait()
    assert not (run_dir / "metrics.json").exists()
    resumed = train(tmp_path, f"resume={run_dir}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert_same_as_unbroken(run_dir, unbroken_dir, unbroken)


@pytest.mark.slow
def test_a_run_killed_while_writing_a_checkpoint_keeps_the_previous_one_and_resumes(tmp_path):
    # A wide network, so that writing its checkpoint takes long enough to be caught in the middle.
    wide = [*FOUR_EPOCHS, "model.hidden_sizes=[2048,2048]", "trainer.limit_train_batches=5"]
    unbroken = run_here(tmp_path / "unbroken", *wide)
    run_dir = tmp_path / "killed"
    run_dir.mkdir()
    process = start(run_dir, *wide, "watch.pictures=false")
    written = checkpoint_writes(run_dir / "checkpoints" / "last.ckpt")
    wait_for(process, lambda: written(2), "the end of epoch 2")
    wait_for(process, lambda: any((run_dir / "checkpoints").glob("*.partial")), "a checkpoint was being written")
    process.kill()
    process.wait()
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)  # whole, and the previous one
    assert last["epoch"] in (1, 2)
    resumed = train(tmp_path, f"resume={run_dir}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert not list((run_dir / "checkpoints").glob("*.partial"))
    assert_same_as_unbroken(run_dir, tmp_path / "unbroken", unbroken)


@pytest.mark.slow
def test_a_stop_at_an_epochs_last_step_keeps_that_epochs_validation_and_timing(tmp_path, unbroken_four_epochs):
    """Ctrl-C just before the last batch of epoch 2: resumed from that step, Lightning would skip the epoch's
    validation and end; the run finishes the epoch first, and the resumed run matches the unbroken one."""
    run_dir = tmp_path / "stopped"
    last_step_of_epoch_2 = ["+callbacks.stop._target_=signal_at.SignalAtBatch", "+callbacks.stop.epoch=1"]
    last_step_of_epoch_2 += ["+callbacks.stop.batch=19"]  # FOUR_EPOCHS trains 20 batches an epoch
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests" / "fixtures")}
    stopped = train(tmp_path, *FOUR_EPOCHS, *last_step_of_epoch_2, f"hydra.run.dir={run_dir}", env=env)
    assert stopped.returncode == 128 + signal.SIGINT, stopped.stderr[-2000:]
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 40
    resumed = train(tmp_path, f"resume={run_dir}", env=env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    unbroken_dir, unbroken = unbroken_four_epochs
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {k: v for k, v in metrics.items() if k not in TIMINGS} == {
        k: v for k, v in unbroken.items() if k not in TIMINGS
    }
    assert len(metrics["epoch_seconds"]) == len(metrics["train_epoch_seconds"]) == 4
    # every curve step by step; the HParams tab also holds the interrupted part's own row
    curves = [
        {k: v for k, v in logged_scalars(d).items() if k not in FINAL_METRICS.values()} for d in (run_dir, unbroken_dir)
    ]
    assert curves[0] == curves[1] and len(curves[0]["val/acc"]) == 4


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_records_interrupted_and_the_run_resumes(tmp_path, unbroken_four_epochs):
    # SIGINT (Ctrl-C) takes the same path: test_sweeps.py interrupts a sweep with it.
    stop_signal = signal.SIGTERM
    run_dir = tmp_path / "stopped"
    run_dir.mkdir()
    process = start(run_dir, *FOUR_EPOCHS, "watch.pictures=false")
    wait_for(process, lambda: (run_dir / "checkpoints" / "last.ckpt").exists(), "its first checkpoint")
    process.send_signal(stop_signal)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 128 + stop_signal, output[-2000:]
    assert f"python train.py resume={run_dir}" in output and "Traceback" not in output
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["test_acc"] is None
    stopped_at = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    assert 20 <= stopped_at < 80  # saved at the step it stopped, in epoch 2 or 3
    resumed = train(tmp_path, f"resume={run_dir}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs"] == 4 and metrics["test_acc"] > 0.5
    assert metrics["loss_curve"]["evidence"]["steps"] == 80  # every step of the 4 epochs, before and after
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 80
    # Stopped in the middle of an epoch, it went on at the next batch of the same order: the unbroken run's
    # metrics.json and final weights. (The split epoch's TensorBoard epoch figures cover its resumed part.)
    unbroken_dir, unbroken = unbroken_four_epochs
    assert {k: v for k, v in metrics.items() if k not in TIMINGS} == {
        k: v for k, v in unbroken.items() if k not in TIMINGS
    }
    weights = [
        torch.load(d / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"] for d in (run_dir, unbroken_dir)
    ]
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[1])
