"""What made a result: the code's commit, the packages, the device and the command as typed. Recorded with
every run (metrics.json, and as tags in MLflow and W&B), every sweep (sweep.json) and every benchmark figure
(bench/provenance.py), so a result in a folder can be traced to the code that made it."""

import functools
import os
import platform
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[3]  # src/experiments/records/ -> the checkout, when run from one
CODE = ("src", "conf", "train.py", "pyproject.toml")  # what a change to would change a result
COMMAND = "EXPERIMENTS_COMMAND"  # the command as typed, kept for the processes it starts (DDP ranks, SLURM jobs)
PACKAGES = ("torch", "lightning", "hydra-core")
IMPORTED_AS = {"hydra-core": "hydra"}
TRACKER_PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}  # logger= name: package


def remember_command(argv: list[str]) -> None:
    """Called by train.py before Hydra rewrites its arguments (resume=RUN expands in place)."""
    os.environ.setdefault(COMMAND, shlex.join(["python", *argv]))


def typed_command() -> str:
    return os.environ.get(COMMAND) or shlex.join(["python", *sys.argv])


@functools.cache
def commit(paths: tuple[str, ...] = CODE) -> tuple[str | None, bool]:
    """(the checkout's commit, whether `paths` differ from it); (None, False) outside a git checkout (an
    installed package: its version is recorded instead)."""

    def git(*arguments: str) -> str | None:
        try:
            done = subprocess.run(["git", *arguments], cwd=CHECKOUT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):  # no git on this machine
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    head = git("rev-parse", "HEAD") if (CHECKOUT / "src" / "experiments").is_dir() else None
    if head is None:
        return None, False
    changed = git("status", "--porcelain", "--", *paths) or ""
    return head, any(not line.endswith(".json") for line in changed.splitlines())  # result files are not code


def versions(trackers: list[str] = ()) -> dict[str, str]:
    """python and the packages a result depends on, with the chosen trackers' own."""
    names = ["experiments", *PACKAGES, *(TRACKER_PACKAGES[t] for t in trackers if t in TRACKER_PACKAGES)]
    found = {"python": platform.python_version()}
    for name in names:
        loaded = sys.modules.get(IMPORTED_AS.get(name, name))  # torch's own says its build: 2.5.1+cu124
        try:
            found[name] = getattr(loaded, "__version__", None) or metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def machine() -> str:
    """CPU model, cores, memory and GPU: enough to tell two machines apart."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    meminfo = Path("/proc/meminfo")
    memory = f", {int(meminfo.read_text().split()[1]) / 2**20:.0f} GiB" if meminfo.is_file() else ""
    try:
        import torch

        gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no GPU"
    except ImportError:
        gpu = ""
    return f"{cpu}, {os.cpu_count()} cores{memory}{gpu}"


def provenance(trackers: list[str] = (), device: str | None = None) -> dict:
    """The record of a run (with the device it trained on) or a sweep (whose trials record their own)."""
    head, changed = commit()
    record = {
        "commit": head,
        "uncommitted_changes": changed,
        "command": typed_command(),
        "versions": versions(trackers),
    }
    return record | ({"device": device, "machine": machine()} if device is not None else {})


def as_tags(record: dict) -> dict[str, str]:
    """The record flattened for a tracker's tags: provenance.commit, provenance.versions.torch, ..."""
    tags = {}
    for key, value in record.items():
        if isinstance(value, dict):
            tags |= {f"provenance.{key}.{name}": str(inner) for name, inner in value.items()}
        else:
            tags[f"provenance.{key}"] = str(value)
    return tags
