"""Before any trial runs: the launcher can reach what it needs, and every trial's config composes and passes
the same preflight a single run does (experiments/preflight.py)."""

import shutil
import subprocess

from hydra.core.override_parser.types import Override

from experiments.config.errors import UserError
from experiments.preflight import preflight


def check_launcher(master_config) -> None:
    """A SLURM launcher on a machine without SLURM, or asking for what the cluster lacks: one line, before
    anything is written (sbatch would accept a job too large for every node and leave it pending forever)."""
    if not runs_on_slurm(master_config):
        return
    launcher = master_config.hydra.launcher
    submitit = launcher.get("submitit")  # the fused launcher's presets
    name, local = ("fused_slurm", "fused_local") if submitit is not None else ("slurm", "local")
    if shutil.which("sbatch") is None:
        raise UserError(
            f"hydra/launcher={name} submits jobs with SLURM's sbatch, "
            f"which this machine does not have: run the sweep on the cluster, or use hydra/launcher={local} here"
        )
    nodes = cluster_nodes(name, local)
    if submitit is not None:
        settings, prefix, partition_key = submitit, "hydra.launcher.submitit", "slurm_partition"
    else:
        settings, prefix, partition_key = launcher, "hydra.launcher", "partition"
    check_request(nodes, settings, prefix, partition_key)


def runs_on_slurm(master_config) -> bool:
    """Whether the trials run on SLURM's nodes (hydra/launcher=slurm or fused_slurm), not on this machine."""
    launcher = master_config.hydra.launcher
    submitit = launcher.get("submitit")
    return str(launcher.get("_target_", "")).endswith("SlurmLauncher") or (
        submitit is not None and submitit.get("cluster") == "slurm"
    )


def cluster_nodes(name: str, local: str) -> list[dict]:
    """Each node of each partition as `sinfo` lists it: partition, default, gres, cpus, memory (MB)."""
    try:
        done = subprocess.run(["sinfo", "-h", "-N", "-o", "%R|%P|%G|%c|%m"], capture_output=True, text=True, timeout=30)
        failure = (done.stderr.strip().splitlines() or ["no output"])[-1] if done.returncode else None
    except subprocess.TimeoutExpired:
        failure = "sinfo did not answer within 30 s"
    if failure is not None:
        raise UserError(
            f"hydra/launcher={name} submits jobs with SLURM's sbatch, but no SLURM controller answers here "
            f"({failure}): run the sweep where sinfo works, or use hydra/launcher={local} here"
        )
    fields = ("partition", "listed", "gres", "cpus", "memory")
    return [dict(zip(fields, line.split("|"), strict=True)) for line in done.stdout.split()]


def check_request(nodes: list[dict], settings, prefix: str, partition_key: str) -> None:
    partition = settings.get(partition_key)
    names = sorted({node["partition"] for node in nodes})
    if partition is not None and partition not in names:
        raise UserError(
            f"{prefix}.{partition_key}={partition} is not a partition of this cluster: expected one of "
            f"{', '.join(names)}, or null for the cluster's default"
        )
    chosen = [n for n in nodes if n["partition"] == partition or (partition is None and n["listed"].endswith("*"))]
    where = f"partition {partition or 'default'}"
    gpus = settings.get("gpus_per_node") or 0
    if gpus and not any("gpu" in node["gres"] for node in chosen):
        raise UserError(f"{prefix}.gpus_per_node={gpus}: the nodes of {where} have no GPUs; set it to 0")
    most_cpus = max((int(n["cpus"]) for n in chosen), default=0)
    cpus = settings.get("cpus_per_task") or 1
    if chosen and cpus > most_cpus:
        raise UserError(f"{prefix}.cpus_per_task={cpus}: the nodes of {where} have at most {most_cpus} CPUs")
    most_gb = max((int(n["memory"].rstrip("+")) for n in chosen), default=0) / 1024
    memory = settings.get("mem_gb")
    if chosen and memory and memory > most_gb:
        raise UserError(f"{prefix}.mem_gb={memory}: the nodes of {where} have at most {most_gb:.1f} GB")


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
    here = not dry_run and not runs_on_slurm(master_config)
    for job in jobs:
        check_job(hydra_context, master_config, job, here)


def check_job(hydra_context, master_config, job: list[str], here: bool) -> None:
    """Compose one trial's config as its launcher will and run the preflight on it; unknown keys raise Hydra's
    own errors, which train.py turns into one line, and bad values raise UserError. `here`: the trial runs on
    this machine, so its device and data files are checked too (not for a preview, nor on SLURM's nodes)."""
    config = hydra_context.config_loader.load_sweep_config(master_config, list(job))
    preflight(config, list(job), here=here)
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
    check_job(hydra_context, master_config, job, here=not dry_run and not runs_on_slurm(master_config))
