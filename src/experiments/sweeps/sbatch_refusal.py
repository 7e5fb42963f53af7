"""A job that SLURM refuses at submission (a partition it does not have, GPUs on a cluster without them): one
line naming the launcher key to change and its value, instead of submitit's traceback."""

from experiments.config.errors import UserError

# sbatch's message (Slurm 22.05 and later) -> the setting behind it, as submitit names it
CAUSES = (
    ("invalid partition", "partition", "a partition `sinfo` lists, or null for the cluster's default"),
    ("invalid generic resource", "gpus_per_node", "0 on a cluster without GPUs, or what `sinfo -o %G` lists"),
    ("gres", "gpus_per_node", "0 on a cluster without GPUs, or what `sinfo -o %G` lists"),
    ("memory specification", "mem_gb", "at most a node's memory (`sinfo -o %m`, in MB)"),
    ("more processors requested", "cpus_per_task", "at most a node's CPUs (`sinfo -o %c`)"),
    ("node configuration is not available", "cpus_per_task", "CPUs, memory and GPUs one node has (`sinfo -N -l`)"),
    ("time limit", "timeout_min", "at most the partition's limit (`sinfo -o %l`)"),
)


def refused_job(err: Exception, settings: dict, prefix: str) -> UserError | None:
    """The UserError for a submission that sbatch refused, or None when `err` is something else.
    `settings`: the launcher's submitit settings; `prefix`: where they live (hydra.launcher)."""
    from submitit.core.utils import FailedJobError

    if not isinstance(err, FailedJobError) or "sbatch" not in str(err):
        return None
    message = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
    lowered = message.lower()
    for pattern, setting, allowed in CAUSES:
        key = next((k for k in (setting, f"slurm_{setting}") if k in settings), setting)
        if pattern in lowered:
            return UserError(f"{prefix}.{key}={settings.get(key)} was refused by SLURM ({message}): expected {allowed}")
    return UserError(f"SLURM refused the job ({message}): check the settings under {prefix}")
