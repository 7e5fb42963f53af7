"""Bad input that is a file, typed as a user would name it: a checkpoint, a dataset's files, a run directory.
Each is one line naming the file and what is wrong with it; exit 2; no traceback; earlier outputs untouched."""

import struct
from pathlib import Path

import pytest
import torch
from conftest import REPO, train

from experiments.data.synthetic_files import write_cifar10, write_mnist_family

FIXTURE_CKPT = REPO / "tests" / "fixtures" / "mlp16_sgd_v0.1.ckpt"


def assert_one_line_refusal(tmp_path, result, expected: list[str]) -> None:
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in expected:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.stdout + result.stderr


# --- inputs that are files: checkpoints, datasets, run directories ------------------------------------


def checkpoint_cases(tmp: Path) -> dict[str, tuple[list[str], list[str]]]:
    """name -> (overrides, fragments of the one line); the files are written into tmp."""
    (tmp / "garbage.ckpt").write_bytes(bytes(range(256)) * 4)
    (tmp / "empty.ckpt").write_bytes(b"")
    (tmp / "cut.ckpt").write_bytes(FIXTURE_CKPT.read_bytes()[:4000])
    (tmp / "notes.ckpt").write_text("this is a note, not a checkpoint\n")
    torch.save({"state_dict": {}, "payload": CreatesAFile(tmp / "created-by-unpickling")}, tmp / "pickled.ckpt")
    evaluate = ["train=false", "ckpt_path={}"]
    return {
        "garbage checkpoint": (fill(evaluate, tmp / "garbage.ckpt"), ["garbage.ckpt is not a checkpoint", "zip"]),
        "empty checkpoint": (fill(evaluate, tmp / "empty.ckpt"), ["empty.ckpt is empty"]),
        "truncated checkpoint": (fill(evaluate, tmp / "cut.ckpt"), ["cut.ckpt is damaged or cut short"]),
        "text file as checkpoint": (fill(evaluate, tmp / "notes.ckpt"), ["notes.ckpt is a text file"]),
        "folder as checkpoint": (fill(evaluate, tmp), ["is a folder", "checkpoints/last.ckpt"]),
        "pickled checkpoint, evaluated": (fill(evaluate, tmp / "pickled.ckpt"), ["pickled.ckpt holds Python objects"]),
        "pickled checkpoint, resumed": ([f"ckpt_path={tmp / 'pickled.ckpt'}"], ["pickled.ckpt holds Python objects"]),
        "wrong-architecture checkpoint": (
            [f"ckpt_path={FIXTURE_CKPT}", "model.hidden_sizes=[8]"],
            ["was trained with model.hidden_sizes=[16], not [8]"],
        ),
        "checkpoint of another model": ([f"ckpt_path={FIXTURE_CKPT}", "model=cnn"], ["holds a MLP, not a LeNet"]),
    }


class CreatesAFile:
    """Unpickling this creates a file: what a malicious checkpoint would do."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def fill(template: list[str], value) -> list[str]:
    return [item.format(value) for item in template]


def dataset_cases(tmp: Path) -> dict[str, tuple[list[str], list[str]]]:
    """Each case gets its own copy of the synthetic files, then damages it."""
    cases = {}

    def mnist(name: str, damage, expected: list[str]) -> None:
        root = tmp / name.replace(" ", "_")
        write_mnist_family(root)
        damage(root / "MNIST" / "raw")
        cases[name] = (["data=mnist", f"data.root={root}", "data.download=false"], ["data=mnist", *expected])

    def cut(raw: Path) -> None:
        path = raw / "train-images-idx3-ubyte"
        path.write_bytes(path.read_bytes()[:5000])

    def wrong_magic(raw: Path) -> None:
        path = raw / "t10k-labels-idx1-ubyte"
        path.write_bytes(b"\x00\x00\x08\x03" + path.read_bytes()[4:])

    def wrong_shape(raw: Path) -> None:
        path = raw / "train-images-idx3-ubyte"
        data = path.read_bytes()
        path.write_bytes(data[:8] + struct.pack(">ii", 32, 32) + data[16:])

    mnist("truncated IDX file", cut, ["train-images-idx3-ubyte is cut short", "delete it and download again"])
    mnist("IDX file with a wrong magic number", wrong_magic, ["t10k-labels-idx1-ubyte is not an IDX labels file"])
    mnist("IDX file with a wrong shape", wrong_shape, ["holds 32x32 images, not 28x28"])
    mnist("missing IDX file", lambda raw: (raw / "t10k-labels-idx1-ubyte").unlink(), ["3 of the 4 files", "missing"])
    flat = tmp / "flat_gzipped"  # the four files straight in data.root, as Debian's package keeps them
    write_mnist_family(flat, "FashionMNIST", flat=True, gzipped=True)
    (flat / "t10k-images-idx3-ubyte.gz").unlink()
    cases["flat folder missing a gzipped file"] = (
        ["data=fashion_mnist", f"data.root={flat}", "data.download=false"],
        ["data=fashion_mnist", "3 of the 4 files", "t10k-images-idx3-ubyte is missing"],
    )
    cifar = tmp / "cifar"
    write_cifar10(cifar)
    batch = cifar / "cifar-10-batches-py" / "data_batch_2"
    batch.write_bytes(batch.read_bytes()[:1000])
    cases["CIFAR batch failing its checksum"] = (
        ["data=cifar10", f"data.root={cifar}", "data.download=false"],
        ["data_batch_1 fails torchvision's md5 check", "data.verify_checksums=false"],
    )
    cases["CIFAR batch cut short"] = (
        ["data=cifar10", f"data.root={cifar}", "data.download=false", "data.verify_checksums=false"],
        ["data_batch_2 does not read back", "delete it and download again"],
    )
    cases["data.root that is a file"] = (["data=cifar10", f"data.root={REPO / 'README.md'}"], ["README.md is a file"])
    return cases


def run_dir_cases(tmp: Path) -> dict[str, tuple[list[str], list[str]]]:
    not_a_run = tmp / "not_a_run"
    not_a_run.mkdir()
    unfinished = tmp / "unfinished"
    (unfinished / ".hydra").mkdir(parents=True)
    (unfinished / ".hydra" / "overrides.yaml").write_text("- trainer.max_epochs=2\n")
    return {
        "resume of a folder that is not a run": ([f"resume={not_a_run}"], ["is not a run directory", "overrides.yaml"]),
        "resume of a run without a checkpoint": ([f"resume={unfinished}"], ["has no checkpoint", "start it again"]),
    }


FILE_CASES = [checkpoint_cases, dataset_cases, run_dir_cases]


@pytest.fixture(scope="module")
def file_cases(tmp_path_factory) -> dict[str, tuple[list[str], list[str]]]:
    cases = {}
    for make in FILE_CASES:
        cases |= make(tmp_path_factory.mktemp(make.__name__))
    return cases


FILE_CASE_NAMES = [
    "garbage checkpoint", "empty checkpoint", "truncated checkpoint", "text file as checkpoint", "folder as checkpoint",
    "pickled checkpoint, evaluated", "pickled checkpoint, resumed", "wrong-architecture checkpoint",
    "checkpoint of another model", "truncated IDX file", "IDX file with a wrong magic number",
    "IDX file with a wrong shape", "missing IDX file", "flat folder missing a gzipped file",
    "CIFAR batch failing its checksum", "CIFAR batch cut short",
    "data.root that is a file", "resume of a folder that is not a run", "resume of a run without a checkpoint",
]  # fmt: skip


# Most cases start torch and Lightning (about 10 s each): all run in the full suite; the quick one runs the case
# found before torch is imported.
QUICK_FILE_CASES = ("resume of a run without a checkpoint",)


@pytest.mark.parametrize(
    "name",
    [name if name in QUICK_FILE_CASES else pytest.param(name, marks=pytest.mark.slow) for name in FILE_CASE_NAMES],
)
def test_bad_files_are_one_line_and_exit_2(tmp_path, file_cases, name):
    overrides, expected = file_cases[name]
    marker = tmp_path / "outputs" / "runs" / "earlier_run" / "metrics.json"
    marker.parent.mkdir(parents=True)
    marker.write_text("{}")
    result = train(tmp_path, *overrides)
    assert_one_line_refusal(tmp_path, result, expected)
    assert marker.read_text() == "{}" and [p.name for p in result.run_dirs] == ["earlier_run"]
    assert not any(tmp_path.parent.parent.rglob("created-by-unpickling"))  # the payload never ran


@pytest.mark.slow
def test_a_sweep_over_a_damaged_dataset_is_refused_before_any_trial_runs(tmp_path, file_cases):
    """A sweep's preflight runs a run's whole list for each trial, the dataset's files included: one line, and no
    sweep folder, instead of every trial failing on its own."""
    overrides, expected = file_cases["truncated IDX file"]
    result = train(tmp_path, "-m", *overrides, "optimizer.lr=0.1,0.01")
    assert_one_line_refusal(tmp_path, result, expected)
    assert not (tmp_path / "outputs").exists()
