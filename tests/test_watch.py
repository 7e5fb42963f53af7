"""Steps 7 and 8, watching a run: update/weight ratios, the loss-curve verdict, histograms and the pictures,
each read back from metrics.json, TensorBoard's event files and the PNGs in the run directory."""

import math
import random

import pytest
import torch
from conftest import SMOKE, run_here
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from experiments.procedure.loss_curve import diagnose

SHORT = ["trainer.max_epochs=1", "trainer.limit_train_batches=20", "trainer.limit_val_batches=1"]


LOSS_AND_ACCURACY = {"test", "train", "val"}


def groups_shown_first(tags: list[str]) -> list[str]:
    """TensorBoard's Time Series card groups (a tag's first part, in sorted order) up to the last loss and
    accuracy group: these must all be loss and accuracy groups."""
    groups = sorted({tag.split("/")[0] for tag in tags})
    last = max(index for index, group in enumerate(groups) if group in LOSS_AND_ACCURACY)
    return groups[: last + 1]


def events(run_dir):
    accumulator = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0, "histograms": 0})
    accumulator.Reload()
    return accumulator


@pytest.mark.parametrize(
    ("overrides", "verdict"),
    [
        (["optimizer=sgd", "optimizer.lr=2.0", "divergence_factor=null", *SHORT], "too high"),
        (["optimizer=sgd", "optimizer.lr=1e-6", *SHORT], "too low"),
        # Adam at 1e-3 starts above the band (its first steps move every weight by about lr) and settles in it
        (["trainer.max_epochs=3", "trainer.limit_val_batches=2"], "within the note's band"),
    ],
)
def test_update_ratio_names_the_side_the_learning_rate_is_on(tmp_path, overrides, verdict):
    metrics = run_here(tmp_path, *overrides, "watch.update_ratio_every=5", "watch.pictures=false")
    summary = metrics["update_ratio"]
    assert summary["verdict"].startswith(verdict) and summary["readings"] >= 1
    scalars = events(tmp_path).Tags()["scalars"]
    assert "watch/update_ratio/median" in scalars
    assert set(groups_shown_first(scalars)) <= LOSS_AND_ACCURACY  # loss and accuracy before the diagnostics
    assert {"watch/update_ratio/layers.1", "watch/update_ratio/layers.3", "watch/update_ratio/layers.5"} <= set(scalars)


def test_the_update_ratio_is_read_every_n_steps_at_lightnings_step_numbers(tmp_path):
    run_here(tmp_path, "watch.update_ratio_every=5", "watch.pictures=false", *SHORT)
    steps = [event.step for event in events(tmp_path).Scalars("watch/update_ratio/median")]
    assert steps == [0, 5, 10, 15]
    ratio = events(tmp_path).Scalars("watch/update_ratio/layers.1")[-1].value
    assert 1e-5 < ratio < 1e-1


def noisy(values, seed=0, noise=0.02):
    generator = random.Random(seed)
    return [v * (1 + generator.uniform(-noise, noise)) for v in values]


def test_the_classifier_names_each_shape_of_synthetic_curves():
    steps = 600
    plateau_then_drop = noisy([2.3 if t < 200 else 2.3 * math.exp(-(t - 200) / 120) + 0.1 for t in range(steps)])
    still_falling = noisy([2.3 * math.exp(-t / 400) for t in range(steps)])
    settled = noisy([0.3 + 2.0 * math.exp(-t / 40) for t in range(steps)])
    flat = noisy([2.3] * steps)
    exploded = noisy([2.3 * (1.01**t) for t in range(200)])
    train_epoch = [1.0, 0.6, 0.4, 0.3, 0.22, 0.16, 0.12]
    val_epoch = [1.0, 0.7, 0.55, 0.6, 0.68, 0.75, 0.83]
    overfit_steps = noisy([0.3 + 2.0 * math.exp(-t / 40) for t in range(steps)])

    def epochs_of(curve, count=5):
        size = len(curve) // count
        return [sum(curve[i * size : (i + 1) * size]) / size for i in range(count)]

    assert diagnose(plateau_then_drop, [], [])["verdict"] == "flat, then decreasing"
    assert diagnose(plateau_then_drop, [], [])["evidence"]["flat_steps"] == pytest.approx(200, abs=30)
    assert diagnose(still_falling, epochs_of(still_falling), [])["verdict"] == "still decreasing"
    assert diagnose(settled, epochs_of(settled), [])["verdict"] == "settled"
    assert diagnose(flat, epochs_of(flat), [])["verdict"] == "flat throughout"
    assert diagnose(exploded, [], [])["verdict"] == "exploded"
    assert diagnose(settled, epochs_of(settled), [], diverged=True)["verdict"] == "exploded"
    overfitting = diagnose(overfit_steps, train_epoch, val_epoch)
    assert overfitting["verdict"] == "overfitting" and overfitting["evidence"]["lowest_val_loss_epoch"] == 2
    assert overfitting["evidence"]["gap_now"] > overfitting["evidence"]["gap_then"]
    assert diagnose([2.3] * 5, [], [])["verdict"] == "too short to tell"
    # Easy data drives the float32 losses to exactly 0 (seen on a GPU with 60k synthetic images)
    solved = [2.3 * math.exp(-t / 20) for t in range(100)] + [0.0] * 500
    assert diagnose(solved, [0.5, 0.0, 0.0, 0.0, 0.0], [0.4, 0.0, 0.0, 1e-7, 1e-7])["verdict"] == "settled"


def test_a_warm_up_or_a_fast_first_fall_is_not_taken_for_bad_init_or_an_explosion():
    # one-cycle: the rate rises for its first 30% of steps, so the loss may sit near its start until then
    warming = noisy([2.3 if t < 150 else 2.3 * math.exp(-(t - 150) / 100) + 0.05 for t in range(600)])
    judged = diagnose(warming, [], [], warmup_until=180)
    assert judged["verdict"] != "flat, then decreasing" and judged["evidence"]["warmup_steps"] == 180
    assert diagnose(warming, [], [])["verdict"] == "flat, then decreasing"  # without the warm-up, it is suspect
    assert diagnose(warming, [], [], warmup_until=60)["verdict"] == "flat, then decreasing"  # flat long after it
    # A loss that falls fast in its first steps: the opening window's median is well below the first losses,
    # which are no explosion (the note's 3x is against the original loss)
    fast = noisy([2.3 * math.exp(-t / 3) + 0.2 for t in range(3000)])
    assert diagnose(fast, [], [])["verdict"] == "settled"  # not exploded, and not flat: it fell, then levelled


@pytest.mark.slow
def test_a_real_run_that_starts_flat_is_diagnosed_and_drawn(tmp_path):
    # tanh units with N(0, 0.001) weights pass almost nothing forward: the loss sits at ln(10) for a while
    overrides = ["model.activation=tanh", "model.init=normal", "model.init_std=0.001", "optimizer=sgd"]
    overrides += ["optimizer.lr=0.1", "trainer.max_epochs=12", "test=false", "watch.pictures=true"]
    metrics = run_here(tmp_path, *overrides)
    curve = metrics["loss_curve"]
    assert curve["verdict"] == "flat, then decreasing" and "initialization" in curve["advice"]
    assert 0.15 < curve["evidence"]["flat_share"] < 0.8 and curve["evidence"]["final_loss"] < 1.0
    assert (tmp_path / "figures" / "train_loss_curve.png").stat().st_size > 20_000
    assert "train/loss_curve" in events(tmp_path).Tags()["images"]


def test_pictures_and_histograms_reach_tensorboard_and_the_run_directory(tmp_path):
    overrides = ["model=cnn", "scheduler=cosine", "trainer.max_epochs=2", "trainer.limit_train_batches=10", *SHORT[2:]]
    run_here(tmp_path, *overrides, "watch.pictures=true")
    recorded = events(tmp_path)
    pictures = {
        "train/inputs_per_class",
        "weights/first_layer",
        "train/loss_curve",
        "test/predictions",
        "test/confident_mistakes",
        "test/confusion_matrix",
    }
    assert pictures == set(recorded.Tags()["images"])
    for tag in pictures:
        assert recorded.Images(tag)[-1].width > 300, tag
        assert (tmp_path / "figures" / f"{tag.replace('/', '_')}.png").is_file()
    histograms = set(recorded.Tags()["histograms"])
    layers = {"features.0", "features.3", "classifier.0", "classifier.2", "classifier.4"}
    # Time Series shows every kind in one list: loss and accuracy first, then the rate, histograms, ratios
    every_tag = [tag for kind in ("scalars", "images", "histograms") for tag in recorded.Tags()[kind]]
    assert groups_shown_first(every_tag) == ["test", "train", "val"], sorted(every_tag)
    assert any(tag.startswith("watch/lr-Adam") for tag in every_tag) and "epoch" not in every_tag
    expected = {f"watch/weights/{layer}" for layer in layers} | {f"watch/gradients/{layer}" for layer in layers}
    assert expected == histograms
    assert [event.step for event in recorded.Histograms("watch/weights/features.0")] == [0, 1]  # each epoch


def test_one_key_turns_the_pictures_and_another_the_histograms_off(tmp_path):
    run_here(tmp_path, "watch.pictures=false", "watch.histograms=false", *SMOKE)
    recorded = events(tmp_path)
    assert recorded.Tags()["images"] == [] and recorded.Tags()["histograms"] == []
    assert not (tmp_path / "figures").exists()


def test_a_run_whose_weights_become_nan_still_ends_with_its_verdicts(tmp_path):
    metrics = run_here(tmp_path, "optimizer=sgd", "optimizer.lr=5.0", "divergence_factor=null", *SHORT)
    # with the 3x rule off, the NaN loss still stops the run: its NaN weights reach no checkpoint
    assert metrics["status"] == "diverged" and metrics["loss_curve"]["verdict"] == "exploded"
    assert metrics["loss_curve"]["evidence"]["final_loss"] is None  # NaN has no JSON form


def test_the_inputs_picture_depends_on_the_data_and_its_augmentation_only_and_is_drawn_once(tmp_path, monkeypatch):
    import numpy as np
    from PIL import Image

    from experiments.data.mnist_sample import MNISTSampleDataModule
    from experiments.records.pictures import training_inputs

    drawn = []
    monkeypatch.setattr(training_inputs, "_drawn", {})  # none drawn yet in this process
    render = training_inputs.render
    monkeypatch.setattr(training_inputs, "render", lambda figure: drawn.append(figure) or render(figure))
    augment = {"enabled": True, "hflip": None, "crop_padding": 4, "translate": 0.1, "rotate": 10.0}
    augment |= {"shear": 5.0, "scale": 0.1}

    def picture(folder, **changes):
        module = MNISTSampleDataModule(augment={**augment, **changes}).load()
        before = torch.get_rng_state()
        path = training_inputs.draw_training_inputs(module, [str(d) for d in range(10)], [], tmp_path / folder)
        assert torch.equal(torch.get_rng_state(), before)  # training after it draws what it would have drawn
        return np.asarray(Image.open(path))

    torch.manual_seed(1)
    first = picture("a")
    torch.manual_seed(2)  # another seed, another model: the same picture, not drawn again
    assert np.array_equal(picture("b"), first) and len(drawn) == 1
    assert not np.array_equal(picture("c", rotate=30.0), first) and len(drawn) == 2
