"""One copy of a sweep at a time: a second copy of the same command, started while the first runs, refuses in
one line naming the holder; a lock left by a dead process on this host is taken over, one from another host
is named. Real `python train.py -m` processes throughout."""

import json
import signal
import socket
import subprocess
import sys
import time

import pytest
from conftest import REPO, train
from test_sweeps import sweep_dirs

SMALL = [
    "-m",
    "sweep=lr_wd",
    "sweep_name=locked",
    "optimizer.lr=0.001,0.003",
    "regularization.weight_decay=0.0",
    "trainer.max_epochs=3",
    "trainer.limit_train_batches=20",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "watch.pictures=false",
]


def lock_file(tmp_path):
    return tmp_path / "outputs" / "sweeps" / "locked" / "sweep.lock"


@pytest.mark.slow
def test_a_second_copy_of_a_running_sweep_refuses_naming_the_process_that_holds_it(tmp_path):
    first = subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *SMALL], cwd=tmp_path, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not lock_file(tmp_path).is_file():
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()[-2000:]
            time.sleep(0.05)
        holder = json.loads(lock_file(tmp_path).read_text())
        assert holder["pid"] == first.pid and holder["host"] == socket.gethostname()
        first.send_signal(signal.SIGSTOP)  # paused, not gone: the second copy meets a live holder however fast
        try:
            second = train(tmp_path, *SMALL)
        finally:
            first.send_signal(signal.SIGCONT)
        assert second.returncode != 0
        [line] = [line for line in second.stderr.splitlines() if "already running" in line]
        assert f"process {first.pid} on host {socket.gethostname()}" in line and "sweep.lock" in line
        assert first.poll() is None  # the first copy goes on untouched
    finally:
        _, errors = first.communicate(timeout=600)
    assert first.returncode == 0, errors[-2000:]
    assert not lock_file(tmp_path).exists()  # released when the sweep ended
    [sweep_dir] = sweep_dirs(tmp_path)
    statuses = [json.loads(p.read_text())["status"] for p in sweep_dir.glob("*/status.json")]
    assert statuses == ["completed", "completed"]  # each trial trained once, by the first copy


@pytest.mark.slow
def test_a_lock_from_a_dead_process_here_is_taken_over_and_one_from_another_host_is_named(tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait()
    lock = lock_file(tmp_path)
    lock.parent.mkdir(parents=True)
    lock.write_text(json.dumps({"host": "node-17", "pid": 4242, "started": "2026-12-01T10:00:00+00:00"}))
    refused = train(tmp_path, *SMALL)
    assert refused.returncode != 0 and not (lock.parent / "sweep.json").exists()  # nothing started
    assert "process 4242 on host node-17 holds" in refused.stderr and "remove that file" in refused.stderr
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": gone.pid, "started": "2026-12-01T10:00:00"}))
    taken = train(tmp_path, *SMALL)
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert f"taking over the lock of process {gone.pid}" in taken.stdout + taken.stderr
    assert not lock.exists() and len(list(lock.parent.glob("*/metrics.json"))) == 2
