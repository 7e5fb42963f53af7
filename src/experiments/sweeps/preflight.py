"""Before any trial runs: every trial's config composes and passes the same checks a single run does."""

import shutil

from hydra.core.override_parser.types import Override

from experiments.config_checks import check_config
from experiments.errors import UserError


def check_launcher(master_config) -> None:
    """A SLURM launcher on a machine without SLURM: one line, before anything is written."""
    launcher = master_config.hydra.launcher
    submitit = launcher.get("submitit")  # the fused launcher's presets
    on_slurm = str(launcher.get("_target_", "")).endswith("SlurmLauncher") or (
        submitit is not None and submitit.get("cluster") == "slurm"
    )
    if on_slurm and shutil.which("sbatch") is None:
        local = "fused_local" if submitit is not None else "local"
        raise UserError(
            f"hydra/launcher={'fused_slurm' if submitit is not None else 'slurm'} submits jobs with SLURM's sbatch, "
            f"which this machine does not have: run the sweep on the cluster, or use hydra/launcher={local} here"
        )


def launcher_name(master_config) -> str:
    """hydra/launcher=NAME as typed (basic when none was chosen)."""
    return f"hydra/launcher={master_config.hydra.runtime.choices.get('hydra/launcher') or 'basic'}"


def check_trials(hydra_context, master_config, swept: list[Override], jobs: list[list[str]], dry_run: bool) -> None:
    if not dry_run:  # a preview submits nothing, so it needs no sbatch
        check_launcher(master_config)
    for override in swept:
        if not list(override.sweep_string_iterator()):
            raise UserError(f"{override.input_line} is an empty range: a sweep needs at least one value per key")
    if not jobs:
        raise UserError("the sweep has no trials: give at least one value for each swept key")
    for job in jobs:
        check_job(hydra_context, master_config, job)


def check_job(hydra_context, master_config, job: list[str]) -> None:
    """Compose one trial's config as its launcher will; unknown keys raise Hydra's own errors, which
    train.py turns into one line, and bad values raise UserError."""
    config = hydra_context.config_loader.load_sweep_config(master_config, list(job))
    check_config(config, list(job))
    trainer = config.trainer
    if trainer.get("strategy") == "ddp" or trainer.get("devices", 1) * trainer.get("num_nodes", 1) > 1:
        raise UserError(
            f"trainer.strategy={trainer.get('strategy')} with {trainer.get('devices')} devices does not run inside a "
            "sweep (-m): DDP starts its other processes by rerunning the command, which a sweep's trials cannot "
            "share; sweep with one device per trial (trainer=auto, cpu or gpu), or run each DDP setting as its "
            "own command"
        )


def check_optuna_space(
    hydra_context, master_config, swept: list[Override], fixed: list[Override], dry_run: bool
) -> None:
    """Optuna samples its trials as it goes, so one trial at the low end of every range is checked (the
    ranges themselves are checked when they become distributions: sweeps/study.py)."""
    if not dry_run:
        check_launcher(master_config)
    job = [o.input_line for o in fixed if o.input_line]
    for override in swept:
        value = override.value()
        key = override.get_key_element()
        if hasattr(value, "start") and hasattr(value, "end") and value.start is not None and value.end is not None:
            job.append(f"{key}={value.start}")
        else:
            job.append(f"{key}={next(iter(override.sweep_string_iterator()))}")
    check_job(hydra_context, master_config, job)
