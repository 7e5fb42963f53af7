"""`hydra/sweeper=optuna_trials` (used by `sweep=optuna`): hydra-optuna-sweeper, with this project's
sweep directory, numbered readable trial directories, validation before the first trial, resume and
the summary files. Optuna itself is imported only when a sweep starts."""

import logging
from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf
from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper
from omegaconf import read_write

# optuna imports alembic, whose plugin registry logs a line per plugin at INFO under Hydra's logging
logging.getLogger("alembic").setLevel(logging.WARNING)


@dataclass
class OptunaTrialsSweeperConf(OptunaSweeperConf):
    _target_: str = "hydra_plugins.experiments_sweepers.optuna_trials.OptunaTrialsSweeper"


ConfigStore.instance().store(
    group="hydra/sweeper", name="optuna_trials", node=OptunaTrialsSweeperConf, provider="experiments"
)


class OptunaTrialsSweeper(OptunaSweeper):
    def setup(self, *, hydra_context, task_function, config) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        self.hydra_context, self.config = hydra_context, config

    def sweep(self, arguments: list[str]) -> Any:
        from experiments.sweeps.preflight import check_optuna_space
        from experiments.sweeps.trials import SweepPlan, TrialLauncher, params_as_arguments, parse
        from experiments.sweeps.wrapup import finish_sweep
        from experiments.tracking.sweep_runs import SweepTrackers

        impl = self.sweeper  # hydra-optuna-sweeper's implementation object
        swept, fixed = parse(params_as_arguments(impl.params) + list(arguments))
        dry_run = bool(self.config.get("dry_run"))
        check_optuna_space(self.hydra_context, self.config, swept, fixed, dry_run)
        plan = SweepPlan(self.config, swept, fixed)
        plan.check_matches_existing()
        if dry_run:
            from experiments.sweeps.dry_run import print_search_plan
            from experiments.sweeps.preflight import launcher_name

            space = {o.get_key_element(): o.input_line.partition("=")[2] for o in swept}
            print_search_plan(plan, space, impl.n_trials, launcher_name(self.config))
            return []
        plan.save()
        with read_write(self.config.hydra.sweep):
            self.config.hydra.sweep.dir = str(plan.dir)  # optimization_results.yaml lands there too
        impl.launcher = TrialLauncher(impl.launcher, plan, numbered=True)
        trackers = SweepTrackers(plan.dir, plan.name, self.config.get("logger"))
        trackers.open()  # the MLflow experiment and parent run, before any trial writes
        try:
            result = impl.sweep(arguments)
        except BaseException:
            finish_sweep(plan, trackers, interrupted=True)
            raise
        finish_sweep(plan, trackers)
        return result
