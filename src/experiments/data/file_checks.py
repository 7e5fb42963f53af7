"""Dataset files that are there but wrong: each found before torchvision reads it, and named in one line.

torchvision answers a truncated MNIST file with a reshape error and a CIFAR file that fails its md5 with
"not found or corrupted", and both send the caller to a download that, offline, fails for a reason that
has nothing to do with the file. These checks run only when the files are present, and before
Lightning is imported (job.py): a bad file is named in about two seconds instead of five.
"""

import pickle
import struct
from pathlib import Path

from torchvision import datasets
from torchvision.datasets.utils import check_integrity

from experiments.errors import UserError

DATASET_CLASSES = {
    "mnist": datasets.MNIST,
    "fashion_mnist": datasets.FashionMNIST,
    "cifar10": datasets.CIFAR10,
    "cifar100": datasets.CIFAR100,
}

# IDX magic numbers: two zero bytes, 0x08 (unsigned bytes), then the number of dimensions.
IDX_DIMENSIONS = {"images": 3, "labels": 1}


def check_dataset_files(name: str, root: Path, verify_checksums: bool) -> None:
    """Files of data=NAME under root that are there but damaged, cut short or missing one of a set: one
    line naming the file. A root that is a file is refused too."""
    if root.is_file():
        raise UserError(f"data.root={root} is a file, not a folder: point it at the folder that holds the dataset")
    cls = DATASET_CLASSES[name]
    if hasattr(cls, "resources"):  # the MNIST family: ROOT/<class name>/raw/*-ubyte
        names = [Path(url).name.removesuffix(".gz") for url, _ in cls.resources]
        check_mnist_files(root / cls.__name__ / "raw", name, names)
    else:
        files = [(file, md5) for file, md5 in cls.train_list + cls.test_list]
        check_cifar_files(root / cls.base_folder, name, files, verify_checksums)


def redo(name: str) -> str:
    return f"delete it and download again (data={name} data.download=true), or point data.root at a good copy"


def check_mnist_files(raw_folder: Path, name: str, file_names: list[str]) -> None:
    """The four uncompressed IDX files: all present, each header well formed, each file as long as its
    header says, and as many labels as images."""
    present = [file for file in file_names if (raw_folder / file).is_file()]
    if not present:
        return  # not there at all: the ordinary "not found" or download path
    missing = [file for file in file_names if file not in present]
    if missing:
        raise UserError(
            f"data={name}: {raw_folder} holds {len(present)} of the {len(file_names)} files; "
            f"{', '.join(missing)} is missing: download the dataset again or copy the file there"
        )
    counts = {}
    for file in file_names:
        path = raw_folder / file
        kind = "images" if "images" in file else "labels"
        header = path.read_bytes()[:16]
        dims = IDX_DIMENSIONS[kind]
        if len(header) < 4 + 4 * dims or header[:3] != b"\x00\x00\x08" or header[3] != dims:
            raise UserError(
                f"data={name}: {path} is not an IDX {kind} file (its first bytes are {header[:4].hex()}, "
                f"expected 000008{dims:02x}); {redo(name)}"
            )
        shape = struct.unpack(f">{dims}i", header[4 : 4 + 4 * dims])
        if kind == "images" and shape[1:] != (28, 28):
            raise UserError(f"data={name}: {path} holds {shape[1]}x{shape[2]} images, not 28x28; {redo(name)}")
        expected = 4 + 4 * dims + shape[0] * (784 if kind == "images" else 1)
        size = path.stat().st_size
        if size != expected:
            state = "cut short" if size < expected else "longer than its header says"
            raise UserError(
                f"data={name}: {path} is {state}: its header promises {shape[0]} {kind} "
                f"({expected} bytes) but it has {size} bytes; {redo(name)}"
            )
        counts.setdefault(file.split("-")[0], {})[kind] = shape[0]
    for split, found in counts.items():
        if found.get("images") != found.get("labels"):
            raise UserError(
                f"data={name}: {raw_folder} has {found['images']} {split} images but {found['labels']} labels; "
                f"{redo(name)}"
            )


def check_cifar_files(folder: Path, name: str, files: list[tuple[str, str | None]], verify: bool) -> None:
    """Each batch file present, passing its md5 (unless data.verify_checksums=false) and unpickling."""
    present = [file for file, _ in files if (folder / file).is_file()]
    if not present:
        return
    for file, md5 in files:
        path = folder / file
        if not path.is_file():
            raise UserError(f"data={name}: {path} is missing; download the dataset again or copy the file there")
        if verify and md5 and not check_integrity(str(path), md5):
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
