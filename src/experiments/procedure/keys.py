"""check= and tune=: the combinations a run can do, checked before it starts (preflight.py). Torch-free."""

from omegaconf import DictConfig

from experiments.config.errors import UserError


def check_procedure_keys(cfg: DictConfig) -> None:
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
