"""Run-level behaviour: seeds, resuming, checkpoints, TensorBoard HParams and unique run directories."""

import json
import subprocess
import sys

import pytest
import torch
from conftest import REPO, compose_config, run_here, train
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from experiments.config.errors import UserError

QUICK = ["trainer.limit_train_batches=10", "trainer.limit_val_batches=4", "watch.pictures=false"]


@pytest.mark.slow  # a run through `python train.py`; in the full suite and CI
def test_same_seed_same_metrics_and_seed_zero_is_used(tmp_path):
    first = train(tmp_path / "a", "seed=0", "trainer.max_epochs=2", *QUICK).metrics
    # in this process, after whatever ran before it: the same seed, the same figures as a fresh process
    again = run_here(tmp_path / "b", "seed=0", "trainer.max_epochs=2", *QUICK)
    other = run_here(tmp_path / "c", "seed=1", "trainer.max_epochs=2", *QUICK)  # only seeds differ
    assert first["seed"] == 0
    assert (first["test_loss"], first["best_val_acc"]) == (again["test_loss"], again["best_val_acc"])
    assert first["test_loss"] != other["test_loss"]


@pytest.mark.slow  # three runs; resuming in place after a kill is in test_reliability.py
def test_a_new_run_from_a_finished_runs_checkpoint_trains_on_as_an_unbroken_run(tmp_path):
    unbroken = run_here(tmp_path / "unbroken", "seed=3", "trainer.max_epochs=3", *QUICK)
    run_here(tmp_path / "part", "seed=3", "trainer.max_epochs=1", *QUICK)
    last = tmp_path / "part" / "checkpoints" / "last.ckpt"
    resumed = run_here(tmp_path / "resumed", "seed=3", "trainer.max_epochs=3", f"ckpt_path={last}", *QUICK)
    assert resumed["epochs"] == 3
    # Same shuffling and RNG state after the restart, so the very same weights: equal to float precision.
    assert resumed["test_loss"] == pytest.approx(unbroken["test_loss"], rel=1e-6)
    assert resumed["best_val_acc"] == pytest.approx(unbroken["best_val_acc"])


def test_last_ckpt_is_the_newest_epoch_even_when_validation_did_not_improve(tmp_path):
    """Lightning 2.6's save_last writes only alongside a new best; resume= needs the newest epoch."""
    run_here(tmp_path / "run", "optimizer.lr=1e-12", "trainer.max_epochs=2", *QUICK)  # val acc ties: best stays 0
    [best] = (tmp_path / "run" / "checkpoints").glob("best-*.ckpt")
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert best.name.startswith("best-epoch00") and (last["epoch"], last["global_step"]) == (1, 20)


def test_resuming_with_another_model_or_preprocessing_is_refused(tmp_path):
    run_here(tmp_path / "first", "trainer.max_epochs=1", *QUICK)
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    with pytest.raises(UserError, match="holds a MLP, not a LeNet: pass the model it was trained with"):
        run_here(tmp_path / "second", "model=cnn", f"ckpt_path={last}", *QUICK)
    with pytest.raises(UserError, match="pass data.preprocess=standardize to resume"):
        run_here(tmp_path / "second", "data.preprocess=none", f"ckpt_path={last}", *QUICK)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    overrides = ["trainer.max_epochs=2", "optimizer=sgd", "optimizer.lr=0.05", *QUICK, "watch.pictures=true"]
    return train(tmp_path_factory.mktemp("smoke"), *overrides)


@pytest.mark.slow
def test_the_run_records_its_code_packages_device_and_command(smoke_run):
    record = smoke_run.metrics["provenance"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    assert record["commit"] == (head or None) and isinstance(record["uncommitted_changes"], bool)
    assert record["command"].startswith(f"python {REPO / 'train.py'} trainer.max_epochs=2 optimizer=sgd")
    assert {"python", "experiments", "torch", "lightning", "hydra-core", "tensorboard"} <= set(record["versions"])
    assert record["versions"]["torch"] == torch.__version__ and "mlflow" not in record["versions"]  # not chosen
    assert record["device"] == "cpu" and "cores" in record["machine"]


@pytest.mark.slow
def test_a_default_run_piped_to_a_file_prints_a_screen(tmp_path):
    """`python train.py > log`: the run, the checks, one line an epoch, the verdict and a table of at most 12
    rows; not Lightning's device lines, layer table, srun hint (CI has srun installed) or a wrapped bar."""
    done = train(tmp_path, "trainer.limit_train_batches=3", "trainer.limit_val_batches=2")  # 10 epochs
    assert done.returncode == 0, done.stderr[-3000:]
    printed = (done.stdout + done.stderr).splitlines()
    assert len(printed) <= 30, "\n".join(printed)
    assert printed[0].startswith("MLP (669,706 parameters), 10 epochs on mnist_sample on cpu -> outputs/runs/")
    assert printed[1] == "check initial loss ≈ ln(C) (step 3): PASS (2.310)"
    epochs = [line for line in printed if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == [f"{n}/10" for n in range(1, 11)]
    assert all("train/loss" in line and "val/acc" in line for line in epochs)
    assert any(line.startswith("loss curve: ") for line in printed)
    labels = [line.split("│")[1].strip() for line in printed if line.startswith("│")]
    labels = [label for label in labels if label]  # a long folder name wraps onto a second, unlabelled line
    assert 8 <= len(labels) <= 12 and labels[-1] == "run folder"
    for noise in ("GPU available", "TPU available", "FLOPs", "srun", "Restoring states", "val/loss: "):
        assert noise not in done.stdout + done.stderr, noise
    full = train(tmp_path / "full", "final_table=full", "trainer.max_epochs=1", *QUICK)  # the documented switch
    assert "provenance.commit" in full.stdout and "loss_curve.evidence.steps" in full.stdout


@pytest.mark.slow
def test_checkpoints_load_with_weights_only(smoke_run):
    checkpoint = torch.load(smoke_run.metrics["best_checkpoint"], map_location="cpu", weights_only=True)
    hparams = checkpoint["hyper_parameters"]
    assert hparams["model"]["_target_"] == "experiments.models.mlp.MLP"
    assert hparams["data"]["class_names"] == [str(d) for d in range(10)]
    assert hparams["data"]["preprocess"] == "standardize"
    # the training split's statistics travel as buffers, not hyperparameters
    assert checkpoint["state_dict"]["input_transform.shift"].flatten()[0] > 0


@pytest.mark.slow
def test_tensorboard_has_scalars_and_hparams_with_real_metrics(smoke_run):
    events = EventAccumulator(str(smoke_run.run_dirs[-1] / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    # TensorBoard lists the run by its folder, which starts with what the command changed (not watch.pictures)
    name = smoke_run.run_dirs[-1].name
    changed = "max_epochs-2+optimizer-sgd+lr-0.05+etc"  # whole overrides up to about 40 characters
    assert name.startswith(f"{changed}_mlp_mnist_sample_20")
    assert {"test/predictions", "test/confusion_matrix", "test/confident_mistakes"} <= set(events.Tags()["images"])
    assert events.Images("test/predictions")[-1].width > 500
    scalars = set(events.Tags()["scalars"])
    assert {"train/loss", "train/acc", "val/loss", "val/acc", "test/loss", "test/acc"} <= scalars
    assert "hp_metric" not in scalars
    # the step loss goes to the logger every log_every_n_steps (10) steps, at Lightning's step numbers
    assert [event.step for event in events.Scalars("train/loss")] == [9, 19]

    content = events.PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    session = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    assert {m.name.tag for m in experiment.metric_infos} == {
        "val/best_acc",
        "test/final_acc",
        "test/final_loss",
    }
    chosen = {key: value.ListFields()[0][1] for key, value in session.hparams.items()}
    assert chosen["model"] == "mlp" and chosen["data"] == "mnist_sample" and chosen["optimizer"] == "sgd"
    assert chosen["lr"] == pytest.approx(0.05) and chosen["batch_size"] == 64 and chosen["max_epochs"] == 2
    assert chosen["regularization"] == "none" and chosen["weight_decay"] == 0.0
    logged_test_acc = events.Scalars("test/final_acc")[-1].value
    assert logged_test_acc == pytest.approx(smoke_run.metrics["test_acc"])


def test_run_needs_no_hydra_job(tmp_path):
    from hydra.core.hydra_config import HydraConfig

    from experiments.run import run

    cfg = compose_config("trainer.max_epochs=1", "trainer.limit_train_batches=3", "trainer.limit_val_batches=2")
    assert not HydraConfig.initialized()  # what the benchmark and a fused launcher do: call run directly
    metrics = run(cfg, tmp_path / "run", choices={"model": "mlp"})
    assert metrics["status"] == "completed" and metrics["run_dir"] == str(tmp_path / "run")
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["test_acc"] == metrics["test_acc"]
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.slow  # two runs through `python train.py` at once
def test_runs_started_together_get_their_own_directories(tmp_path):
    command = [
        sys.executable,
        str(REPO / "train.py"),
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=2",
        "trainer.limit_test_batches=2",
        "watch.pictures=false",
    ]
    runs = [
        subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(2)
    ]
    assert all(run.wait(timeout=300) == 0 for run in runs)
    run_dirs = sorted((tmp_path / "outputs" / "runs").iterdir())
    assert len(run_dirs) == 2
    assert all((d / "metrics.json").is_file() for d in run_dirs)


def test_the_metrics_table_prints_values_as_text_not_rich_markup(capsys):
    from experiments.records.metrics import print_metrics_table

    advice = "stop earlier or regularize more: regularization=[early_stopping], dropout or l2"
    print_metrics_table({"loss_curve": {"advice": advice}}, title="final metrics", full=True)
    assert "regularization=[early_stopping]" in capsys.readouterr().out.replace("\n", " ").replace("│", " ")


def test_hparams_record_the_batch_size_the_batches_held(tmp_path):
    """The note's full-batch MLP asks for 60000; the sample's training split holds fewer, and so does each batch."""
    run_here(tmp_path, "data.batch_size=60000", "trainer.max_epochs=1", "trainer.limit_val_batches=1")
    events = EventAccumulator(str(next((tmp_path / "tensorboard").rglob("events.out.tfevents*")).parent))
    events.Reload()
    content = events.PluginTagToContent("hparams")
    session = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    chosen = {key: value.ListFields()[0][1] for key, value in session.hparams.items()}
    from experiments.run import build_data

    split = len(build_data(compose_config()).train_images)
    assert chosen["batch_size"] == split < 60000  # each batch held the whole training split
