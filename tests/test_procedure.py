"""The note's sanity checks (check=procedure): every check passes where it should and fails where it should."""

import json
import warnings

import pytest
import torch
from conftest import SMOKE, compose_config, run_here, train
from documented import documented

from experiments.procedure.sanity import initial_loss, regularization_raises_loss
from experiments.run import build_data, build_module, check_procedure
from experiments.training.module import ClassifierModule

MODELS = ["mlp", "cnn", "rnn", "lstm", "gru"]


@pytest.mark.parametrize("model", MODELS)
def test_every_check_passes_for_every_model_on_the_sample(tmp_path, model):
    results = check_procedure(compose_config("check=procedure", f"model={model}"), tmp_path)
    assert [r.check for r in results] == ["initial_loss", "regularization", "regularization", "overfit"]
    assert all(r.passed for r in results), [r.as_dict() for r in results]
    rows = json.loads((tmp_path / "checks.json").read_text())
    assert [row["passed"] for row in rows] == [True] * 4 and rows[0]["failure_means"].startswith("bad initialization")


@pytest.mark.parametrize(("data", "model", "classes"), [("cifar100", "cnn", 100), ("fashion_mnist", "lstm", 10)])
def test_the_checks_read_the_class_count_and_shape_from_the_data(tmp_path, dataset_root, data, model, classes):
    files = [f"data={data}", f"data.root={dataset_root}", "data.download=false", "data.verify_checksums=false"]
    results = check_procedure(compose_config("check=procedure", f"model={model}", *files), tmp_path)
    assert all(r.passed for r in results), [r.as_dict() for r in results]
    assert results[0].figures["ln_classes"] == pytest.approx(torch.log(torch.tensor(float(classes))).item())


def test_check_procedure_prints_one_table(tmp_path, capsys):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_procedure(compose_config("check=procedure"), tmp_path)
    assert not [w for w in caught if "no logger configured" in str(w.message)]  # the overfit fit logs quietly
    table = capsys.readouterr().out
    assert "the note's sanity checks" in table and table.count("PASS") == 4 and "FAIL" not in table
    assert "measured" in table and "a failure usually means" in table and not (tmp_path / "metrics.json").exists()


@pytest.mark.slow
def test_zeros_init_cannot_overfit_and_the_command_exits_1(tmp_path):
    # through `python train.py check=procedure`: the table, checks.json, the one-line error and exit 1
    command = documented("python train.py check=procedure model.init=zeros")
    result = train(tmp_path, *command, "checks.overfit_max_steps=60")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "overfit a tiny subset" in last and "checks.json" in last
    rows = {row["label"]: row for row in json.loads((result.run_dirs[-1] / "checks.json").read_text())}
    overfit = rows["overfit a tiny subset (step 5)"]
    assert not overfit["passed"] and overfit["figures"]["train_acc"] < 0.5 and overfit["figures"]["steps"] == 60
    assert "FAIL" in result.stdout and "capacity" in result.stdout


def test_a_head_scaled_up_fails_the_initial_loss_check():
    cfg = compose_config()
    module = build_module(cfg, data := build_data(cfg))
    batch = data.probe_batch(64)
    assert initial_loss(module, batch, tolerance=0.1).passed
    with torch.no_grad():
        module.net.layers[-1].weight.mul_(100)
    scaled = initial_loss(module, batch, tolerance=0.1)
    assert not scaled.passed and scaled.figures["loss"] > 1.5 * scaled.figures["ln_classes"]


class Unwired(ClassifierModule):
    """A module whose regularizers are configured but reach neither the loss nor the optimizer."""

    def l1_penalty(self):
        return None

    def configure_optimizers(self):
        return {"optimizer": torch.optim.SGD(self.parameters(), lr=0.1)}


def test_a_regularizer_that_changes_nothing_fails_the_regularization_check():
    cfg = compose_config("check=procedure")
    data = build_data(cfg)
    wired = build_module(cfg, data)
    batch = data.probe_batch(64)
    assert [r.passed for r in regularization_raises_loss(wired, batch, cfg)] == [True, True]
    unwired = Unwired(**wired.hparams, input_transform=wired.input_transform)
    unwired.load_state_dict(wired.state_dict())
    results = regularization_raises_loss(unwired, batch, cfg)
    assert [(r.figures["regularizer"], r.passed) for r in results] == [("L1", False), ("L2", False)]
    assert results[0].figures["with"] == pytest.approx(results[0].figures["without"])


def test_training_runs_check_the_initial_loss_and_only_warn(tmp_path, caplog):
    healthy = run_here(tmp_path / "healthy", *SMOKE)
    assert [(c["check"], c["passed"]) for c in healthy["checks"]] == [("initial_loss", True)]
    broken = run_here(tmp_path / "normal", "model.init=normal", *SMOKE)  # std 0.1 weights: logits far too large
    assert broken["status"] == "completed"
    assert [(c["check"], c["passed"]) for c in broken["checks"]] == [("initial_loss", False)]
    assert "check initial loss ≈ ln(C) (step 3) failed" in caplog.text and "bad initialization" in caplog.text


def test_all_checks_can_run_before_training(tmp_path):
    metrics = run_here(tmp_path, "checks.during_training=[initial_loss,regularization,overfit]", *SMOKE)
    assert [c["check"] for c in metrics["checks"]] == ["initial_loss", "regularization", "regularization", "overfit"]
    assert all(c["passed"] for c in metrics["checks"]) and metrics["status"] == "completed"
