"""logger=mlflow against the real thing: runs read back from the SQLite store with MlflowClient, a sweep as one
experiment with its trials under a parent run, parallel trials on one database, and a real `mlflow server`
on 127.0.0.1 answering over its REST API."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import SMOKE, free_port, train
from documented import documented, documented_commands

pytest.importorskip("mlflow", reason="logger=mlflow needs the mlflow extra: pip install -e '.[mlflow]'")
from mlflow.tracking import MlflowClient  # noqa: E402

SHORT = ["trainer.limit_train_batches=3", "trainer.limit_val_batches=2", "trainer.limit_test_batches=2"]


def store(cwd) -> MlflowClient:
    return MlflowClient(f"sqlite:///{cwd / 'outputs' / 'mlflow.db'}")


@pytest.fixture(scope="module")
def two_epoch_run(tmp_path_factory):
    """A 2-epoch run with the default pictures and checks, logged to MLflow only."""
    cwd = tmp_path_factory.mktemp("mlflow_run")
    result = train(cwd, "logger=[mlflow]", "trainer.max_epochs=2", *SHORT)
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd, result


@pytest.mark.slow
def test_a_run_reads_back_from_the_sqlite_store(two_epoch_run):
    cwd, result = two_epoch_run
    run_dir = result.run_dirs[-1]
    assert not (run_dir / "tensorboard").exists()  # only the chosen logger
    client = store(cwd)
    [experiment] = [e for e in client.search_experiments() if e.name == "single runs"]
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == run_dir.name and run.info.status == "FINISHED"
    assert json.loads((run_dir / "trackers.json").read_text())["mlflow"] == run.info.run_id
    params = run.data.params
    assert params["lr"] == "0.001" and params["model"] == "mlp" and params["optimizer"] == "adam"
    history = client.get_metric_history(run.info.run_id, "val/acc")
    assert len(history) == 2 and history[0].step < history[1].step  # one point per epoch, at its step
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert run.data.metrics["test/acc"] == pytest.approx(metrics["test_acc"])
    assert run.data.metrics["val/best_acc"] == pytest.approx(metrics["best_val_acc"])
    tags = run.data.tags  # what made the run, as metrics.json records it
    assert tags["provenance.commit"] == str(metrics["provenance"]["commit"])
    assert tags["provenance.command"] == metrics["provenance"]["command"] and "provenance.versions.mlflow" in tags
    assert len(client.get_metric_history(run.info.run_id, "train/loss_epoch")) == 2
    figures = {a.path for a in client.list_artifacts(run.info.run_id, "figures")}
    for name in ("train_loss_curve.png", "test_confusion_matrix.png", "weights_first_layer.png"):
        assert f"figures/{name}" in figures
    files = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"checks.md", "config.yaml", "metrics.json"} <= files
    artifacts = cwd / "outputs" / "mlflow-artifacts" / "runs" / run.info.run_id / "artifacts"
    assert (artifacts / "figures" / "train_loss_curve.png").stat().st_size > 1000  # beside the database


def rest(base: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def serve(arguments: list[str], cwd, port: int) -> subprocess.Popen:
    """`mlflow ARGUMENTS` on 127.0.0.1:PORT, once it answers."""
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", *arguments, "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).close()
            return server
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                stop(server)
                pytest.fail(f"mlflow {' '.join(arguments)} did not start")
            time.sleep(0.3)


def stop(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)


@pytest.mark.slow
def test_the_documented_mlflow_ui_serves_the_store_over_rest(two_epoch_run):
    cwd, result = two_epoch_run
    [command] = [c for c in documented_commands(inline=False) if c.text.startswith("mlflow ui")]
    port = free_port()
    arguments = [a for a in command.argv[1:] if a not in ("--port", "5000")]
    server = serve(arguments, cwd, port)
    try:
        base = f"http://127.0.0.1:{port}"
        experiments = rest(base, "/api/2.0/mlflow/experiments/search", {"max_results": 10})["experiments"]
        [experiment] = [e for e in experiments if e["name"] == "single runs"]
        [run] = rest(base, "/api/2.0/mlflow/runs/search", {"experiment_ids": [experiment["experiment_id"]]})["runs"]
        assert run["info"]["run_name"] == result.run_dirs[-1].name
    finally:
        stop(server)


@pytest.mark.slow
def test_a_real_mlflow_server_takes_a_run_and_serves_it_over_rest(tmp_path):
    port = free_port()
    server = serve(["server", "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}"], tmp_path, port)
    base = f"http://127.0.0.1:{port}"
    try:
        command = documented("python train.py logger=[mlflow] logger.mlflow.tracking_uri=http://127.0.0.1:5000")
        result = train(tmp_path, *[a.replace(":5000", f":{port}") for a in command], *SMOKE)
        assert result.returncode == 0, result.stderr[-3000:]
        [experiment] = [e for e in rest(base, "/api/2.0/mlflow/experiments/search", {"max_results": 10})["experiments"]
                        if e["name"] == "single runs"]  # fmt: skip
        runs = rest(base, "/api/2.0/mlflow/runs/search", {"experiment_ids": [experiment["experiment_id"]]})["runs"]
        [run] = runs
        assert run["info"]["run_name"] == result.run_dirs[-1].name and run["info"]["status"] == "FINISHED"
        names = {metric["key"] for metric in run["data"]["metrics"]}
        assert {"val/acc", "test/acc", "test/final_acc"} <= names
        # the server's own store holds it; the default SQLite file was not made
        assert not (tmp_path / "outputs" / "mlflow.db").exists()
    finally:
        stop(server)


@pytest.mark.slow
def test_a_sweep_is_one_experiment_with_its_trials_under_a_parent_run(tmp_path):
    result = train(tmp_path, "-m", "optimizer.lr=0.001,0.003,0.01", "logger=[mlflow]", "sweep_name=three", *SMOKE)
    assert result.returncode == 0, result.stderr[-3000:]
    client = store(tmp_path)
    [experiment] = [e for e in client.search_experiments() if e.name == "three"]
    runs = client.search_runs([experiment.experiment_id])
    parents = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
    children = [run for run in runs if "mlflow.parentRunId" in run.data.tags]
    [parent] = parents
    assert len(children) == 3 and {run.data.tags["mlflow.parentRunId"] for run in children} == {parent.info.run_id}
    assert {run.data.params["lr"] for run in children} == {"0.001", "0.003", "0.01"}
    assert parent.info.status == "FINISHED" and parent.info.run_name == "three"
    files = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"summary.csv", "summary.md", "best.yaml", "heatmap.png"} <= files
    # a rerun of the same sweep skips its finished trials and keeps the same parent run
    again = train(tmp_path, "-m", "optimizer.lr=0.001,0.003,0.01", "logger=[mlflow]", "sweep_name=three", *SMOKE)
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(client.search_runs([experiment.experiment_id])) == 4


@pytest.mark.slow
def test_parallel_trials_write_to_one_database_without_locking(tmp_path):
    result = train(
        tmp_path, "-m", "optimizer.lr=0.001,0.002", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
        "logger=[mlflow]", "sweep_name=pair", *SMOKE,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "database is locked" not in output
    client = store(tmp_path)
    [experiment] = [e for e in client.search_experiments() if e.name == "pair"]
    children = [r for r in client.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == 2 and all(run.info.status == "FINISHED" for run in children)
    assert all(len(client.get_metric_history(run.info.run_id, "val/acc")) == 1 for run in children)


@pytest.mark.slow
def test_a_fused_sweep_gives_every_trial_its_own_run_with_its_own_figures(tmp_path):
    result = train(
        tmp_path, "-m", "hydra/launcher=fused", "optimizer.lr=0.001,0.002", "logger=[tensorboard,mlflow]",
        "sweep_name=fused", "trainer.max_epochs=1", "trainer.limit_train_batches=3", "trainer.limit_val_batches=2",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    client = store(tmp_path)
    [experiment] = [e for e in client.search_experiments() if e.name == "fused"]
    children = [r for r in client.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" in r.data.tags]
    assert sorted(run.data.params["lr"] for run in children) == ["0.001", "0.002"]
    for run in children:
        trial_dir = tmp_path / "outputs" / "sweeps" / "fused" / run.info.run_name
        assert (trial_dir / "tensorboard").is_dir()  # both loggers
        figures = {a.path for a in client.list_artifacts(run.info.run_id, "figures")}
        assert "figures/train_loss_curve.png" in figures and "figures/test_confusion_matrix.png" in figures
        assert len(client.get_metric_history(run.info.run_id, "train/loss_epoch")) == 1
        metrics = json.loads((trial_dir / "metrics.json").read_text())
        assert run.data.metrics["test/acc"] == pytest.approx(metrics["test_acc"])
