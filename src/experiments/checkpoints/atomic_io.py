"""Checkpoints written so that a crash never leaves half of one."""

import os
from pathlib import Path

import torch
from lightning.fabric.plugins import TorchCheckpointIO

from experiments.records.disk_full import DiskFull, no_space_in, remove_quietly


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, made crash-safe on a local disk: the file is written beside its final
    name (NAME.partial), flushed to the disk, then renamed over it. A kill at any moment leaves the previous
    complete checkpoint in place. (Lightning's own writer stages the file in the system's temporary folder,
    and moving it from there is a copy, not a rename, when that folder is another file system.)"""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        try:
            with open(partial, "wb") as file:
                torch.save(checkpoint, file)
                file.flush()
                os.fsync(file.fileno())
        except BaseException as err:  # a kill, a full disk: no half-written file is left to fill the disk
            remove_quietly(partial)
            if no_space_in(err):
                raise DiskFull(path) from err
            raise
        os.replace(partial, path)
