"""A run that starts from a checkpoint (`ckpt_path=`: evaluation, or a new run that trains on) runs and reports
with the checkpoint's own configuration: its model, optimizer, scheduler, regularization and preprocessing.
A section typed on the command line (`optimizer.lr=...`, `scheduler=step`, a preset) replaces the
checkpoint's for training. So training on without retyping a preset trains with the preset's settings, and
metrics.json and the HParams row name what was used, never the composed defaults.

Kept free of torch imports: it runs before Lightning is imported (preflight.py)."""

import logging

from omegaconf import DictConfig, OmegaConf, open_dict

from experiments.config.errors import UserError
from experiments.config.overrides import override_key
from experiments.config.paths import CONF_DIR
from experiments.config.rules import PREPROCESSING_KEYS

log = logging.getLogger(__name__)

SECTIONS = ("model", "optimizer", "scheduler", "regularization")
# regularization= members, by the setting each switches on: the members a saved configuration has on
MEMBERS = {
    "l2": lambda r: (r.get("weight_decay") or 0) > 0,
    "l1": lambda r: (r.get("l1") or 0) > 0,
    "dropout": lambda r: (r.get("dropout") or 0) > 0,
    "batchnorm": lambda r: bool(r.get("batchnorm")),
    "maxnorm": lambda r: r.get("max_norm") is not None,
    "early_stopping": lambda r: (r.get("early_stopping") or {}).get("patience") is not None,
    "grad_clip": lambda r: (r.get("grad_clip") or {}).get("value") is not None,
    "augment": lambda r: bool((r.get("augment") or {}).get("enabled")),
}
CARRY_ON = ("StepLR", "ReduceLROnPlateau")  # schedules that continue from the checkpoint's rate


def check_checkpoint(cfg: DictConfig, typed: list[str], choices: dict) -> dict:
    """ckpt_path: the file reads back as this project's checkpoint, and a new run from it takes its
    configuration and asks for more epochs than it holds. Returns the group choices the run records."""
    if not cfg.ckpt_path:
        return choices
    from experiments.checkpoints.reading import check_resumable, check_same_setup, read_hparams  # torch only

    saved = read_hparams(cfg.ckpt_path)
    if not cfg.get("resume"):  # resume= composes the run's own overrides: its config is the checkpoint's
        choices = adopt_checkpoint_config(cfg, saved, typed, choices)
        check_trains_more(cfg)
    if cfg.train:  # training on needs the checkpoint's architecture, preprocessing and optimizer state
        wanted = {
            "model": OmegaConf.to_container(cfg.model, resolve=True),
            "data": {key: cfg.data.get(key) for key in PREPROCESSING_KEYS},
        }
        check_same_setup(cfg.ckpt_path, saved, wanted)
        check_resumable(cfg.ckpt_path)
    return choices


def adopt_checkpoint_config(cfg: DictConfig, saved: dict, typed: list[str], choices: dict) -> dict:
    """Set cfg's sections to the checkpoint's, each with the keys typed on the command line on top (all of
    them the checkpoint's when evaluating); a typed group choice (`scheduler=cosine`) or preset keeps the
    composed section. Returns the group choices to record, the adopted sections named as the checkpoint's."""
    keys = [override_key(override) for override in typed] if cfg.train else []
    adopted = []
    with open_dict(cfg):
        for section in SECTIONS:
            if section not in saved or section in keys or "experiment" in keys:
                continue
            settings = dict(saved[section] or {})
            choice = saved_choice(section, settings)
            if settings and section != "regularization":
                settings |= _links(section, choice)  # one-cycle's max_lr follows optimizer.lr, as its yaml says
            node = OmegaConf.create(settings)
            for key in keys:  # a key typed in the section replaces the checkpoint's value
                if key.startswith(f"{section}."):
                    OmegaConf.update(node, key.removeprefix(f"{section}."), OmegaConf.select(cfg, key), merge=False)
            cfg[section] = node
            choices = {**choices, section: choice}
            adopted.append(section)
        for key in PREPROCESSING_KEYS:
            if f"data.{key}" not in keys and "experiment" not in keys and saved["data"].get(key) is not None:
                cfg.data[key] = saved["data"][key]
    if cfg.train and adopted:
        _check_rate_takes_effect(cfg, typed, saved)
        shown = ", ".join(
            f"{section}=[{','.join(choices[section])}]"
            if section == "regularization"
            else f"{section}={choices[section]}"
            for section in adopted
        )
        log.info(f"ckpt_path: training on with the checkpoint's {shown}; an override on the command line replaces any")
    return choices


def _links(section: str, choice: str) -> dict:
    """The keys the option's yaml ties to another key (`max_lr: ${optimizer.lr}`), as those interpolations."""
    path = CONF_DIR / section / f"{choice}.yaml"
    if not path.is_file():
        return {}
    raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False) or {}
    return {key: value for key, value in raw.items() if isinstance(value, str) and value.startswith("${")}


def saved_choice(section: str, settings: dict) -> str | list[str]:
    """The config-group option a saved section came from (model=cnn), by its target; for regularization,
    the list of members whose settings are on, as Hydra records a multi-select group."""
    if section == "regularization":
        return [name for name, is_on in MEMBERS.items() if is_on(settings)]
    if not settings:
        return "none"
    for path in sorted((CONF_DIR / section).glob("*.yaml")):
        option = OmegaConf.to_container(OmegaConf.load(path))
        if option and option.get("_target_") == settings.get("_target_") and option.get("cell") == settings.get("cell"):
            return path.stem
    return str(settings.get("_target_", "?")).rsplit(".", 1)[-1]


def _check_rate_takes_effect(cfg: DictConfig, typed: list[str], saved: dict) -> None:
    """Step and plateau schedules carry on from the checkpoint's rate: another typed optimizer.lr would do nothing."""
    target = str((cfg.scheduler or {}).get("_target_", ""))
    rate = next((o for o in typed if override_key(o) == "optimizer.lr"), None)
    changed = rate is not None and cfg.optimizer.get("lr") != (saved.get("optimizer") or {}).get("lr")
    if changed and target.endswith(CARRY_ON):
        schedule = saved_choice("scheduler", OmegaConf.to_container(cfg.scheduler))
        raise UserError(
            f"{rate} has no effect when training on under scheduler={schedule}: the schedule carries on from the "
            "checkpoint's rate; drop it, or start the schedule afresh with scheduler=onecycle or cosine"
        )


def check_trains_more(cfg: DictConfig) -> None:
    """A new run from a finished checkpoint must ask for more epochs than it holds, or it would train none."""
    from experiments.checkpoints.reading import load_checkpoint, trained_epochs  # torch only

    done = trained_epochs(load_checkpoint(cfg.ckpt_path))
    if cfg.train and cfg.tune == "none" and done is not None and cfg.trainer.max_epochs <= done:
        raise UserError(
            f"ckpt_path={cfg.ckpt_path} has trained {done} epochs, so trainer.max_epochs={cfg.trainer.max_epochs} "
            f"would train none: ask for more, e.g. trainer.max_epochs={2 * done}"
        )
