"""`+key=value` adds a key to the config. Only the sections built from a class take new keys, as arguments of
that class: the Trainer (`+trainer.profiler=simple`), the optimizer, the scheduler, the model and the
datamodule; `+callbacks.NAME...` adds a callback (training/extra_callbacks.py). An added key nothing reads
(`+lr=0.01`), or an argument the class does not take
(`+trainer.max_epoch=5`), is refused in one line naming the nearest key that exists, before anything runs.

The classes are imported only when a `+` override names their section."""

import difflib
import importlib
import inspect

from omegaconf import DictConfig, OmegaConf

from experiments.config.errors import UserError

TRAINER = "lightning.pytorch.Trainer"
BUILT = ("trainer", "optimizer", "scheduler", "model", "data")  # sections passed to a class as its arguments
# Arguments the run passes to those classes itself, from another key: a value typed for them would be
# overridden, so it is refused. Each maps to (the key to set instead or None, where the value comes from).
SET_FROM = {
    "optimizer.weight_decay": ("regularization.weight_decay", "regularization.weight_decay, on weights only"),
    "optimizer.params": (None, "the model's weights and biases"),
    "model.dropout": ("regularization.dropout", "regularization.dropout"),
    "model.batchnorm": ("regularization.batchnorm", "regularization.batchnorm"),
    "model.input_shape": (None, "the dataset (data=...)"),
    "model.num_classes": (None, "the dataset (data=...)"),
    "data.augment": (None, "regularization.augment.*"),
    "trainer.gradient_clip_val": ("regularization.grad_clip.value", "regularization.grad_clip.value"),
    "trainer.gradient_clip_algorithm": ("regularization.grad_clip.algorithm", "regularization.grad_clip.algorithm"),
    "trainer.logger": (None, "logger=[...]"),
    "trainer.callbacks": (None, "callbacks.NAME (docs/configuration.md)"),
    "trainer.default_root_dir": (None, "the run's folder (paths.output_root)"),
}


def set_elsewhere(override: str) -> str | None:
    """The one line for KEY=VALUE (with or without +) where KEY is in SET_FROM; None for any other key."""
    key, _, value = override.lstrip("+").partition("=")
    if key not in SET_FROM:
        return None
    instead, source = SET_FROM[key]
    use = f"; use {instead}={value}" if instead and value else ""
    return f"{override}: the run sets {key} from {source}, so this value would be overridden{use}"


def check_added_keys(cfg: DictConfig, overrides: list[str]) -> None:
    for override in overrides:
        if not override.startswith("+"):
            continue
        if (refusal := set_elsewhere(override)) is not None:
            raise UserError(refusal)
        typed = override.lstrip("+")
        key, _, value = typed.partition("=")
        section, _, argument = key.partition(".")
        if section in ("hydra", "callbacks"):  # callbacks.NAME: checked by extra_callbacks.py
            continue
        if section == "logger" and argument.split(".")[1:2] == ["tags"]:  # +logger.NAME.tags.KEY: a tag
            continue
        if section == "logger" and argument:
            name = argument.split(".")[0]
            raise UserError(
                f"{override}: a logger's keys are set without +, once it is chosen: logger=[...,{name}] "
                f"{key}={value} (conf/logger/{name}.yaml lists them)"
            )
        if section not in BUILT or not argument:
            nearest = _nearest_key(cfg, key)
            hint = f"did you mean {nearest}={value}? " if nearest else ""
            raise UserError(
                f"{override}: nothing reads {key}, so adding it would do nothing; {hint}(+ adds arguments to "
                f"{', '.join(BUILT)} only, or a callback as callbacks.NAME)"
            )
        target = TRAINER if section == "trainer" else str((cfg.get(section) or {}).get("_target_", ""))
        if not target:
            raise UserError(f"{override}: {section} is off (scheduler=none), so nothing takes {argument.split('.')[0]}")
        accepted = class_arguments(target)
        name = argument.split(".")[0]
        if accepted is not None and name not in accepted:
            nearest = difflib.get_close_matches(name, accepted, n=1)
            present = nearest and nearest[0] in (cfg.get(section) or {})  # a key the config has already: no +
            hint = f"; did you mean {'' if present else '+'}{section}.{nearest[0]}={value}?" if nearest else ""
            raise UserError(f"{override}: {target.rsplit('.', 1)[-1]} takes no argument {name}{hint}")


def class_arguments(target: str) -> list[str] | None:
    """The keyword arguments a class takes; None when it takes any (**kwargs)."""
    module, _, name = target.rpartition(".")
    parameters = inspect.signature(getattr(importlib.import_module(module), name)).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return [p.name for p in parameters if p.name != "self"]


def _nearest_key(cfg: DictConfig, key: str) -> str | None:
    """The existing key most like `key`, by its last part first (`lr` -> optimizer.lr)."""
    paths = _paths(OmegaConf.to_container(cfg, resolve=False))
    last = key.rsplit(".", 1)[-1]
    same_last = [path for path in paths if path.rsplit(".", 1)[-1] == last]
    if same_last:
        return same_last[0]
    close = difflib.get_close_matches(key, paths, n=1, cutoff=0.6)
    return close[0] if close else None


def _paths(tree, prefix: str = "") -> list[str]:
    paths = []
    for key, value in tree.items() if isinstance(tree, dict) else ():
        if str(key).startswith("_") or key == "hydra":
            continue
        path = f"{prefix}{key}"
        paths += _paths(value, f"{path}.") if isinstance(value, dict) else [path]
    return paths
