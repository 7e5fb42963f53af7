"""Compose-time validation: every bad value gets one line naming the key, the value and what is allowed.

Rules apply to keys that exist in the composed config, so one table serves every model and dataset.
This table is the one source of allowed values: constructors that take these values (the datamodules,
InputTransform, the models) call `check_value` with the same key, so their messages are the same line.
Kept free of torch imports: `--help` and bad-input errors answer before the heavy stack loads.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from experiments.config.errors import UserError
from experiments.config.overrides import override_key


@dataclass(frozen=True)
class Rule:
    allowed: str  # shown to the user, e.g. "an integer >= 1"
    accepts: Callable[[Any], bool]
    nullable: bool = False
    options: tuple[str, ...] = ()  # the allowed names, for rules that are a choice


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def integer(minimum: int, nullable: bool = False) -> Rule:
    return Rule(f"an integer >= {minimum}", lambda v: _is_int(v) and v >= minimum, nullable)


def number(low: float, high: float | None = None, low_open: bool = False, high_open: bool = False) -> Rule:
    lo, hi = "(" if low_open else "[", ")" if high_open else "]"
    text = f"a number > {low}" if high is None and low_open else f"a number >= {low}"
    if high is not None:
        text = f"a number in {lo}{low}, {high}{hi}"

    def accepts(v: Any) -> bool:
        if not _is_number(v) or v != v:  # v != v catches NaN
            return False
        above = v > low if low_open else v >= low
        below = high is None or (v < high if high_open else v <= high)
        return above and below

    return Rule(text, accepts)


def choice(*options: str) -> Rule:
    return Rule("one of " + ", ".join(options), lambda v: v in options, options=options)


BOOLEAN = Rule("true or false", lambda v: isinstance(v, bool))
SIZE_LIST = Rule(
    "a list of integers >= 1, e.g. [512,512]",
    lambda v: isinstance(v, list | ListConfig) and all(_is_int(x) and x >= 1 for x in v),
)
# Lightning reads an int as a batch count and a float as a fraction of the epoch.
BATCH_LIMIT = Rule(
    "null, a fraction in (0, 1] or a batch count >= 1",
    lambda v: (_is_int(v) and v >= 1) or (isinstance(v, float) and 0 < v <= 1),
    nullable=True,
)

CHECKS = ("initial_loss", "regularization", "overfit")  # the note's steps 3, 4 and 5
PREPROCESSING_KEYS = ("preprocess", "whiten_epsilon")  # data.* keys that configure the module, not the data

RULES: dict[str, Rule] = {
    "seed": integer(0, nullable=True),
    "train": BOOLEAN,
    "test": BOOLEAN,
    "data.batch_size": integer(1),
    "data.val_fraction": number(0, 1, low_open=True, high_open=True),
    "data.test_fraction": number(0, 1, low_open=True, high_open=True),
    "data.split_seed": integer(0),
    "data.download": BOOLEAN,
    "data.verify_checksums": BOOLEAN,
    "divergence_factor": Rule("null or a number > 1", lambda v: _is_number(v) and v > 1, nullable=True),
    "torch_threads": integer(1, nullable=True),
    "dry_run": BOOLEAN,
    "sweep_name": Rule(
        "null or a name of letters, digits and ._=,+- (no slashes)",
        lambda v: isinstance(v, str) and bool(v) and re.fullmatch(r"[A-Za-z0-9._=,+\-]+", v) is not None,
        nullable=True,
    ),
    "data.name": choice("mnist", "fashion_mnist", "cifar10", "cifar100"),
    "data.pipeline": choice("tensor", "torchvision"),
    "data.preprocess": choice("standardize", "pca_whiten", "zca_whiten", "none"),
    "data.whiten_epsilon": number(0, low_open=True),
    "model.hidden_sizes": SIZE_LIST,
    "model.conv_channels": Rule(
        "a list of two integers >= 1, e.g. [6,16]", lambda v: SIZE_LIST.accepts(v) and len(v) == 2
    ),
    "model.kernel_size": integer(1),
    "model.padding": integer(0),
    "model.cell": choice("rnn", "lstm", "gru"),
    "model.hidden_size": integer(1),
    "model.num_layers": integer(1),
    "model.bidirectional": BOOLEAN,
    "model.tbptt_steps": integer(1, nullable=True),
    "model.activation": choice("relu", "sigmoid", "tanh", "leaky_relu", "prelu", "elu", "maxout"),
    "model.activation_alpha": Rule("null or a number >= 0", lambda v: _is_number(v) and v >= 0, nullable=True),
    "model.maxout_pieces": integer(2),
    "model.init": choice("default", "zeros", "normal", "xavier", "he", "uniform"),
    "model.init_std": number(0, low_open=True),
    "optimizer.lr": number(0, low_open=True),
    "optimizer.momentum": number(0, 1, high_open=True),
    "optimizer.nesterov": BOOLEAN,
    "optimizer.alpha": number(0, 1, low_open=True, high_open=True),
    "optimizer.max_iter": integer(1),
    "optimizer.history_size": integer(1),
    "optimizer.line_search_fn": Rule("strong_wolfe or null", lambda v: v == "strong_wolfe", nullable=True),
    "scheduler.step_size": integer(1),
    "scheduler.gamma": number(0, 1, low_open=True),
    "scheduler.T_max": integer(1),
    "scheduler.eta_min": number(0),
    "scheduler.factor": number(0, 1, low_open=True, high_open=True),
    "scheduler.patience": integer(0),
    "scheduler.max_lr": number(0, low_open=True),
    "scheduler.pct_start": number(0, 1, low_open=True, high_open=True),
    "regularization.weight_decay": number(0),
    "regularization.l1": number(0),
    "regularization.dropout": number(0, 1, high_open=True),
    "regularization.batchnorm": BOOLEAN,
    "regularization.max_norm": Rule("null or a number > 0", lambda v: _is_number(v) and v > 0, nullable=True),
    "regularization.early_stopping.patience": integer(1, nullable=True),
    "regularization.early_stopping.min_delta": number(0),
    "regularization.grad_clip.value": Rule("null or a number > 0", lambda v: _is_number(v) and v > 0, nullable=True),
    "regularization.grad_clip.algorithm": choice("norm", "value"),
    "regularization.augment.enabled": BOOLEAN,
    "regularization.augment.hflip": Rule("null, true or false", lambda v: isinstance(v, bool), nullable=True),
    "regularization.augment.crop_padding": integer(0),
    "regularization.augment.translate": number(0, 1, high_open=True),
    "regularization.augment.rotate": number(0),
    "regularization.augment.shear": number(0),
    "regularization.augment.scale": number(0, 1, high_open=True),
    "regularization.augment.erase": number(0, 1),
    "check": choice("none", "procedure"),
    "final_table": choice("short", "full"),
    "checks.during_training": Rule(
        "a list of initial_loss, regularization, overfit (e.g. [initial_loss] or [])",
        lambda v: isinstance(v, list | ListConfig) and all(x in CHECKS for x in v),
    ),
    "checks.initial_loss_tolerance": number(0, low_open=True),
    "checks.regularization_strength": number(0, low_open=True),
    "checks.overfit_examples": integer(1),
    "checks.overfit_max_steps": integer(1),
    "checks.overfit_lr": number(0, low_open=True),
    "tune": choice("none", "lr_find"),
    "lr_find.min_lr": number(0, low_open=True),
    "lr_find.max_lr": number(0, low_open=True),
    "lr_find.num_training": integer(2),
    "lr_find.then_train": BOOLEAN,
    "watch.update_ratio_every": integer(1, nullable=True),
    "watch.histograms": BOOLEAN,
    "watch.pictures": BOOLEAN,
    "trainer.max_epochs": integer(1),
    "trainer.log_every_n_steps": integer(1),
    "trainer.limit_train_batches": BATCH_LIMIT,
    "trainer.limit_val_batches": BATCH_LIMIT,
    "trainer.limit_test_batches": BATCH_LIMIT,
    "trainer.accelerator": choice("auto", "cpu", "gpu", "cuda", "mps"),
    "trainer.devices": integer(1),
    "trainer.num_nodes": integer(1),
    "trainer.strategy": choice("auto", "ddp"),
    "trainer.deterministic": BOOLEAN,
    "trainer.requeue": BOOLEAN,
    "trainer.precision": Rule(
        "one of 32-true, 16-mixed, bf16-mixed, 16-true, bf16-true, 64-true",
        # Lightning's shorthands (16, 32, 64) are refused: on a CPU, 16 silently runs as bf16-mixed, 10x slower
        lambda v: str(v) in ("32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true"),
    ),
}


def check_value(key: str, value: Any) -> None:
    """Raise UserError unless `value` is allowed for `key` (a key of RULES)."""
    rule = RULES[key]
    if value is None and rule.nullable:
        return
    if not rule.accepts(value):
        raise UserError(f"{key}={_show(value)} is not allowed: expected {rule.allowed}")


def check_recurrent_options(cell: str, num_layers: int, dropout: float, batchnorm: bool) -> None:
    """What a recurrent model cannot take: dropout needs stacked layers, BatchNorm is for mlp and cnn."""
    if dropout > 0 and num_layers < 2:
        raise UserError(
            f"regularization.dropout={dropout} acts between stacked layers of model={cell}: set model.num_layers >= 2"
        )
    if batchnorm:
        raise UserError(f"regularization.batchnorm=true applies to model=mlp and model=cnn, not model={cell}")


def check_values(cfg: DictConfig, overrides: list[str] = ()) -> None:
    """Raise UserError for the first value that breaks a rule, or for keys that do not go together.

    `overrides` are the command-line overrides, to tell what the user typed from what is a default."""
    for key in RULES:
        value = OmegaConf.select(cfg, key, default=_MISSING)
        if value is not _MISSING:
            check_value(key, value)
    keys = [(o, override_key(o)) for o in overrides]
    model_overrides = [o for o, key in keys if key.split(".")[0] == "model"]
    preprocess_overrides = [o for o, key in keys if key in ("data.preprocess", "data.whiten_epsilon")]
    _check_cross_keys(cfg, model_overrides, preprocess_overrides)


def _check_cross_keys(cfg: DictConfig, model_overrides: list[str], preprocess_overrides: list[str]) -> None:
    data = cfg.data
    if "test_fraction" in data and data.val_fraction + data.test_fraction >= 1:
        raise UserError(
            f"data.val_fraction={data.val_fraction} + data.test_fraction={data.test_fraction} "
            "leaves no training data: their sum must be below 1"
        )
    model, regularization = cfg.model, cfg.regularization
    if "cell" in model:
        check_recurrent_options(model.cell, model.num_layers, regularization.dropout, regularization.batchnorm)
    optimizer = cfg.optimizer
    if optimizer.get("nesterov") and not optimizer.get("momentum"):
        raise UserError("optimizer.nesterov=true needs optimizer.momentum > 0 (e.g. optimizer.momentum=0.9)")
    if optimizer._target_.endswith("LBFGS") and cfg.regularization.weight_decay > 0:
        raise UserError(
            f"regularization.weight_decay={cfg.regularization.weight_decay} is not available with optimizer=lbfgs: "
            "L-BFGS has no weight decay; use regularization.l1 or another optimizer"
        )
    ckpt = cfg.ckpt_path
    if ckpt is not None and Path(str(ckpt)).is_dir():
        raise UserError(f"ckpt_path={ckpt} is a folder: expected a .ckpt file in it, e.g. {ckpt}/checkpoints/last.ckpt")
    if ckpt is not None and not Path(str(ckpt)).is_file():
        raise UserError(f"ckpt_path={ckpt} does not exist: expected a .ckpt file written by a run")
    if not cfg.train and ckpt is None:
        raise UserError("train=false needs ckpt_path=PATH: the checkpoint to evaluate")
    if not cfg.train and model_overrides:
        raise UserError(
            f"{model_overrides[0]} has no effect with train=false: the checkpoint's own model is evaluated; "
            "drop the model override"
        )
    if not cfg.train and preprocess_overrides:
        raise UserError(
            f"{preprocess_overrides[0]} has no effect with train=false: the checkpoint's own preprocessing, "
            "fitted on its training split, is used; drop the override"
        )
    if not cfg.train and not cfg.test:
        raise UserError("train=false with test=false does nothing: set one of them to true")


def check_procedure_keys(cfg: DictConfig) -> None:
    """check= and tune= with what they cannot run with; lr_find's range."""
    if cfg.check == "procedure" and cfg.tune != "none":
        raise UserError(f"check=procedure with tune={cfg.tune}: run one of them per command")
    if cfg.check == "procedure" and not cfg.train:
        raise UserError("check=procedure with train=false: the checks build an untrained model; drop train=false")
    if cfg.tune == "lr_find" and not cfg.train:
        raise UserError("tune=lr_find with train=false: the search trains; drop train=false")
    if cfg.tune == "lr_find" and cfg.optimizer._target_.endswith("LBFGS"):
        raise UserError("tune=lr_find with optimizer=lbfgs: the search steps one rate per batch; use another optimizer")
    if cfg.tune == "lr_find" and cfg.lr_find.min_lr >= cfg.lr_find.max_lr:
        raise UserError(f"lr_find.min_lr={cfg.lr_find.min_lr} must be below lr_find.max_lr={cfg.lr_find.max_lr}")


_MISSING = object()


def _show(value: Any) -> str:
    if isinstance(value, DictConfig | ListConfig):
        return str(OmegaConf.to_container(value))
    return repr(value) if isinstance(value, str) else str(value)
