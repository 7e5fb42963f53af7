"""`python train.py -m sweep=optuna` through the real command, on Optuna's own storage: trials that diverge,
trials the median pruner stops, the study file read back with Optuna, and a rerun that continues the study,
also after the sweep was killed."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import optuna
import pytest
from conftest import REPO, free_port, train
from documented import documented, documented_commands
from PIL import Image
from test_sweeps import QUICK, summary_rows, sweep_dirs

# Two learning rates, one that learns and one that barely moves: once two trials have finished, a slow one
# is below the median after its first epochs and is pruned there. Weight decay varies too, so that the
# study has two parameters to picture.
PRUNABLE = [
    "hydra.sweeper.n_trials=8",
    "hydra.sweeper.sampler.name=random",
    "hydra.sweeper.sampler.seed=4",  # its first two trials learn, the third does not
    "hydra.sweeper.pruner.median.n_startup_trials=2",
    "optimizer=sgd",
    "optimizer.lr=choice(0.1,0.00001)",
    "regularization.weight_decay=choice(0.0,0.0001)",
    "trainer.max_epochs=4",
    "trainer.limit_train_batches=8",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "watch.pictures=false",
]


def study_of(sweep_dir) -> optuna.Study:
    return optuna.load_study(study_name=sweep_dir.name, storage=f"sqlite:///{sweep_dir / 'optuna.db'}")


@pytest.mark.slow  # several runs through `python train.py`; in the full suite and CI
def test_optuna_preset_survives_diverged_trials_and_a_rerun_continues_its_study(tmp_path):
    search = ["hydra.sweeper.n_trials=3", "optimizer=sgd", "optimizer.lr=tag(log, interval(5.0, 50.0))", *QUICK]
    result = train(tmp_path, *documented("python train.py -m sweep=optuna"), *search)
    assert result.returncode == 0, result.stderr[-2000:]
    [sweep_dir] = sweep_dirs(tmp_path)
    assert sweep_dir.name.startswith("optuna-")
    rows = summary_rows(sweep_dir)
    assert len(rows) == 3 and all(row["trial"][:4] in ("000_", "001_", "002_") for row in rows)
    assert "diverged" in {row["status"] for row in rows}
    # summary.csv keeps each sampled value whole; summary.md shows it as the trial's folder name does
    table = (sweep_dir / "summary.md").read_text()
    for row in rows:
        assert len(row["optimizer.lr"]) > 8 and row["optimizer.lr"] not in table
        named = [part.split("=")[1] for part in row["trial"].split("_", 1)[1].split(",")]  # 000_wd=...,lr=...
        assert f"| {row['trial']} | {' | '.join(named)} |" in table
    study = study_of(sweep_dir)
    assert len(study.trials) == 3 and study.user_attrs["sampler"] == {"name": "tpe", "seed": 0}
    assert all(0.0 <= trial.value <= 1.0 for trial in study.trials if trial.value is not None)
    assert (sweep_dir / "heatmap.png").is_file()
    for name in ("optimization_history.png", "param_importances.png", "contour.png"):  # two varied parameters
        with Image.open(sweep_dir / name) as picture:
            assert picture.size == (700, 450), name
    # Trials that diverged before validating have no best val acc: best.yaml names only a trial that has one
    if all(row["best_val_acc"] in ("", None) for row in rows):
        assert (
            not (sweep_dir / "best.yaml").exists() and "no trial reached a validation" in result.stdout + result.stderr
        )
    else:
        assert (sweep_dir / "best.yaml").is_file()
    # The study is kept: asking for one more trial trains one, the three it has stay as they were.
    before = [trial.params for trial in study.trials]
    more = train(tmp_path, "-m", "sweep=optuna", *[s.replace("n_trials=3", "n_trials=4") for s in search])
    assert more.returncode == 0, more.stderr[-2000:]
    assert len(study_of(sweep_dir).trials) == 4 and len(summary_rows(sweep_dir)) == 4
    assert [trial.params for trial in study_of(sweep_dir).trials[:3]] == before


@pytest.mark.slow
def test_the_median_pruner_stops_slow_trials_after_an_epoch_and_the_study_agrees_with_the_summary(tmp_path):
    result = train(tmp_path, "-m", "sweep=optuna", *PRUNABLE)
    assert result.returncode == 0, result.stderr[-3000:]
    [sweep_dir] = sweep_dirs(tmp_path)
    rows = {row["trial"]: row for row in summary_rows(sweep_dir)}
    assert len(rows) == 8
    pruned = [name for name, row in rows.items() if row["status"] == "pruned"]
    assert pruned, rows
    for name in pruned:
        metrics = json.loads((sweep_dir / name / "metrics.json").read_text())
        assert metrics["pruned_epoch"] == metrics["epochs"] - 1 < 3  # stopped before the last epoch (3, from 0)
        assert 0 <= int(rows[name]["best_epoch"]) <= metrics["pruned_epoch"]
        assert (sweep_dir / name / "checkpoints" / "last.ckpt").is_file()  # kept: it can be trained on
    study = study_of(sweep_dir)
    states = {trial.number: trial.state.name for trial in study.trials}
    expected = {"completed": "COMPLETE", "diverged": "COMPLETE", "pruned": "PRUNED", "failed": "FAIL"}
    assert {int(name[:3]): expected[row["status"]] for name, row in rows.items()} == states
    assert all(trial.intermediate_values for trial in study.trials)  # every trial reported after its validations
    for name in ("optimization_history.png", "param_importances.png"):  # the study's pictures
        with Image.open(sweep_dir / name) as picture:
            assert picture.size == (700, 450), name
    # a contour needs two parameters that vary among finished trials; here the slow learning rate never finishes
    assert not (sweep_dir / "contour.png").exists()
    # The best trial's checkpoint evaluates to the test accuracy it reported.
    best = study.best_trial
    [best_name] = [name for name in rows if int(name[:3]) == best.number]
    reported = json.loads((sweep_dir / best_name / "metrics.json").read_text())
    checkpoint = reported["best_checkpoint"]
    evaluated = train(tmp_path, "train=false", f"ckpt_path='{checkpoint}'", "trainer.limit_test_batches=2")
    assert evaluated.metrics["test_acc"] == pytest.approx(reported["test_acc"])
    assert best.value == pytest.approx(reported["best_val_acc"])
    # The documented optuna-dashboard serves the same study over HTTP.
    [command] = [c for c in documented_commands(inline=False) if c.text.startswith("optuna-dashboard")]
    port = free_port()
    argv = [a.replace("outputs/sweeps/NAME", f"outputs/sweeps/{sweep_dir.name}") for a in command.argv]
    dashboard = subprocess.Popen(
        [*argv, "--host", "127.0.0.1", "--port", str(port), "--quiet"], cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        served = served_study(port, dashboard)
    finally:
        os.killpg(dashboard.pid, signal.SIGTERM)
        dashboard.wait(timeout=30)
    shown = {"Complete": "COMPLETE", "Pruned": "PRUNED", "Fail": "FAIL"}
    assert {trial["number"]: shown[trial["state"]] for trial in served["trials"]} == states


def served_study(port: int, server: subprocess.Popen) -> dict:
    """The one study the dashboard serves, read over its HTTP API once it answers. It is waited for as long as
    it runs (a busy machine only slows its start); a server that exits fails the test at once, and one that
    neither answers nor exits in ten minutes has hung."""
    hung = time.monotonic() + 600
    while True:
        try:
            base = f"http://127.0.0.1:{port}/api/studies"
            with urllib.request.urlopen(base, timeout=5) as response:
                [summary] = json.loads(response.read())["study_summaries"]
            with urllib.request.urlopen(f"{base}/{summary['study_id']}", timeout=5) as response:
                return json.loads(response.read())
        except OSError:
            assert server.poll() is None, f"optuna-dashboard exited with {server.returncode} before it answered"
            assert time.monotonic() < hung, "optuna-dashboard neither answered nor exited in 600 s"
            time.sleep(0.3)


@pytest.mark.slow
def test_a_sweep_killed_mid_trial_continues_its_study_to_n_trials_counting_no_trial_twice(tmp_path):
    command = [sys.executable, str(REPO / "train.py"), "-m", "sweep=optuna", *PRUNABLE]
    sweep = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:

        def started() -> list:
            return sorted((tmp_path / "outputs" / "sweeps").glob("*/*/status.json"))

        while len(started()) < 4:  # three trials have ended and the fourth is running
            assert sweep.poll() is None, sweep.stderr.read()[-2000:]
            time.sleep(0.05)
        os.kill(sweep.pid, signal.SIGKILL)
        sweep.wait(timeout=60)
    finally:
        sweep.kill()
    rerun = train(tmp_path, "-m", "sweep=optuna", *PRUNABLE)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "was running when its sweep stopped: recorded as failed" in rerun.stdout + rerun.stderr
    [sweep_dir] = sweep_dirs(tmp_path)
    study = study_of(sweep_dir)
    numbers = [trial.number for trial in study.trials]
    assert len(study.trials) == 8 and numbers == sorted(set(numbers))
    killed = [trial for trial in study.trials if trial.state.name == "FAIL"]
    assert len(killed) == 1 and killed[0].user_attrs["failed_because"] == "its sweep was stopped while it ran"
    assert sum(trial.state.is_finished() for trial in study.trials) == 8
    [row] = [row for row in summary_rows(sweep_dir) if int(row["trial"][:3]) == killed[0].number]
    assert row["status"] == "interrupted" and "stopped while it ran" in row["error"]  # the summary says why


@pytest.mark.slow
@pytest.mark.parametrize(
    "launcher",
    [["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], ["hydra/launcher=local"], ["hydra/launcher=fused"]],
    ids=["joblib", "submitit_local", "fused"],
)
def test_pruning_reaches_trials_in_other_processes_and_in_fused_sets(tmp_path, launcher):
    result = train(tmp_path, "-m", "sweep=optuna", "hydra.sweeper.n_jobs=2", *launcher, *PRUNABLE)
    assert result.returncode == 0, result.stderr[-3000:]
    [sweep_dir] = sweep_dirs(tmp_path)
    rows = {int(row["trial"][:3]): row["status"] for row in summary_rows(sweep_dir)}
    assert len(rows) == 8 and "pruned" in rows.values(), rows
    for trial in sweep_dir.glob("*/metrics.json"):
        metrics = json.loads(trial.read_text())
        if metrics["status"] == "pruned":  # stopped before the last epoch, its best epoch among those it trained
            assert 0 <= metrics["best_epoch"] <= metrics["pruned_epoch"] == metrics["epochs"] - 1 < 3, metrics
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    assert not (sweep_dir / "optuna.db").exists()  # a launcher other than the basic one: the journal file
    storage = JournalStorage(JournalFileBackend(str(sweep_dir / "optuna.journal")))
    study = optuna.load_study(study_name=sweep_dir.name, storage=storage)
    states = {trial.number: trial.state.name for trial in study.trials}
    assert {number: status == "pruned" for number, status in rows.items()} == {
        number: state == "PRUNED" for number, state in states.items()
    }
