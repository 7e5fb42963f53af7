"""Where a measured figure comes from: the date, the commit, the machine and the command, stored beside it.

Every result file under bench/results/ carries one of these, and bench/report.py prints it under each table
it writes into the docs, so a figure never reaches the docs without its origin.
"""

import datetime
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


def commit() -> str:
    """The short commit, with `+changes` when src/, conf/ or bench/ differ from it (the code measured is not
    exactly that commit)."""

    def git(*arguments: str) -> str:
        done = subprocess.run(["git", *arguments], cwd=REPO, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = git("status", "--porcelain", "--", "src", "conf", "bench", "train.py")
    measured_code = [line for line in changed.splitlines() if not line.endswith(".json")]
    return f"{head}+changes" if measured_code else head


def machine() -> str:
    """CPU model, cores, memory and GPU: enough to tell two machines apart."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        total_kib = int(meminfo.read_text().split()[1])
        memory = f", {total_kib / 2**20:.0f} GiB"
    try:
        import torch

        gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no GPU"
        library = f", torch {torch.__version__.split('+')[0]}"
    except ImportError:
        gpu = library = ""
    return f"{cpu}, {os.cpu_count()} cores{memory}{gpu}{library}"


def provenance(command: list[str] | None = None) -> dict:
    """The record stored with a result: what ran, where, and on which code."""
    if command is None:
        script = Path(sys.argv[0]).resolve()
        shown_script = str(script.relative_to(REPO)) if script.is_relative_to(REPO) else sys.argv[0]
        command = ["python", shown_script, *sys.argv[1:]]
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
        "commit": commit(),
        "machine": machine(),
        "command": shlex.join(command),
    }


def write_result(path: str | Path, summary: dict) -> Path:
    """A benchmark's summary and its provenance, as one JSON file (bench/results/ is what the docs read)."""
    import json

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"provenance": provenance(), "summary": summary}, indent=1) + "\n")
    return path
