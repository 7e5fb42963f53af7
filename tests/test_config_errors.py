"""Bad input: one line naming the key, the value and what is allowed; exit 2; existing outputs untouched."""

import pytest
from conftest import train

BAD_INPUTS = [
    (["model=foo"], ["model=foo", "choose from", "mlp", "cnn", "gru"]),
    (["data=imagenet"], ["data=imagenet", "mnist_sample", "cifar100"]),
    (["optimizer.lr=-1"], ["optimizer.lr=-1", "> 0"]),
    (["optimizer.lr=abc"], ["optimizer.lr='abc'", "number"]),
    (["data.batch_size=0"], ["data.batch_size=0", ">= 1"]),
    (["data.val_fraction=1.5"], ["data.val_fraction=1.5", "(0, 1)"]),
    (["trainer.max_epochs=two"], ["trainer.max_epochs='two'", "integer"]),
    (["seed=-3"], ["seed=-3", ">= 0"]),
    (["model=rnn", "model.bidirectional=maybe"], ["model.bidirectional='maybe'", "true or false"]),
    (["model.hidden_sizes=[512,0]"], ["model.hidden_sizes=[512, 0]", "integers >= 1"]),
    (["optimizer.lrr=1"], ["optimizer.lrr", "lr", "_partial_"]),
    (["model.activation=relux"], ["model.activation='relux'", "leaky_relu", "maxout"]),
    (["regularization.dropout=1.5"], ["regularization.dropout=1.5", "[0, 1)"]),
    (["regularization=[l2,foo]"], ["regularization=foo", "early_stopping", "maxnorm"]),
    (["optimizer=sgd", "optimizer.nesterov=true"], ["optimizer.nesterov=true", "momentum > 0"]),
    (["optimizer=lbfgs", "regularization=[l2]"], ["regularization.weight_decay=0.0005", "lbfgs"]),
    (["scheduler=linear"], ["scheduler=linear", "onecycle", "plateau"]),
    (["regularization.augment.rotate=-5"], ["regularization.augment.rotate=-5", ">= 0"]),
    (["model=lstm", "regularization=[dropout]"], ["regularization.dropout=0.5", "model.num_layers >= 2"]),
    (["data.download=false"], ["data.download", "batch_size"]),  # mnist_sample has no download key
    (["optimizer.lr=["], ["optimizer.lr=[", "key=value"]),
    (["ckpt_path=missing.ckpt"], ["ckpt_path=missing.ckpt", "does not exist"]),
    (["train=false"], ["train=false", "ckpt_path"]),
    (["data.val_fraction=0.5", "data.test_fraction=0.5"], ["data.val_fraction=0.5", "below 1"]),
    (["trainer.precision=bad"], ["trainer.precision='bad'", "16-mixed"]),
    (["divergence_factor=0.5"], ["divergence_factor=0.5", "> 1"]),
    (["sweep_name=a/b"], ["sweep_name='a/b'", "no slashes"]),
    (["data.preprocess=whiten"], ["data.preprocess='whiten'", "zca_whiten", "standardize"]),
    (["data.whiten_epsilon=0"], ["data.whiten_epsilon=0", "> 0"]),
    (["data=cifar10", "data.name=svhn"], ["data.name='svhn'", "cifar100"]),
    (["-m", "sweep=lr_wd", "--cfg", "job"], ["-m and --cfg do not combine", "drop -m"]),
    (["check=proc"], ["check='proc'", "none, procedure"]),
    (["check=procedure", "tune=lr_find"], ["check=procedure with tune=lr_find", "one of them"]),
    (["checks.during_training=[warmup]"], ["checks.during_training=['warmup']", "initial_loss, regularization"]),
    (["checks.overfit_examples=0"], ["checks.overfit_examples=0", ">= 1"]),
    (["tune=lr_find", "optimizer=lbfgs"], ["tune=lr_find with optimizer=lbfgs"]),
    (["tune=lr_find", "lr_find.min_lr=0.1", "lr_find.max_lr=0.01"], ["lr_find.min_lr=0.1", "below"]),
]


@pytest.mark.parametrize(
    ("overrides", "expected"), BAD_INPUTS, ids=lambda v: " ".join(v) if isinstance(v, list) else ""
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, overrides, expected):
    marker = tmp_path / "outputs" / "runs" / "earlier_run" / "metrics.json"
    marker.parent.mkdir(parents=True)
    marker.write_text("{}")

    result = train(tmp_path, *overrides)

    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in expected:
        assert fragment in lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    # The earlier run is intact and no half-made run directory is left behind.
    assert marker.read_text() == "{}"
    assert [p.name for p in result.run_dirs] == ["earlier_run"]


def test_help_and_composition_need_no_torch(tmp_path):
    result = train(tmp_path, "model=lstm", "data=cifar10", "--cfg", "job")
    assert result.returncode == 0
    assert "RecurrentClassifier" in result.stdout and "cifar10" in result.stdout


def test_user_errors_raised_inside_hydra_instantiate_are_found():
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    from experiments.job import _user_error_in

    try:
        instantiate({"_target_": "experiments.models.cnn.LeNet", "input_shape": (1, 8, 8), "num_classes": 2})
    except InstantiationException as wrapped:
        found = _user_error_in(wrapped)
    assert found is not None and "at least 16x16" in str(found)
    assert _user_error_in(ValueError("a bug, not bad input")) is None
