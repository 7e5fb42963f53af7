"""The MNIST family read from any folder layout users have: torchvision's ROOT/<class>/raw/ or the four files
straight in ROOT (as Debian's package keeps them), gzipped or not, without writing into the folder."""

import gzip

import pytest
import torch

from experiments.config.errors import UserError
from experiments.data.synthetic_files import write_mnist_family
from experiments.data.torchvision_sets import TorchvisionDataModule


def listing(folder) -> dict[str, tuple[int, int]]:
    """Every file under folder with its size and modification time: what a read must leave as it was."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


def splits_of(name: str, root) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    module = TorchvisionDataModule(name, root=str(root), download=False)
    module.setup()
    return module.splits


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
@pytest.mark.parametrize(("flat", "gzipped"), [(True, True), (True, False), (False, True)])
def test_every_layout_reads_the_same_images_as_torchvisions_and_writes_nothing(tmp_path, name, flat, gzipped):
    folder = "MNIST" if name == "mnist" else "FashionMNIST"
    write_mnist_family(tmp_path / "torchvision", folder)
    write_mnist_family(tmp_path / "other", folder, flat=flat, gzipped=gzipped)
    before = listing(tmp_path / "other")
    expected, found = splits_of(name, tmp_path / "torchvision"), splits_of(name, tmp_path / "other")
    for split in ("train", "val", "test"):
        assert torch.equal(found[split][0], expected[split][0]) and torch.equal(found[split][1], expected[split][1])
    assert found["test"][0].shape == (40, 1, 28, 28) and found["test"][0].dtype == torch.uint8
    assert listing(tmp_path / "other") == before  # nothing unpacked or added beside the files


def test_a_flat_folder_missing_a_file_names_it(tmp_path):
    write_mnist_family(tmp_path, "FashionMNIST", flat=True, gzipped=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(UserError) as refused:
        splits_of("fashion_mnist", tmp_path)
    assert str(refused.value) == (
        f"data=fashion_mnist: {tmp_path} holds 3 of the 4 files; t10k-labels-idx1-ubyte is missing: "
        "download the dataset again or copy the file there"
    )


def test_a_gzipped_file_cut_short_is_named_before_it_is_read(tmp_path):
    write_mnist_family(tmp_path, "MNIST", flat=True, gzipped=True)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(UserError, match=r"train-images-idx3-ubyte.gz is damaged or cut short"):
        splits_of("mnist", tmp_path)


def test_a_gzipped_file_damaged_inside_is_one_line(tmp_path):
    write_mnist_family(tmp_path, "MNIST", flat=True, gzipped=False)
    path = tmp_path / "t10k-images-idx3-ubyte"
    content = path.read_bytes()
    packed = bytearray(gzip.compress(content))
    packed[len(packed) // 2] ^= 0xFF  # a flipped byte in the middle of the stream; the trailer still right
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(bytes(packed))
    path.unlink()
    with pytest.raises(UserError, match=r"t10k-images-idx3-ubyte.gz does not read back"):
        splits_of("mnist", tmp_path)


def test_a_file_read_again_in_one_process_is_decoded_once_and_a_changed_file_is_read_anew(tmp_path):
    from experiments.data.idx_files import read_idx

    write_mnist_family(tmp_path, "MNIST", flat=True, gzipped=True)
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    first = read_idx(path)
    assert read_idx(path) is first  # a sweep's trials in one process share the decoded array
    changed = gzip.decompress(path.read_bytes())
    changed = changed[:8] + bytes((label + 1) % 10 for label in changed[8:])  # IDX labels: 8-byte header
    path.write_bytes(gzip.compress(changed))
    again = read_idx(path)
    assert torch.equal(again, (first + 1) % 10)
