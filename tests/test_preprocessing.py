"""data.preprocess: statistics from the training split, whitening that whitens, and checkpoints that carry it."""

import pytest
import torch
from conftest import compose_config, run_here, train
from PIL import Image

from experiments.data.mnist_sample import MNISTSampleDataModule
from experiments.data.preprocessing import PREPROCESSING, InputTransform
from experiments.predict import predict
from experiments.training.module import load_module

WHITENING = ("pca_whiten", "zca_whiten")


def correlated_images(n: int = 8000, shape=(3, 4, 4)) -> torch.Tensor:
    """uint8 images whose 48 pixels are strongly correlated but full rank (every direction has variance)."""
    generator = torch.Generator().manual_seed(0)
    features = int(torch.tensor(shape).prod())
    mixing = torch.eye(features) + 0.6 * torch.randn(features, features, generator=generator)
    pixels = 128 + 12 * torch.randn(n, features, generator=generator) @ mixing
    return pixels.round().clamp(0, 255).to(torch.uint8).view(n, *shape)


def covariance(batch: torch.Tensor) -> torch.Tensor:
    flat = batch.reshape(len(batch), -1).double()
    return torch.cov(flat.T)


@pytest.mark.parametrize("kind", WHITENING)
def test_whitened_training_features_have_near_identity_covariance(kind):
    images = correlated_images()
    assert (covariance(images / 255.0) - torch.eye(48)).abs().max() > 0.01  # correlated to begin with
    transform = InputTransform.fit(kind, images, epsilon=1e-7)
    whitened = transform(images)
    assert whitened.shape == images.shape and whitened.dtype == torch.float32
    assert whitened.reshape(len(images), -1).mean(dim=0).abs().max() < 1e-3
    assert (covariance(whitened) - torch.eye(48)).abs().max() < 0.01


def test_zca_keeps_the_image_layout_and_pca_does_not():
    images = correlated_images()
    zca = InputTransform.fit("zca_whiten", images, epsilon=1e-7).matrix
    pca = InputTransform.fit("pca_whiten", images, epsilon=1e-7).matrix
    assert torch.allclose(zca, zca.T, atol=1e-6 * zca.abs().max())  # symmetric: each output stays at its pixel
    assert not torch.allclose(pca, pca.T, atol=1e-3 * pca.abs().max())


@pytest.mark.parametrize("kind", WHITENING)
def test_whitening_real_digits_from_the_training_split_only(kind):
    from experiments.run import build_data, build_module

    cfg = compose_config(f"data.preprocess={kind}")
    datamodule = build_data(cfg)
    module = build_module(cfg, datamodule)
    train_images = datamodule.train_images
    refitted = InputTransform.fit(kind, train_images, epsilon=0.1)
    assert torch.equal(module.input_transform.matrix, refitted.matrix)  # the module's own, from the training split
    # epsilon damps each principal direction to exactly lambda / (lambda + eps); the strongest end near 1
    spectrum = torch.linalg.eigvalsh(covariance(module.input_transform(train_images)))
    pixel_spectrum = torch.linalg.eigvalsh(covariance(train_images / 255.0))
    assert torch.allclose(spectrum, pixel_spectrum / (pixel_spectrum.clamp_min(0) + 0.1), atol=2e-3)
    assert spectrum[-5:].min() > 0.95
    # validation pixels go through the training split's transform, so their covariance is not whitened exactly
    val_spectrum = torch.linalg.eigvalsh(covariance(module.input_transform(datamodule.splits["val"][0])))
    assert not torch.allclose(val_spectrum[-20:], spectrum[-20:], atol=1e-3)


@pytest.mark.parametrize("kind", PREPROCESSING)
def test_uint8_pixels_and_floats_on_the_unit_scale_are_preprocessed_alike(kind):
    images = correlated_images(n=2000)
    transform = InputTransform.fit(kind, images)
    assert torch.allclose(transform(images[:8]), transform(images[:8].float() / 255.0), atol=1e-4)
    assert images.dtype == torch.uint8  # the input is left as it was


def test_none_only_scales_and_standardize_centres_each_channel():
    images = correlated_images(n=2000)
    assert torch.allclose(InputTransform.fit("none", images)(images), images.float() / 255.0, rtol=0, atol=1e-7)
    standardized = InputTransform.fit("standardize", images)(images).transpose(0, 1).reshape(3, -1)
    assert standardized.mean(dim=1).abs().max() < 1e-4 and (standardized.std(dim=1) - 1).abs().max() < 1e-3


def test_zca_run_evaluates_and_predicts_with_its_training_transform(tmp_path):
    overrides = ["trainer.max_epochs=2", "trainer.limit_train_batches=20", "trainer.limit_test_batches=3"]
    metrics = run_here(tmp_path / "trained", "data.preprocess=zca_whiten", *overrides)
    assert metrics["test_acc"] > 0.5
    checkpoint = torch.load(metrics["best_checkpoint"], map_location="cpu", weights_only=True)
    matrix = checkpoint["state_dict"]["input_transform.matrix"]
    assert matrix.shape == (784, 784) and not torch.allclose(matrix, torch.eye(784) / 255)
    # evaluation on the same data must reuse the checkpoint's matrix: the same test accuracy exactly
    best = metrics["best_checkpoint"]
    evaluated = run_here(tmp_path / "evaluated", "train=false", f"ckpt_path={best}", overrides[-1])
    assert evaluated["test_acc"] == metrics["test_acc"]
    # the module alone, built from the checkpoint, preprocesses raw test pixels as in training: the same accuracy
    dm = MNISTSampleDataModule().load()
    pixels, labels = (part[: 3 * 64] for part in dm.splits["test"])  # limit_test_batches=3 of 64
    with torch.no_grad():
        predictions = load_module(metrics["best_checkpoint"])(pixels).argmax(dim=1)
    assert (predictions == labels).float().mean().item() == pytest.approx(metrics["test_acc"], abs=1e-6)
    refused = train(tmp_path, "train=false", f"ckpt_path={metrics['best_checkpoint']}", "data.preprocess=none")
    assert refused.returncode == 2 and "has no effect with train=false" in refused.stderr
    # predict whitens image files with the same matrix: test digits saved as PNG are mostly recognised
    images, labels = dm.splits["test"][0][:40], dm.splits["test"][1][:40]
    truth = {}
    for number, (image, label) in enumerate(zip(images, labels, strict=True)):
        truth[tmp_path / f"digit{number}.png"] = str(int(label))
        Image.fromarray(image[0].numpy()).save(tmp_path / f"digit{number}.png")
    predictions = predict(metrics["best_checkpoint"], list(truth), top_k=1, resize=False)
    assert sum(ranked[0][0] == truth[path] for path, ranked in predictions) >= 0.5 * len(truth)


@pytest.mark.slow  # a 3072 x 3072 whitening matrix; in the full suite and CI
def test_zca_whitening_on_cifar_shaped_files_keeps_the_layout_for_lenet(tmp_path, dataset_root, caplog):
    metrics = run_here(
        tmp_path,
        "data=cifar10",
        f"data.root={dataset_root}",
        "data.download=false",
        "data.verify_checksums=false",
        "data.preprocess=zca_whiten",
        "model=cnn",
        "trainer.max_epochs=1",
    )
    checkpoint = torch.load(metrics["best_checkpoint"], map_location="cpu", weights_only=True)
    matrix = checkpoint["state_dict"]["input_transform.matrix"]
    assert matrix.shape == (3072, 3072) and torch.allclose(matrix, matrix.T, atol=1e-6 * matrix.abs().max())
    assert "pca_whiten outputs principal components" not in caplog.text
