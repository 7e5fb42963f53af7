"""One sweep at a time in a sweep directory: sweep.lock holds the host, process id and start time of the sweep
that runs there. A second copy of the command (resubmitted by mistake, or a requeued twin) would train the
same unfinished trials into the same folders, so it is refused in one line naming the holder. A lock left by
a process that died on this host is taken over; one from another host cannot be checked from here, so it is
named instead."""

import datetime
import json
import logging
import os
import socket
from pathlib import Path

from experiments.config.errors import UserError

LOCK = "sweep.lock"
log = logging.getLogger(__name__)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


class SweepLock:
    """`with SweepLock(sweep_dir):` around everything a sweep writes after its plan was checked."""

    def __init__(self, sweep_dir: Path) -> None:
        self.path = Path(sweep_dir) / LOCK
        self.owner = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        }

    def __enter__(self) -> "SweepLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while not self._create():
            holder = self._holder()
            if holder is None:  # released between our attempt and the read: try again
                continue
            if holder.get("host") == self.owner["host"] and not _alive(int(holder.get("pid", -1))):
                log.warning(f"{self.path}: taking over the lock of process {holder.get('pid')}, which is gone")
                self.path.unlink(missing_ok=True)
                continue
            raise UserError(
                f"sweep {self.path.parent.name} is already running: process {holder.get('pid')} on host "
                f"{holder.get('host')} holds {self.path} since {holder.get('started')}; wait for it to end, "
                "or remove that file if the process is gone"
            )
        return self

    def __exit__(self, *exc) -> None:
        if self._holder() == self.owner:  # never another sweep's lock
            self.path.unlink(missing_ok=True)

    def _create(self) -> bool:
        """Create the lock file with our record in one step (a hard link of a written file, atomic also on
        NFS): False when it exists already. A reader never sees it half written."""
        written = self.path.with_name(f"{LOCK}.{self.owner['host']}.{self.owner['pid']}")
        written.write_text(json.dumps(self.owner))
        try:
            os.link(written, self.path)
        except FileExistsError:
            return False
        finally:
            written.unlink()
        return True

    def _holder(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except json.JSONDecodeError:  # not written by a sweep: named as it is
            return {"host": "unknown", "pid": "unknown", "started": "unknown"}
