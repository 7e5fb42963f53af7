"""Datamodules: torchvision's real classes on files in their own formats, splits, statistics, offline errors."""

import math

import pytest
import torch
from conftest import SMOKE, compose_config, run_here, train

from experiments.config.errors import UserError
from experiments.data.in_memory import stratified_split
from experiments.data.mnist_sample import MNISTSampleDataModule
from experiments.data.synthetic_files import write_cifar10
from experiments.data.torchvision_sets import TorchvisionDataModule

EXPECTED = {  # name: (input shape, classes, official train size, official test size) of the written files
    "mnist": ((1, 28, 28), 10, 120, 40),
    "fashion_mnist": ((1, 28, 28), 10, 120, 40),
    "cifar10": ((3, 32, 32), 10, 150, 40),
    "cifar100": ((3, 32, 32), 100, 400, 100),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_torchvision_datamodule_reads_files_and_keeps_official_test_split(dataset_root, name):
    shape, classes, train_size, test_size = EXPECTED[name]
    dm = TorchvisionDataModule(name, root=str(dataset_root), download=False, verify_checksums=False)
    dm.setup()
    assert dm.input_shape == shape and dm.num_classes == classes
    assert len(dm.splits["test"][1]) == test_size  # the official test split, untouched
    assert len(dm.splits["train"][1]) + len(dm.splits["val"][1]) == train_size
    assert dm.splits["train"][0].dtype == torch.uint8  # held once as uint8, converted per batch
    images, _ = next(iter(dm.train_dataloader()))
    served, _ = dm.on_after_batch_transfer((images, None), 0)
    assert served.dtype == torch.uint8  # the datamodule serves pixels; the model preprocesses them


def test_mnist_sample_split_is_stratified_and_deterministic():
    first, second = MNISTSampleDataModule(), MNISTSampleDataModule()
    first.setup(), second.setup()
    for split, size in (("train", 4000), ("val", 500), ("test", 500)):
        labels = first.splits[split][1]
        assert len(labels) == size
        assert torch.bincount(labels).tolist() == [size // 10] * 10
        assert torch.equal(first.splits[split][0], second.splits[split][0])
    train_images, test_images = first.splits["train"][0], first.splits["test"][0]
    assert not (train_images.flatten(1)[:, None] == test_images.flatten(1)[None, :50]).all(-1).any()


def test_normalization_statistics_come_from_the_training_split():
    from experiments.run import build_data, build_module

    cfg = compose_config("trainer.max_epochs=1")
    module = build_module(cfg, build_data(cfg))
    train_pixels = MNISTSampleDataModule().load().train_images
    assert module.input_transform.shift.item() / 255 == pytest.approx(
        train_pixels.double().mean().item() / 255, rel=1e-6
    )
    batch = module.input_transform(train_pixels)
    assert batch.mean().item() == pytest.approx(0.0, abs=1e-4) and batch.std().item() == pytest.approx(1.0, abs=1e-3)


def test_stratified_split_depends_only_on_its_seed():
    labels = torch.arange(100) % 4
    a, b = stratified_split(labels, [0.8, 0.2], seed=3)
    again, _ = stratified_split(labels, [0.8, 0.2], seed=3)
    other, _ = stratified_split(labels, [0.8, 0.2], seed=4)
    assert torch.equal(a, again) and not torch.equal(a, other)
    assert torch.bincount(labels[b]).tolist() == [5, 5, 5, 5]
    assert len(set(a.tolist()) | set(b.tolist())) == 100


def test_cifar_md5_check_is_on_by_default(tmp_path):
    write_cifar10(tmp_path)
    with pytest.raises(UserError, match="verify_checksums=false"):
        TorchvisionDataModule("cifar10", root=str(tmp_path), download=False).setup()


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "cifar10" else n for n in EXPECTED])
def test_each_dataset_trains_from_files_in_root(dataset_root, tmp_path, name):
    overrides = [f"data={name}", f"data.root={dataset_root}", "data.download=false", "data.verify_checksums=false"]
    if name == "cifar10":  # one of them through `python train.py` itself, so slow
        metrics = train(tmp_path, *overrides, *SMOKE).metrics
    else:
        metrics = run_here(tmp_path, *overrides, *SMOKE)
    assert metrics["status"] == "completed" and metrics["test_loss"] > 0
    shape, classes, _, test_size = EXPECTED[name]
    # the default MLP was built from the files' image shape and class count, and tested on the whole test split
    state = torch.load(metrics["best_checkpoint"], weights_only=True)["state_dict"]
    layers = [value.shape for key, value in state.items() if key.startswith("net.") and value.dim() == 2]
    assert layers[0][1] == math.prod(shape) and layers[-1][0] == classes
    hits = metrics["test_acc"] * test_size  # a count of the split's images: tested on all of them
    assert abs(hits - round(hits)) < 1e-4
