"""`trainer=slurm`: one run as a SLURM job (srun starts one process per device), requeued when its time runs out.

Lightning's SLURMEnvironment gives the ranks, nodes and rendezvous. Its own auto-requeue is switched off:
it writes a separate hpc checkpoint from inside the signal handler, in the middle of a step, and resumes
without this project's resume (TensorBoard continuity, the run's own config). Instead:
- every rank of a job names the same run directory, `OUTPUT_ROOT/runs/slurm-<JOB_ID>_<model>_<data>`
  (paths.output_root, by default outputs), so srun's independent processes share it and a requeued job
  finds it again;
- SIGUSR1 (`sbatch --signal=USR1@90`: 90 s before the time limit) stops the run at the next step with a
  checkpoint, like Ctrl-C, and rank zero then asks SLURM to requeue the job (`scontrol requeue`);
- when the job starts again, `trainer=slurm` finds its unfinished run directory and resumes it in place.
Kept free of torch imports: the command line is rewritten before Hydra composes it.
"""

import logging
import os
import subprocess
from pathlib import Path

from experiments.checkpoints.resume import FINISHED, LAST, run_status
from experiments.config.errors import UserError

log = logging.getLogger(__name__)


def job_id() -> str | None:
    """The SLURM job (array jobs: JOB_TASK), or None outside SLURM."""
    array_job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array_job and task:
        return f"{array_job}_{task}"
    return os.environ.get("SLURM_JOB_ID")


def run_name(stamp: str, label: str, trainer: str, process: str, changes: str = "") -> str:
    """A run directory's name: unique per process, or per SLURM job under trainer=slurm (all ranks share it,
    and a requeued job finds it by the job's id). `changes`: what the user changed, first."""
    if trainer == "slurm" and (job := job_id()):
        return f"slurm-{job}_{label}"
    return f"{changes}_{label}_{stamp}_{process}" if changes else f"{label}_{stamp}_{process}"


def uses_slurm_preset(arguments: list[str]) -> bool:
    return "trainer=slurm" in arguments


def check_inside_job(arguments: list[str]) -> None:
    if uses_slurm_preset(arguments) and job_id() is None:
        raise UserError(
            "trainer=slurm runs inside a SLURM job (SLURM_JOB_ID is not set): submit it with sbatch and srun "
            "(README, Scaling out); on this machine use trainer=ddp or trainer=auto"
        )


def runs_folder(arguments: list[str], conf_dir: Path | None) -> Path:
    """OUTPUT_ROOT/runs before Hydra composes: paths.output_root as typed, else as this machine's
    conf/local/default.yaml or conf/config.yaml sets it."""
    from omegaconf import OmegaConf

    typed = [a.partition("=")[2] for a in arguments if a.lstrip("+").startswith("paths.output_root=")]
    if typed:
        return Path(typed[-1]) / "runs"
    for yaml in (conf_dir / "local" / "default.yaml", conf_dir / "config.yaml") if conf_dir else ():
        root = OmegaConf.select(OmegaConf.load(yaml), "paths.output_root") if yaml.is_file() else None
        if root is not None:
            return Path(root) / "runs"
    return Path("outputs") / "runs"


def expand_requeued(arguments: list[str], conf_dir: Path | None = None) -> list[str]:
    """Under trainer=slurm, a job that finds its own unfinished run resumes it: `resume=DIR` is added."""
    check_inside_job(arguments)
    if not uses_slurm_preset(arguments) or any(a.startswith("resume=") for a in arguments):
        return arguments
    if any(flag in arguments for flag in ("-m", "--multirun")):
        raise UserError("trainer=slurm is one run per job; a sweep on SLURM uses hydra/launcher=slurm (README)")
    found = sorted(runs_folder(arguments, conf_dir).glob(f"slurm-{job_id()}_*"))
    unfinished = [run for run in found if (run / LAST).is_file() and run_status(run) not in FINISHED]
    if not unfinished:
        return arguments  # a first start, or the job stopped before its first checkpoint: start it (again)
    log.warning(f"SLURM job {job_id()} was requeued: resuming {unfinished[-1]}")
    flags = [a for a in arguments if a.startswith("-")]  # the overrides are the run's own: resume= reads them
    return [*flags, f"resume={unfinished[-1]}"]


def requeue(is_global_zero: bool) -> None:
    """Ask SLURM to start this job again; it resumes the run (expand_requeued). Rank zero asks, once."""
    if not is_global_zero:
        return
    job = job_id()
    try:
        result = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
        failure = result.stderr.strip() if result.returncode else None
    except OSError as err:  # no scontrol on this node
        failure = str(err)
    if failure is not None:
        log.error(f"scontrol requeue {job} failed ({failure}): resume it with python train.py resume=RUN_DIR")
    else:
        log.warning(f"SLURM job {job} requeued: it resumes this run when it starts again")
