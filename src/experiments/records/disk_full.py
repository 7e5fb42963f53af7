"""A full disk (or a quota) while a run writes: one line naming the file and the free space, and how to go on.
What was written before stays intact (checkpoints are written beside their name, then renamed), the half-written
file is removed, and `resume=` continues the run once space is freed."""

import errno
import shutil
import sys
from pathlib import Path

from experiments.config.errors import chain
from experiments.records.status import record_failed


class DiskFull(Exception):
    """No space left while writing `path` (a checkpoint's final name, not its .partial)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(f"no space left on the device while writing {path}")
        self.path = Path(path)


def no_space_in(err: BaseException | None) -> bool:
    """Whether a full disk is behind `err`: torch's zip writer reports it as a RuntimeError raised while the
    OSError is handled."""
    full = (errno.ENOSPC, errno.EDQUOT)
    return any(isinstance(link, DiskFull) or (isinstance(link, OSError) and link.errno in full) for link in chain(err))


def written_file(err: BaseException | None) -> Path | None:
    for link in chain(err):
        if isinstance(link, DiskFull):
            return link.path
        if isinstance(link, OSError) and link.filename:
            return Path(link.filename)
    return None


SWEEP_AGAIN = "rerun the same command: the sweep continues where it stopped"


def disk_full_line(err: BaseException, run_dir: Path, then: str = SWEEP_AGAIN) -> str | None:
    """The one line for a full disk behind `err` (None for any other error). `then`: how to go on once space
    is freed (a sweep's default; a run's is `python train.py resume=RUN`)."""
    if not no_space_in(err):
        return None
    path = written_file(err)
    folder = next((p for p in ([path.parent] if path else []) + [Path(run_dir)] if p.exists()), Path(run_dir))
    free = shutil.disk_usage(folder).free
    what = f"writing {path}" if path else f"writing in {run_dir}"
    return (
        f"no space left on the device while {what} ({free / 2**20:.1f} MiB free in {folder}); what was written "
        f"before is intact: free some space, then {then}"
    )


def remove_quietly(path: Path) -> None:
    """Remove a half-written file; on a full disk, removing must not raise a second error over the first."""
    try:
        Path(path).unlink(missing_ok=True)
    except OSError:
        pass


def stop_on_full_disk(run_dirs: Path | list[Path], line: str) -> None:
    """The one line, each run's status as failed where a few bytes still fit, and exit 1 (a sweep stops:
    its next trials would meet the same full disk)."""
    for run_dir in run_dirs if isinstance(run_dirs, list) else [run_dirs]:
        try:
            record_failed(run_dir, line)
        except OSError:  # not even that fits: the line on the screen is the record
            pass
    print(f"error: {line}", file=sys.stderr)
    sys.exit(1)
