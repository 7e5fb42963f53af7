"""A full disk while a run writes: one line that names the file and the free space and says how to go on,
no half-written file left, the status failed, what was written before intact, and resume= completes the run
once space is freed. On a real small file system (tmpfs), which the test mounts where the machine lets it."""

import json
import subprocess

import pytest
import torch
from conftest import train

QUICK = ["trainer.max_epochs=3", "watch.pictures=false"]  # a checkpoint of the default MLP is 8 MB


@pytest.fixture
def small_disk(tmp_path):
    """A 20 MB file system: the first epoch's two checkpoints fit, the second epoch's best does not."""
    disk = tmp_path / "small"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root in a machine that allows mounts): {mounted.stderr}")
    yield disk
    subprocess.run(["umount", str(disk)], check=False)


def free_space(disk) -> None:
    subprocess.run(["mount", "-o", "remount,size=100m", str(disk)], check=True)


def error_line(result) -> str:
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "OSError" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    return line


@pytest.mark.slow  # two runs through `python train.py`
def test_a_run_that_fills_the_disk_stops_in_one_line_and_resumes_after_space_is_freed(tmp_path, small_disk):
    result = train(tmp_path, f"paths.output_root={small_disk}", *QUICK)
    line = error_line(result)
    [run_dir] = (small_disk / "runs").iterdir()
    assert line.startswith(f"error: no space left on the device while writing {run_dir}/checkpoints/best-epoch01")
    assert "MiB free in" in line
    assert line.endswith(f"free some space, then `python train.py resume={run_dir}` continues the run")
    assert not list(run_dir.rglob("*.partial"))  # the half-written checkpoint does not keep filling the disk
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "failed" and status["error"] == line.removeprefix("error: ")
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["epoch"] == 0  # intact

    free_space(small_disk)
    resumed = train(tmp_path, f"resume={run_dir}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs"] == 3
    assert json.loads((run_dir / "status.json").read_text())["status"] == "completed"
    assert not (run_dir / "error.txt").exists()


@pytest.mark.slow  # two sweeps through `python train.py -m`
@pytest.mark.parametrize("launcher", ["basic", "fused"])
def test_a_sweep_that_fills_the_disk_stops_with_its_trials_failed_and_reruns_to_the_end(tmp_path, small_disk, launcher):
    grid = ["-m", "optimizer.lr=0.001,0.002", f"hydra/launcher={launcher}"]
    command = [*grid, f"paths.output_root={small_disk}", *QUICK]
    line = error_line(train(tmp_path, *command))
    [sweep_dir] = (small_disk / "sweeps").iterdir()
    assert line.startswith(f"error: no space left on the device while writing {sweep_dir}/lr=0.00")
    assert line.endswith("free some space, then rerun the same command: the sweep continues where it stopped")
    assert not list(sweep_dir.rglob("*.partial"))
    # one at a time, the first trial fails and the sweep stops before the next; a fused set fails as one
    failed = ["lr=0.001"] if launcher == "basic" else ["lr=0.001", "lr=0.002"]
    summary = (sweep_dir / "summary.md").read_text()
    for trial in failed:
        assert json.loads((sweep_dir / trial / "status.json").read_text())["status"] == "failed"
        assert f"| {trial} | {trial[3:]} | failed |" in summary  # the summary says so too
    if launcher == "basic":
        assert not (sweep_dir / "lr=0.002").exists()  # the next trial would meet the same full disk

    free_space(small_disk)
    again = train(tmp_path, *command)
    assert again.returncode == 0, again.stderr[-2000:]
    for trial in ("lr=0.001", "lr=0.002"):
        assert json.loads((sweep_dir / trial / "status.json").read_text())["status"] == "completed"
    assert "| failed |" not in (sweep_dir / "summary.md").read_text()
