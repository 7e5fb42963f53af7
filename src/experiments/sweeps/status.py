"""status.json in each trial directory: running -> completed | diverged | failed, written by the trial."""

import json
import time
from pathlib import Path

STATUS = "status.json"
FINISHED = ("completed", "diverged")  # a rerun of the sweep skips these; failed and running trials run again


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
