"""The logger group besides MLflow (test_mlflow_logger.py): CSV files, W&B offline runs read back with wandb's
own reader, no logger at all, and the one-line refusals of a logger that cannot work."""

import csv
import glob
import json
import os
import subprocess
import sys

import pytest
from conftest import REPO, SMOKE, train
from documented import documented_commands
from test_reliability import checkpoint_writes, start, wait_for

from experiments.records.tracking.build import kept_rows

SHORT = ["trainer.limit_train_batches=3", "trainer.limit_val_batches=2", "trainer.limit_test_batches=2"]


def read_csv(path) -> list[dict]:
    with path.open(newline="") as file:
        return [{key: value for key, value in row.items() if value != ""} for row in csv.DictReader(file)]


@pytest.mark.slow
def test_csv_holds_the_epochs_columns_and_the_hyperparameters(tmp_path):
    result = train(tmp_path, "logger=[csv]", "trainer.max_epochs=2", *SHORT)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = result.run_dirs[-1]
    assert not (run_dir / "tensorboard").exists()
    rows = read_csv(run_dir / "csv" / "metrics.csv")
    epochs = [row for row in rows if "val/acc" in row]
    assert [row["epoch"] for row in epochs] == ["0", "1"]
    assert sum("train/loss_epoch" in row for row in rows) == 2
    metrics = json.loads((run_dir / "metrics.json").read_text())
    [final] = [row for row in rows if "test/final_acc" in row]
    assert float(final["test/final_acc"]) == pytest.approx(metrics["test_acc"])
    hparams = (run_dir / "csv" / "hparams.yaml").read_text()
    assert "lr: 0.001" in hparams and "model: mlp" in hparams
    assert (run_dir / "figures" / "train_loss_curve.png").is_file()  # CSV's pictures are the run's PNG files


def test_a_resumed_csv_run_keeps_the_rows_before_its_checkpoint(tmp_path):
    rows = [{"step": "4", "train/loss": "1.5"}, {"step": "9", "val/acc": "0.5", "epoch": "0"}, {"step": "14"}]
    path = tmp_path / "metrics.csv"
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=["epoch", "step", "train/loss", "val/acc"])
        writer.writeheader()
        writer.writerows(rows)
    assert kept_rows(path, before_step=10) == [
        {"step": 4, "train/loss": 1.5},
        {"step": 9, "val/acc": 0.5, "epoch": 0},
    ]


@pytest.mark.slow
def test_a_csv_run_killed_in_epoch_3_resumes_to_the_unbroken_files_rows(tmp_path):
    four = ["logger=[csv]", "trainer.max_epochs=4", "trainer.limit_train_batches=20", "trainer.limit_val_batches=4"]
    unbroken = train(tmp_path / "unbroken", *four, "watch.pictures=false")
    assert unbroken.returncode == 0, unbroken.stderr[-3000:]
    run_dir = tmp_path / "killed"
    run_dir.mkdir()
    process = start(run_dir, *four, "watch.pictures=false")
    written = checkpoint_writes(run_dir / "checkpoints" / "last.ckpt")
    wait_for(process, lambda: written(2), "the end of epoch 2")
    process.kill()
    process.wait()
    resumed = train(tmp_path, f"resume={run_dir}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    def curves(run) -> list[dict]:  # the training curves, without the test split's figures
        rows = read_csv(run / "csv" / "metrics.csv")
        return [row for row in rows if not any(key.startswith(("test", "hparams")) for key in row)]

    assert curves(run_dir) == curves(unbroken.run_dirs[-1])


def wandb_records(run_dir) -> tuple[dict, list[dict], list[dict]]:
    """The offline run's summary (config, summary), its history rows and all its records, through wandb's own
    reader (`wandb leet inspect`)."""
    [offline] = (run_dir / "wandb").glob("offline-run-*")

    def inspect(*flags: str) -> str:
        done = subprocess.run(
            ["wandb", "leet", "inspect", *flags, str(offline)], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    summary = json.loads(inspect("--summary", "--json"))
    records = [json.loads(line) for line in inspect("--json").splitlines() if line.startswith("{")]
    history = [record["history"]["item"] for record in records if record.get("type") == "history"]
    return summary, history, records


@pytest.mark.slow
def test_wandb_runs_offline_with_config_history_summary_and_pictures(tmp_path):
    pytest.importorskip("wandb", reason="logger=wandb needs the wandb extra: pip install -e '.[wandb]'")
    env_without_login = {key: value for key, value in os.environ.items() if key != "WANDB_API_KEY"}
    done = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "logger=[wandb]", "trainer.max_epochs=2", *SHORT],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env={**env_without_login, "HOME": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    [run_dir] = (tmp_path / "outputs" / "runs").glob("*")
    summary, history, _ = wandb_records(run_dir)
    assert summary["state"] == "finished" and summary["name"] == run_dir.name
    assert summary["config"]["lr"] == 0.001 and summary["config"]["model"] == "mlp"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert summary["summary"]["test/final_acc"] == pytest.approx(metrics["test_acc"])
    assert summary["config"]["provenance.commit"] == str(metrics["provenance"]["commit"])
    assert f"torch={metrics['provenance']['versions']['torch']}" in summary["tags"]
    val = [row for row in history if "val/acc" in row]
    assert len(val) == 2 and val[0]["trainer/global_step"] < val[1]["trainer/global_step"]
    assert any("train/loss_curve.filenames" in row for row in history)  # the pictures
    assert any(
        "watch/weights/layers.1.values" in row or "watch/weights/layers.1._type" in row for row in history
    )  # histograms
    assert json.loads((run_dir / "trackers.json").read_text())["wandb"] == summary["run_id"]
    # the documented upload finds the run (--dry-run: CI has no network and no W&B account)
    [upload] = [c for c in documented_commands(inline=False) if c.text.startswith("wandb sync")]
    paths = [
        path
        for pattern in upload.argv[2:]
        for path in glob.glob(pattern.replace("RUN", run_dir.name), root_dir=tmp_path)
    ]
    done = subprocess.run(
        ["wandb", "sync", "--dry-run", *paths], cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**env_without_login, "HOME": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0 and "Would sync 1 run(s)" in done.stdout + done.stderr, done.stderr


@pytest.mark.slow
def test_a_wandb_sweep_is_one_group_with_a_summary_run(tmp_path):
    pytest.importorskip("wandb", reason="logger=wandb needs the wandb extra: pip install -e '.[wandb]'")
    result = train(tmp_path, "-m", "optimizer.lr=0.001,0.002", "logger=[wandb]", "sweep_name=pair", *SMOKE)
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = tmp_path / "outputs" / "sweeps" / "pair"
    for trial in ("lr=0.001", "lr=0.002"):
        runs = [record["run"] for record in wandb_records(sweep / trial)[2] if record.get("type") == "run"]
        assert runs and all(run["run_group"] == "pair" and run["display_name"] == trial for run in runs)
    [summary_run] = (sweep / "wandb").glob("offline-run-*")
    assert (summary_run / "files" / "best.yaml").read_text() == (sweep / "best.yaml").read_text()


@pytest.mark.slow
def test_no_logger_leaves_only_the_runs_own_files(tmp_path):
    result = train(tmp_path, "logger=[]", "scheduler=step", *SMOKE)  # a schedule: its rate monitor needs a logger
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = result.run_dirs[-1]
    assert {path.name for path in run_dir.iterdir()} >= {"metrics.json", "checkpoints"}
    assert not {"tensorboard", "csv", "wandb", "trackers.json"} & {path.name for path in run_dir.iterdir()}
    assert "no logger configured" not in result.stdout + result.stderr  # none was chosen: nothing to warn of


@pytest.mark.parametrize(("logger", "extra"), [("mlflow", "mlflow"), ("wandb", "wandb")])
def test_a_logger_whose_package_is_missing_names_the_extra(tmp_path, logger, extra):
    blocker = tmp_path / "blocked"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(f"import sys\nsys.modules[{extra!r}] = None  # as if not installed\n")
    done = subprocess.run(
        [sys.executable, str(REPO / "train.py"), f"logger=[tensorboard,{logger}]"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(blocker), os.environ.get("PYTHONPATH")]))},
    )  # fmt: skip
    assert done.returncode == 2
    expected = f'error: logger={logger} needs the {extra} package: pip install -e ".[{extra}]"'
    assert done.stderr.strip().splitlines() == [expected]
    assert not (tmp_path / "outputs").exists()


def test_wandb_online_without_a_login_is_refused_before_anything_runs(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "WANDB_API_KEY"}
    done = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "logger=[wandb]", "logger.wandb.mode=online"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env={**env, "HOME": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "logger.wandb.mode=online needs a W&B login" in done.stderr and "wandb login" in done.stderr
    assert not (tmp_path / "outputs").exists()
