"""The sanity checks' table on the console, checks.json in the run directory, and warnings in training runs."""

import json
import logging
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from experiments.procedure.sanity import FAILURE_MEANS, CheckResult

log = logging.getLogger(__name__)


def report_checks(results: list[CheckResult], run_dir: Path) -> Path:
    """Print one table (check, PASS/FAIL, measured, expected, what a failure usually means) and write
    the same rows to run_dir/checks.json."""
    table = Table(title="the note's sanity checks", header_style="bold", show_lines=True)
    for column in ("check", "result", "measured", "expected", "a failure usually means"):
        table.add_column(column, overflow="fold")
    for result in results:
        verdict = "[green]PASS[/green]" if result.passed else "[bold red]FAIL[/bold red]"
        texts = (result.label, result.measured, result.expected, FAILURE_MEANS[result.check])
        label, measured, expected, means = (escape(text) for text in texts)  # text, never Rich markup
        table.add_row(label, verdict, measured, expected, means)
    Console(width=max(Console().width, 140)).print(table)
    path = run_dir / "checks.json"
    path.write_text(json.dumps([result.as_dict() for result in results], indent=2) + "\n")
    return path


def warn_failures(results: list[CheckResult]) -> list[dict]:
    """In a training run the checks only warn; returns their rows for metrics.json."""
    for result in results:
        if result.passed:
            log.info(f"check {result.label}: PASS ({result.measured})")
        else:
            log.warning(
                f"check {result.label} failed: measured {result.measured}, expected {result.expected}; "
                f"this usually means {FAILURE_MEANS[result.check]}"
            )
    return [result.as_dict() for result in results]
