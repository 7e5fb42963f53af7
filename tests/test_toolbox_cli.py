"""Every activation, init, optimizer and scheduler trains from its overrides (short runs, in this process,
through the config checks and `run` that `python train.py` uses)."""

import pytest
from conftest import logged_scalars, run_here, train

SHORT = [
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=12",
    "trainer.limit_val_batches=4",
    "trainer.limit_test_batches=2",
    "trainer.log_every_n_steps=4",
    "watch.pictures=false",  # 0.5-1 s a run to draw; test_watch.py checks them
]

# Seven runs, each option of each list at least once.
COMBINATIONS = [
    ("relu", "he", "sgd", "step", ["optimizer.momentum=0.9", "optimizer.nesterov=true", "scheduler.step_size=1"]),
    ("sigmoid", "xavier", "adamw", "cosine", ["regularization=[l2]"]),
    ("tanh", "normal", "rmsprop", "plateau", ["regularization=[dropout,batchnorm,maxnorm,grad_clip]"]),
    ("leaky_relu", "default", "adam", "onecycle", ["model.activation_alpha=0.1"]),
    ("prelu", "he", "adam", "none", ["model=cnn"]),
    ("elu", "xavier", "sgd", "none", ["model=cnn", "regularization=[batchnorm]"]),
    ("maxout", "normal", "adam", "none", ["model.maxout_pieces=3", "regularization=[l1]"]),
]


@pytest.mark.parametrize(
    ("activation", "init", "optimizer", "scheduler", "extra"), COMBINATIONS, ids=[c[0] for c in COMBINATIONS]
)
def test_option_combination_trains(tmp_path, activation, init, optimizer, scheduler, extra):
    model = [e for e in extra if e.startswith("model=")] or ["model=mlp"]
    rest = [e for e in extra if not e.startswith("model=")]
    metrics = run_here(
        tmp_path,
        *model,
        f"model.activation={activation}",
        f"model.init={init}",
        f"optimizer={optimizer}",
        f"scheduler={scheduler}",
        *rest,
        *SHORT,
    )
    assert metrics["epochs"] == 2
    logged = logged_scalars(tmp_path)
    if scheduler != "none":  # LearningRateMonitor logs one curve per parameter group
        rates = [values for tag, values in logged.items() if tag.startswith("lr-")]
        assert rates
        if scheduler != "plateau":  # plateau moves only when val/loss stalls, which 2 epochs need not show
            assert any(v[0] != v[-1] for v in rates)
    if "regularization=[l1]" in rest:
        assert min(logged["train/l1_penalty"]) > 0


@pytest.mark.slow  # several runs through `python train.py`; in the full suite and CI
def test_lbfgs_full_batch_reduces_the_loss(tmp_path):
    # Full batch (all 4,000 training digits), as the note suggests: stochastic L-BFGS is unstable.
    metrics = run_here(tmp_path, "optimizer=lbfgs", "data.batch_size=4000", "trainer.max_epochs=3")
    epoch_losses = logged_scalars(tmp_path)["train/loss_epoch"]
    assert epoch_losses[-1] < 0.5 * epoch_losses[0]
    assert metrics["best_val_acc"] > 0.85


def test_zeros_init_trains_badly(tmp_path):
    broken = run_here(tmp_path, "model.init=zeros", "trainer.max_epochs=2")
    assert broken["best_val_acc"] < 0.25  # symmetric units: no better than a few classes


def test_early_stopping_stops_when_val_loss_stalls(tmp_path):
    # min_delta is unreachable, so no epoch counts as an improvement: stop after patience=1 more epoch.
    metrics = run_here(
        tmp_path,
        "regularization=[early_stopping]",
        "regularization.early_stopping.patience=1",
        "regularization.early_stopping.min_delta=100",
        "trainer.max_epochs=10",
        *SHORT[1:],
    )
    assert metrics["epochs"] == 2


@pytest.mark.slow
def test_augmentation_from_the_command_line(tmp_path, dataset_root):
    # the one run here that goes through `python train.py` itself
    result = train(
        tmp_path,
        "regularization=[augment]",
        "data=cifar10",
        f"data.root={dataset_root}",
        "data.download=false",
        "data.verify_checksums=false",
        "model=cnn",
        *SHORT,
    )
    assert result.metrics["epochs"] == 2
