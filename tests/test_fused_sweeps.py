"""`hydra/launcher=fused` from the command line: the sweep's trials train as one set and each keeps its outcome."""

import csv
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO, train

from experiments.checkpoints.resume import expand_resume
from experiments.config.errors import UserError

GRID = ["optimizer.lr=0.001,0.0003,20", "trainer.max_epochs=2", "watch.pictures=false", "model.hidden_sizes=[64]"]
GRID += ["trainer.limit_train_batches=20", "trainer.limit_test_batches=2"]  # the path is what is tested


def rows(sweep_dir: Path) -> dict[str, dict]:
    with open(sweep_dir / "summary.csv") as handle:
        return {row["trial"]: row for row in csv.DictReader(handle)}


@pytest.mark.slow
def test_a_fused_sweep_gives_every_trial_a_trials_outputs_and_reruns_what_a_kill_left(tmp_path):
    """From the command line. That each trial's outcome is its lone run's is tested in process
    (test_fused_training.py) and, sweep against sweep, by the sweep benchmark's smoke test (test_bench.py)."""
    fused = train(tmp_path / "fused", "-m", "hydra/launcher=fused", *GRID)
    assert fused.returncode == 0, fused.stderr[-2000:]
    assert "fused set of 3 trials" in fused.stderr + fused.stdout
    [fused_dir] = (tmp_path / "fused" / "outputs" / "sweeps").glob("*")
    fused_rows = rows(fused_dir)
    assert fused_rows.keys() == {"lr=0.001", "lr=0.0003", "lr=20"}
    for trial in fused_rows:
        metrics = json.loads((fused_dir / trial / "metrics.json").read_text())
        assert metrics["fused"]["trials"] == 3 and metrics["fused"]["with_others"] == 2
        assert (fused_dir / trial / ".hydra" / "config.yaml").is_file()
        assert list((fused_dir / trial / "tensorboard").glob("events.out.tfevents.*"))
        # as a lone run's: none for the trial that diverged before its first epoch ended
        assert (fused_dir / trial / "checkpoints" / "last.ckpt").is_file() == (trial != "lr=20")
    assert fused_rows["lr=20"]["status"] == "diverged" and fused_rows["lr=20"]["diverged_step"]
    best = max((row for row in fused_rows.values() if row["best_val_acc"]), key=lambda row: float(row["best_val_acc"]))
    best_yaml = (fused_dir / "best.yaml").read_text()
    assert yaml.safe_load(best_yaml)["trial"] == best["trial"]
    assert "# It trained in a fused set: the sweep's command with a new sweep_name= gives" in best_yaml

    # A rerun after a kill in the middle of a set (status running, no results yet): finished trials are
    # skipped, the unfinished one trains, alone since no other trial is left to share a set with it.
    sweep_dir, unfinished = fused_dir, fused_dir / "lr=0.0003"
    (unfinished / "status.json").write_text(json.dumps({"status": "running"}))
    (unfinished / "metrics.json").unlink()
    shutil.rmtree(unfinished / "checkpoints")  # a set writes its trials' checkpoints after it trained
    rerun = train(tmp_path / "fused", "-m", "hydra/launcher=fused", *GRID)
    assert rerun.returncode == 0
    log = rerun.stderr + rerun.stdout
    assert "trial lr=0.001: already completed, skipped" in log and "lr=20: already diverged, skipped" in log
    assert "2 of 3 trials of sweep" in log and "add sweep_name=NEW_NAME" in log  # nothing hides the skip
    assert "trial lr=0.0003 runs alone: no other trial shares its settings" in log
    assert rows(sweep_dir)["lr=0.0003"]["status"] == "completed"
    assert json.loads((unfinished / "metrics.json").read_text()).get("fused") is None  # it trained alone


@pytest.mark.slow
def test_trials_that_cannot_fuse_run_alone_and_say_why(tmp_path):
    lstm = ["model=lstm", "model.hidden_size=16", "trainer.max_epochs=1", "watch.pictures=false"]
    result = train(tmp_path, "-m", "hydra/launcher=fused", "optimizer.lr=0.0001,0.0002", *lstm)
    assert result.returncode == 0, result.stderr[-2000:]
    log = result.stderr + result.stdout
    assert log.count("runs alone: model=lstm does not fuse: torch.func has no batching rule") == 2
    [sweep_dir] = (tmp_path / "outputs" / "sweeps").glob("*")
    assert {row["status"] for row in rows(sweep_dir).values()} == {"completed"}


@pytest.mark.slow
def test_a_fused_sweep_killed_between_its_sets_resumes_and_completes(tmp_path):
    # max_trials=2: three trials train as a set of two, then the third alone; the kill lands after the set.
    overrides = ["-m", "hydra/launcher=fused", "hydra.launcher.max_trials=2", "optimizer.lr=0.001,0.002,0.003"]
    overrides += ["trainer.max_epochs=3", "data.batch_size=16", "trainer.limit_val_batches=2", "test=false"]
    command = [sys.executable, str(REPO / "train.py"), *overrides, "watch.pictures=false", "model.hidden_sizes=[64]"]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, killed = time.monotonic() + 300, False
    try:
        while time.monotonic() < deadline and not killed and process.poll() is None:
            time.sleep(0.05)
            statuses = [json.loads(p.read_text())["status"] for p in tmp_path.glob("outputs/sweeps/*/*/status.json")]
            if statuses.count("completed") == 2 and "running" in statuses:
                process.send_signal(signal.SIGKILL)
                killed = True
    finally:
        process.kill()
        process.wait()
    assert killed, "the sweep never had its fused set finished and its last trial running at once"
    [sweep_dir] = (tmp_path / "outputs" / "sweeps").glob("*")
    rerun = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    log = rerun.stdout + rerun.stderr
    assert log.count("already completed, skipped") == 2
    assert {row["status"] for row in rows(sweep_dir).values()} == {"completed"} and len(rows(sweep_dir)) == 3


@pytest.mark.slow
def test_ctrl_c_stops_a_fused_set_and_still_writes_the_partial_summary(tmp_path):
    command = [sys.executable, str(REPO / "train.py"), "-m", "hydra/launcher=fused", "optimizer.lr=0.001,0.002"]
    command += ["trainer.max_epochs=4", "data.batch_size=16", "trainer.limit_val_batches=2", "test=false"]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # both trials training, with a checkpoint of their first epoch
        if len(list(tmp_path.glob("outputs/sweeps/*/*/checkpoints/last.ckpt"))) == 2:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130
    [sweep_dir] = (tmp_path / "outputs" / "sweeps").glob("*")
    assert {row["status"] for row in rows(sweep_dir).values()} == {"interrupted"}, output[-2000:]
    assert "Traceback" not in output and "rerun the same command" in output
    # each trial's checkpoints are written as the set trains: a trial resumes alone from its last epoch
    first, second = (sweep_dir / trial for trial in rows(sweep_dir))
    assert f"ckpt_path='{first / 'checkpoints' / 'last.ckpt'}'" in expand_resume([f"resume={first}"])
    (second / "checkpoints" / "last.ckpt").unlink()
    with pytest.raises(UserError, match="is a trial of a fused set that stopped before its first epoch ended"):
        expand_resume([f"resume={second}"])
    # and the sweep's command resumes the one with a checkpoint, trains the other again, and completes both
    rerun = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert {row["status"] for row in rows(sweep_dir).values()} == {"completed"}
    assert f"trial {first.name}: resuming from" in rerun.stdout + rerun.stderr
    assert f"trial {second.name}: resuming from" not in rerun.stdout + rerun.stderr
    assert json.loads((first / "metrics.json").read_text())["epochs"] == 4


@pytest.mark.slow
def test_optuna_batches_of_n_jobs_suggestions_train_as_fused_sets(tmp_path):
    optuna = ["sweep=optuna", "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=2", "trainer.max_epochs=1", *GRID[3:]]
    result = train(tmp_path, "-m", "hydra/launcher=fused", *optuna, "watch.pictures=false")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (result.stdout + result.stderr).count("fused set of 2 trials") == 2
    [sweep_dir] = (tmp_path / "outputs" / "sweeps").glob("*")
    statuses = [row["status"] for row in rows(sweep_dir).values()]
    assert len(statuses) == 4 and set(statuses) <= {"completed", "diverged"}
