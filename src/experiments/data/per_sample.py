"""The note's per-sample path (data.pipeline=torchvision): a Dataset that turns each uint8 image into a PIL
image and through a torchvision transform, and a DataLoader that resumes mid-epoch as the fast path does.

A run stopped in the middle of an epoch (Ctrl-C, SIGTERM, SIGUSR1: training/callbacks/interrupt.py) writes the
loader's state into its checkpoint: the shuffling generator's state before the epoch's draw and the batches
done. Lightning hands it back on resume, so the resumed epoch redraws the same order and goes on at the
next batch, as the unbroken run would. At an epoch's end the state is empty: the datamodule's generator
state is all a resumed run needs.
"""

import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

Split = tuple[Tensor, Tensor]  # images uint8 (N, C, H, W), labels int64 (N,)


class PerSampleDataset(Dataset):
    """The note's path, kept for comparison and custom transforms: each item goes uint8 -> PIL image
    -> torchvision transform (ToTensor by default), exactly as torchvision's own MNIST and CIFAR classes do."""

    def __init__(self, split: Split, transform):
        self.images, self.labels = split
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        pixels = self.images[index].permute(1, 2, 0).squeeze(-1).numpy()  # HxW (gray) or HxWxC
        return self.transform(Image.fromarray(pixels)), int(self.labels[index])


class ShuffledOrder(Sampler[int]):
    """An epoch's training order: one randperm from the datamodule's shuffling generator."""

    def __init__(self, count: int, generator: torch.Generator):
        self.count, self.generator = count, generator
        self.before_epoch: Tensor | None = None  # the generator's state before this epoch's draw
        self.resume_at: tuple[Tensor, int] | None = None  # (state before the draw, examples to skip)

    def __len__(self) -> int:
        return self.count

    def __iter__(self):
        skip = 0
        if self.resume_at is not None:  # a run stopped mid-epoch: the same order, after what it trained
            state, skip = self.resume_at
            self.generator.set_state(state)
            self.resume_at = None
        self.before_epoch = self.generator.get_state()
        yield from torch.randperm(self.count, generator=self.generator)[skip:].tolist()


class PerSampleLoader(DataLoader):
    """torch's DataLoader with the state Lightning keeps for a stateful loader (empty but mid-epoch)."""

    stopped_after: int | None = None  # batches trained when a run stopped mid-epoch

    def stop_mid_epoch(self, batches_done: int) -> None:
        """Called before the checkpoint of a run stopped after `batches_done` batches of this epoch."""
        self.stopped_after = batches_done

    def state_dict(self) -> dict:
        if self.stopped_after is None or not isinstance(self.sampler, ShuffledOrder):
            return {}
        return {"generator_before_epoch": self.sampler.before_epoch, "batches_done": self.stopped_after}

    def load_state_dict(self, state: dict) -> None:
        if state and isinstance(self.sampler, ShuffledOrder):
            self.sampler.resume_at = (state["generator_before_epoch"], state["batches_done"] * self.batch_size)
