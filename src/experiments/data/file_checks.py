"""Dataset files that are there but wrong: each found before torchvision reads it, and named in one line.

torchvision answers a truncated MNIST file with a reshape error and a CIFAR file that fails its md5 with
"not found or corrupted", and both send the caller to a download that, offline, fails for a reason that
has nothing to do with the file. These checks run only when the files are present, and before
Lightning is imported (preflight.py): a bad file is named in about two seconds instead of five.
"""

import functools
import pickle
from pathlib import Path

from omegaconf import DictConfig

from experiments.config.errors import UserError
from experiments.data.idx_files import check_idx_files, file_names, locate, packaged_copy, redo


def dataset_class(name: str):
    """torchvision's class for data.name, imported only for a torchvision set (the embedded sample needs none)."""
    from torchvision import datasets

    classes = {
        "mnist": datasets.MNIST,
        "fashion_mnist": datasets.FashionMNIST,
        "cifar10": datasets.CIFAR10,
        "cifar100": datasets.CIFAR100,
    }
    return classes[name]


def check_data_files(cfg: DictConfig) -> None:
    """The files of a torchvision set (data.name and data.root) that are there but wrong; nothing for the sample."""
    if "name" in cfg.data and "root" in cfg.data:
        check_dataset_files(cfg.data.name, Path(cfg.data.root).expanduser().resolve(), cfg.data.verify_checksums)


def check_dataset_files(name: str, root: Path, verify_checksums: bool) -> None:
    """Files of data=NAME under root that are there but damaged, cut short or missing one of a set: one
    line naming the file. A root that is a file is refused too."""
    if root.is_file():
        raise UserError(f"data.root={root} is a file, not a folder: point it at the folder that holds the dataset")
    cls = dataset_class(name)
    if hasattr(cls, "resources"):  # the MNIST family: four IDX files, in torchvision's layout or not
        if located := locate(root, cls) or packaged_copy(name, cls):
            check_idx_files(*located, name, file_names(cls))
    else:
        files = [(file, md5) for file, md5 in cls.train_list + cls.test_list]
        check_cifar_files(root / cls.base_folder, name, files, verify_checksums)


def check_cifar_files(folder: Path, name: str, files: list[tuple[str, str | None]], verify: bool) -> None:
    """Each batch file present, passing its md5 (unless data.verify_checksums=false) and unpickling."""
    present = [file for file, _ in files if (folder / file).is_file()]
    if not present:
        return
    for file, md5 in files:
        path = folder / file
        if not path.is_file():
            raise UserError(f"data={name}: {path} is missing; download the dataset again or copy the file there")
        if verify and md5 and not md5_matches(str(path), md5, *size_and_time(path)):
            raise UserError(
                f"data={name}: {path} fails torchvision's md5 check (damaged or altered); {redo(name)}, "
                "or pass data.verify_checksums=false if you trust this copy"
            )
    if not verify:  # no checksum vouched for them: at least each must read back whole
        for file, _ in files:
            path = folder / file
            try:
                with open(path, "rb") as handle:
                    pickle.load(handle, encoding="latin1")  # torchvision's own way of reading these files
            except (EOFError, pickle.UnpicklingError, ValueError, IndexError) as err:
                raise UserError(
                    f"data={name}: {path} does not read back ({type(err).__name__}); {redo(name)}"
                ) from None


def size_and_time(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


@functools.lru_cache(maxsize=64)
def md5_matches(path: str, md5: str, size: int, mtime_ns: int) -> bool:
    """torchvision's md5 check, once per file while its size and time stay the same: a sweep's preflight asks for
    every trial, and CIFAR's six batches take about half a second to hash."""
    from torchvision.datasets.utils import check_integrity

    return check_integrity(path, md5)
