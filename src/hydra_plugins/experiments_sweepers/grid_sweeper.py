"""`hydra/sweeper=grid`, this project's default for `-m`: Hydra's basic grid, plus
- every trial's config is composed and validated before the first one runs;
- outputs/sweeps/NAME/TRIAL directories, a rerun resumes (see experiments.sweeps.trials);
- summary.csv, summary.md, heatmap.png and best.yaml when the sweep ends, also after Ctrl-C;
- exit status 1 when trials failed (not when they diverged);
- dry_run=true: the checks and the plan, printed, and nothing trained."""

from dataclasses import dataclass
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf, read_write

from experiments.sweeps.preflight import launcher_name


@dataclass
class GridSweeperConf:
    _target_: str = "hydra_plugins.experiments_sweepers.grid_sweeper.GridSweeper"
    max_batch_size: Any = None
    params: Any = None  # key: comma-separated values, as on the command line


ConfigStore.instance().store(group="hydra/sweeper", name="grid", node=GridSweeperConf, provider="experiments")


class GridSweeper(BasicSweeper):
    def sweep(self, arguments: list[str]) -> Any:
        from experiments.records.tracking.sweep_runs import SweepTrackers
        from experiments.sweeps.composed import compose_trials_once
        from experiments.sweeps.lock import SweepLock
        from experiments.sweeps.preflight import check_trials
        from experiments.sweeps.trials import SweepPlan, TrialLauncher, params_as_arguments, parse
        from experiments.sweeps.wrapup import finish_sweep

        everything = params_as_arguments(self.params) + list(arguments)
        swept, fixed = parse(everything)
        batches = BasicSweeper.split_arguments(self._parsed(everything), self.max_batch_size)
        jobs = [job for batch in batches for job in batch]
        dry_run = bool(self.config.get("dry_run"))
        compose_trials_once(self)  # what the preflight composes, the launcher runs
        check_trials(self.hydra_context, self.config, swept, jobs, dry_run)  # raises before anything is written
        plan = SweepPlan(self.config, swept, fixed)
        plan.check_matches_existing()
        if dry_run:
            from experiments.sweeps.dry_run import print_grid_plan

            print_grid_plan(plan, jobs, launcher_name(self.config))
            return []
        plan.announce()
        with SweepLock(plan.dir):  # one copy of this sweep at a time
            launcher = TrialLauncher(self.launcher, plan, self.config.hydra.launcher)
            for job in jobs:  # listed up front, so a partial sweep's summary shows what is still missing
                name, values = plan.describe(job)
                plan.add(name, values, job, save=False)
            plan.save()
            with read_write(self.config.hydra.sweep):
                self.config.hydra.sweep.dir = str(plan.dir)  # the launcher creates and logs this directory
            OmegaConf.save(self.config, plan.dir / "multirun.yaml")  # as Hydra's basic sweeper does
            trackers = SweepTrackers(plan.dir, plan.name, self.config.get("logger"))
            trackers.open()  # the MLflow experiment and parent run, before any trial writes
            returns, index = [], 0
            try:
                for batch in batches:
                    returns.append(launcher.launch(batch, initial_job_idx=index))
                    index += len(batch)
            except BaseException:  # Ctrl-C included: the partial summary is still written
                finish_sweep(plan, trackers, interrupted=True)
                raise
            finish_sweep(plan, trackers)
            return returns

    @staticmethod
    def _parsed(arguments: list[str]):
        from hydra.core.override_parser.overrides_parser import OverridesParser

        return OverridesParser.create().parse_overrides(arguments)
