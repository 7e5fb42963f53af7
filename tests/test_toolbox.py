"""The note's toolbox: each option changes what it should (in-process, small models)."""

import lightning as L
import pytest
import torch
from torch import nn

from experiments.config.errors import UserError
from experiments.models.cnn import LeNet
from experiments.models.layers import Maxout
from experiments.models.mlp import MLP
from experiments.models.recurrent import RecurrentClassifier
from experiments.training.callbacks.max_norm import MaxNorm, hidden_weight_names
from experiments.training.module import ClassifierModule

SHAPE = (1, 8, 8)


def module(**regularization) -> ClassifierModule:
    torch.manual_seed(0)
    return ClassifierModule(
        model={"_target_": "experiments.models.mlp.MLP", "hidden_sizes": [16, 16]},
        optimizer={"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1},
        input_shape=list(SHAPE),
        num_classes=3,
        data={"name": "t", "class_names": ["a", "b", "c"], "preprocess": "standardize"},
        regularization=regularization,
    )


def batch(n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.randn(n, *SHAPE, generator=generator), torch.randint(0, 3, (n,), generator=generator)


def test_max_norm_bounds_each_hidden_units_incoming_weights():
    net = MLP(SHAPE, 3, hidden_sizes=[16, 16])
    with torch.no_grad():
        for weight in net.parameters():
            weight.mul_(50)
    head_before = net.layers[-1].weight.clone()
    MaxNorm(2.0).on_train_batch_end(None, net, None, None, 0)
    parameters = dict(net.named_parameters())
    for name in hidden_weight_names(net):
        assert parameters[name].flatten(1).norm(dim=1).max() <= 2.0 + 1e-5
    assert torch.equal(net.layers[-1].weight, head_before)  # the output layer is not a hidden unit
    assert len(hidden_weight_names(LeNet((1, 28, 28), 10))) == 4  # two kernels, two hidden fc layers


class OneBatch:
    """A train loader of one fixed batch per epoch."""

    def __iter__(self):
        yield batch()

    def __len__(self):
        return 1


def fit_on_one_batch(model: ClassifierModule, epochs: int = 30) -> list[float]:
    """Train with Lightning; returns the loss that training_step handed to the optimizer at each step."""
    losses = []

    class Record(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            losses.append(float(outputs["loss"]))

    trainer = L.Trainer(
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Record()],
    )
    trainer.fit(model, train_dataloaders=OneBatch())
    return losses


def l1_norm(model: ClassifierModule) -> float:
    return sum(w.abs().sum() for w in model._weights()).item()


def test_l1_adds_its_penalty_to_the_training_loss_and_shrinks_the_weights():
    plain, sparse = module(), module(l1=1e-2)  # same seed: the same starting weights
    penalty = 1e-2 * l1_norm(plain)
    plain_losses, sparse_losses = fit_on_one_batch(plain), fit_on_one_batch(sparse)
    assert sparse_losses[0] == pytest.approx(plain_losses[0] + penalty, rel=1e-5)
    assert l1_norm(sparse) < 0.9 * l1_norm(plain)


def test_dropout_differs_between_train_and_eval():
    net = MLP(SHAPE, 3, hidden_sizes=[64], dropout=0.5)
    images, _ = batch()
    net.train()
    assert not torch.equal(net(images), net(images))
    net.eval()
    assert torch.equal(net(images), net(images))


def test_batchnorm_layers_exist_before_the_activation_and_update_statistics():
    net = MLP(SHAPE, 3, hidden_sizes=[16, 16], batchnorm=True)
    kinds = [type(m) for m in net.layers]
    assert kinds[1:4] == [nn.Linear, nn.BatchNorm1d, nn.ReLU]
    norm = net.layers[2]
    before = norm.running_mean.clone()
    net.train()
    net(batch()[0] + 3.0)
    assert not torch.equal(norm.running_mean, before)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in LeNet((3, 32, 32), 10, batchnorm=True).modules()) == 2


def test_prelu_alpha_receives_gradients():
    net = MLP(SHAPE, 3, hidden_sizes=[16], activation="prelu")
    prelu = next(m for m in net.modules() if isinstance(m, nn.PReLU))
    assert prelu.weight.item() == pytest.approx(0.25)
    images, labels = batch()
    nn.functional.cross_entropy(net(images), labels).backward()
    assert prelu.weight.grad is not None and prelu.weight.grad.abs().item() > 0


def test_maxout_replaces_linear_and_activation_with_k_pieces():
    net = MLP(SHAPE, 3, hidden_sizes=[16], activation="maxout", maxout_pieces=3)
    assert net.layers[1].out_features == 48 and isinstance(net.layers[2], Maxout)
    assert not any(isinstance(m, nn.ReLU) for m in net.modules())
    assert net(batch()[0]).shape == (32, 3)
    x = torch.tensor([[1.0, 5.0, 2.0, -1.0, -3.0, 0.5]])
    assert torch.equal(Maxout(3)(x), torch.tensor([[5.0, 0.5]]))


def test_leaky_relu_and_elu_use_the_configured_alpha():
    leaky = MLP(SHAPE, 3, hidden_sizes=[4], activation="leaky_relu", activation_alpha=0.2)
    assert next(m for m in leaky.modules() if isinstance(m, nn.LeakyReLU)).negative_slope == 0.2
    assert next(m for m in MLP(SHAPE, 3, [4], activation="elu").modules() if isinstance(m, nn.ELU)).alpha == 1.0


def test_zeros_init_keeps_all_hidden_units_identical_through_training():
    torch.manual_seed(0)
    net = MLP(SHAPE, 3, hidden_sizes=[16, 16], activation="tanh", init="zeros")
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    images, labels = batch()
    for _ in range(20):
        optimizer.zero_grad()
        nn.functional.cross_entropy(net(images), labels).backward()
        optimizer.step()
    for layer in (net.layers[1], net.layers[3]):  # the hidden Linear layers
        assert torch.equal(layer.weight, layer.weight[:1].expand_as(layer.weight))  # every row (unit) the same


@pytest.mark.parametrize("scheme", ["normal", "xavier", "he"])
def test_init_schemes_set_weights_and_zero_biases(scheme):
    net = MLP((1, 28, 28), 10, hidden_sizes=[256], init=scheme, init_std=0.05)
    first = net.layers[1]
    assert first.bias.abs().sum() == 0
    expected = {"normal": 0.05, "xavier": (2 / (784 + 256)) ** 0.5 * 2**0.5, "he": (2 / 784) ** 0.5}[scheme]
    assert first.weight.std().item() == pytest.approx(expected, rel=0.05)


def test_uniform_init_is_the_note_numpy_nets_for_weights_and_biases():
    net = MLP((1, 28, 28), 10, hidden_sizes=[256], init="uniform", batchnorm=True)
    first, norm = net.layers[1], net.layers[2]
    for param in (first.weight, first.bias):
        assert param.abs().max() <= 1 and param.std().item() == pytest.approx(1 / 3**0.5, rel=0.1)
    assert torch.equal(norm.weight, torch.ones_like(norm.weight))  # BatchNorm's scale is not a weight to draw


def test_weight_decay_applies_to_weights_not_biases():
    optimizer = module(weight_decay=0.01).configure_optimizers()["optimizer"]
    decayed, plain = optimizer.param_groups
    assert decayed["weight_decay"] == 0.01 and all(p.dim() > 1 for p in decayed["params"])
    assert plain["weight_decay"] == 0.0 and all(p.dim() == 1 for p in plain["params"])


def test_gradient_clipping_bounds_the_gradient_norm_seen_by_the_optimizer():
    norms = []

    class Probe(L.Callback):
        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
            norms.append(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item())

    model = module()
    model.training_step = lambda b, batch_idx: model.loss_fn(model(b[0] * 100), b[1])  # large gradients on purpose
    trainer = L.Trainer(
        max_epochs=3,
        gradient_clip_val=0.05,
        gradient_clip_algorithm="norm",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        callbacks=[Probe()],
        enable_model_summary=False,
    )
    trainer.fit(model, train_dataloaders=OneBatch())
    # on_before_optimizer_step runs before Lightning clips, so re-check after: gradients left in place
    total = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters() if p.grad is not None]))
    assert norms[0] > 0.05 and total.item() <= 0.05 + 1e-4


def test_recurrent_dropout_and_batchnorm_are_refused_where_they_do_not_apply():
    with pytest.raises(UserError, match="model.num_layers >= 2"):
        RecurrentClassifier((1, 28, 28), 10, cell="lstm", dropout=0.3)
    with pytest.raises(UserError, match="applies to model=mlp and model=cnn"):
        RecurrentClassifier((1, 28, 28), 10, cell="gru", batchnorm=True)
    stacked = RecurrentClassifier((1, 28, 28), 10, cell="lstm", num_layers=2, dropout=0.3)
    assert stacked.rnn.dropout == 0.3


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_tbptt_cuts_gradients_to_early_steps(cell):
    torch.manual_seed(0)
    images = torch.randn(2, 1, 12, 5, requires_grad=True)
    full = RecurrentClassifier((1, 12, 5), 3, cell=cell, hidden_size=8)
    truncated = RecurrentClassifier((1, 12, 5), 3, cell=cell, hidden_size=8, tbptt_steps=4)
    truncated.load_state_dict(full.state_dict())
    assert torch.allclose(full(images), truncated(images), atol=1e-6)  # same forward values
    full(images).sum().backward()
    assert images.grad[:, :, :8].abs().sum() > 0  # every row reaches the loss
    images.grad = None
    truncated(images).sum().backward()
    assert images.grad[:, :, :8].abs().sum() == 0  # only the last chunk of 4 rows gets gradient
    assert images.grad[:, :, 8:].abs().sum() > 0


AUGMENT = {
    "enabled": True,
    "hflip": None,
    "crop_padding": 4,
    "translate": 0.1,
    "rotate": 10.0,
    "shear": 5.0,
    "scale": 0.1,
}


def test_augmentation_changes_train_batches_but_not_eval_batches():
    import types

    from experiments.data.mnist_sample import MNISTSampleDataModule

    dm = MNISTSampleDataModule(augment=AUGMENT)
    dm.setup()
    images, labels = dm.splits["train"][0][:16], dm.splits["train"][1][:16]
    dm.trainer = types.SimpleNamespace(training=False)
    assert torch.equal(dm.on_after_batch_transfer((images, labels), 0)[0], images)  # eval: the pixels as stored
    dm.trainer.training = True
    plain = images.float() / 255.0  # augmented batches are floats on [0, 1], which the model reads as such
    first = dm.on_after_batch_transfer((images, labels), 0)[0]
    second = dm.on_after_batch_transfer((images, labels), 0)[0]
    assert not torch.allclose(first, plain) and not torch.allclose(first, second)
    # per-sample parameters: the samples are not all moved the same way
    shifts = (first - plain).flatten(1).abs().mean(dim=1)
    assert shifts.std() > 0


def test_horizontal_flip_defaults_off_for_digits_and_on_for_cifar():
    from experiments.data.augment import build_augmenter
    from experiments.data.mnist_sample import MNISTSampleDataModule
    from experiments.data.torchvision_sets import TorchvisionDataModule

    assert MNISTSampleDataModule.hflip_default is False
    assert TorchvisionDataModule("mnist").hflip_default is False
    assert TorchvisionDataModule("cifar10").hflip_default is True

    def has_flip(default, hflip=None):
        steps = build_augmenter({**AUGMENT, "hflip": hflip}, default, (28, 28))
        return any("HorizontalFlip" in type(step).__name__ for step in steps)

    assert not has_flip(False) and has_flip(True) and has_flip(False, hflip=True)


def test_random_erasing_blanks_one_rectangle_of_2_to_33_percent_per_image():
    from experiments.data.augment import build_augmenter

    only_erase = {**AUGMENT, "hflip": False, "crop_padding": 0, "translate": 0.0, "rotate": 0.0, "shear": 0.0}
    steps = build_augmenter({**only_erase, "scale": 0.0, "erase": 1.0}, False, (28, 28))
    erased = steps(torch.ones(64, 1, 28, 28))
    blanked = (erased == 0).flatten(1).float().mean(dim=1)
    assert ((blanked >= 0.015) & (blanked <= 0.34)).all()  # one patch, never the whole image
    assert len(set(blanked.tolist())) > 10  # each image its own rectangle
