"""The datamodule base: splits as uint8 tensors (on the accelerator when there is one), whole-batch
indexing, and augmentation of training batches after transfer. No per-sample PIL work in the loop."""

import math
from collections.abc import Iterator

import lightning as L
import torch
from torch import Tensor
from torchvision import transforms

from experiments.config.errors import UserError
from experiments.config.rules import check_value
from experiments.data.augment import build_augmenter
from experiments.data.per_sample import PerSampleDataset, PerSampleLoader, ShuffledOrder

Split = tuple[Tensor, Tensor]  # images uint8 (N, C, H, W), labels int64 (N,)


class TensorBatches:
    """An epoch of (images, labels) batches cut from in-memory tensors by a (shuffled) index.

    Under DDP each of `ranks` processes takes every ranks-th example of the same order (the shuffling
    generator is seeded alike on every rank), so the shards never overlap. Training drops the last
    count % ranks examples of the order, so every rank takes the same number of steps; evaluation keeps
    them all, so each example is counted exactly once in the synchronized metrics."""

    def __init__(self, split: Split, batch_size: int, generator: torch.Generator | None, rank: int = 0, ranks: int = 1):
        self.images, self.labels = split
        self.batch_size = batch_size
        self.generator = generator  # None: keep the stored order (validation and test)
        self.rank, self.ranks = rank, ranks
        self.before_epoch: Tensor | None = None  # the generator's state before this epoch's draw
        self.stopped_after: int | None = None  # batches trained when a run stopped mid-epoch
        self.resume_at: tuple[Tensor, int] | None = None  # (state before the draw, batches to skip)

    # Lightning keeps a loader's state in every checkpoint. Only a checkpoint written in the middle of an
    # epoch (StopAtStep: Ctrl-C, SIGTERM, SIGUSR1) carries one: the resumed epoch redraws the same order and
    # goes on at the next batch, as the unbroken run would. At an epoch's end the datamodule's generator
    # state is all a resumed run needs, so the state is empty.
    def state_dict(self) -> dict:
        if self.stopped_after is None or self.generator is None:
            return {}
        return {"generator_before_epoch": self.before_epoch, "batches_done": self.stopped_after}

    def load_state_dict(self, state: dict) -> None:
        if state:
            self.resume_at = (state["generator_before_epoch"], state["batches_done"])

    def stop_mid_epoch(self, batches_done: int) -> None:
        """Called before the checkpoint of a run stopped after `batches_done` batches of this epoch."""
        self.stopped_after = batches_done

    def __len__(self) -> int:
        return math.ceil(len(self.shard(torch.arange(len(self.labels)))) / self.batch_size)

    def shard(self, order: Tensor) -> Tensor:
        """This rank's part of an epoch's order."""
        if self.ranks == 1:
            return order
        if self.generator is not None:  # training: equal shares, or DDP's gradient sync would wait forever
            order = order[: len(order) - len(order) % self.ranks]
        return order[self.rank :: self.ranks]

    def __iter__(self) -> Iterator[Split]:
        count, skip = len(self.labels), 0
        if self.generator is None:
            order = torch.arange(count, device=self.images.device)
        else:
            if self.resume_at is not None:  # a run stopped mid-epoch: the same order, from the next batch
                state, skip = self.resume_at
                self.generator.set_state(state)
                self.resume_at = None
            self.before_epoch = self.generator.get_state()
            order = torch.randperm(count, generator=self.generator).to(self.images.device)
        order = self.shard(order)
        count = len(order)
        for start in range(skip * self.batch_size, count, self.batch_size):
            index = order[start : start + self.batch_size]
            # index_select, not images[index]: ten times faster for a uint8 batch on a CPU (3 vs 33 us)
            yield self.images.index_select(0, index), self.labels.index_select(0, index)


def stratified_split(labels: Tensor, fractions: list[float], seed: int) -> list[Tensor]:
    """Index tensors, one per fraction, each holding that share of every class. Same seed, same split.

    Each sample gets its quantile position within its (shuffled) class, and the whole set is cut at
    the global fractions: sizes are exact overall even when a class has fewer members than parts."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=generator)
    position = torch.empty(len(labels), dtype=torch.float64)
    for label in labels.unique():
        members = order[labels[order] == label]
        position[members] = (torch.arange(len(members), dtype=torch.float64) + 0.5) / len(members)
    ranked = order[position[order].argsort(stable=True)]  # ties keep the random order
    bounds = (torch.tensor(fractions, dtype=torch.float64).cumsum(0) * len(labels)).round().long().tolist()
    starts = [0, *bounds[:-1]]
    return [ranked[start:end].sort().values for start, end in zip(starts, bounds, strict=True)]


class InMemoryDataModule(L.LightningDataModule):
    """Serves pixels: subclasses implement `load_splits`; this class holds the splits, cuts batches and
    augments training batches. Preprocessing (standardize, whiten) is the model's first layer, not data.

    pipeline="tensor" (default) serves whole uint8 batches by index (on the accelerator when there is one);
    pipeline="torchvision" is the note's per-sample path: PIL image -> ToTensor through a DataLoader (slow).
    `augment` holds the regularization.augment options; augmentation runs on training batches only."""

    name = "in_memory"
    hflip_default = True  # digit datasets turn it off: a mirrored 3 is not a 3

    def __init__(self, batch_size: int, pipeline: str = "tensor", augment: dict | None = None):
        super().__init__()
        check_value("data.batch_size", batch_size)
        check_value("data.pipeline", pipeline)
        self.batch_size = batch_size
        self.pipeline = pipeline
        self.augment_options = augment or {}
        self.splits: dict[str, Split] = {}
        self.class_names: list[str] = []
        self.augmenter: torch.nn.Module | None = None
        # Drawn from the global RNG, so seed_everything(seed) fixes the shuffling order too.
        shuffle_seed = int(torch.randint(0, 2**62, (1,)).item())
        self.shuffle_generator = torch.Generator().manual_seed(shuffle_seed)

    def load_splits(self) -> tuple[dict[str, Split], list[str]]:
        """Return {"train", "val", "test"} -> (uint8 images, int64 labels), and the class names."""
        raise NotImplementedError

    def load(self) -> "InMemoryDataModule":
        """Read the splits into memory (once). Before any Trainer exists, so the model can take its
        input shape and class count, and its preprocessing statistics, from the data."""
        if not self.splits:
            self.splits, self.class_names = self.load_splits()
            for split, (images, _) in self.splits.items():
                if len(images) == 0:
                    raise UserError(f"data={self.name}: the {split} split is empty; adjust the split fractions")
            # the crop size comes from the images
            self.augmenter = build_augmenter(self.augment_options, self.hflip_default, self.input_shape[1:])
        return self

    def setup(self, stage: str | None = None) -> None:
        """Lightning's hook: splits to the trainer's device (host memory for the PIL path)."""
        self.load()
        device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        if self.pipeline == "torchvision":
            device = torch.device("cpu")  # PIL works on host memory; the DataLoader's batches are moved
        self.splits = {k: (x.to(device), y.to(device)) for k, (x, y) in self.splits.items()}

    def probe_batch(self, size: int) -> Split:
        """`size` training examples, the same ones on every call: drawn by a fixed permutation, never by the
        shuffling generator, so the sanity checks leave the training order untouched."""
        images, labels = self.load().splits["train"]
        index = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))[:size]
        return images[index], labels[index]

    @property
    def train_images(self) -> Tensor:
        """The training split's uint8 pixels: what preprocessing statistics are fitted on."""
        return self.load().splits["train"][0]

    @property
    def val_images(self) -> int:
        """The validation split's size: one image is 1/val_images of validation accuracy."""
        return len(self.load().splits["val"][1])

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.load().splits["train"][0].shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.load().class_names)

    def describe(self) -> dict:
        """What a checkpoint needs to name its predictions: plain containers only."""
        return {"name": self.name, "class_names": list(self.load().class_names)}

    def _loader(self, split: str, shuffle: bool) -> TensorBatches | PerSampleLoader:
        generator = self.shuffle_generator if shuffle else None
        if self.pipeline == "tensor":  # under DDP, this rank's shard (Lightning shards DataLoaders itself)
            rank, ranks = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
            return TensorBatches(self.splits[split], self.batch_size, generator, rank, ranks)
        dataset = PerSampleDataset(self.splits[split], transforms.ToTensor())
        # The sampler draws randperm(n, generator) once an epoch, as TensorBatches does, so both paths shuffle
        # alike; the DataLoader gets its own generator because it draws a worker seed from it before sampling.
        sampler = ShuffledOrder(len(dataset), generator) if shuffle else None
        return PerSampleLoader(dataset, batch_size=self.batch_size, sampler=sampler, generator=torch.Generator())

    def train_dataloader(self) -> TensorBatches | PerSampleLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> TensorBatches | PerSampleLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> TensorBatches | PerSampleLoader:
        return self._loader("test", shuffle=False)

    def on_after_batch_transfer(self, batch: Split, dataloader_idx: int) -> Split:
        images, labels = batch
        if self.trainer is not None and self.trainer.training:
            images = self.augment(images)
        return images, labels

    def augment(self, pixels: Tensor) -> Tensor:
        """Training augmentation with fresh random parameters per sample; the pixels unchanged when it is off.
        kornia works on floats in [0, 1], which the model's preprocessing reads as such."""
        if self.augmenter is None:
            return pixels
        self.augmenter.to(pixels.device)
        return self.augmenter(pixels.float() / 255.0 if pixels.dtype == torch.uint8 else pixels)

    # The shuffling RNG travels in checkpoints, so a resumed run sees the batches an unbroken run would.
    def state_dict(self) -> dict:
        return {"shuffle_rng": self.shuffle_generator.get_state()}

    def load_state_dict(self, state_dict: dict) -> None:
        self.shuffle_generator.set_state(state_dict["shuffle_rng"])
