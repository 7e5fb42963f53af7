"""Sweeps through the real `python train.py -m`: layout, summary, divergence, failure, bad input, resume and
the joblib launcher (the Optuna preset: test_optuna_sweeps.py)."""

import csv
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import REPO, train
from documented import documented
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from experiments.config.errors import UserError
from experiments.sweeps.logspace import expand_logspace

QUICK = [
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=8",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "watch.pictures=false",  # 0.5-1 s a trial to draw; test_watch.py checks them
]


def sweep_dirs(cwd: Path) -> list[Path]:
    return sorted((cwd / "outputs" / "sweeps").glob("*"))


def summary_rows(sweep_dir: Path) -> list[dict]:
    with open(sweep_dir / "summary.csv") as handle:
        return list(csv.DictReader(handle))


def status(trial_dir: Path) -> dict:
    return json.loads((trial_dir / "status.json").read_text())


def test_logspace_expands_to_log_spaced_values_and_refuses_empty_ranges():
    assert expand_logspace(["optimizer.lr=logspace(1e-4,1e-1)", "model=cnn"]) == [
        "optimizer.lr=0.0001,0.001,0.01,0.1",
        "model=cnn",
    ]
    assert expand_logspace(["x=logspace(1e-3,1,7)"]) == ["x=0.001,0.00316,0.01,0.0316,0.1,0.316,1"]
    for bad in ("x=logspace(1e-3,1,0)", "x=logspace(0,1)", "x=logspace(1e-3,5e-1)", "x=logspace(a,b)"):
        with pytest.raises(UserError, match="x=logspace"):
            expand_logspace([bad])


@pytest.mark.slow
def test_grid_sweep_writes_trials_summary_heatmap_and_best(tmp_path):
    result = train(
        tmp_path, "-m", "optimizer.lr=0.001,0.003", "regularization.weight_decay=logspace(1e-5,1e-4)", *QUICK
    )
    assert result.returncode == 0, result.stderr[-2000:]
    [sweep_dir] = sweep_dirs(tmp_path)
    assert sweep_dir.name.startswith("grid-lr_wd-max_epochs=2")
    assert f"sweep folder: {sweep_dir}" in result.stdout + result.stderr  # printed before the first trial
    names = {"lr=0.001,wd=1e-05", "lr=0.001,wd=0.0001", "lr=0.003,wd=1e-05", "lr=0.003,wd=0.0001"}
    assert {p.name for p in sweep_dir.iterdir() if p.is_dir()} == names
    for name in names:
        trial = sweep_dir / name
        assert status(trial)["status"] == "completed"
        assert (trial / "checkpoints" / "last.ckpt").is_file() and (trial / "metrics.json").is_file()
        events = EventAccumulator(str(trial / "tensorboard"))
        events.Reload()
        assert "_hparams_/session_start_info" in events.PluginTagToContent("hparams")

    rows = summary_rows(sweep_dir)
    assert {row["trial"] for row in rows} == names and all(row["status"] == "completed" for row in rows)
    accuracies = [float(row["best_val_acc"]) for row in rows]
    assert accuracies == sorted(accuracies, reverse=True)
    assert all(float(row["final_train_loss"]) > 0 and float(row["seconds"]) > 0 for row in rows)
    assert "| trial | optimizer.lr | regularization.weight_decay | status |" in (sweep_dir / "summary.md").read_text()
    with Image.open(sweep_dir / "heatmap.png") as picture:
        assert picture.width > 400 and picture.height > 200
    best = yaml.safe_load((sweep_dir / "best.yaml").read_text())
    assert best["trial"] == rows[0]["trial"] and best["best_val_acc"] == pytest.approx(accuracies[0])
    assert f"optimizer.lr={rows[0]['optimizer.lr']}" in best["overrides"]
    assert "best val acc" in result.stdout  # the table printed at the end
    assert yaml.safe_load((sweep_dir / "multirun.yaml").read_text())["trainer"]["max_epochs"] == 2
    plan = json.loads((sweep_dir / "sweep.json").read_text())  # the sweep names its code and its command
    typed = shlex.join(["-m", "optimizer.lr=0.001,0.003", "regularization.weight_decay=logspace(1e-5,1e-4)", *QUICK])
    assert plan["provenance"]["command"].endswith(typed)  # as typed, before logspace( ) is expanded
    assert "torch" in plan["provenance"]["versions"] and "commit" in plan["provenance"]
    # TensorBoard's HParams tab shows the first five columns it is given: both swept keys are among them
    shown = hparams_columns_shown(sweep_dir)
    assert {"lr", "weight_decay"} <= set(shown[:5]) and shown[:2] == ["lr", "weight_decay"]


def hparams_columns_shown(logdir: Path) -> list[str]:
    """The HParams columns a real TensorBoard server lists for `logdir`, in its order (its page shows
    differing columns first, then the first five), asked over HTTP on 127.0.0.1."""
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1"]
    server = subprocess.Popen([*command, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/data/plugin/hparams/experiment",
        data=json.dumps({"experimentName": "", "hparamsLimit": 1000}).encode(),
        headers={"Content-Type": "application/json"},
    )
    infos = []
    try:
        for _ in range(600):
            try:
                with urllib.request.urlopen(request, timeout=5) as answer:
                    infos = json.load(answer)["hparamInfos"]
                if infos:
                    break
            except OSError:  # not listening yet, or still reading the event files
                pass
            time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return [info["name"] for info in sorted(infos, key=lambda info: not info.get("differs", False))]


@pytest.mark.slow
def test_a_diverging_and_a_failing_trial_are_recorded_and_the_other_trials_run(tmp_path):
    from experiments.data.synthetic_files import write_mnist_family

    good, empty = tmp_path / "with_mnist", tmp_path / "empty"
    write_mnist_family(good)
    empty.mkdir()  # no files: those trials raise when they load their data
    grid = ["data=mnist", "data.download=false", f"data.root={good},{empty}", "optimizer=sgd", "optimizer.lr=0.01,20"]
    result = train(tmp_path, "-m", *grid, *QUICK)
    assert result.returncode == 1  # for the failures; a diverged trial is not one
    assert result.stderr.strip().splitlines()[-1].startswith("error: 2 of 4 trials failed")
    [sweep_dir] = sweep_dirs(tmp_path)
    trial = {
        (root, lr): sweep_dir / f"root={str(root).replace('/', '_')},lr={lr}"
        for root in (good, empty)
        for lr in (0.01, 20)
    }
    exploded, fine = status(trial[good, 20]), status(trial[good, 0.01])
    assert exploded["status"] == "diverged" and fine["status"] == "completed"
    assert exploded["diverged_step"] < 8  # per step: before the first epoch's 8 batches are done
    metrics = json.loads((trial[good, 20] / "metrics.json").read_text())
    assert not metrics["final_train_loss"] < 3 * 2.3  # above 3x the initial ~2.3, or NaN
    assert metrics["test_acc"] is None  # a diverged run is not tested
    for lr in (0.01, 20):
        assert status(trial[empty, lr])["status"] == "failed"
        assert "dataset not found" in (trial[empty, lr] / "error.txt").read_text()
    rows = {row["trial"]: row for row in summary_rows(sweep_dir)}
    diverged = rows[trial[good, 20].name]
    assert diverged["status"] == "diverged" and diverged["diverged_step"] == str(exploded["diverged_step"])
    assert sorted(row["status"] for row in rows.values()) == ["completed", "diverged", "failed", "failed"]


@pytest.mark.slow
def test_a_check_procedure_sweep_fails_the_trials_whose_checks_fail_in_the_typed_sweep_dir(tmp_path):
    typed = tmp_path / "elsewhere" / "inits"
    overrides = ["check=procedure", "model.init=zeros,default", "checks.overfit_max_steps=40"]
    result = train(tmp_path, "-m", *overrides, f"hydra.sweep.dir={typed}")
    assert result.returncode == 1 and "1 of 2 trials failed (init=zeros)" in result.stderr.splitlines()[-1]
    assert not (tmp_path / "outputs").exists()  # hydra.sweep.dir is where the sweep goes, not ignored
    assert status(typed / "init=default")["status"] == "completed"
    assert status(typed / "init=zeros")["status"] == "failed"
    assert "overfit a tiny subset" in (typed / "init=zeros" / "error.txt").read_text()
    assert json.loads((typed / "init=default" / "checks.json").read_text())[0]["passed"]


@pytest.mark.slow  # several runs through `python train.py`; in the full suite and CI
def test_killed_sweep_resumes_skipping_finished_trials(tmp_path):
    overrides = [
        "-m",
        "optimizer.lr=0.001,0.002,0.003",
        "trainer.max_epochs=6",
        "data.batch_size=16",
        "trainer.limit_train_batches=60",
        "trainer.limit_val_batches=2",
        "test=false",
    ]
    command = [sys.executable, str(REPO / "train.py"), *overrides]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, killed_in = time.monotonic() + 300, None
    try:
        while time.monotonic() < deadline and killed_in is None:
            time.sleep(0.05)
            trials = [p for d in sweep_dirs(tmp_path) for p in d.iterdir() if (p / "status.json").is_file()]
            done = [p for p in trials if status(p)["status"] == "completed"]
            partial = [p for p in trials if status(p)["status"] == "running" and (p / "checkpoints/last.ckpt").exists()]
            if done and partial:
                process.send_signal(signal.SIGKILL)
                killed_in = partial[0]
    finally:
        process.kill()
        process.wait()
    assert killed_in is not None, "the sweep never had a finished and a half-trained trial at once"
    [sweep_dir] = sweep_dirs(tmp_path)
    # the summary command works on the partial sweep: the killed trial shows as running, the last as missing
    partial = subprocess.run(
        [sys.executable, "-m", "experiments.sweeps.summary", str(sweep_dir)], capture_output=True, text=True
    )
    assert partial.returncode == 0, partial.stderr
    statuses = {row["trial"]: row["status"] for row in summary_rows(sweep_dir)}
    assert statuses[killed_in.name] == "running" and "completed" in statuses.values() and len(statuses) == 3
    finished_before = {
        p.name: (p / "metrics.json").stat().st_mtime
        for p in sweep_dir.iterdir()
        if p.is_dir() and status(p)["status"] == "completed"
    }

    rerun = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    for name, mtime in finished_before.items():  # skipped, not retrained
        assert (sweep_dir / name / "metrics.json").stat().st_mtime == mtime
        assert f"trial {name}: already completed, skipped" in rerun.stdout + rerun.stderr
    resumed = status(killed_in)
    assert resumed["status"] == "completed" and resumed["resumed_from"].endswith("last.ckpt")
    assert json.loads((killed_in / "metrics.json").read_text())["epochs"] == 6
    assert [row["status"] for row in summary_rows(sweep_dir)] == ["completed"] * 3


def test_threads_per_trial_share_the_cores_among_parallel_trials():
    from omegaconf import OmegaConf

    from experiments.config.devices import threads_per_trial

    def joblib(n_jobs):
        target = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
        return OmegaConf.create({"_target_": target, "n_jobs": n_jobs})

    assert threads_per_trial(joblib(2), cores=16) == 8 and threads_per_trial(joblib(3), cores=2) == 1
    assert threads_per_trial(joblib(-1), cores=16) == 1  # joblib's -1: one trial per core
    assert threads_per_trial(joblib(1), cores=16) is None  # one at a time: torch's own default
    basic = OmegaConf.create({"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"})
    assert threads_per_trial(basic, cores=16) is None


@pytest.mark.slow  # several runs through `python train.py`; in the full suite and CI
def test_joblib_launcher_runs_two_trials_in_parallel_sharing_the_cores(tmp_path):
    command = documented("python train.py -m sweep=lr_wd hydra/launcher=joblib hydra.launcher.n_jobs=2")
    result = train(tmp_path, *command, "optimizer.lr=0.001,0.002", "regularization.weight_decay=0", *QUICK)
    assert result.returncode == 0, result.stderr[-2000:]
    [sweep_dir] = sweep_dirs(tmp_path)
    trials = [sweep_dir / "lr=0.001", sweep_dir / "lr=0.002"]  # weight decay fixed: not in the names
    records = [status(t) for t in trials]
    share = max(1, (os.cpu_count() or 1) // 2)  # the rule: cores // n_jobs (1 on a 2-core machine, 8 on 16 cores)
    assert all(json.loads((t / "metrics.json").read_text())["torch_threads"] == share for t in trials)
    assert len({r["pid"] for r in records} | {os.getpid()}) == 3  # two worker processes, not this one
    first, second = records
    assert first["started"] < second["updated"] and second["started"] < first["updated"]  # they overlapped


@pytest.mark.slow  # several runs through `python train.py`; in the full suite and CI
def test_ctrl_c_stops_the_sweep_and_still_writes_the_partial_summary(tmp_path):
    command = [
        sys.executable,
        str(REPO / "train.py"),
        "-m",
        "optimizer.lr=0.001,0.002",
        "trainer.max_epochs=20",
        "data.batch_size=16",
        "trainer.limit_train_batches=60",
        "trainer.limit_val_batches=2",
        "test=false",
    ]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list(tmp_path.glob("outputs/sweeps/*/*/checkpoints/last.ckpt")):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130
    [sweep_dir] = sweep_dirs(tmp_path)
    statuses = {row["trial"]: row["status"] for row in summary_rows(sweep_dir)}
    assert statuses == {"lr=0.001": "interrupted", "lr=0.002": "missing"}, output[-2000:]
    assert "Traceback" not in output and "rerun the same command to resume" in output
    stopped = torch.load(next(sweep_dir.glob("*/checkpoints/last.ckpt")), weights_only=True)["global_step"]
    assert stopped < 20 * 60  # stopped at a step, long before its 20 epochs
