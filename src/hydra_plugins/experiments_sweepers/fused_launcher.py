"""`hydra/launcher=fused`: trials that differ only in the learning rate, weight decay and L1 strength
train as one batched model, in this process (experiments.fused). It works under every sweeper here:
`python train.py -m sweep=lr_wd hydra/launcher=fused`, a typed grid, or `sweep=optuna` (each batch of
`n_jobs` trials is one set). With `submitit` set (presets fused_local and fused_slurm), each set is one
submitit job instead: a SLURM job, or a local process."""

from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.utils import configure_log, setup_globals
from hydra.plugins.launcher import Launcher


@dataclass
class FusedLauncherConf:
    _target_: str = "hydra_plugins.experiments_sweepers.fused_launcher.FusedLauncher"
    max_trials: int = 32  # the most trials in one set; a larger grid trains as several sets, one after another
    # null: the sets train in this process, one after another; else each set is one submitit job, all
    # submitted at once: {cluster: local | slurm, folder: ..., and submitit's executor parameters}
    submitit: Any = None


ConfigStore.instance().store(group="hydra/launcher", name="fused", node=FusedLauncherConf, provider="experiments")


class FusedLauncher(Launcher):
    def __init__(self, max_trials: int = 32, submitit: Any = None) -> None:
        from omegaconf import OmegaConf

        if not isinstance(max_trials, int) or isinstance(max_trials, bool) or max_trials < 1:
            from experiments.config.errors import UserError

            raise UserError(f"hydra.launcher.max_trials={max_trials} is not allowed: it must be an integer >= 1")
        clusters = ("local", "slurm")
        if submitit is not None and (not OmegaConf.is_dict(submitit) or submitit.get("cluster") not in clusters):
            from experiments.config.errors import UserError

            raise UserError(
                f"hydra.launcher.submitit={submitit} is not allowed: null, or {{cluster: local | slurm, folder: ...}} "
                "(presets hydra/launcher=fused_local and fused_slurm)"
            )
        self.max_trials = max_trials
        self.submitit = OmegaConf.to_container(submitit, resolve=True) if OmegaConf.is_config(submitit) else submitit
        self.config = self.hydra_context = self.task_function = None

    def setup(self, *, hydra_context, task_function, config) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides, initial_job_idx: int):
        from experiments.fused.launch import launch_fused  # torch and Lightning: only when trials run

        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        returns = launch_fused(self, job_overrides, initial_job_idx, self.max_trials, self.submitit)
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return returns
