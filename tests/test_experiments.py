"""`experiment=NAME`: the note's runs (note_*) and the best recipe per model (best_*). Each preset composes to
what its yaml promises and trains for a couple of batches; the recipes' accuracy is in the README."""

import pytest
from conftest import REPO, SMOKE, compose_config, run_here, train

from experiments.run import build_data, build_module
from experiments.training.module import load_module

PRESETS = sorted(path.stem for path in (REPO / "conf" / "experiment").glob("*.yaml"))


def test_the_note_and_the_recipes_have_presets():
    rows = {f"note_{cell}_rows" for cell in ("rnn", "lstm", "gru")}
    notes = {"note_quickstart", "note_mnist_mlp", "note_lenet_cifar10", *rows}
    assert notes <= set(PRESETS)
    assert {"best_mlp", "best_cnn", "best_cnn_wide", "best_lstm"} <= set(PRESETS)


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ("note_quickstart", {"data.name": "fashion_mnist", "model.hidden_sizes": [512, 512], "optimizer.lr": 0.001,
                             "optimizer.momentum": 0.0, "data.batch_size": 64, "trainer.max_epochs": 5,
                             "data.preprocess": "none"}),
        ("note_mnist_mlp", {"data.name": "mnist", "model.hidden_sizes": [10], "model.init": "uniform",
                            "optimizer.lr": 0.1, "trainer.max_epochs": 500, "data.batch_size": 60000}),
        ("note_lenet_cifar10", {"data.name": "cifar10", "model._target_": "experiments.models.cnn.LeNet",
                                "optimizer.momentum": 0.9, "data.batch_size": 4, "trainer.max_epochs": 2}),
        ("note_gru_rows", {"data.name": "mnist", "model.cell": "gru", "model.hidden_size": 20, "model.num_layers": 2}),
    ],
)  # fmt: skip
def test_a_note_preset_composes_to_the_notes_settings(preset, expected):
    from omegaconf import OmegaConf

    cfg = compose_config(f"experiment={preset}")
    assert {key: OmegaConf.select(cfg, key) for key in expected} == expected


def test_the_recipes_compose_to_what_the_sweeps_chose():
    from omegaconf import OmegaConf

    chosen = {
        "best_mlp": {"model.hidden_sizes": [512, 512], "optimizer.lr": 0.001, "regularization.weight_decay": 0.0001},
        "best_cnn": {"model._target_": "experiments.models.cnn.LeNet", "optimizer.lr": 0.003},
        "best_cnn_wide": {"model.conv_channels": [32, 64], "model.hidden_sizes": [256], "optimizer.lr": 0.003},
        "best_lstm": {"model.cell": "lstm", "model.hidden_size": 256, "optimizer.lr": 0.003},
    }
    for preset, expected in chosen.items():
        cfg = compose_config(f"experiment={preset}")
        assert {key: OmegaConf.select(cfg, key) for key in expected} == expected
        assert cfg.data._target_.endswith("MNISTSampleDataModule") and cfg.regularization.augment.enabled
        assert cfg.scheduler._target_.endswith("OneCycleLR")


def test_the_fashion_recipes_compose_to_what_their_sweeps_chose():
    from omegaconf import OmegaConf

    chosen = {
        "best_mlp_fashion": {
            "model.hidden_sizes": [1024, 1024],
            "regularization.dropout": 0.2,
            "trainer.max_epochs": 30,
        },
        "best_lenet_fashion": {
            "model.conv_channels": [6, 16],
            "model.hidden_sizes": [120, 84],
            "trainer.max_epochs": 80,
        },
        "best_cnn_fashion": {
            "model.conv_channels": [32, 64],
            "model.hidden_sizes": [256],
            "model.kernel_size": 3,
            "model.padding": 1,
            "regularization.dropout": 0.2,
        },
        "best_lstm_fashion": {"model.cell": "lstm", "model.hidden_size": 128, "regularization.augment.enabled": False},
    }
    for preset, expected in chosen.items():
        cfg = compose_config(f"experiment={preset}")
        assert {key: OmegaConf.select(cfg, key) for key in expected} == expected
        assert cfg.data.name == "fashion_mnist" and cfg.scheduler._target_.endswith("OneCycleLR")


def test_a_preset_gives_way_to_what_is_typed_after_it():
    cfg = compose_config("experiment=note_mnist_mlp", "data=mnist_sample", "optimizer.lr=0.5")
    assert cfg.data._target_.endswith("MNISTSampleDataModule") and cfg.optimizer.lr == 0.5
    assert cfg.model.hidden_sizes == [10]  # the rest of the preset stays


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_trains_a_couple_of_batches(preset, dataset_root, tmp_path):
    data = compose_config(f"experiment={preset}").data
    on_files = [f"data.root={dataset_root}", "data.download=false", "data.verify_checksums=false"]
    overrides = [f"experiment={preset}", *SMOKE, *(on_files if "root" in data else [])]
    metrics = run_here(tmp_path, *overrides)
    assert metrics["status"] == "completed" and metrics["test_loss"] > 0
    # what trained is the preset's network, layer by layer, with its own dropout, norms and cell
    cfg = compose_config(*overrides)
    assert repr(load_module(metrics["best_checkpoint"]).net) == repr(build_module(cfg, build_data(cfg)).net)


def test_help_lists_the_presets(tmp_path):
    result = train(tmp_path, "--help")
    assert result.returncode == 0
    [line] = [line for line in result.stdout.splitlines() if line.startswith("experiment:")]
    assert [name.strip() for name in line.removeprefix("experiment:").split(",")] == PRESETS
