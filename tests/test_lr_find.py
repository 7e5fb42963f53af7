"""Step 6a, tune=lr_find: Lightning's range test, its curve as a PNG and a TensorBoard image, its suggestion."""

import pytest
import torch
from conftest import run_here, train
from documented import documented
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from experiments.config.errors import UserError


def test_the_search_alone_saves_its_curve_and_trains_nothing(tmp_path):
    metrics = run_here(tmp_path, "tune=lr_find", "lr_find.num_training=40")
    found = metrics["lr_find"]
    assert metrics["status"] == "searched" and 1e-6 <= found["suggestion"] <= 1.0
    assert found["steps"] <= 40 and found["lowest_loss"] < 2.3  # the search does lower the loss
    assert (tmp_path / "figures" / "tune_lr_find.png").stat().st_size > 10_000
    assert not (tmp_path / "checkpoints").exists() and "best_val_acc" not in metrics
    events = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    assert events.Tags()["images"] == ["tune/lr_find"] and events.Images("tune/lr_find")[-1].width > 400


@pytest.mark.slow  # the documented command through `python train.py`
def test_then_train_trains_with_the_suggestion_and_records_it(tmp_path):
    # through `python train.py`: the suggestion reaches the optimizer, metrics.json and the checkpoint
    result = train(
        tmp_path,
        *documented("python train.py tune=lr_find lr_find.then_train=true"),
        "lr_find.num_training=40",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=30",
    )
    metrics = result.metrics
    suggestion = metrics["lr_find"]["suggestion"]
    assert metrics["status"] == "completed" and metrics["lr"] == suggestion != 0.001  # not the configured rate
    assert f"lr_find suggests optimizer.lr={suggestion:.3g}" in result.stdout + result.stderr
    checkpoint = torch.load(metrics["best_checkpoint"], map_location="cpu", weights_only=True)
    assert checkpoint["hyper_parameters"]["optimizer"]["lr"] == pytest.approx(suggestion)
    # the search's steps are not counted as training: two epochs of 30 steps
    assert checkpoint["global_step"] == 60


def test_a_search_too_short_to_suggest_is_refused_when_training_needs_its_rate(tmp_path):
    overrides = ["tune=lr_find", "lr_find.then_train=true", "trainer.max_epochs=1", "trainer.limit_train_batches=5"]
    with pytest.raises(UserError, match="tune=lr_find found no suggestion: the search ran 5 of 100 steps"):
        run_here(tmp_path, *overrides)  # a UserError: `python train.py` shows it as one line and exits 2
