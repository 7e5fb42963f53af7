"""Models learn on the embedded sample; the best checkpoint evaluates and predicts reproducibly."""

import json

import pytest
from conftest import REPO, run_here, train
from PIL import Image

# Measured with these defaults (Adam 1e-3, batch 64, 5 epochs, seed 42): MLP 95.2%, LeNet 95.0%,
# LSTM 92.6%, GRU 90.4%, RNN 80.0% best val acc (recurrent ones with default clipping). The MLP's run
# here takes 3 epochs (94% then). Thresholds leave room for seed-to-seed noise.
THRESHOLDS = {"mlp": 0.90, "cnn": 0.90, "lstm": 0.85, "gru": 0.85, "rnn": 0.60}


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    return train(tmp_path_factory.mktemp("mlp_run"), "model=mlp", "trainer.max_epochs=3", "watch.pictures=false")


@pytest.mark.parametrize(
    "model", ["cnn", "rnn", pytest.param("lstm", marks=pytest.mark.slow), pytest.param("gru", marks=pytest.mark.slow)]
)
def test_model_learns_mnist_sample(tmp_path, model):
    metrics = run_here(tmp_path, f"model={model}", "trainer.max_epochs=5")
    assert metrics["best_val_acc"] >= THRESHOLDS[model]
    assert metrics["epochs"] == 5


@pytest.mark.slow
def test_mlp_learns_and_writes_its_outputs(mlp_run):
    metrics = mlp_run.metrics
    assert metrics["best_val_acc"] >= THRESHOLDS["mlp"]
    assert set(metrics) >= {"best_val_acc", "test_acc", "test_loss", "epochs", "wall_seconds", "seed"}
    run_dir = mlp_run.run_dirs[-1]
    checkpoints = {p.name for p in (run_dir / "checkpoints").iterdir()}
    assert "last.ckpt" in checkpoints and any(name.startswith("best-") for name in checkpoints)
    assert "final metrics" in mlp_run.stdout and "test acc" in mlp_run.stdout


@pytest.mark.slow
def test_evaluating_the_best_checkpoint_reproduces_test_accuracy(mlp_run, tmp_path):
    trained = mlp_run.metrics
    evaluated = run_here(tmp_path, "train=false", f"ckpt_path={trained['best_checkpoint']}")  # the command: test_docs
    assert evaluated["test_acc"] == pytest.approx(trained["test_acc"], abs=1e-6)
    assert evaluated["test_loss"] == pytest.approx(trained["test_loss"], rel=1e-5)


def test_checkpoints_written_before_the_model_owned_its_preprocessing_still_evaluate(tmp_path):
    # Written by v0.1 (commit e02016a): `python train.py model.hidden_sizes=[16] trainer.max_epochs=2 seed=1
    # optimizer=sgd optimizer.lr=0.1`, its last.ckpt; evaluated then at test acc 0.9060, test loss 0.33552.
    old = REPO / "tests" / "fixtures" / "mlp16_sgd_v0.1.ckpt"
    evaluated = run_here(tmp_path, "train=false", f"ckpt_path={old}")
    assert evaluated["test_acc"] == pytest.approx(0.906000018119812, abs=1e-6)
    assert evaluated["test_loss"] == pytest.approx(0.33551812171936035, rel=1e-5)


def test_checkpoints_written_before_still_resume(tmp_path):
    old = REPO / "tests" / "fixtures" / "mlp16_sgd_v0.1.ckpt"  # 2 epochs done
    overrides = ["model.hidden_sizes=[16]", "optimizer=sgd", "optimizer.lr=0.1", "seed=1", "trainer.max_epochs=3"]
    resumed = run_here(tmp_path, *overrides, f"ckpt_path={old}")
    assert resumed["status"] == "completed" and resumed["epochs"] == 3
    assert resumed["best_val_acc"] >= 0.858  # the old run's best (0.858) is kept, not forgotten
    assert len(json.loads((tmp_path / "metrics.json").read_text())["train_epoch_seconds"]) == 1


@pytest.mark.slow
def test_predict_classifies_png_files_with_the_checkpoint(mlp_run, tmp_path):
    from experiments.data.mnist_sample import MNISTSampleDataModule

    dm = MNISTSampleDataModule()
    dm.setup()
    images, labels = dm.splits["test"]
    folder = tmp_path / "digits"
    folder.mkdir()
    for i in range(20):
        Image.fromarray(images[i, 0].numpy()).save(folder / f"{i:02d}_label{labels[i].item()}.png")

    from experiments.predict import predict

    predictions = predict(mlp_run.metrics["best_checkpoint"], [folder], top_k=3, resize=False)
    assert len(predictions) == 20
    correct = sum(ranked[0][0] == path.stem.split("label")[1] for path, ranked in predictions)
    assert correct >= 17
    for _, ranked in predictions:
        probabilities = [p for _, p in ranked]
        assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1 + 1e-6


@pytest.mark.slow
def test_predict_warns_about_an_inverted_digit_and_invert_flips_it_back(mlp_run, tmp_path, capsys):
    from experiments.data.mnist_sample import MNISTSampleDataModule
    from experiments.predict import main

    dm = MNISTSampleDataModule()
    dm.setup()
    images, labels = dm.splits["test"]
    digits = range(12)
    folder = tmp_path / "black_on_white"
    folder.mkdir()
    for i in digits:  # what a digit drawn on paper looks like: dark strokes on white
        Image.fromarray(255 - images[i, 0].numpy()).save(folder / f"{i:02d}_label{labels[i].item()}.png")
    checkpoint = mlp_run.metrics["best_checkpoint"]

    assert main([checkpoint, str(folder)]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: images:")]
    assert len(warnings) == len(digits) and all("looks inverted" in w and "--invert" in w for w in warnings)

    from experiments.predict import predict

    flipped = predict(checkpoint, [folder], top_k=1, resize=False, invert=True)
    assert "looks inverted" not in capsys.readouterr().err
    correct = sum(ranked[0][0] == path.stem.split("label")[1] for path, ranked in flipped)
    assert correct >= 10  # as the upright digits are read (the test above: 17 of 20)
