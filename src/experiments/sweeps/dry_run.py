"""`python train.py -m ... dry_run=true`: a sweep's plan without training. Every trial is composed and
checked as a real sweep does, then the sweep's directory and each trial's directory and overrides are
printed. Nothing is written."""

from pathlib import Path

from experiments.config.overrides import override_key
from experiments.records.status import FINISHED, read_status

DRY_RUN = "dry_run"


def shown_overrides(job: list[str]) -> str:
    return " ".join(o for o in job if override_key(o) != DRY_RUN)


def print_grid_plan(plan, jobs: list[list[str]], launcher: str) -> None:
    """The sweep directory, then one line per trial: its directory name, its overrides, and whether a
    rerun would skip it (finished earlier) or resume it (a last.ckpt is there)."""
    print(f"dry run of sweep {plan.name}: {len(jobs)} trials in {_shown(plan.dir)} with {launcher}; nothing is trained")
    for job in jobs:
        name, _ = plan.describe(job)
        trial_dir = plan.dir / name
        note = ""
        if read_status(trial_dir)["status"] in FINISHED:
            note = "  (finished earlier: would be skipped)"
        elif (trial_dir / "checkpoints" / "last.ckpt").is_file():
            note = "  (would resume from its last.ckpt)"
        print(f"  {name}  {shown_overrides(job)}{note}")


def print_search_plan(plan, params: dict, trials: int, launcher: str) -> None:
    """A sampled sweep has no trial list before it runs: its directory and search space instead."""
    where = f"in {_shown(plan.dir)} with {launcher}"
    print(f"dry run of sweep {plan.name}: {trials} sampled trials {where}; nothing is trained")
    for key, space in params.items():
        print(f"  {key}: {space}")


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
