"""A `sweep=optuna` trial reports its objective to the study after every validation, and stops when the
study's pruner says so: the epoch ends, its last checkpoint is written, and the trial is `pruned`. The
trial is found from its folder (sweeps/study.py), so it works in any process a launcher starts; the job hands
it to the run (job.py), so training knows nothing of studies."""

import math
from pathlib import Path

import lightning as L

from experiments.sweeps.study import LINK, TRIAL, linked_trial


class ReportToStudy(L.Callback):
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.trial, self.metric = None, None
        self.pruned_epoch: int | None = None  # the epoch it stopped after, from 0 as Lightning counts

    @classmethod
    def for_trial(cls, run_dir: Path) -> "ReportToStudy | None":
        """The callback for a run in a `sweep=optuna` trial's folder; None for any other run."""
        linked = (Path(run_dir).parent / LINK).is_file() and (Path(run_dir) / TRIAL).is_file()
        return cls(run_dir) if linked else None

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.pruned_epoch is not None:
            return
        if self.trial is None:
            self.trial, self.metric = linked_trial(self.run_dir)
        value = trainer.callback_metrics.get(self.metric)
        if value is None or not math.isfinite(float(value)):
            return
        self.trial.report(float(value), step=trainer.current_epoch)
        if self.trial.should_prune():
            self.pruned_epoch = trainer.current_epoch
            trainer.should_stop = True
