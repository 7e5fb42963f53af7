"""`hydra/launcher=fused`: trials that differ only in the learning rate, weight decay and L1 strength
train as one batched model, in this process (experiments.fused). It works under every sweeper here:
`python train.py -m sweep=lr_wd hydra/launcher=fused`, a typed grid, or `sweep=optuna` (each batch of
`n_jobs` trials is one set)."""

from dataclasses import dataclass

from hydra.core.config_store import ConfigStore
from hydra.core.utils import configure_log, setup_globals
from hydra.plugins.launcher import Launcher


@dataclass
class FusedLauncherConf:
    _target_: str = "hydra_plugins.experiments_sweepers.fused_launcher.FusedLauncher"
    max_trials: int = 32  # the most trials in one set; a larger grid trains as several sets, one after another


ConfigStore.instance().store(group="hydra/launcher", name="fused", node=FusedLauncherConf, provider="experiments")


class FusedLauncher(Launcher):
    def __init__(self, max_trials: int = 32) -> None:
        if not isinstance(max_trials, int) or isinstance(max_trials, bool) or max_trials < 1:
            from experiments.errors import UserError

            raise UserError(f"hydra.launcher.max_trials={max_trials} is not allowed: it must be an integer >= 1")
        self.max_trials = max_trials
        self.config = self.hydra_context = self.task_function = None

    def setup(self, *, hydra_context, task_function, config) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides, initial_job_idx: int):
        from experiments.fused.launch import launch_fused  # torch and Lightning: only when trials run

        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        returns = launch_fused(self, job_overrides, initial_job_idx, self.max_trials)
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return returns
