"""What the documented commands print: each run as a user runs it, its output kept for the docs.

    python bench/transcripts.py --json bench/results/transcripts.json
    python bench/transcripts.py --only first_run --json /tmp/t.json

Each command runs in a fresh folder with an 80-column console, as in a terminal of that width, its output
piped. Only the part a reader needs is kept (all of a first run, the checks' table, or the first and last
lines of a long log). bench/report.py writes them into README.md and docs/.
"""

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from provenance import write_result

REPO = Path(__file__).resolve().parents[1]


def from_line(start: str):
    """Keep from the first line containing `start` to the end."""

    def keep(lines: list[str]) -> list[str]:
        first = next(i for i, line in enumerate(lines) if start in line)
        return lines[first:]

    return keep


def head_and_tail(head: int, tail: int):
    def keep(lines: list[str]) -> list[str]:
        return lines if len(lines) <= head + tail else [*lines[:head], "...", *lines[-tail:]]

    return keep


# name: (the command as documented, what to keep of its standard output)
TRANSCRIPTS = {
    "first_run": ("python train.py", list),  # all of it: a screen (tests/test_runs.py holds it to 30 lines)
    "procedure": ("python train.py check=procedure", from_line("sanity checks")),
    "procedure_cnn": ("python train.py check=procedure model=cnn", from_line("sanity checks")),
    "scratch": ("python -m experiments.scratch", head_and_tail(4, 3)),
}


def capture(command: str, keep) -> dict:
    argv = shlex.split(command)
    script = [sys.executable, str(REPO / argv[1])] if argv[1].endswith(".py") else [sys.executable]
    full = [*script, *argv[2:]] if argv[1].endswith(".py") else [*script, *argv[1:]]
    environment = os.environ | {"COLUMNS": "80", "TERM": "dumb"}
    with tempfile.TemporaryDirectory() as workdir:
        done = subprocess.run(full, cwd=workdir, capture_output=True, text=True, env=environment)
    if done.returncode != 0:
        sys.exit(f"error: {command} failed:\n{done.stderr[-3000:]}")
    lines = [line.rstrip() for line in done.stdout.splitlines()]
    return {"command": command, "output": "\n".join(keep(lines))}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=sorted(TRANSCRIPTS), help="these transcripts only")
    parser.add_argument("--json", metavar="PATH", help="write the transcripts and their provenance here")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    captured = {}
    for name in args.only or TRANSCRIPTS:
        command, keep = TRANSCRIPTS[name]
        captured[name] = capture(command, keep)
        print(f"$ {command}\n{captured[name]['output']}\n", flush=True)
    if args.json:
        print(f"written: {write_result(args.json, captured)}")


if __name__ == "__main__":
    main()
