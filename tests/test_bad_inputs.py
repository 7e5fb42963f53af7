"""The catalog of bad input, each case typed as a user would type it: one line naming the key or file, the
value and what is allowed; exit 2; no traceback (unless HYDRA_FULL_ERROR=1); earlier outputs untouched."""

import os
import subprocess
import sys

import pytest
from conftest import REPO, train

SWA = "+callbacks.swa._target_=lightning.pytorch.callbacks.StochasticWeightAveraging"
NO_SERVER = "http://127.0.0.1:9"  # the discard port: nothing listens there
NO_FOLDER = "/nonexistent/folder"
# The SLURM cases meet no cluster, with or without SLURM installed, and on a SLURM login node too
NO_CLUSTER = os.environ | {"SLURM_CONF": "/dev/null"}

BAD_INPUTS = [
    (["model=foo"], ["model=foo", "choose from", "mlp", "cnn", "gru"]),
    (["model=LeNet"], ["model=LeNet is not available", "the note's LeNet is model=cnn", "choose from"]),
    (["data=imagenet"], ["data=imagenet", "mnist_sample", "cifar100"]),
    (["optimizer.lr=-1"], ["optimizer.lr=-1", "> 0"]),
    (["optimizer.lr=abc"], ["optimizer.lr='abc'", "number"]),
    (["data.batch_size=0"], ["data.batch_size=0", ">= 1"]),
    (["data.val_fraction=1.5"], ["data.val_fraction=1.5", "(0, 1)"]),
    (["trainer.max_epochs=two"], ["trainer.max_epochs='two'", "integer"]),
    (["seed=-3"], ["seed=-3", ">= 0"]),
    (["model=cnn", "model.padding=-1"], ["model.padding=-1", "an integer >= 0"]),
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
    (["-m", "sweep=lr_wd", "--cfg", "job"], ["-m and --cfg do not combine", "--cfg hydra shows the values it sweeps"]),
    (["--cfg", "job", "optimizer.lr=-1"], ["optimizer.lr=-1", "> 0"]),  # printing a config checks it too
    (["model.hidden_sizes="], ["model.hidden_sizes=''", "integers >= 1"]),  # empty
    (["model=rnn", "model.hidden_size=0"], ["model.hidden_size=0", ">= 1"]),
    (["model.hidden_sizes=[-4]"], ["model.hidden_sizes=[-4]", "integers >= 1"]),
    (["model=cnn", "model.conv_channels=[6]"], ["model.conv_channels=[6]", "a list of two integers >= 1"]),
    (["trainer.precision=16"], ["trainer.precision=16", "16-mixed, bf16-mixed"]),
    (["trainer.accelerator=gpu"], ["trainer.accelerator=gpu", "no CUDA GPU", "auto"]),
    (["-m", "optimizer.lr=range(5,5)"], ["optimizer.lr=range(5,5)", "empty range"]),
    (["-m", "optimizer.lr=logspace(0.1,0.001)"], ["optimizer.lr=logspace(0.1,0.001)", "0 < LOW < HIGH"]),
    (["-m", "optimizer.lrr=0.1,0.2"], ["optimizer.lrr is not a known key", "lr"]),
    (["-m", "foo.bar=1,2"], ["foo is not a known key"]),
    (["-m", "optimizer.lr=range(5,1)"], ["empty range"]),
    (["-m", "optimizer.lr=logspace(1e-3,1e-1,0)"], ["empty range"]),
    (["-m", "optimizer.lr=0.01,-1"], ["optimizer.lr=-1 is not allowed"]),
    (["-m", "sweep=optuna", "optimizer.lr=tag(log, interval(0.1, 0.001))"], ["is empty"]),
    (["-m", "hydra/launcher=fused", "hydra.launcher.max_trials=0"], ["hydra.launcher.max_trials=0 is not allowed"]),
    (
        ["-m", "hydra/launcher=fused", "hydra.launcher.max_trials=abc"],
        ["max_trials=abc: Value 'abc' of type 'str' could"],
    ),
    (["sweep=lr_wd"], ["sweep=lr_wd is a sweep", "add -m"]),
    (["data.pipeline=pil"], ["data.pipeline='pil'", "tensor, torchvision"]),
    (["trainer=slurm"], ["trainer=slurm runs inside a SLURM job", "trainer=ddp"]),  # CI is no SLURM job
    (["-m", "hydra/launcher=slurm", "optimizer.lr=0.1,0.2"], ["hydra/launcher=slurm", "sbatch", "launcher=local"]),
    (["-m", "hydra/launcher=fused_slurm", "optimizer.lr=0.1,0.2"], ["launcher=fused_slurm", "launcher=fused_local"]),
    (["-m", "trainer=ddp", "optimizer.lr=0.1,0.01"], ["trainer.strategy=ddp with 2 devices", "inside a sweep"]),
    (["resume=nowhere"], ["resume=nowhere does not exist", "run directory"]),
    (["resume=outputs/runs/earlier_run/metrics.json"], ["earlier_run/metrics.json is a file", "run directory"]),
    (["-m", "resume=outputs/runs/earlier_run"], ["resume= continues one run", "its own command again"]),
    (["check=proc"], ["check='proc'", "none, procedure"]),
    (["+lr=0.01"], ["+lr=0.01: nothing reads lr", "did you mean optimizer.lr=0.01?"]),
    (["+trainer.max_epoch=5"], ["Trainer takes no argument max_epoch", "did you mean trainer.max_epochs=5?"]),
    (["+optimizer.amsgrads=true"], ["Adam takes no argument amsgrads", "did you mean +optimizer.amsgrad=true?"]),
    (["+scheduler.gamma=0.5"], ["scheduler is off (scheduler=none)"]),
    # keys the run sets itself from another key: a typed value would be overridden without a word
    (["optimizer.weight_decay=0.01"], ["sets optimizer.weight_decay from", "use regularization.weight_decay=0.01"]),
    (["+optimizer.weight_decay=0.01"], ["+optimizer.weight_decay=0.01:", "use regularization.weight_decay=0.01"]),
    (["+model.dropout=0.5"], ["+model.dropout=0.5: the run sets model.dropout", "use regularization.dropout=0.5"]),
    (["+trainer.logger=false"], ["+trainer.logger=false: the run sets trainer.logger from logger=[...]"]),
    (["check=procedure", "tune=lr_find"], ["check=procedure with tune=lr_find", "one of them"]),
    (["checks.during_training=[warmup]"], ["checks.during_training=['warmup']", "initial_loss, regularization"]),
    (["checks.overfit_examples=0"], ["checks.overfit_examples=0", ">= 1"]),
    (["tune=lr_find", "optimizer=lbfgs"], ["tune=lr_find with optimizer=lbfgs"]),
    (["tune=lr_find", "lr_find.min_lr=0.1", "lr_find.max_lr=0.01"], ["lr_find.min_lr=0.1", "below"]),
    (["+callbacks.swa.swa_lrs=0.01"], ["callbacks.swa names no class", "+callbacks.swa._target_=CLASS"]),
    (["+callbacks.swa._target_=lightning.pytorch.callbacks.NoSuch"], ["callbacks.swa._target_=", "does not import"]),
    (["+callbacks.swa._target_=torch.nn.Linear"], ["torch.nn.Linear is not a Lightning callback"]),
    ([SWA, "+callbacks.swa.swa_lr=0.01"], ["StochasticWeightAveraging takes no argument swa_lr", "swa_lrs"]),
    ([SWA, "+callbacks.swa.swa_lrs=-1"], ["callbacks.swa: StochasticWeightAveraging refused its arguments"]),
    (["+callbacks.ckpt._target_=lightning.pytorch.callbacks.ModelCheckpoint"], ["callbacks.ckpt: the run has a"]),
    (["logger=foo"], ["logger=foo is not available", "csv, mlflow, tensorboard, wandb"]),
    (["logger=[csv,foo]"], ["logger=foo is not available", "csv, mlflow, tensorboard, wandb"]),
    (["logger.mlflow.tracking_uri=sqlite:///a.db"], ["logger=mlflow is not chosen", "logger=[tensorboard,mlflow]"]),
    (["+logger.mlflow.tracking_uri=sqlite:///a.db"], ["set without +", "logger=[...,mlflow]"]),
    (["logger=[mlflow]", f"logger.mlflow.tracking_uri={NO_SERVER}"], [NO_SERVER, "no MLflow server answers"]),
    (["-m", "optimizer.lr=0.1,0.2", "logger=[mlflow]", f"logger.mlflow.tracking_uri={NO_SERVER}"], [NO_SERVER]),
    (["logger=[mlflow]", "logger.mlflow.tracking_uri=./mlruns"], ["tracking_uri=./mlruns is not allowed", "sqlite"]),
    (["logger=[wandb]", "logger.wandb.mode=sometimes"], ["logger.wandb.mode=sometimes", "offline, online"]),
    (["-m", "sweep=optuna", "hydra.sweeper.pruner.name=early"], ["pruner.name=early is not allowed", "hyperband"]),
    (["-m", "sweep=optuna", "hydra.sweeper.sampler.name=bayes"], ["sampler.name=bayes is not allowed", "cmaes"]),
    (["-m", "sweep=optuna", "hydra.sweeper.pruner=median"], ["pruner=median", "hydra.sweeper.pruner.name=median"]),
    (["-m", "sweep=optuna", "hydra.sweeper.sampler=random"], ["sampler=random", "hydra.sweeper.sampler.name=random"]),
    (["-m", "sweep=optuna", "hydra.sweeper.direction=up"], ["hydra.sweeper.direction=up", "maximize or minimize"]),
    (["-m", "sweep=optuna", "hydra.sweeper.sampler.name=grid"], ["sampler.name=grid needs a list", "optimizer.lr"]),
    (["-m", "sweep=optuna", "+hydra.sweeper.pruner.median.patience=2"], ["the median pruner takes no patience"]),
    (["-m", "sweep=optuna", "+hydra.sweeper.pruner.patience=2"], ["pruner.patience: a pruner's settings go under"]),
    (["-m", "sweep=optuna", f"hydra.sweeper.storage=sqlite:///{NO_FOLDER}/s.db"], ["cannot be opened", NO_FOLDER]),
]


# Checking these imports torch or Lightning (the class a key names, the device): about 10 s a command
IMPORT_TORCH = ("+callbacks.", "+trainer.", "+optimizer.", "trainer.accelerator=gpu")


def catalog_case(overrides: list[str], expected: list[str]):
    slow = any(o.startswith(IMPORT_TORCH) for o in overrides)
    return pytest.param(overrides, expected, marks=[pytest.mark.slow] if slow else [], id=" ".join(overrides))


@pytest.mark.parametrize(("overrides", "expected"), [catalog_case(*case) for case in BAD_INPUTS])
def test_bad_input_is_one_line_and_exit_2(tmp_path, overrides, expected):
    marker = tmp_path / "outputs" / "runs" / "earlier_run" / "metrics.json"
    marker.parent.mkdir(parents=True)
    marker.write_text("{}")

    result = train(tmp_path, *overrides, env=NO_CLUSTER)

    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in expected:
        assert fragment in lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    # The earlier run is intact and no half-made run or sweep directory is left behind.
    assert marker.read_text() == "{}"
    assert [p.name for p in result.run_dirs] == ["earlier_run"] and not (tmp_path / "outputs" / "sweeps").exists()


# Both through `python train.py`, so slow; true attempts the download, which fails offline.
@pytest.mark.slow
@pytest.mark.parametrize("download", ["false", "true"])
def test_missing_dataset_offline_is_one_clear_line(tmp_path, download):
    empty = tmp_path / "nothing_here"
    result = train(tmp_path, "data=mnist", f"data.root={empty}", f"data.download={download}")
    assert result.returncode == 2
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: data=mnist: dataset not found in")
    assert str(empty) in last_line and "data.root=" in last_line and "data=mnist_sample" in last_line
    assert "Traceback" not in result.stderr
    assert not empty.exists()  # a failed download leaves no empty folders behind


def test_hydra_full_error_1_shows_the_trace_and_0_does_not(tmp_path):
    shown = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "model=foo"],
        cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "HYDRA_FULL_ERROR": "1"},
    )  # fmt: skip
    hidden = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "model=foo"],
        cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "HYDRA_FULL_ERROR": "0"},
    )  # fmt: skip
    assert shown.returncode != 0 and "Traceback" in shown.stderr
    assert hidden.returncode == 2 and "Traceback" not in hidden.stderr and len(hidden.stderr.strip().splitlines()) == 1


def test_help_and_composition_need_no_torch(tmp_path):
    result = train(tmp_path, "model=lstm", "data=cifar10", "--cfg", "job")
    assert result.returncode == 0
    assert "RecurrentClassifier" in result.stdout and "cifar10" in result.stdout


def test_user_errors_raised_inside_hydra_instantiate_are_found():
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    from experiments.config.errors import user_error_in

    try:
        instantiate({"_target_": "experiments.models.cnn.LeNet", "input_shape": (1, 8, 8), "num_classes": 2})
    except InstantiationException as wrapped:
        found = user_error_in(wrapped)
    assert found is not None and "at least 16x16" in str(found)
    assert user_error_in(ValueError("a bug, not bad input")) is None
