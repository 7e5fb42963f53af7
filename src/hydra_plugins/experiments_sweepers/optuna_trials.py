"""`hydra/sweeper=optuna_trials` (used by `sweep=optuna`): this project's own Optuna sweeper, on Optuna's ask
and tell. Each trial reports its objective after every validation and stops when the pruner says so
(experiments/sweeps/report_to_study.py); the study lives in the sweep's folder, so running the command again
continues it up to n_trials. Trials get numbered, readable folders, are validated before the first starts,
and end in the same summary files as a grid. Optuna itself is imported only when a sweep starts."""

import logging
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from omegaconf import OmegaConf, read_write

# optuna imports alembic, whose plugin registry logs a line per plugin at INFO under Hydra's logging
logging.getLogger("alembic").setLevel(logging.WARNING)
log = logging.getLogger(__name__)

OBJECTIVES = ("val/acc", "val/loss")


@dataclass
class OptunaTrialsSweeperConf:
    _target_: str = "hydra_plugins.experiments_sweepers.optuna_trials.OptunaTrialsSweeper"
    direction: str = "maximize"
    objective: str = "val/acc"
    n_trials: int = 20
    n_jobs: int = 1
    sampler: Any = field(default_factory=lambda: {"name": "tpe", "seed": 0})
    pruner: Any = field(default_factory=lambda: {"name": "median"})
    storage: Any = None
    params: Any = None


ConfigStore.instance().store(
    group="hydra/sweeper", name="optuna_trials", node=OptunaTrialsSweeperConf, provider="experiments"
)


class OptunaTrialsSweeper(Sweeper):
    def __init__(self, direction, objective, n_trials, n_jobs, sampler, pruner, storage, params) -> None:
        self.direction, self.objective, self.n_trials, self.n_jobs = direction, objective, n_trials, n_jobs
        self.sampler, self.pruner = chosen("sampler", sampler), chosen("pruner", pruner)
        self.storage, self.params = storage, params

    def setup(self, *, hydra_context, task_function, config) -> None:
        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        from experiments.sweeps.preflight import check_optuna_space, launcher_name
        from experiments.sweeps.study import build, distributions
        from experiments.sweeps.trials import SweepPlan, params_as_arguments, parse

        self.check_settings()
        swept, fixed = parse(params_as_arguments(self.params) + list(arguments))
        dry_run = bool(self.config.get("dry_run"))
        space = distributions(swept)  # an empty range is one line here, before a trial is composed
        check_optuna_space(self.hydra_context, self.config, swept, fixed, dry_run)
        sampler, pruner = build("sampler", self.sampler, space), build("pruner", self.pruner)
        plan = SweepPlan(self.config, swept, fixed)
        plan.check_matches_existing()
        if dry_run:
            from experiments.sweeps.dry_run import print_search_plan

            shown = {o.get_key_element(): o.input_line.partition("=")[2] for o in swept}
            print_search_plan(plan, shown, self.n_trials, launcher_name(self.config))
            return []
        from experiments.sweeps.lock import SweepLock
        from experiments.sweeps.study import open_storage

        if self.storage:  # a typed URL that cannot be opened is refused before the lock makes a folder
            open_storage(self.storage)
        plan.announce()
        with SweepLock(plan.dir):  # one copy of this sweep at a time
            return self.search(plan, space, sampler, pruner, fixed)

    def check_settings(self) -> None:
        from experiments.config.errors import UserError

        if self.direction not in ("maximize", "minimize"):
            raise UserError(f"hydra.sweeper.direction={self.direction} is not allowed: expected maximize or minimize")
        if self.objective not in OBJECTIVES:
            raise UserError(
                f"hydra.sweeper.objective={self.objective} is not allowed: expected one of val/acc, val/loss"
            )
        for key in ("n_trials", "n_jobs"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UserError(f"hydra.sweeper.{key}={value} is not allowed: expected an integer >= 1")

    def search(self, plan, space: dict, sampler, pruner, fixed) -> list:
        import optuna

        from experiments.records.tracking.sweep_runs import SweepTrackers
        from experiments.sweeps.study import open_storage, storage_url, write_link
        from experiments.sweeps.study_figures import FIGURES, draw_study_figures
        from experiments.sweeps.trials import TrialLauncher, fixed_strings
        from experiments.sweeps.wrapup import finish_sweep

        parallel = not str(self.config.hydra.launcher.get("_target_", "")).endswith("BasicLauncher")
        url = storage_url(plan.dir, self.storage, parallel)
        if not self.storage:  # the default file in the sweep's folder; a typed URL must open as it is
            plan.dir.mkdir(parents=True, exist_ok=True)
        storage = open_storage(url)
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # the sweep logs each trial's outcome itself
        study = optuna.create_study(
            storage=storage, sampler=sampler, pruner=pruner, study_name=plan.name, direction=self.direction,
            load_if_exists=True,
        )  # fmt: skip
        study.set_user_attr("sampler", self.sampler)  # the seed included: what a rerun must ask with
        study.set_user_attr("pruner", self.pruner)
        fail_killed_trials(study, storage, plan.dir)
        write_link(plan.dir, {"storage": url, "study": plan.name, "metric": self.objective, "pruner": self.pruner})
        plan.save()
        with read_write(self.config.hydra.sweep):
            self.config.hydra.sweep.dir = str(plan.dir)
        launcher = TrialLauncher(self.launcher, plan, self.config.hydra.launcher, numbered=True)
        trackers = SweepTrackers(plan.dir, plan.name, self.config.get("logger"))
        trackers.open()
        returns = []
        try:
            while (done := finished_count(study)) < self.n_trials:
                batch = [study.ask(space) for _ in range(min(self.n_jobs, self.n_trials - done))]
                jobs = [
                    [*(f"{key}={value}" for key, value in trial.params.items()), *fixed_strings(fixed)]
                    for trial in batch
                ]
                for trial, job in zip(batch, jobs, strict=True):
                    prepare_trial(plan, job, trial.number)
                launched = launcher.launch(jobs, initial_job_idx=batch[0].number)
                for trial, job, result in zip(batch, jobs, launched, strict=True):
                    self.tell(study, trial, plan.dir / plan.describe(job, trial.number)[0], result)
                returns.append(launched)
        except BaseException:
            finish_sweep(plan, trackers, interrupted=True)
            raise
        draw_study_figures(study, plan.dir, trial_statuses(plan))
        finish_sweep(plan, trackers)
        log.info(f"study: {url} ({finished_count(study)} trials); its pictures: {', '.join(FIGURES)}")
        return returns

    def tell(self, study, trial, trial_dir, result) -> None:
        from optuna.trial import TrialState

        from experiments.records.status import read_status
        from experiments.sweeps.study import objective

        status = read_status(trial_dir)["status"]
        reported = study.trials[trial.number].intermediate_values
        returned = result.return_value if result.status.name == "COMPLETED" else None
        if status == "pruned":
            study.tell(trial, state=TrialState.PRUNED)
            return
        value = objective(reported, returned, self.objective, self.direction) if status != "failed" else None
        if value is None:
            reason = "the trial failed (error.txt)" if status == "failed" else f"no finite {self.objective}"
            trial.set_user_attr("failed_because", reason)
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, values=value)


def chosen(kind: str, settings: Any) -> dict:
    """hydra.sweeper.sampler or .pruner: its name and settings. A bare name (`hydra.sweeper.pruner=median`) is
    refused with the key that takes it, before Hydra's own error about a mapping."""
    if OmegaConf.is_config(settings):
        settings = OmegaConf.to_container(settings)
    if not isinstance(settings, dict):
        from experiments.config.errors import UserError

        typed, name = ("null", "none") if settings is None else (settings, settings)
        raise UserError(
            f"hydra.sweeper.{kind}={typed} is not how a {kind} is chosen: type hydra.sweeper.{kind}.name={name} "
            f"(its settings go beside it, as hydra.sweeper.{kind}.SETTING=VALUE)"
        )
    return settings


def trial_statuses(plan) -> dict[int, str]:
    """Each trial's status in its folder, by its number in the study (its folder's NNN_ prefix)."""
    from experiments.records.status import read_status

    return {int(trial["name"][:3]): read_status(plan.dir / trial["name"])["status"] for trial in plan.trials}


def finished_count(study) -> int:
    return sum(trial.state.is_finished() for trial in study.trials)


def fail_killed_trials(study, storage, sweep_dir) -> None:
    """Trials left running by a sweep that was killed: failed in the study (it has no other state for them)
    and interrupted in their folders, with why; new ones are asked instead."""
    from optuna.trial import TrialState

    from experiments.records.status import write_status

    reason = "its sweep was stopped while it ran"
    study_id = storage.get_study_id_from_name(study.study_name)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        storage.set_trial_user_attr(trial_id, "failed_because", reason)
        study.tell(trial.number, state=TrialState.FAIL)
        for trial_dir in sweep_dir.glob(f"{trial.number:03d}_*"):
            write_status(trial_dir, "interrupted", error=reason)
        log.warning(f"trial {trial.number} was running when its sweep stopped: recorded as failed, another is asked")


def prepare_trial(plan, job: list[str], number: int) -> None:
    from experiments.sweeps.study import write_trial_number

    name, _ = plan.describe(job, number)
    write_trial_number(plan.dir / name, number)
