"""Where a measured figure comes from: the date, the commit, the machine and the command, stored beside it
(read by the same code that records a run's: experiments.records.provenance).

Every result file under bench/results/ carries one of these, and bench/report.py prints it under each table
it writes into the docs, so a figure never reaches the docs without its origin.
"""

import datetime
import shlex
import sys
from pathlib import Path

from experiments.records.provenance import commit as code_commit
from experiments.records.provenance import machine as run_machine
from experiments.records.provenance import versions

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


def commit() -> str:
    """The short commit, with `+changes` when src/, conf/ or bench/ differ from it (the code measured is not
    exactly that commit)."""
    head, changed = code_commit(("src", "conf", "bench", "train.py"))
    return f"{(head or 'unknown')[:7]}{'+changes' if changed else ''}"


def machine() -> str:
    """The run records' machine line, with the torch version the figure was measured on."""
    return f"{run_machine()}, torch {versions()['torch'].split('+')[0]}"


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
