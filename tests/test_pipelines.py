"""The note's per-sample torchvision path stays available and agrees with the fast tensor path."""

import pytest
import torch
from conftest import SMOKE, run_here

from experiments.data.mnist_sample import MNISTSampleDataModule
from experiments.data.preprocessing import InputTransform


@pytest.mark.parametrize("kind", ["standardize", "zca_whiten"])
def test_both_pipelines_reach_the_model_as_the_same_inputs_up_to_float_rounding(kind):
    fast, seed_style = MNISTSampleDataModule(pipeline="tensor"), MNISTSampleDataModule(pipeline="torchvision")
    for dm in (fast, seed_style):
        dm.shuffle_generator.manual_seed(7)
        dm.setup()
    fast_pixels, fast_labels = fast.on_after_batch_transfer(next(iter(fast.train_dataloader())), 0)
    seed_pixels, seed_labels = seed_style.on_after_batch_transfer(next(iter(seed_style.train_dataloader())), 0)
    assert torch.equal(fast_labels, seed_labels)  # same shuffling order from the same generator
    assert fast_pixels.dtype == torch.uint8 and seed_pixels.dtype == torch.float32  # ToTensor: floats on [0, 1]
    # The model's first layer reads either: uint8 on 0..255 or floats on [0, 1], the same numbers to rounding.
    transform = InputTransform.fit(kind, fast.train_images)
    assert torch.allclose(transform(fast_pixels), transform(seed_pixels), atol=1e-4)


def test_torchvision_pipeline_uses_per_sample_pil_transforms():
    dm = MNISTSampleDataModule(pipeline="torchvision")
    dm.setup()
    loader = dm.train_dataloader()
    assert isinstance(loader, torch.utils.data.DataLoader)
    image, _ = loader.dataset[0]
    assert image.shape == (1, 28, 28) and image.dtype == torch.float32 and 0 <= image.min() < image.max() <= 1


@pytest.mark.parametrize("augment", [True, False])
def test_per_sample_path_takes_whitening_and_augmentation(tmp_path, batch_probe, augment):
    """One owner for preprocessing (the model) and augmentation on batches: on the per-sample path too, the
    model's first stage is the ZCA fitted on the training split, and its batches come augmented."""
    chosen = ["data.pipeline=torchvision", "data.preprocess=zca_whiten", *(["regularization=[augment]"] * augment)]
    metrics = run_here(tmp_path, *chosen, "+callbacks.probe._target_=batch_probe.FirstBatch", *SMOKE)
    assert metrics["status"] == "completed"
    seen = batch_probe.FirstBatch.seen
    images, datamodule, module = seen["batch"][0], seen["datamodule"], seen["module"]
    assert module.input_transform.kind == "zca_whiten"
    fitted = InputTransform.fit("zca_whiten", datamodule.train_images)
    assert torch.allclose(module.input_transform.matrix, fitted.matrix, atol=1e-6)
    untouched = batch_probe.share_of_untouched_images(images, datamodule.train_images)
    assert untouched < 0.5 if augment else untouched == 1.0


@pytest.mark.slow
def test_same_accuracy_on_mnist_sample_for_the_same_seed(tmp_path):
    fast = run_here(tmp_path / "fast", "seed=5", "trainer.max_epochs=3")
    seed_style = run_here(tmp_path / "seed", "seed=5", "trainer.max_epochs=3", "data.pipeline=torchvision")
    # Same seed, same shuffling: only float rounding (~1e-7) differs, and it grows through training.
    # Different seeds move val acc by about 1 point here, so 1 point (5 of 500 val digits) separates
    # "the same within noise" from a broken path, which would be off by far more.
    assert seed_style["best_val_acc"] == pytest.approx(fast["best_val_acc"], abs=0.01)
    assert seed_style["test_acc"] == pytest.approx(fast["test_acc"], abs=0.01)


def epoch_labels(loader) -> list[torch.Tensor]:
    return [labels for _, labels in loader]


def test_both_pipelines_shuffle_alike_epoch_after_epoch():
    fast, seed_style = MNISTSampleDataModule(pipeline="tensor"), MNISTSampleDataModule(pipeline="torchvision")
    loaders = []
    for dm in (fast, seed_style):
        dm.shuffle_generator.manual_seed(11)
        dm.setup()
        loaders.append(dm.train_dataloader())
    for _ in range(2):  # one draw of the generator an epoch on both paths
        tensor_epoch, per_sample_epoch = (torch.cat(epoch_labels(loader)) for loader in loaders)
        assert torch.equal(tensor_epoch, per_sample_epoch)


def test_the_per_sample_path_resumes_mid_epoch_at_the_next_batch_of_the_same_order():
    """What Lightning does with a stateful loader: the stopped run's state, handed to a new run's loader."""
    unbroken_dm, stopped_dm, resumed_dm = (MNISTSampleDataModule(pipeline="torchvision") for _ in range(3))
    for dm, seed in ((unbroken_dm, 3), (stopped_dm, 3), (resumed_dm, 99)):  # the state decides, not the seed
        dm.shuffle_generator.manual_seed(seed)
        dm.setup()
    unbroken = epoch_labels(unbroken_dm.train_dataloader())
    stopped = stopped_dm.train_dataloader()
    assert stopped.state_dict() == {}  # nothing to resume at an epoch's end
    batches = iter(stopped)
    trained = [next(batches)[1] for _ in range(5)]
    stopped.stop_mid_epoch(5)
    resumed = resumed_dm.train_dataloader()
    resumed.load_state_dict(stopped.state_dict())
    rest = epoch_labels(resumed)
    assert len(trained) + len(rest) == len(unbroken)
    assert all(torch.equal(mine, theirs) for mine, theirs in zip(trained + rest, unbroken, strict=True))
