"""What `hydra/launcher=fused` does with the jobs a sweeper hands it:

1. each job goes through Hydra's own `run_job` with a task that only prepares it (its directory, .hydra/
   configs, train.log, status.json "running") and checks its config;
2. jobs whose configs differ only in the fused keys (`experiments.fused.train.FUSED`) form a set, of at
   most `max_trials`, and each set trains as one model (`train_fused`);
3. each job's JobReturn gets its trial's objective, as a lone trial's would.

A job that cannot join a set (a resumed trial, a config that does not fuse, a set of one) runs as an
ordinary trial through the sweep's task function, and the log says why in one line.
"""

import logging
import sys
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, run_job
from omegaconf import DictConfig, OmegaConf, open_dict

from experiments.config.errors import UserError
from experiments.preflight import preflight
from experiments.records.disk_full import disk_full_line, stop_on_full_disk
from experiments.records.status import record_failure, record_finished, write_status

log = logging.getLogger(__name__)


class PreparedJob:
    def __init__(self, index: int, sweep_config: DictConfig):
        self.index, self.sweep_config = index, sweep_config
        self.cfg: DictConfig | None = None
        self.trial_dir: Path | None = None
        self.choices: dict = {}
        self.error: str | None = None
        self.job_return: JobReturn | None = None

    def prepare(self, cfg: DictConfig) -> None:
        """The task run_job runs for a job of a fused set: record where and what, validate, mark running."""
        hydra = HydraConfig.get()
        self.cfg, self.trial_dir = cfg, Path(hydra.runtime.output_dir)
        self.choices = OmegaConf.to_container(hydra.runtime.choices)
        try:
            preflight(cfg, list(hydra.overrides.task), here=False)  # the sweep's preflight checked this machine
        except UserError as err:
            self.error = str(err)
        write_status(self.trial_dir, "running", fresh=True, fused=True)


def launch_fused(
    launcher, job_overrides, initial_job_idx: int, max_trials: int, submitit: dict | None = None
) -> list[JobReturn]:
    from experiments.fused.train import check_fusable, fusion_key
    from experiments.training.callbacks.interrupt import install_stop_handlers

    install_stop_handlers()  # Ctrl-C and SIGTERM stop a fused set at its next step

    jobs = []
    for offset, overrides in enumerate(job_overrides):
        sweep_config = launcher.hydra_context.config_loader.load_sweep_config(launcher.config, list(overrides))
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = sweep_config.hydra.job.num = initial_job_idx + offset
        job = PreparedJob(initial_job_idx + offset, sweep_config)
        job.job_return = run_job(
            hydra_context=launcher.hydra_context,
            task_function=job.prepare,
            config=sweep_config,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )
        jobs.append(job)
    sets: dict[str, list[PreparedJob]] = {}
    alone: list[tuple[PreparedJob, str]] = []
    for job in jobs:
        if job.error is not None or job.cfg is None:
            alone.append((job, "its config is refused"))
        elif job.cfg.ckpt_path:
            alone.append((job, "it resumes from its last checkpoint"))
        else:
            sets.setdefault(fusion_key(job.cfg), []).append(job)
    fused_sets = []
    for members in sets.values():
        for start in range(0, len(members), max_trials):
            chunk = members[start : start + max_trials]
            if len(chunk) == 1:
                alone.append((chunk[0], "no other trial shares its settings"))
                continue
            try:
                check_fusable([job.cfg for job in chunk], grouped=True)
            except UserError as err:
                alone += [(job, str(err)) for job in chunk]
                continue
            fused_sets.append(chunk)
    for job, reason in alone:
        log.info(f"trial {job.trial_dir.name if job.trial_dir else job.index} runs alone: {reason}")
    lone = [LoneTrial(launcher.hydra_context, launcher.task_function, job.sweep_config) for job, _ in alone]
    if submitit is None:
        for chunk in fused_sets:
            train_set_here(chunk)
        for (job, _), trial in zip(alone, lone, strict=True):
            job.job_return = trial()
    else:  # a lone trial is a job of its own too: none trains on the machine the sweep was started from
        submit_sets(fused_sets, list(zip([job for job, _ in alone], lone, strict=True)), submitit)
    return [job.job_return for job in jobs]


class LoneTrial:
    """An ordinary trial through the sweep's task function, here or inside a submitit job (picklable, as
    Hydra's own submitit launcher sends its jobs: Hydra's global state travels with it)."""

    def __init__(self, hydra_context, task_function, sweep_config: DictConfig) -> None:
        from hydra.core.singleton import Singleton

        self.hydra_context, self.task_function, self.sweep_config = hydra_context, task_function, sweep_config
        self.hydra_state = Singleton.get_state()

    def __call__(self) -> JobReturn:
        from hydra.core.singleton import Singleton
        from hydra.core.utils import setup_globals

        Singleton.set_state(self.hydra_state)
        setup_globals()
        return run_job(
            hydra_context=self.hydra_context,
            task_function=self.task_function,
            config=self.sweep_config,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )


def train_set_here(jobs: list[PreparedJob]) -> None:
    """Train one fused set in this process; Ctrl-C or SIGTERM stops the sweep, as for a lone trial."""
    from experiments.training.callbacks.interrupt import StopRequest

    objectives = train_set([job.cfg for job in jobs], [job.trial_dir for job in jobs], jobs[0].choices)
    for job, objective in zip(jobs, objectives, strict=True):
        job.job_return.return_value = objective
    if StopRequest.pending():
        log.error("sweep interrupted: the fused set stopped; rerun the same command to train it again")
        sys.exit(StopRequest.exit_code())


def submit_sets(sets: list[list[PreparedJob]], lone: list[tuple[PreparedJob, LoneTrial]], params: dict) -> None:
    """Each fused set, and each trial that runs alone, as one submitit job (a SLURM job, or a local process),
    all submitted at once."""
    import submitit

    from experiments.sweeps.sbatch_refusal import refused_job

    params = dict(params)
    executor = submitit.AutoExecutor(folder=params.pop("folder"), cluster=params.pop("cluster"))
    executor.update_parameters(**params)
    try:
        submitted = [
            executor.submit(train_set_in_job, [j.cfg for j in jobs], [j.trial_dir for j in jobs], jobs[0].choices)
            for jobs in sets
        ]
        alone = [executor.submit(trial) for _, trial in lone]
    except Exception as err:
        refusal = refused_job(err, params, "hydra.launcher.submitit")
        if refusal is None:
            raise
        raise refusal from None
    for jobs, job in zip(sets, submitted, strict=True):
        log.info(f"fused set of {len(jobs)} trials submitted as job {job.job_id}")
    for jobs, job in zip(sets, submitted, strict=True):
        try:
            objectives = job.result()
        except Exception as err:  # the job itself failed (killed, out of memory): every trial says so
            objectives = [None] * len(jobs)
            job_failed(job, err, [member.trial_dir for member in jobs])
        for member, objective in zip(jobs, objectives, strict=True):
            member.job_return.return_value = objective
    for (member, _), job in zip(lone, alone, strict=True):
        try:
            member.job_return = job.result()
        except Exception as err:
            job_failed(job, err, [member.trial_dir])


def job_failed(job, err: Exception, trial_dirs: list[Path]) -> None:
    """A submitted job that died (killed, out of memory): each of its trials says so."""
    message = f"job {job.job_id} failed: {(str(err).strip().splitlines() or [type(err).__name__])[-1]}"
    log.error(message)
    for trial_dir in trial_dirs:
        write_status(trial_dir, "failed", error=message)


def train_set_in_job(cfgs: list[DictConfig], trial_dirs: list[Path], choices: dict) -> list[float | None]:
    """What a submitted job runs: one fused set, stopped at a step by SIGTERM or SIGUSR1 (a pre-emption)."""
    from experiments.training.callbacks.interrupt import install_stop_handlers

    logging.basicConfig(level=logging.INFO, format="%(message)s")  # into the job's own log (submitit's .err file)
    install_stop_handlers()
    return train_set(cfgs, trial_dirs, choices)


def train_set(cfgs: list[DictConfig], trial_dirs: list[Path], choices: dict) -> list[float | None]:
    """Train one fused set; every trial records its status, as job.run_job would. Returns the trials'
    objectives (None: the trial failed or was interrupted; rerunning the sweep trains it again)."""
    from experiments.fused.train import train_fused
    from experiments.training.callbacks.interrupt import Interrupted

    names = ", ".join(trial_dir.name for trial_dir in trial_dirs)
    log.info(f"fused set of {len(cfgs)} trials: {names}")
    try:
        results = train_fused(cfgs, trial_dirs, choices)
    except Interrupted:
        for trial_dir in trial_dirs:
            write_status(trial_dir, "interrupted")
        return [None] * len(cfgs)
    except Exception as err:  # the whole set failed: each trial says so, as a lone failure would
        if (full := disk_full_line(err, trial_dirs[0].parent)) is not None:
            stop_on_full_disk(list(trial_dirs), full)  # the next sets would meet the same full disk
        messages = [record_failure(trial_dir, err) for trial_dir in trial_dirs]
        log.error(f"fused set failed: {messages[0]}")
        return [None] * len(cfgs)
    return [record_finished(trial_dir, metrics) for trial_dir, metrics in zip(trial_dirs, results, strict=True)]
