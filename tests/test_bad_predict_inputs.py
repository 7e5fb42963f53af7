"""What `python -m experiments.predict` refuses, each in one line with exit 2: images it cannot read or that
do not fit the model, and checkpoints that are missing or hold Python objects (never unpickled)."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from test_bad_files import FIXTURE_CKPT, CreatesAFile

PREDICT_CASES = {
    "missing image": (lambda d: d / "missing.png", "does not exist"),
    "not an image": (lambda d: (d / "text.png").write_text("not an image") and d / "text.png", "is not an image"),
    "empty image": (lambda d: (d / "empty.png").write_bytes(b"") or d / "empty.png", "is empty (0 bytes)"),
    "image of the wrong size": (
        lambda d: Image.fromarray(np.zeros((40, 30), np.uint8)).save(d / "big.png") or d / "big.png",
        "30x40",
    ),
    "decompression bomb": (
        lambda d: Image.new("1", (5_000, 5_000)).save(d / "bomb.png") or d / "bomb.png",
        "5000x5000 pixels",
    ),
    "folder without images": (lambda d: (d / "empty").mkdir() or d / "empty", "holds no"),
}


@pytest.mark.parametrize("name", list(PREDICT_CASES))
def test_predict_refuses_bad_images_in_one_line(tmp_path, name, capsys):
    from experiments.predict import main

    make_input, message = PREDICT_CASES[name]
    assert main([str(FIXTURE_CKPT), str(make_input(tmp_path))]) == 2  # `python -m experiments.predict` exits so
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1 and message in stderr and "Traceback" not in stderr


def test_predict_refuses_a_missing_checkpoint(tmp_path):
    cli = subprocess.run(
        [sys.executable, "-m", "experiments.predict", str(tmp_path / "no.ckpt"), str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 2 and "no.ckpt does not exist" in cli.stderr


@pytest.mark.slow
def test_predict_refuses_a_pickled_checkpoint_without_running_it(tmp_path):
    torch.save({"payload": CreatesAFile(tmp_path / "created")}, tmp_path / "pickled.ckpt")
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "digit.png")
    cli = subprocess.run(
        [sys.executable, "-m", "experiments.predict", str(tmp_path / "pickled.ckpt"), str(tmp_path / "digit.png")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert cli.returncode == 2 and "holds Python objects" in cli.stderr and "Traceback" not in cli.stderr
    assert not (tmp_path / "created").exists()
