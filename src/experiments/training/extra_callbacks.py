"""More Lightning callbacks from the config, without editing code. Each entry of `callbacks:` (in a yaml, or
`+callbacks.NAME._target_=CLASS` with `+callbacks.NAME.ARGUMENT=VALUE` on the command line) is one callback,
built by Hydra (training/trainer.py) and added to the run's Trainer after the built-in ones.

Checked before anything runs: the class imports, is a Lightning Callback, takes every argument given, and
accepts their values (each is built once, then dropped)."""

import inspect

from omegaconf import DictConfig

from experiments.config.errors import UserError

EXAMPLE = "lightning.pytorch.callbacks.StochasticWeightAveraging"


def check_extra_callbacks(cfg: DictConfig) -> None:
    entries = cfg.get("callbacks") or {}
    if not entries:
        return
    import lightning as L
    from hydra.utils import get_class

    from experiments.config.added_keys import class_arguments

    for name, spec in entries.items():
        where = f"callbacks.{name}"
        if not isinstance(spec, DictConfig) or "_target_" not in spec:
            raise UserError(f"{where} names no class: add +{where}._target_=CLASS, e.g. {EXAMPLE}")
        target = str(spec._target_)
        try:
            found = get_class(target)
        except Exception as err:  # Hydra's own error is several lines long; the cause is the name
            message = f"{where}._target_={target} does not import: expected a callback class, e.g. {EXAMPLE}"
            raise UserError(message) from err
        if not (inspect.isclass(found) and issubclass(found, L.Callback)):
            raise UserError(f"{where}._target_={target} is not a Lightning callback (a lightning.pytorch.Callback)")
        accepted = class_arguments(target)
        for argument in spec:
            if argument != "_target_" and accepted is not None and argument not in accepted:
                raise UserError(
                    f"{where}.{argument}: {found.__name__} takes no argument {argument} "
                    f"(it takes {', '.join(accepted) or 'none'})"
                )
    check_one_state_each(cfg)  # builds each callback: a value its class refuses stops here too


def check_one_state_each(cfg: DictConfig) -> None:
    """Lightning keeps one saved state per kind of callback and settings (its state_key), and refuses a second
    with the same: a ModelCheckpoint without a monitor is the run's own last.ckpt writer, for one."""
    from pathlib import Path

    import lightning as L

    from experiments.training.trainer import build_callbacks, build_extra_callbacks

    extra = build_extra_callbacks(cfg)
    every = build_callbacks(cfg, Path("outputs")).all()  # built, not run: nothing is written
    stateful = [callback for callback in every if type(callback).state_dict is not L.Callback.state_dict]
    keys = [callback.state_key for callback in stateful]
    for name, callback in zip(cfg.callbacks, extra, strict=True):
        if type(callback).state_dict is not L.Callback.state_dict and keys.count(callback.state_key) > 1:
            kind = type(callback).__name__
            raise UserError(
                f"callbacks.{name}: the run has a {kind} with the same settings already, and Lightning keeps one "
                f"state per {kind} and settings: give it others (a ModelCheckpoint: a monitor, or every_n_train_steps)"
            )
