"""Every model takes its dimensions from the data and trains on 1x28x28 and 3x32x32 through train.py."""

import pytest
import torch
from conftest import SMOKE, run_here

from experiments.config.errors import UserError
from experiments.models.cnn import LeNet
from experiments.models.mlp import MLP
from experiments.models.recurrent import RecurrentClassifier

MODELS = ["mlp", "cnn", "rnn", "lstm", "gru"]


@pytest.mark.parametrize(("shape", "flat"), [((1, 28, 28), 16 * 4 * 4), ((3, 32, 32), 16 * 5 * 5)])
def test_lenet_computes_its_flatten_size(shape, flat):
    net = LeNet(shape, num_classes=7)
    assert net.classifier[0].in_features == flat
    assert [m.out_channels for m in net.features if isinstance(m, torch.nn.Conv2d)] == [6, 16]
    assert [m.out_features for m in net.classifier if isinstance(m, torch.nn.Linear)] == [120, 84, 7]
    assert net(torch.randn(2, *shape)).shape == (2, 7)


def test_lenet_refuses_images_too_small():
    with pytest.raises(UserError, match="at least 16x16"):
        LeNet((1, 12, 12), num_classes=10)
    with pytest.raises(UserError, match="kernel_size=3 and padding=1 needs images of at least 4x4"):
        LeNet((1, 3, 3), num_classes=10, kernel_size=3, padding=1)


def test_kernel_size_and_padding_set_both_convolutions_and_the_flatten_size():
    net = LeNet((1, 28, 28), num_classes=10, conv_channels=(32, 64), kernel_size=3, padding=1)
    convs = [m for m in net.features if isinstance(m, torch.nn.Conv2d)]
    assert [(m.kernel_size, m.padding) for m in convs] == [((3, 3), (1, 1))] * 2
    assert net.classifier[0].in_features == 64 * 7 * 7  # 28 -> 28 -> pool 14 -> 14 -> pool 7
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_mlp_hidden_sizes_and_input_from_shape():
    net = MLP((3, 32, 32), num_classes=100, hidden_sizes=[64, 32, 16])
    linears = [m for m in net.layers if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(3072, 64), (64, 32), (32, 16), (16, 100)]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_recurrent_reads_rows_as_time_steps(cell):
    net = RecurrentClassifier((3, 32, 32), num_classes=10, cell=cell, hidden_size=8, num_layers=2, bidirectional=True)
    assert net.rnn.input_size == 3 * 32 and net.rnn.num_layers == 2
    assert net.head.in_features == 2 * 8  # both directions' last states
    assert net(torch.randn(4, 3, 32, 32)).shape == (4, 10)


def test_bidirectional_head_sees_the_first_row_through_the_backward_direction():
    torch.manual_seed(0)
    net = RecurrentClassifier((1, 6, 5), num_classes=3, cell="gru", hidden_size=4, bidirectional=True)
    images = torch.randn(1, 1, 6, 5, requires_grad=True)
    net(images)[0, 0].backward()
    assert images.grad[0, 0, 0].abs().sum() > 0 and images.grad[0, 0, -1].abs().sum() > 0


@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
@pytest.mark.parametrize("model", MODELS)
def test_every_model_trains_on_both_image_shapes(dataset_root, tmp_path, model, dataset):
    metrics = run_here(
        tmp_path,
        f"model={model}",
        f"data={dataset}",
        f"data.root={dataset_root}",
        "data.download=false",
        "data.verify_checksums=false",
        *SMOKE,
    )
    assert metrics["status"] == "completed" and metrics["test_loss"] > 0
    # the net was built for this data: its first layer reads the image, its last gives the 10 classes
    state = torch.load(metrics["best_checkpoint"], weights_only=True)["state_dict"]
    layers = [value.shape for name, value in state.items() if name.startswith("net.") and value.dim() >= 2]
    reads = {"mlp": {"mnist": 28 * 28, "cifar10": 3 * 32 * 32}, "cnn": {"mnist": 1, "cifar10": 3}}
    assert layers[0][1] == reads.get(model, {"mnist": 28, "cifar10": 3 * 32})[dataset]  # recurrent: one row a step
    assert layers[-1][0] == 10


def test_stacked_bidirectional_options_from_the_command_line(tmp_path):
    metrics = run_here(
        tmp_path, "model=lstm", "model.num_layers=2", "model.bidirectional=true", "model.hidden_size=16", *SMOKE
    )
    state = torch.load(metrics["best_checkpoint"], weights_only=True)["state_dict"]
    # the second layer, both directions, reads the first layer's two directions: 2 x 16 features
    assert state["net.rnn.weight_ih_l1"].shape == state["net.rnn.weight_ih_l1_reverse"].shape == (4 * 16, 2 * 16)
    assert "net.rnn.weight_ih_l2" not in state


def test_a_wider_cnn_from_the_command_line_keeps_lenets_shape(tmp_path):
    from experiments.training.module import load_module

    metrics = run_here(
        tmp_path, "model=cnn", "model.conv_channels=[32,64]", "model.hidden_sizes=[256]", "regularization=batchnorm",
        *SMOKE,
    )  # fmt: skip
    net = load_module(metrics["best_checkpoint"]).net
    assert [m.out_channels for m in net.features if isinstance(m, torch.nn.Conv2d)] == [32, 64]
    linears = [(m.in_features, m.out_features) for m in net.classifier if isinstance(m, torch.nn.Linear)]
    assert linears == [(64 * 4 * 4, 256), (256, 10)]
    assert any(isinstance(m, torch.nn.BatchNorm2d) and m.num_features == 64 for m in net.features)
