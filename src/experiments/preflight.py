"""Everything checked before a run starts, as one list: `preflight`. Each check is written beside what it
checks; this file only says the order. A sweep's preflight calls the same list for every trial
(sweeps/preflight.py), and the run calls it again when it starts. Every problem is one line (a UserError)
within a second or two, before Lightning is imported, and no run folder is left behind (job.py).

Also here: the one line for a config that Hydra itself refuses (`describe_hydra_error`)."""

import re
from pathlib import Path

from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

from experiments.checkpoints.adopt_config import check_checkpoint
from experiments.config.added_keys import check_added_keys, set_elsewhere
from experiments.config.devices import check_device
from experiments.config.errors import user_error_in
from experiments.config.rules import check_procedure_keys, check_values
from experiments.data.file_checks import check_data_files
from experiments.records.tracking.checks import check_loggers, unchosen_logger
from experiments.training.extra_callbacks import check_extra_callbacks

# What a reader of the note may type for an option that has another name here.
NOTE_NAMES = {"model": {"lenet": "cnn"}}


def preflight(cfg: DictConfig, typed: list[str], choices: dict | None = None, here: bool = True) -> dict:
    """Raise UserError for the first problem, in this order. `typed`: the command line's overrides. `here`:
    the run starts on this machine, so its device, checkpoint and data files are checked too; a printed
    config (--cfg), a sweep's preview and trials bound for SLURM nodes check the rest. Returns the config-group
    choices the run records (a run from a checkpoint takes the checkpoint's sections, and their names)."""
    choices = dict(choices or {})
    check_values(cfg, typed)  # the rule table, and keys that do not go together (config/rules.py)
    check_added_keys(cfg, typed)  # +key=value (config/added_keys.py)
    check_extra_callbacks(cfg)  # callbacks: (training/extra_callbacks.py)
    check_loggers(cfg)  # logger= (records/tracking/checks.py)
    if here:
        check_device(cfg.trainer.accelerator, str(cfg.trainer.precision))  # config/devices.py
        choices = check_checkpoint(cfg, typed, choices)  # checkpoints/adopt_config.py
        check_data_files(cfg)  # data/file_checks.py
    check_procedure_keys(cfg)  # check= and tune= (config/rules.py)
    return choices


def describe_hydra_error(err: Exception, conf_dir: Path) -> str:
    """One line naming the key, the value and what is allowed."""
    user_error = user_error_in(err)  # raised by a plugin's constructor, wrapped by hydra.utils.instantiate
    if user_error is not None:
        return str(user_error)
    if isinstance(err, MissingConfigException) and err.missing_cfg_file:
        group, _, name = err.missing_cfg_file.rpartition("/")
        # Hydra lists the options for a single choice but not for a member of a list like [l2,foo].
        options = err.options or sorted(p.stem for p in (conf_dir / group).glob("*.yaml"))
        known_as = NOTE_NAMES.get(group, {}).get(name.lower())
        hint = f"the note's {name} is {group}={known_as}; " if known_as else ""
        return f"{group}={name} is not available: {hint}choose from {', '.join(options)}"
    cause = err.__cause__
    if isinstance(cause, ConfigAttributeError | ConfigKeyError) and cause.full_key:
        chosen = [str(name) for name in cause.parent_node] if cause.parent_node else []
        unchosen = unchosen_logger(cause.full_key, chosen)  # logger.mlflow.X=... without logger=[...,mlflow]
        if unchosen is not None:
            return unchosen
        typed = re.search(r"use \+(\S+)", str(err))  # Hydra's hint repeats the override as typed
        refusal = set_elsewhere(typed.group(1) if typed else cause.full_key)  # optimizer.weight_decay=...
        if refusal is not None:
            return refusal
        parent_key, _, key = cause.full_key.rpartition(".")
        known = ", ".join(str(k) for k in cause.parent_node) if cause.parent_node else ""
        where = f"{parent_key} has" if parent_key else "the config has"
        return f"{cause.full_key} is not a known key: {where} {known} (prefix + to add a new key)"
    if isinstance(err, ConfigCompositionException) and isinstance(cause, ValidationError):
        return f"{str(err).splitlines()[0].removeprefix('Error merging override ')}: {cause.msg.splitlines()[0]}"
    if isinstance(err, OverrideParseException):
        reason = err.message.splitlines()[0]
        key, _, value = (err.override or "").partition("=")
        if "=" in value:  # a path such as a sweep trial's folder: Hydra reads its = and , as syntax
            return (
                f"cannot parse override {err.override!r}: its value holds '=', which Hydra reads as syntax; "
                f"quote the value inside the override: \"{key}='{value}'\""
            )
        return f"cannot parse override {err.override!r}: {reason}; expected key=value"
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return "; ".join(line for line in lines if not line.startswith("full_key"))
