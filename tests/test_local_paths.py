"""paths.data_root and paths.output_root: where the datasets are read and the results go, set on the command
line or once per machine in conf/local/."""

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, compose_config

DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100")


def test_every_dataset_reads_from_the_data_root_unless_its_own_root_is_set():
    for data in DATASETS:
        assert compose_config(f"data={data}", "paths.data_root=/datasets").data.root == "/datasets", data
        assert compose_config(f"data={data}").data.root == "data", data  # as before: ./data
    mine = compose_config("data=mnist", "paths.data_root=/datasets", "data.root=/mine")
    assert mine.data.root == "/mine"


def test_a_machine_sets_its_data_root_once_in_conf_local(tmp_path):
    local = tmp_path / "machine" / "local"
    local.mkdir(parents=True)
    (local / "default.yaml").write_text("# @package _global_\npaths:\n  data_root: /datasets\n")
    command = [sys.executable, str(REPO / "train.py"), "--config-dir", str(tmp_path / "machine")]
    shown = subprocess.run([*command, "data=mnist", "--cfg", "job", "--resolve"], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "root: /datasets" in shown.stdout
    typed = subprocess.run(
        [*command, "data=mnist", "data.root=/mine", "--cfg", "job", "--resolve"], capture_output=True, text=True
    )
    assert typed.returncode == 0 and "root: /mine" in typed.stdout


@pytest.mark.slow
def test_the_output_root_holds_the_runs_the_sweeps_and_the_trackers_stores(tmp_path):
    from conftest import SMOKE, train

    one = train(tmp_path, "paths.output_root=results", "logger=[csv,mlflow]", *SMOKE)
    assert one.returncode == 0, one.stderr[-3000:]
    [run_dir] = (tmp_path / "results" / "runs").glob("*")
    assert (run_dir / "metrics.json").is_file() and (run_dir / "csv" / "metrics.csv").is_file()
    assert (tmp_path / "results" / "mlflow.db").is_file() and (tmp_path / "results" / "mlflow-artifacts").is_dir()
    sweep = train(tmp_path, "-m", "paths.output_root=results", "optimizer.lr=0.001,0.002", "sweep_name=two", *SMOKE)
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    assert (tmp_path / "results" / "sweeps" / "two" / "summary.csv").is_file()
    assert not (tmp_path / "outputs").exists()
    shown = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "hydra/launcher=local", "paths.output_root=/big", "--cfg", "hydra"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert "submitit_folder: ${paths.output_root}/submitit/%j" in shown.stdout


def test_a_requeued_slurm_job_looks_for_its_run_under_the_output_root(tmp_path):
    from experiments.checkpoints.slurm_requeue import runs_folder

    conf = tmp_path / "conf"
    (conf / "local").mkdir(parents=True)
    (conf / "config.yaml").write_text("paths:\n  output_root: outputs\n")
    assert runs_folder([], conf) == Path("outputs/runs")
    (conf / "local" / "default.yaml").write_text("# @package _global_\npaths:\n  output_root: /scratch/me\n")
    assert runs_folder([], conf) == Path("/scratch/me/runs")
    assert runs_folder(["trainer=slurm", "paths.output_root=/typed"], conf) == Path("/typed/runs")
