"""The note's NumPy net: hand-written gradients against autograd and finite differences, the same math as the
framework's MLP, and `python -m experiments.scratch` from the command line."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import compose_config, logged_scalars
from documented import documented

from experiments.scratch import network


def random_problem(features: int, hidden: int, classes: int, count: int, seed: int):
    rng = np.random.default_rng(seed)
    params = network.initialize(features, hidden, classes, "uniform", rng)
    X = rng.uniform(0, 1, size=(features, count))
    labels = rng.integers(0, classes, size=count)
    return params, X, labels


def autograd_gradients(params: network.Params, X: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """The same net and loss written in torch, float64, differentiated by autograd."""
    tensors = {name: torch.tensor(value, requires_grad=True) for name, value in params.as_dict().items()}
    hidden = torch.relu(tensors["W1"] @ torch.tensor(X) + tensors["b1"])
    logits = tensors["W2"] @ hidden + tensors["b2"]
    torch.nn.functional.cross_entropy(logits.T, torch.tensor(labels)).backward()
    return {name: tensor.grad.numpy() for name, tensor in tensors.items()}


def relative_error(ours: np.ndarray, reference: np.ndarray) -> float:
    return float(np.linalg.norm(ours - reference) / max(np.linalg.norm(reference), 1e-300))


def test_the_network_and_kernels_import_no_torch():
    code = "import sys, experiments.scratch.network, experiments.scratch.fixed_kernels; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hand_written_gradients_match_autograd_in_float64(seed):
    params, X, labels = random_problem(784, 10, 10, 256, seed)
    ours = network.backward(params, X, labels, network.forward(params, X)).as_dict()
    reference = autograd_gradients(params, X, labels)
    errors = {name: relative_error(ours[name], reference[name]) for name in reference}
    print(f"seed {seed}: worst relative gradient error {max(errors.values()):.2e} ({errors})")
    assert all(ours[name].shape == reference[name].shape for name in reference)  # b stays a (out, 1) column
    assert max(errors.values()) < 1e-8, errors


def test_hand_written_gradients_match_finite_differences_on_a_tiny_net():
    params, X, labels = random_problem(6, 5, 3, 7, seed=3)
    ours = network.backward(params, X, labels, network.forward(params, X)).as_dict()
    step = 1e-6
    for name, value in params.as_dict().items():
        numeric = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            original = value[index]
            value[index] = original + step
            above = network.cross_entropy(network.forward(params, X).A2, labels)
            value[index] = original - step
            below = network.cross_entropy(network.forward(params, X).A2, labels)
            value[index] = original
            numeric[index] = (above - below) / (2 * step)
        assert relative_error(ours[name], numeric) < 1e-6, name


def test_a_wrong_gradient_is_caught():
    # The check itself can fail: the printed code's (out,) bias gradient, left un-reshaped, broadcasts.
    params, X, labels = random_problem(20, 5, 3, 9, seed=4)
    grads = network.backward(params, X, labels, network.forward(params, X))
    flat_bias = grads.b2.ravel()
    assert (params.b2 - 0.1 * flat_bias).shape == (3, 3)  # the silent shape slip the column shape avoids
    assert relative_error(grads.W1 * 1.001, autograd_gradients(params, X, labels)["W1"]) > 1e-8


def test_the_framework_mlp_takes_the_same_steps_as_the_numpy_net(tmp_path):
    from experiments.run import build_data, build_module, fit, prepare_process
    from experiments.training.trainer import build_trainer

    overrides = [
        "model.hidden_sizes=[10]",
        "optimizer=sgd",
        "optimizer.lr=0.1",
        "data.preprocess=none",  # pixels / 255, as the note
        "data.batch_size=5000",  # the whole training split in one batch: full-batch gradient descent
        "trainer.max_epochs=20",
        "watch.pictures=false",
    ]
    cfg = compose_config(*overrides)
    prepare_process(cfg)
    datamodule = build_data(cfg)
    module = build_module(cfg, datamodule)
    images, labels = (tensor.numpy() for tensor in datamodule.splits["train"])
    X = images.reshape(len(images), -1).T / 255.0
    start = network.initialize(784, 10, 10, "uniform", np.random.default_rng(0))
    start = network.Params(**{k: v.astype(np.float32).astype(np.float64) for k, v in start.as_dict().items()})
    first, head = module.net.layers[1], module.net.layers[3]
    with torch.no_grad():
        for layer, weight, bias in ((first, start.W1, start.b1), (head, start.W2, start.b2)):
            layer.weight.copy_(torch.from_numpy(weight))
            layer.bias.copy_(torch.from_numpy(bias.ravel()))
    trainer, callbacks = build_trainer(cfg, tmp_path)
    fit(cfg, trainer, module, datamodule, callbacks)
    assert trainer.global_step == 20
    expected, _ = network.gradient_descent(start, X, labels, lr=0.1, iterations=20)
    trained = {"W1": first.weight, "b1": first.bias, "W2": head.weight, "b2": head.bias}
    for name, tensor in trained.items():
        reference = expected.as_dict()[name].reshape(tensor.shape)
        assert np.abs(tensor.detach().double().numpy() - reference).max() < 1e-5, name
    assert np.abs(expected.W1 - start.W1).max() > 1e-3  # 20 steps moved the weights: the match is not trivial


def scratch(cwd, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "experiments.scratch", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_the_scratch_command_prints_every_10_iterations_and_writes_its_run(tmp_path):
    done = scratch(tmp_path, *documented("python -m experiments.scratch"), "--iterations", "30")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("iteration")]
    assert [int(line.split()[1]) for line in lines] == [0, 10, 20]
    assert "784-10-10" in done.stdout and "final: train acc" in done.stdout and "77%" in done.stdout
    [run_dir] = (tmp_path / "outputs" / "runs").glob("*_scratch_mlp_mnist_sample_p*")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["settings"] == {"hidden": 10, "lr": 0.1, "iterations": 30, "init": "uniform", "seed": 0}
    assert [point["iteration"] for point in metrics["curve"]] == [0, 10, 20]
    assert (
        metrics["curve"][-1]["train_acc"] > metrics["curve"][0]["train_acc"] + 0.05
    )  # it learns (slowly, as the note)
    scalars = logged_scalars(run_dir)
    assert scalars["train/acc"] == pytest.approx([point["train_acc"] for point in metrics["curve"]])
    assert len(scalars["val/acc"]) == 3 and scalars["test/acc"] == pytest.approx([metrics["test_acc"]])


@pytest.mark.slow
def test_scratch_options_change_the_net_and_the_data(tmp_path, dataset_root):
    data = ["data=cifar10", f"data.root={dataset_root}", "data.download=false", "data.verify_checksums=false"]
    settings = ["--hidden", "7", "--init", "he", "--iterations", "2", "--lr", "0.05"]
    done = scratch(tmp_path, *data, "paths.output_root=elsewhere", *settings)
    assert done.returncode == 0, done.stderr
    assert "3072-7-10" in done.stdout and "He normal" in done.stdout
    [run_dir] = (tmp_path / "elsewhere" / "runs").glob("*_scratch_mlp_cifar10_p*")  # paths.output_root, as train.py
    assert not (tmp_path / "outputs").exists() and f"--logdir {Path('elsewhere') / 'runs'}" in done.stdout
    assert json.loads((run_dir / "metrics.json").read_text())["settings"]["lr"] == 0.05


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--lr", "-1"], "argument --lr: -1 is not allowed: it must be a number > 0"),
        (["--hidden", "ten"], "argument --hidden: 'ten' is not an integer"),
        (["--init", "zeros"], "argument --init: invalid choice: 'zeros'"),
        (["--seed", "-3"], "argument --seed: -3 is not allowed"),
        (["model=cnn"], "model=cnn: these commands take data=NAME, data.KEY=VALUE, paths.data_root=DIR"),
        (["data=imagenet"], "data=imagenet is not available: choose from"),
        (["data.batch_size=64"], "data.batch_size is not used here: the note's net trains full batch"),
        (["data.val_fraction=2"], "data.val_fraction=2"),
    ],
)
def test_bad_scratch_input_is_one_line(tmp_path, args, expected):
    done = scratch(tmp_path, *args)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert not (tmp_path / "outputs").exists()
