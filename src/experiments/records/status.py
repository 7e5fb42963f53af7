"""status.json in each trial directory: running -> completed | diverged | pruned | failed, written by the trial."""

import json
import time
import traceback
from pathlib import Path

from experiments.config.errors import user_error_in

STATUS = "status.json"
FINISHED = ("completed", "diverged", "pruned")  # a rerun of the sweep skips these; failed and running ones run again


def read_status(trial_dir: Path) -> dict:
    path = Path(trial_dir) / STATUS
    return json.loads(path.read_text()) if path.is_file() else {"status": "missing"}


def write_status(trial_dir: Path, status: str, fresh: bool = False, **fields) -> None:
    """Record the trial's state; unless `fresh`, fields of the current attempt (start time, pid) are kept."""
    path = Path(trial_dir) / STATUS
    earlier = {} if fresh else read_status(trial_dir)
    record = {**earlier, "status": status, **fields, "updated": time.time()}
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(record, indent=2))
    temporary.replace(path)  # atomic: a kill never leaves half a status file


def record_failure(trial_dir: Path, err: BaseException) -> str:
    """A failed trial, a lone one or one of a fused set: its one line in error.txt and status.json, and for a
    bug rather than bad input the whole story in traceback.txt beside it. Returns the line."""
    user_error = user_error_in(err)
    message = str(user_error) if user_error else f"{type(err).__name__}: {err}".strip().splitlines()[0]
    if user_error is None:
        (Path(trial_dir) / "traceback.txt").write_text(traceback.format_exc())
    record_failed(trial_dir, message)
    return message


def record_failed(trial_dir: Path, message: str) -> None:
    (Path(trial_dir) / "error.txt").write_text(message + "\n")
    write_status(trial_dir, "failed", error=message)


def record_finished(trial_dir: Path, metrics: dict) -> float:
    """A trial (or a run that had failed) that trained: its status and objective (best val acc; 0.0 for a
    diverged trial that never validated), which it returns."""
    objective = metrics.get("best_val_acc") or 0.0
    (Path(trial_dir) / "error.txt").unlink(missing_ok=True)  # an earlier attempt's failure, now resumed past
    write_status(trial_dir, metrics["status"], objective=objective, diverged_step=metrics.get("diverged_step"))
    return objective
