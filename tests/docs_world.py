"""The folder the documented commands run in (tests/test_docs.py): a finished run, a run stopped by Ctrl-C,
a fused sweep and images to classify, all made by the commands the docs show, at the defaults."""

import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from conftest import REPO
from documented import documented

TINY = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=2"]
TINY += ["trainer.limit_test_batches=2"]
# Two trials with both keys swept, so their folders are named lr=...,wd=... as the full grid's are.
TWO_TRIALS = ["optimizer.lr=choice(0.001)", "regularization.weight_decay=0.0001,0.001"]
HOME = "/home/me"  # the docs' name for the folder a command runs in
LAST = Path("checkpoints") / "last.ckpt"


@dataclass
class World:
    """A folder holding what the documented commands read: a run, a fused sweep, images to classify."""

    cwd: Path
    run: str  # finished
    stopped: str  # stopped by Ctrl-C after its first checkpoint: what resume= continues
    sweep: str

    def concrete(self, text: str) -> str:
        if "trainer.max_epochs" not in text:  # resume= continues the stopped run; with more epochs, the finished one
            text = text.replace("resume=outputs/runs/RUN", f"resume=outputs/runs/{self.stopped}")
        text = text.replace("outputs/runs/RUN", f"outputs/runs/{self.run}").replace(HOME, str(self.cwd))
        text = text.replace("CKPT", f"outputs/runs/{self.run}/{LAST}").replace("IMAGES...", "my_digits/")
        return text.replace("outputs/sweeps/NAME", f"outputs/sweeps/{self.sweep}")


def train_py(cwd: Path, arguments: list[str], timeout: int = 600) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO / "train.py"), *arguments]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def write_images(folder: Path, inverted: bool) -> None:
    from PIL import Image

    from experiments.data.mnist_sample import MNISTSampleDataModule

    datamodule = MNISTSampleDataModule()
    datamodule.setup()
    images, _ = datamodule.splits["test"]
    folder.mkdir()
    for index in range(4):
        pixels = images[index, 0].numpy()
        Image.fromarray(255 - pixels if inverted else pixels).save(folder / f"{index}.png")


def build_world(tmp_path_factory) -> World:
    """`python train.py` and the documented fused sweep, both at the defaults on a few batches."""
    from PIL import Image

    cwd = tmp_path_factory.mktemp("docs")
    first = train_py(cwd, documented("python train.py") + TINY)
    assert first.returncode == 0, first.stderr[-3000:]
    fused_sweep = documented("python train.py -m sweep=lr_wd hydra/launcher=fused sweep_name=lr_wd_fused")
    fused = train_py(cwd, [*fused_sweep, *TINY, *TWO_TRIALS])
    assert fused.returncode == 0, fused.stderr[-3000:]
    write_images(cwd / "my_digits", inverted=False)
    write_images(cwd / "scans", inverted=True)
    Image.new("L", (5000, 5000)).save(cwd / "huge.png")
    shutil.copy(REPO / "README.md", cwd / "README.md")
    [run] = (cwd / "outputs" / "runs").iterdir()
    return World(cwd, run.name, stopped_run(cwd).name, "lr_wd_fused")


def stopped_run(cwd: Path) -> Path:
    """A run stopped by Ctrl-C once its first epoch's checkpoint is written."""
    before = set((cwd / "outputs" / "runs").iterdir())
    small = ["trainer.max_epochs=20", "trainer.limit_train_batches=5", "trainer.limit_val_batches=2"]
    command = [sys.executable, str(REPO / "train.py"), *small]
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while not [run for run in set((cwd / "outputs" / "runs").iterdir()) - before if (run / LAST).is_file()]:
            assert process.poll() is None, process.stderr.read()[-2000:]
            time.sleep(0.01)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=120) == 130
    finally:
        process.kill()
    [stopped] = set((cwd / "outputs" / "runs").iterdir()) - before
    return stopped
