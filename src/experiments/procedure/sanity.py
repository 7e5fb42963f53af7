"""The note's sanity checks (Procedural Summary, steps 3-5), each judged PASS or FAIL with its numbers:

- initial loss: the untrained model's loss on one batch is close to ln(C) (2.30 for 10 classes);
- regularization raises the loss: the same batch and weights, with L1 and then L2 cranked up, give a
  higher objective. The objective is what training minimizes, read from the module's own code: its
  L1 penalty and the weight decay its optimizer was configured with. A regularizer that is not wired in
  leaves it unchanged;
- overfit a tiny subset: a few dozen training examples, no regularization, SGD, until training
  accuracy reaches 100% or the step budget runs out. Lightning trains it; its EarlyStopping stops at 100%.
"""

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping
from omegaconf import DictConfig

from experiments.data.in_memory import InMemoryDataModule, Split, TensorBatches
from experiments.procedure.quiet import quiet_lightning
from experiments.training.module import ClassifierModule

# What a failure of each check usually means, for the table.
FAILURE_MEANS = {
    "initial_loss": "bad initialization or input scaling (weights too large, unnormalized inputs)",
    "regularization": "the regularizer is not wired into the objective",
    "overfit": "a bug in the model or the training step, or too little capacity",
}
LABELS = {
    "initial_loss": "initial loss ≈ ln(C) (step 3)",
    "regularization": "regularization raises the loss (step 4)",
    "overfit": "overfit a tiny subset (step 5)",
}
NO_REGULARIZATION = {"weight_decay": 0.0, "l1": 0.0, "dropout": 0.0, "max_norm": None}


@dataclass
class CheckResult:
    check: str  # initial_loss | regularization | overfit
    passed: bool
    measured: str
    expected: str
    figures: dict  # the numbers behind `measured`, for checks.json and metrics.json

    @property
    def label(self) -> str:
        return LABELS[self.check] + (f" [{self.figures['regularizer']}]" if "regularizer" in self.figures else "")

    def as_dict(self) -> dict:
        return {"label": self.label, **asdict(self), "failure_means": FAILURE_MEANS[self.check]}


def run_checks(names: Iterable[str], cfg: DictConfig, module: ClassifierModule, data: InMemoryDataModule) -> list:
    """The named checks, in the note's order, on an untrained module. The global RNG is restored
    afterwards, so a training run that follows draws what it would have drawn without them."""
    sizes = {"initial_loss": data.batch_size, "regularization": data.batch_size, "overfit": cfg.checks.overfit_examples}
    batches = {name: data.probe_batch(size) for name, size in sizes.items() if name in names}  # fixed examples
    results: list[CheckResult] = []
    with torch.random.fork_rng(devices=[]):
        if "initial_loss" in batches:
            results.append(initial_loss(module, batches["initial_loss"], cfg.checks.initial_loss_tolerance))
        if "regularization" in batches:
            results += regularization_raises_loss(module, batches["regularization"], cfg)
        if "overfit" in batches:
            results.append(overfit_tiny_subset(module, batches["overfit"], cfg))
    return results


def initial_loss(module: ClassifierModule, batch: Split, tolerance: float) -> CheckResult:
    pixels, labels = batch
    with torch.no_grad(), evaluating(module):
        loss = module.loss_fn(module(pixels), labels).item()
    expected = math.log(module.hparams.num_classes)
    passed = math.isfinite(loss) and abs(loss - expected) <= tolerance * expected
    return CheckResult(
        "initial_loss",
        passed,
        measured=f"{loss:.3f}",
        expected=f"ln({module.hparams.num_classes}) = {expected:.3f} ± {tolerance:.0%}",
        figures={"loss": loss, "ln_classes": expected, "tolerance": tolerance},
    )


def regularization_raises_loss(module: ClassifierModule, batch: Split, cfg: DictConfig) -> list[CheckResult]:
    """One row per regularizer: L1, and L2 (weight decay) unless the optimizer takes none (L-BFGS). Each is the
    same weights and preprocessing, regularized by that setting and nothing else (ClassifierModule.objective)."""
    strength = cfg.checks.regularization_strength
    unregularized = {**module.hparams.regularization, "weight_decay": 0.0, "l1": 0.0}
    baseline = module.with_hparams(regularization=unregularized, scheduler=None).objective(batch)
    regularizers = {"L1": {"l1": strength}, "L2": {"weight_decay": strength}}
    if module.hparams.optimizer["_target_"].endswith("LBFGS"):
        del regularizers["L2"]
    # All-zero weights (model.init=zeros) carry no penalty whatever is wired in: say so next to the figure.
    zero = all(not w.detach().any() for _, w in module.named_weights())
    results = []
    for name, setting in regularizers.items():
        regularized = module.with_hparams(regularization={**unregularized, **setting}, scheduler=None)
        raised = regularized.objective(batch)
        passed = math.isfinite(raised) and raised > baseline * (1 + 1e-3)
        results.append(
            CheckResult(
                "regularization",
                passed,
                measured=f"{baseline:.3f} -> {raised:.3f}" + (" (all weights are 0)" if zero else ""),
                expected=f"higher at {name} strength {strength:g}",
                figures={"regularizer": name, "strength": strength, "without": baseline, "with": raised},
            )
        )
    return results


def overfit_tiny_subset(module: ClassifierModule, batch: Split, cfg: DictConfig) -> CheckResult:
    """A fresh copy of the model, without regularization, trained by SGD on one fixed batch."""
    checks = cfg.checks
    regularization = {**module.hparams.regularization, **NO_REGULARIZATION}
    sgd = {"_target_": "torch.optim.SGD", "_partial_": True, "lr": checks.overfit_lr, "momentum": 0.9}
    learner = module.with_hparams(same_weights=False, optimizer=sgd, regularization=regularization, scheduler=None)
    learner.log_to_logger = False  # its Trainer has none; EarlyStopping reads the values all the same
    examples = len(batch[1])
    # Lightning's EarlyStopping ends the run once training accuracy exceeds this: all examples right.
    stop = EarlyStopping(
        "train/acc", mode="max", stopping_threshold=1 - 0.5 / examples, patience=checks.overfit_max_steps + 1
    )
    # One fixed batch per epoch. Lightning's overfit_batches would take the first batch of each epoch's
    # shuffled order, which changes every epoch here: the datamodule shuffles by index, not by sampler.
    with quiet_lightning():
        trainer = L.Trainer(
            max_steps=checks.overfit_max_steps,
            max_epochs=-1,
            accelerator=cfg.trainer.accelerator,
            devices=1,
            precision=cfg.trainer.precision,
            limit_val_batches=0,
            log_every_n_steps=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=[stop],
            gradient_clip_val=cfg.regularization.grad_clip.value,
        )
        trainer.fit(learner, train_dataloaders=TensorBatches(batch, examples, generator=None))
    accuracy = float(trainer.callback_metrics.get("train/acc", float("nan")))
    steps = trainer.global_step
    return CheckResult(
        "overfit",
        passed=accuracy >= 1 - 0.5 / examples,
        measured=f"{accuracy:.0%} after {steps} steps",
        expected=f"100% of {examples} examples within {checks.overfit_max_steps} steps",
        figures={"train_acc": accuracy, "steps": steps, "examples": examples, "lr": checks.overfit_lr},
    )


class evaluating:
    """Eval mode inside the block (no dropout, BatchNorm's running statistics), the previous mode after."""

    def __init__(self, module: torch.nn.Module):
        self.module, self.was_training = module, module.training

    def __enter__(self) -> None:
        self.module.eval()

    def __exit__(self, *exc) -> None:
        self.module.train(self.was_training)
