"""`python train.py resume=RUN_DIR`: continue a killed or interrupted run in place.

The command line is rewritten before Hydra composes anything: the run's own overrides (its
.hydra/overrides.yaml), then whatever else was typed (e.g. trainer.max_epochs=20 to extend it), then
`ckpt_path=RUN_DIR/checkpoints/last.ckpt` and `hydra.run.dir=RUN_DIR`. So the run composes the config it
had, resumes from its newest complete checkpoint, and writes into the same directory and TensorBoard run.
Kept free of torch imports: a bad directory is refused at once, before Hydra touches it.
"""

import json
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from yaml import YAMLError

from experiments.config.errors import UserError
from experiments.config.overrides import override_key, quoted
from experiments.records.status import read_status

LAST = Path("checkpoints") / "last.ckpt"
FINISHED = ("completed", "diverged", "pruned", "searched")  # metrics.json statuses with nothing left to resume


def expand_resume(arguments: list[str]) -> list[str]:
    """The command line with `resume=DIR` replaced by the run's own overrides and where to resume from."""
    given = [argument for argument in arguments if argument.startswith("resume=")]
    if not given or given[-1].startswith(("resume='", 'resume="')):
        return arguments  # none, or expanded already: DDP's other processes rerun the expanded command
    if any(flag in arguments for flag in ("-m", "--multirun")):
        raise UserError("resume= continues one run; a sweep resumes by running its own command again")
    run_dir = Path(given[-1].removeprefix("resume="))
    typed = [argument for argument in arguments if not argument.startswith("resume=")]
    flags = [argument for argument in typed if argument.startswith("-")]
    extra = [argument for argument in typed if not argument.startswith("-")]
    overrides = saved_overrides(run_dir, extra)
    where = [f"resume={quoted(run_dir)}", f"ckpt_path={quoted(run_dir / LAST)}", f"hydra.run.dir={quoted(run_dir)}"]
    return flags + overrides + extra + where


def run_status(run_dir: Path) -> str | None:
    """The status in the run's metrics.json (completed, interrupted, ...); None before it wrote one."""
    metrics_file = run_dir / "metrics.json"
    return json.loads(metrics_file.read_text()).get("status") if metrics_file.is_file() else None


def saved_overrides(run_dir: Path, extra: list[str] = ()) -> list[str]:
    """The overrides the run was started with; one line for each reason it cannot be resumed. A finished
    run resumes only to train on: with a typed trainer.max_epochs above the epochs it trained."""
    if not run_dir.exists():
        raise UserError(f"resume={run_dir} does not exist: pass a run directory, e.g. outputs/runs/<name>")
    if not run_dir.is_dir():
        raise UserError(f"resume={run_dir} is a file, not a run directory (outputs/runs/<name>)")
    overrides_file = run_dir / ".hydra" / "overrides.yaml"
    if not overrides_file.is_file():
        raise UserError(f"resume={run_dir} is not a run directory: it has no .hydra/overrides.yaml")
    if (status := run_status(run_dir)) in FINISHED:
        check_trains_on(run_dir, status, extra)
    if not (run_dir / LAST).is_file():
        if read_status(run_dir).get("fused"):
            raise UserError(
                f"resume={run_dir} is a trial of a fused set that stopped before its first epoch ended: it has "
                "no checkpoint; rerun the sweep's own command to train its unfinished trials again"
            )
        raise UserError(
            f"resume={run_dir} has no checkpoint to resume from ({LAST}): it stopped before its first epoch "
            "ended; start it again"
        )
    try:
        overrides = OmegaConf.to_container(OmegaConf.load(overrides_file))
    except (OmegaConfBaseException, YAMLError):
        overrides = None
    if not isinstance(overrides, list) or not all(isinstance(item, str) for item in overrides):
        raise UserError(f"resume={run_dir}: {overrides_file} is not a list of overrides; was it edited?")
    # a run resumed before records where it resumed from: the newest checkpoint decides now
    return [item for item in overrides if override_key(item) not in ("resume", "ckpt_path")]


def check_trains_on(run_dir: Path, status: str, extra: list[str]) -> None:
    """A finished run goes on in place only when more epochs are asked for; otherwise one line says what works."""
    trained = json.loads((run_dir / "metrics.json").read_text()).get("epochs")
    asked = [a.split("=", 1)[1] for a in extra if a.lstrip("+").split("=", 1)[0] == "trainer.max_epochs"]
    wanted = int(asked[-1]) if asked and asked[-1].isdigit() else None
    if status == "completed" and isinstance(trained, int) and wanted is not None and wanted > trained:
        return
    if status == "diverged":
        raise UserError(
            f"resume={run_dir} diverged (the 3x rule stopped it): there is nothing to go on from; start a new run "
            "with a lower optimizer.lr"
        )
    if status != "completed" or not isinstance(trained, int):
        raise UserError(f"resume={run_dir} has already finished (status {status} in metrics.json): nothing to resume")
    more = max(2 * trained, trained + 1)
    what = f"trainer.max_epochs={wanted} is not above them" if wanted is not None else "nothing more was asked for"
    raise UserError(
        f"resume={run_dir} has finished its {trained} epochs and {what}; to train it on in place, ask for more: "
        f"python train.py resume={run_dir} trainer.max_epochs={more}"
    )
