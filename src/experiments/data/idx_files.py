"""The MNIST family's four IDX files wherever users keep them: torchvision's ROOT/<class>/raw/ or the four
files straight in ROOT, gzipped or not. They are read in place, never unpacked into their folder, which may
be read-only (Debian's dataset packages are root-owned). Each file is checked before it is read: its
header, and its length against what the header promises."""

import functools
import gzip
import logging
import struct
import zlib
from pathlib import Path

from experiments.config.errors import UserError

log = logging.getLogger(__name__)

# Where Debian's package puts the whole dataset (apt-get install dataset-fashion-mnist), read when ROOT has none.
PACKAGED = {"fashion_mnist": (Path("/usr/share/datasets/fashion-mnist"), "dataset-fashion-mnist")}
DIMENSIONS = {"images": 3, "labels": 1}  # IDX: 00 00 08 (unsigned bytes) then the number of dimensions
UNREADABLE = (EOFError, OSError, zlib.error)  # gzip.BadGzipFile is an OSError


def file_names(dataset_class: type) -> list[str]:
    """train-images-idx3-ubyte and the three others, as torchvision's class names them (without .gz)."""
    return [Path(url).name.removesuffix(".gz") for url, _ in dataset_class.resources]


def redo(name: str) -> str:
    return f"delete it and download again (data={name} data.download=true), or point data.root at a good copy"


def found_in(folder: Path, names: list[str]) -> dict[str, Path]:
    """The files of `names` in folder, each as it is there or gzipped (the plain one first)."""
    found = {}
    for name in names:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                found[name] = candidate
                break
    return found


def locate(root: Path, dataset_class: type) -> tuple[Path, dict[str, Path]] | None:
    """(folder, {file name: path}) of the first layout under root holding any of the files: torchvision's
    ROOT/<class>/raw, then ROOT itself. None when root holds none of them."""
    names = file_names(dataset_class)
    for folder in (root / dataset_class.__name__ / "raw", root):
        if found := found_in(folder, names):
            return folder, found
    return None


def packaged_copy(name: str, dataset_class: type) -> tuple[Path, dict[str, Path]] | None:
    """The system package's complete copy of data=NAME, when one is installed."""
    if name not in PACKAGED:
        return None
    folder = PACKAGED[name][0]
    found = found_in(folder, file_names(dataset_class))
    return (folder, found) if len(found) == len(file_names(dataset_class)) else None


def install_hint(name: str) -> str:
    """How to get data=NAME from the system's packages, for the not-found line ('' where there is none)."""
    if name not in PACKAGED:
        return ""
    folder, package = PACKAGED[name]
    return f", or install it with apt-get install {package} (it goes to {folder})"


def idx_header(path: Path) -> tuple[int, tuple[int, ...], int]:
    """(number of dimensions, shape, length of the uncompressed file). A gzipped file's length is its
    trailer's ISIZE field, the uncompressed size modulo 2**32, which these files are far below."""
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as handle:
            header = handle.read(16)
    except UNREADABLE as err:
        raise UserError(f"{path} does not read back ({type(err).__name__}: {err})") from None
    if path.suffix == ".gz":
        with open(path, "rb") as handle:
            handle.seek(-4, 2)
            length = struct.unpack("<I", handle.read(4))[0]
    else:
        length = path.stat().st_size
    if len(header) < 4 or header[:3] != b"\x00\x00\x08" or header[3] not in (1, 3):
        return -1, (), length
    dims = header[3]
    if len(header) < 4 + 4 * dims:
        return -1, (), length
    return dims, struct.unpack(f">{dims}i", header[4 : 4 + 4 * dims]), length


def check_idx_files(folder: Path, found: dict[str, Path], name: str, names: list[str]) -> None:
    """All four present, each header well formed, each file as long as its header says, and as many labels
    as images: else one line naming the file."""
    missing = [file for file in names if file not in found]
    if missing:
        raise UserError(
            f"data={name}: {folder} holds {len(found)} of the {len(names)} files; {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} missing: download the dataset again or copy the file there"
        )
    counts: dict[str, dict[str, int]] = {}
    for file in names:
        path, kind = found[file], "images" if "images" in file else "labels"
        dims, shape, length = idx_header(path)
        if dims != DIMENSIONS[kind]:
            raise UserError(
                f"data={name}: {path} is not an IDX {kind} file (expected a header starting "
                f"000008{DIMENSIONS[kind]:02x}); {redo(name)}"
            )
        if kind == "images" and shape[1:] != (28, 28):
            raise UserError(f"data={name}: {path} holds {shape[1]}x{shape[2]} images, not 28x28; {redo(name)}")
        expected = 4 + 4 * dims + shape[0] * (784 if kind == "images" else 1)
        if length != expected:
            state = "cut short" if length < expected else "longer than its header says"
            state = "damaged or cut short" if path.suffix == ".gz" else state  # its trailer is then noise
            raise UserError(
                f"data={name}: {path} is {state}: its header promises {shape[0]} {kind} "
                f"({expected} bytes) but it holds {length} bytes; {redo(name)}"
            )
        counts.setdefault(file.split("-")[0], {})[kind] = shape[0]
    for split, count in counts.items():
        if count["images"] != count["labels"]:
            raise UserError(
                f"data={name}: {folder} has {count['images']} {split} images but {count['labels']} labels; {redo(name)}"
            )


def read_idx(path: Path):
    """The file's array as a uint8 tensor of the shape its header gives. Kept per process, keyed by the
    file's identity, so the trials of a sweep in one process decode a 30 MB .gz once; callers copy before
    they change it (indexing and float conversion do)."""
    stat = path.stat()
    return _read_idx(path.resolve(), stat.st_ino, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)  # one dataset's four files, twice over
def _read_idx(path: Path, inode: int, mtime_ns: int, size: int):
    import torch

    dims, shape, _ = idx_header(path)
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as handle:
            content = handle.read()
    except UNREADABLE as err:  # a gzip stream damaged past its header
        raise UserError(f"{path} does not read back ({type(err).__name__}: {err})") from None
    return torch.frombuffer(bytearray(content), dtype=torch.uint8, offset=4 + 4 * dims).view(*shape)
