"""Every activation, init, optimizer and scheduler trains from its overrides (short runs, in this process,
through the config checks and `run` that `python train.py` uses)."""

import os

import pytest
import torch
from conftest import REPO, logged_scalars, run_here, train

from experiments.data.torchvision_sets import TorchvisionDataModule
from experiments.training.module import load_module

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


ACTIVATION_LAYERS = {"relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh", "leaky_relu": "LeakyReLU",
                     "prelu": "PReLU", "elu": "ELU", "maxout": "Maxout"}  # fmt: skip
# settings only that update rule's parameter groups hold, as the checkpoint saved them
UPDATE_RULE = {"sgd": {"dampening": 0, "betas": None, "alpha": None}, "rmsprop": {"alpha": 0.99, "betas": None},
               "adam": {"decoupled_weight_decay": False, "dampening": None, "alpha": None},
               "adamw": {"decoupled_weight_decay": True, "dampening": None, "alpha": None}}  # fmt: skip


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
    assert metrics["status"] == "completed"
    # the options reached the net and the optimizer: its activation layers, its update rule's own state
    net = load_module(metrics["best_checkpoint"]).net
    assert any(type(layer).__name__ == ACTIVATION_LAYERS[activation] for layer in net.modules()), net
    [state] = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["optimizer_states"]
    assert {key: state["param_groups"][0].get(key) for key in UPDATE_RULE[optimizer]} == UPDATE_RULE[optimizer]
    logged = logged_scalars(tmp_path)
    if scheduler != "none":  # LearningRateMonitor logs one curve per parameter group
        rates = [values for tag, values in logged.items() if tag.startswith("watch/lr-")]
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
def test_augmentation_from_the_command_line(tmp_path, dataset_root, batch_probe):
    # the one run here that goes through `python train.py` itself; the probe saves the first batch it trains on
    on_files = [f"data.root={dataset_root}", "data.download=false", "data.verify_checksums=false"]
    probe = ["+callbacks.probe._target_=batch_probe.FirstBatch", f"+callbacks.probe.save_to={tmp_path / 'batch.pt'}"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests" / "fixtures")}
    augmented = ["regularization=[augment]", "data=cifar10", *on_files, "model=cnn"]
    result = train(tmp_path, *augmented, *probe, *SHORT, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.metrics["status"] == "completed"
    raw = TorchvisionDataModule("cifar10", root=str(dataset_root), download=False, verify_checksums=False)
    raw.setup()
    trained_on = torch.load(tmp_path / "batch.pt", weights_only=True)
    assert trained_on.shape[1:] == (3, 32, 32)
    # flipped, cropped or shifted: no image of the batch is one of the stored training images as it is
    assert batch_probe.share_of_untouched_images(trained_on, raw.splits["train"][0]) < 0.5
