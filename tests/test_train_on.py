"""Training on: a run from a checkpoint trains with the checkpoint's configuration and a schedule that covers
the new length, records what it used, and is judged on its whole history; a finished run trains on in place."""

import json
import warnings

import pytest
from conftest import logged_scalars, run_here

from experiments.config.errors import UserError

SMALL = ["trainer.limit_train_batches=10", "trainer.limit_val_batches=2", "trainer.limit_test_batches=2"]
SMALL += ["trainer.log_every_n_steps=1"]  # the learning rate at every step


def rates(run_dir) -> list[float]:
    """The learning rate of the weights' group at every logged step (LearningRateMonitor's lr-<optimizer>)."""
    scalars = logged_scalars(run_dir)
    [tag] = [tag for tag in scalars if tag.startswith("watch/lr-") and not tag.endswith("pg2")]
    return scalars[tag]


def first(tmp_path, *overrides: str) -> tuple:
    """A two-epoch run to train on from; its folder and last checkpoint."""
    run_dir = tmp_path / "first"
    run_here(run_dir, "trainer.max_epochs=2", *SMALL, *overrides)
    return run_dir, run_dir / "checkpoints" / "last.ckpt"


@pytest.mark.parametrize(
    "scheduler", ["onecycle", *(pytest.param(k, marks=pytest.mark.slow) for k in ("cosine", "step", "plateau"))]
)
def test_training_on_follows_a_schedule_that_covers_the_added_epochs(tmp_path, scheduler):
    _, last = first(tmp_path, f"scheduler={scheduler}", "optimizer.lr=0.002")
    on = tmp_path / "on"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics = run_here(on, f"ckpt_path={last}", "trainer.max_epochs=4", *SMALL)  # the scheduler is not retyped
    assert metrics["status"] == "completed" and metrics["epochs"] == 4
    assert metrics["lr"] == 0.002  # the checkpoint's optimizer, not the composed default 0.001
    followed = rates(on)
    if scheduler == "onecycle":  # a new cycle over the 20 added steps: from max_lr/25 up to max_lr, then down
        assert metrics["schedule_restart"] == {"scheduler": "OneCycleLR", "from_step": 20, "total_steps": 20}
        assert followed[0] == pytest.approx(0.002 / 25, rel=1e-3) and max(followed) == pytest.approx(0.002, rel=0.05)
        assert followed[-1] < followed[0]
    elif scheduler == "cosine":  # a new half-cosine over the 2 added epochs, from the rate down: never climbing
        assert metrics["schedule_restart"]["T_max"] == 2
        assert followed[0] == pytest.approx(0.002) and followed == sorted(followed, reverse=True)
    else:  # step and plateau carry on from the checkpoint's state
        assert "schedule_restart" not in metrics
    messages = " ".join(str(w.message) for w in caught)
    assert "dirpath has changed" not in messages and "multiple `ModelCheckpoint`" not in messages


def test_a_preset_trains_on_without_being_typed_again_and_records_what_it_used(tmp_path):
    _, last = first(tmp_path, "experiment=best_mlp", "model.hidden_sizes=[32]")
    on = tmp_path / "on"
    metrics = run_here(on, f"ckpt_path={last}", "trainer.max_epochs=3", *SMALL)
    hparams = session_hparams(on)
    assert hparams["scheduler"] == "onecycle" and hparams["weight_decay"] == pytest.approx(1e-4)
    assert hparams["regularization.augment"].startswith("{'enabled': True")  # the preset's augmentation
    assert (
        hparams["lr"] == metrics["lr"] == pytest.approx(max(rates(on)), rel=0.05)
    )  # the rate recorded is the one used
    assert len(metrics["epoch_seconds"]) == 1  # this run's own epoch, not its parent's two
    assert metrics["loss_curve"]["verdict"] != "exploded"  # judged on the whole curve, from the first run's start


@pytest.mark.slow
def test_a_typed_section_replaces_the_checkpoints_and_a_rate_a_schedule_ignores_is_refused(tmp_path):
    _, last = first(tmp_path, "scheduler=step", "optimizer=sgd", "optimizer.lr=0.05")
    on = run_here(tmp_path / "on", f"ckpt_path={last}", "trainer.max_epochs=3", "scheduler=cosine", *SMALL)
    assert on["lr"] == 0.05 and on["schedule_restart"]["scheduler"] == "CosineAnnealingLR"  # sgd kept, cosine typed
    with pytest.raises(UserError, match="optimizer.lr=0.1 has no effect when training on under scheduler=step"):
        run_here(tmp_path / "refused", f"ckpt_path={last}", "trainer.max_epochs=3", "optimizer.lr=0.1")
    with pytest.raises(UserError, match="has trained 2 epochs, so trainer.max_epochs=2 would train none"):
        run_here(tmp_path / "none", f"ckpt_path={last}", "trainer.max_epochs=2")


def test_an_evaluation_records_the_checkpoints_model(tmp_path):
    _, last = first(tmp_path, "model=cnn", "optimizer=sgd")
    run_here(tmp_path / "eval", "train=false", f"ckpt_path={last}", "trainer.limit_test_batches=2")
    hparams = session_hparams(tmp_path / "eval")
    assert hparams["model"] == "cnn" and hparams["optimizer"] == "sgd"  # not the composed mlp and adam


def test_lr_find_sets_the_rate_one_cycle_peaks_at(tmp_path):
    overrides = ["tune=lr_find", "lr_find.then_train=true", "lr_find.num_training=40", "scheduler=onecycle"]
    metrics = run_here(tmp_path, *overrides, "trainer.max_epochs=1", "trainer.limit_train_batches=40", SMALL[-1])
    suggestion = metrics["lr_find"]["suggestion"]
    assert metrics["lr"] == suggestion != 0.001 and max(rates(tmp_path)) == pytest.approx(suggestion, rel=0.05)


def session_hparams(run_dir) -> dict:
    """The HParams row a run wrote to TensorBoard, as {name: value}."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    values = HParamsPluginData.FromString(content).session_start_info.hparams
    return {
        name: value.WhichOneof("kind") and getattr(value, value.WhichOneof("kind")) for name, value in values.items()
    }


def test_a_finished_run_is_refused_with_the_command_that_trains_it_on(tmp_path):
    from experiments.checkpoints.resume import expand_resume

    run_dir = tmp_path / "outputs" / "runs" / "finished"  # what a finished run leaves, as resume= reads it
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "overrides.yaml").write_text("- trainer.max_epochs=1\n")
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"")
    (run_dir / "metrics.json").write_text(json.dumps({"status": "completed", "epochs": 1}))
    with pytest.raises(UserError, match=f"ask for more: python train.py resume={run_dir} trainer.max_epochs=2"):
        expand_resume([f"resume={run_dir}"])
    with pytest.raises(UserError, match="trainer.max_epochs=1 is not above them"):
        expand_resume([f"resume={run_dir}", "trainer.max_epochs=1"])
    expanded = expand_resume([f"resume={run_dir}", "trainer.max_epochs=3"])  # in place, to 3 epochs
    assert expanded[:2] == ["trainer.max_epochs=1", "trainer.max_epochs=3"] and f"hydra.run.dir='{run_dir}'" in expanded
