"""MNIST, FashionMNIST, CIFAR-10 and CIFAR-100 through torchvision's own dataset classes.

The official test split is the test set; validation is carved out of train, stratified and fixed by
`split_seed`. Offline, a missing dataset is one clear error instead of a URLError traceback.
"""

import logging
from pathlib import Path

import torch

from experiments.config.errors import UserError
from experiments.config.rules import check_value
from experiments.data.file_checks import check_dataset_files, dataset_class
from experiments.data.idx_files import install_hint, locate, packaged_copy, read_idx
from experiments.data.in_memory import InMemoryDataModule, Split, stratified_split

log = logging.getLogger(__name__)


def without_md5(cls: type) -> type:
    """A CIFAR class that checks its files exist but skips their md5 (data.verify_checksums=false)."""
    return type(
        f"{cls.__name__}WithoutMD5",
        (cls,),
        {
            # torchvision's check_integrity(path, None) tests only that the file exists.
            "train_list": [[name, None] for name, _ in cls.train_list],
            "test_list": [[name, None] for name, _ in cls.test_list],
            "meta": {**cls.meta, "md5": None},
        },
    )


class TorchvisionDataModule(InMemoryDataModule):
    def __init__(
        self,
        name: str,
        root: str = "data",
        download: bool = True,
        verify_checksums: bool = True,
        batch_size: int = 64,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        pipeline: str = "tensor",
        augment: dict | None = None,
    ):
        super().__init__(batch_size, pipeline, augment)
        check_value("data.name", name)
        self.name = name
        self.hflip_default = name != "mnist"  # digits are not mirror-symmetric; clothes and CIFAR objects are
        self.root = Path(root).expanduser().resolve()
        self.download = download
        self.verify_checksums = verify_checksums
        self.dataset_class = dataset_class(name)
        if not verify_checksums and hasattr(self.dataset_class, "meta"):
            self.dataset_class = without_md5(self.dataset_class)
        self.val_fraction = val_fraction
        self.split_seed = split_seed

    def load_splits(self) -> tuple[dict[str, Split], list[str]]:
        self._check_files()
        if hasattr(self.dataset_class, "resources"):  # the MNIST family: IDX files read in place
            (train_images, train_labels), test = self._read_idx_splits()
            classes = list(self.dataset_class.classes)
        else:  # CIFAR: torchvision's class, which reads the class names from the files' meta
            train_set = self._open(True)
            (train_images, train_labels), test = _as_tensors(train_set), _as_tensors(self._open(False))
            classes = list(train_set.classes)
        train, val = stratified_split(train_labels, [1.0 - self.val_fraction, self.val_fraction], self.split_seed)
        splits = {
            "train": (train_images[train], train_labels[train]),
            "val": (train_images[val], train_labels[val]),
            "test": test,
        }
        return splits, classes

    def _read_idx_splits(self) -> tuple[Split, Split]:
        """(train, test) from the four IDX files under root, in torchvision's layout or straight in root,
        gzipped or not; else the system package's copy, said in one line; else torchvision's download."""
        located = locate(self.root, self.dataset_class)
        if located is None and (located := packaged_copy(self.name, self.dataset_class)):
            log.info(f"data={self.name}: no dataset files in {self.root}; reading the installed copy in {located[0]}")
        if located is None:
            self._open(train=True), self._open(train=False)  # downloads, or one line saying why it cannot
            located = locate(self.root, self.dataset_class)
        found = located[1]  # checked by _check_files, or just downloaded and checked by torchvision
        splits = []
        for prefix in ("train", "t10k"):
            images = read_idx(found[f"{prefix}-images-idx3-ubyte"])
            labels = read_idx(found[f"{prefix}-labels-idx1-ubyte"])
            splits.append((images.unsqueeze(1).contiguous(), labels.long()))
        return splits[0], splits[1]

    def _open(self, train: bool):
        try:  # read what is there first: no network needed, no download banner
            return self.dataset_class(str(self.root), train=train, download=False)
        except RuntimeError:
            if not self.download:
                raise UserError(self._missing_message("data.download=false")) from None
        made = [folder for folder in self._download_folders() if not folder.exists()]
        try:
            return self.dataset_class(str(self.root), train=train, download=True)
        except Exception as err:  # URLError, HTTPError, RuntimeError from the mirrors, md5 mismatch
            for folder in reversed(made):  # a failed download leaves no empty folders behind
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
            reason = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
            raise UserError(self._missing_message(f"download failed: {reason}")) from None

    def _download_folders(self) -> list[Path]:
        """The folders a download creates, outermost first: root, then the dataset's own (and raw/)."""
        cls = self.dataset_class
        if hasattr(cls, "resources"):  # the MNIST family keeps its files in ROOT/<class name>/raw
            return [self.root, self.root / cls.__name__, self.root / cls.__name__ / "raw"]
        return [self.root, self.root / cls.base_folder]

    def _check_files(self) -> None:
        """Files that are there but damaged, cut short or missing one of a set: one line naming the file.
        (the preflight runs the same checks earlier; this covers a data module built any other way.)"""
        check_dataset_files(self.name, self.root, self.verify_checksums)

    def _missing_message(self, why: str) -> str:
        folder = self.root / getattr(self.dataset_class, "base_folder", self.dataset_class.__name__)
        if hasattr(self.dataset_class, "meta") and folder.is_dir() and "WithoutMD5" not in self.dataset_class.__name__:
            return (
                f"data={self.name}: the files in {folder} are incomplete or fail torchvision's md5 check ({why}); "
                "re-download them, or pass data.verify_checksums=false if you trust this copy"
            )
        return (
            f"data={self.name}: dataset not found in {self.root} ({why}); put torchvision's files there or "
            f"pass data.root=DIR, use data.download=true on a machine with network{install_hint(self.name)}, "
            "or try data=mnist_sample"
        )


def _as_tensors(dataset) -> Split:
    """A CIFAR set's numpy uint8 (N, H, W, C) images as (N, C, H, W), with its labels."""
    images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2)
    return images.contiguous(), torch.as_tensor(dataset.targets, dtype=torch.long)
