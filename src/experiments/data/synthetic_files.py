"""Write synthetic datasets in the exact on-disk formats torchvision's dataset classes read.

For offline tests and benchmarks: `python -m experiments.data.synthetic_files DIR` writes small copies
of all four, readable with `data.root=DIR data.download=false data.verify_checksums=false`. Images
carry a class-dependent bright square, so models can learn them, but nothing here is real data.
"""

import argparse
import gzip
import pickle
import struct
from pathlib import Path

import numpy as np


def _images(count: int, num_classes: int, shape: tuple[int, int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % num_classes  # every class present, in equal numbers
    channels, height, width = shape
    images = rng.integers(0, 60, size=(count, channels, height, width), dtype=np.uint8)
    for label in range(num_classes):
        row, col = divmod(label % 16, 4)
        images[labels == label, :, row * 6 : row * 6 + 6, col * 6 : col * 6 + 6] = 250
    return images, labels


def _write_idx(path: Path, array: np.ndarray, gzipped: bool) -> None:
    # IDX: zero, zero, dtype code 0x08 (ubyte), number of dims; then big-endian int32 sizes; then data.
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}i", *array.shape)
    content = header + array.astype(np.uint8).tobytes()
    if gzipped:
        path.with_name(f"{path.name}.gz").write_bytes(gzip.compress(content))
    else:
        path.write_bytes(content)


def write_mnist_family(
    root: Path, folder: str = "MNIST", train: int = 120, test: int = 40, flat: bool = False, gzipped: bool = False
) -> None:
    """MNIST or FashionMNIST (folder="FashionMNIST"): IDX files in ROOT/FOLDER/raw, torchvision's layout, or
    straight in ROOT (flat=True, as Debian's package keeps them); gzipped as the originals, or not."""
    raw = root if flat else root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, count, seed in (("train", train, 0), ("t10k", test, 1)):
        images, labels = _images(count, 10, (1, 28, 28), seed)
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", images[:, 0], gzipped)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels, gzipped)


def _pickle(path: Path, obj: dict) -> None:
    path.write_bytes(pickle.dumps(obj))


def write_cifar10(root: Path, per_batch: int = 30, test: int = 40) -> None:
    # torchvision always reads five training batches; per_batch sets the size of each.
    """CIFAR-10: five pickled training batches, a test batch and batches.meta in ROOT/cifar-10-batches-py."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(1, 6):
        images, labels = _images(per_batch, 10, (3, 32, 32), seed=index)
        _pickle(folder / f"data_batch_{index}", {"data": images.reshape(per_batch, -1), "labels": labels.tolist()})
    images, labels = _images(test, 10, (3, 32, 32), seed=9)
    _pickle(folder / "test_batch", {"data": images.reshape(test, -1), "labels": labels.tolist()})
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    _pickle(folder / "batches.meta", {"label_names": names})


def write_cifar100(root: Path, train: int = 400, test: int = 100) -> None:
    """CIFAR-100: pickled train and test files (fine and coarse labels) and meta in ROOT/cifar-100-python."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    for name, count, seed in (("train", train, 0), ("test", test, 1)):
        images, labels = _images(count, 100, (3, 32, 32), seed)
        entry = {
            "data": images.reshape(count, -1),
            "fine_labels": labels.tolist(),
            "coarse_labels": (labels // 5).tolist(),
        }
        _pickle(folder / name, entry)
    _pickle(folder / "meta", {"fine_label_names": [f"class_{i:02d}" for i in range(100)]})


WRITERS = {
    "mnist": write_mnist_family,
    "fashion_mnist": lambda root: write_mnist_family(root, folder="FashionMNIST"),
    "cifar10": write_cifar10,
    "cifar100": write_cifar100,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    parser.add_argument("root", type=Path, help="folder to write into (created if missing)")
    root = parser.parse_args().root
    for name, write in WRITERS.items():
        write(root)
        print(f"wrote {name} under {root}")


if __name__ == "__main__":
    main()
