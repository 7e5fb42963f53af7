"""`hydra/launcher=fused` from the command line: the sweep's trials train as one set and each keeps its outcome."""

import csv
import json
from pathlib import Path

import pytest
from conftest import train

GRID = ["optimizer.lr=0.001,0.0003,20", "trainer.max_epochs=2", "watch.pictures=false"]


def rows(sweep_dir: Path) -> dict[str, dict]:
    with open(sweep_dir / "summary.csv") as handle:
        return {row["trial"]: row for row in csv.DictReader(handle)}


def test_a_fused_sweep_gives_every_trial_its_sequential_outcome(tmp_path):
    fused = train(tmp_path / "fused", "-m", "hydra/launcher=fused", *GRID)
    sequential = train(tmp_path / "sequential", "-m", *GRID)
    assert fused.returncode == sequential.returncode == 0, fused.stderr[-2000:]
    assert "fused set of 3 trials" in fused.stderr + fused.stdout
    [fused_dir] = (tmp_path / "fused" / "outputs" / "sweeps").glob("*")
    [sequential_dir] = (tmp_path / "sequential" / "outputs" / "sweeps").glob("*")
    fused_rows, sequential_rows = rows(fused_dir), rows(sequential_dir)
    assert fused_rows.keys() == sequential_rows.keys() == {"lr=0.001", "lr=0.0003", "lr=20"}
    for trial, row in fused_rows.items():
        alone = sequential_rows[trial]
        assert row["status"] == alone["status"] and row["diverged_step"] == alone["diverged_step"], trial
        if row["best_val_acc"]:
            assert float(row["best_val_acc"]) == pytest.approx(float(alone["best_val_acc"]), abs=0.005), trial
        metrics = json.loads((fused_dir / trial / "metrics.json").read_text())
        assert metrics["fused"]["trials"] == 3 and metrics["fused"]["with_others"] == 2
        assert (fused_dir / trial / ".hydra" / "config.yaml").is_file()
        assert list((fused_dir / trial / "tensorboard").glob("events.out.tfevents.*"))
    assert rows(fused_dir)["lr=20"]["status"] == "diverged"
    best_fused = (fused_dir / "best.yaml").read_text().splitlines()[2]
    assert best_fused == (sequential_dir / "best.yaml").read_text().splitlines()[2]  # `trial: lr=...`


def test_a_rerun_skips_finished_fused_trials_and_trains_the_rest(tmp_path):
    first = train(tmp_path, "-m", "hydra/launcher=fused", *GRID)
    assert first.returncode == 0
    [sweep_dir] = (tmp_path / "outputs" / "sweeps").glob("*")
    # As a kill in the middle of training leaves it: status running, no results yet.
    unfinished = sweep_dir / "lr=0.0003"
    (unfinished / "status.json").write_text(json.dumps({"status": "running"}))
    (unfinished / "metrics.json").unlink()
    rerun = train(tmp_path, "-m", "hydra/launcher=fused", *GRID)
    assert rerun.returncode == 0
    log = rerun.stderr + rerun.stdout
    assert "trial lr=0.001: already completed, skipped" in log and "lr=20: already diverged, skipped" in log
    assert "trial lr=0.0003 runs alone: no other trial shares its settings" in log
    assert rows(sweep_dir)["lr=0.0003"]["status"] == "completed"
    assert json.loads((unfinished / "metrics.json").read_text()).get("fused") is None  # it trained alone


def test_trials_that_cannot_fuse_run_alone_and_say_why(tmp_path):
    result = train(tmp_path, "-m", "hydra/launcher=fused", "optimizer=rmsprop", "optimizer.lr=0.0001,0.0002", *GRID[1:])
    assert result.returncode == 0, result.stderr[-2000:]
    log = result.stderr + result.stdout
    assert log.count("runs alone: optimizer=rmsprop does not fuse yet") == 2
    [sweep_dir] = (tmp_path / "outputs" / "sweeps").glob("*")
    assert {row["status"] for row in rows(sweep_dir).values()} == {"completed"}
