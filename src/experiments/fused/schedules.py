"""TrialSchedules: each trial of a fused set follows its own learning-rate scheduler, as its lone run would.

A torch scheduler sets one scalar rate per parameter group, and a fused set holds all its trials in one
group per tensor. So every trial gets the real scheduler of its lone run (StepLR, CosineAnnealingLR,
OneCycleLR, ReduceLROnPlateau, with the trial's own settings), driving a stand-in optimizer of the same
class that holds one number per parameter group. Where Lightning steps a lone run's scheduler (after each
batch; after the epoch's last batch; plateau after validation, with the trial's own val/loss), the
stand-ins' rates, and the momenta that OneCycleLR cycles, are copied into the stacked optimizer as
per-trial values. The rates are the scheduler's own floats, step for step.
A stand-in has the lone run's two parameter groups (weights with the trial's weight decay, the rest
without), so its scheduler's state is the one the trial's lone run saves (fused/lone_runs.py).
"""

import warnings

import torch
from hydra.utils import instantiate
from torch.optim.lr_scheduler import OneCycleLR, ReduceLROnPlateau

from experiments.fused.optimizers import StackedOptimizer


class TrialSchedules:
    def __init__(self, trial_hparams: list[dict], total_steps: int):
        self.stand_ins: list[torch.optim.Optimizer] = []
        self.schedulers: list = []
        for hparams in trial_hparams:
            options = dict(hparams["scheduler"])
            self.interval = options.pop("interval", "epoch")
            options.pop("monitor", None)
            if options["_target_"].endswith("OneCycleLR"):
                options["total_steps"] = total_steps  # as ClassifierModule gives it, from the Trainer
            decay = (hparams["regularization"] or {}).get("weight_decay", 0.0)
            groups = [{"weight_decay": decay}, {"weight_decay": 0.0}]  # as ClassifierModule.optimizer_groups
            stand_in = instantiate(hparams["optimizer"])(
                [{"params": [torch.zeros(1, requires_grad=True)], **group} for group in groups]
            )
            stand_in.step()  # no gradient, no change: torch then knows the optimizer stepped before its scheduler
            self.stand_ins.append(stand_in)
            self.schedulers.append(instantiate(options)(stand_in))
        self.by_validation = isinstance(self.schedulers[0], ReduceLROnPlateau)
        self.cycles_momentum = isinstance(self.schedulers[0], OneCycleLR) and self.schedulers[0].cycle_momentum

    def steps_after_batch(self, last_of_epoch: bool) -> bool:
        """Lightning steps a per-batch scheduler after every batch, and a per-epoch one other than plateau
        after the epoch's last training batch (before validation); plateau waits for validation."""
        return self.interval == "step" or (last_of_epoch and not self.by_validation)

    def step(self, trials: list[int], val_losses: dict[int, float] | None = None) -> None:
        """One scheduler step for each of `trials` (plateau: with its own val/loss of the epoch)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch's "step() before optimizer.step()": not here
            for trial in trials:
                if self.by_validation:
                    self.schedulers[trial].step(val_losses[trial])
                else:
                    self.schedulers[trial].step()

    def apply(self, optimizer: StackedOptimizer, trials: list[int]) -> None:
        """The stand-ins' current rates (and cycled momenta) for `trials`, the stack's order, into `optimizer`."""
        groups = [self.stand_ins[trial].param_groups[0] for trial in trials]
        device = optimizer.param_groups[0]["params"][0].device
        rates = torch.tensor([group["lr"] for group in groups], dtype=torch.float64, device=device)
        momenta = None
        if self.cycles_momentum and "momentum" in groups[0]:  # SGD, RMSprop: per trial
            momenta = torch.tensor([group["momentum"] for group in groups], dtype=torch.float64, device=device)
            optimizer.with_momentum = True  # OneCycleLR gives momentum even to a trial that had none
        for group in optimizer.param_groups:
            group["lr"] = rates
            if momenta is not None:
                group["momentum"] = momenta
            if self.cycles_momentum and "betas" in groups[0]:  # Adam: the same cycled beta1 for every trial
                group["betas"] = tuple(groups[0]["betas"])
