"""Each trial's config composed once, and most of them derived instead of composed. The sweep's preflight
composes every trial to check it; the launcher that runs the trial then takes that config, routed to the
trial's folder, instead of composing it again. A trial whose overrides differ from an earlier trial's only in
the values of plain keys (optimizer.lr=..., not model=... or +key=...) is that trial's config with those
values set, as Hydra itself sets them after composing: a copy and a few updates instead of reading and merging
every config file again (composing is a third of a second a trial here, more than the rest of a trial's
bookkeeping)."""

import copy

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from hydra.types import HydraContext
from omegaconf import Container, DictConfig, OmegaConf, open_dict, read_write

# What TrialLauncher adds to a trial's overrides to route it; they change only where its files go
ROUTING = ("hydra.sweep.dir=", "hydra.sweep.subdir=")


def plain_loader(loader):
    return loader


class ComposedTrials:
    """Hydra's config loader, remembering the config it composed for each trial's overrides. A launcher
    that sends its jobs to other processes (joblib, submitit) pickles the plain loader, not what it holds."""

    def __init__(self, loader) -> None:
        self.loader = loader
        self.composed: dict[tuple[str, ...], DictConfig] = {}
        self.templates: dict[tuple, tuple[DictConfig, list[Override]]] = {}  # by the overrides' shape
        self.derived = 0  # trials set from a template instead of composed

    def __getattr__(self, name: str):
        return getattr(self.loader, name)

    def __reduce__(self):
        return plain_loader, (self.loader,)

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        trial = tuple(o for o in sweep_overrides if not o.startswith(ROUTING))
        if trial not in self.composed:
            self.composed[trial] = self.compose(master_config, trial)
        config = copy.deepcopy(self.composed[trial])
        routing = [o for o in sweep_overrides if o.startswith(ROUTING)]
        with read_write(config.hydra), open_dict(config.hydra):
            for override in OverridesParser.create().parse_overrides(routing):
                OmegaConf.update(config, override.key_or_group, override.value())
            config.hydra.overrides.hydra.extend(routing)
        return config

    def compose(self, master_config: DictConfig, trial: tuple[str, ...]) -> DictConfig:
        parsed = OverridesParser.create().parse_overrides(list(trial))
        shape = overrides_shape(parsed)
        if shape in self.templates:
            template, template_parsed = self.templates[shape]
            config = derive(master_config, template, template_parsed, parsed)
            if config is not None:
                self.derived += 1
                return config
        config = self.loader.load_sweep_config(master_config, list(trial))
        self.templates.setdefault(shape, (config, parsed))
        return config


def is_plain(override: Override) -> bool:
    """A value set on one key of the app's config after composing (no group, package, + or ~)."""
    return (
        override.type == OverrideType.CHANGE
        and override.package is None
        and not override.is_hydra_override()
        and not override.is_sweep_override()
        and not isinstance(override.value(), dict | list)
    )


def overrides_shape(parsed: list[Override]) -> tuple:
    """Equal for two trials whose overrides name the same keys in the same order and differ at most in
    plain values; anything else must match to the letter."""
    return tuple((o.key_or_group,) if is_plain(o) else (o.input_line,) for o in parsed)


def derive(master, template: DictConfig, template_parsed: list[Override], parsed: list[Override]) -> DictConfig | None:
    """The template trial's config with this trial's plain values set, as Hydra's loader sets them; None where
    a key is a config group (model=...) or not a plain value in the template, so Hydra composes it."""
    choices = template.hydra.runtime.choices
    changed = [new for new, old in zip(parsed, template_parsed, strict=True) if new.input_line != old.input_line]
    for override in changed:
        value = OmegaConf.select(template, override.key_or_group, throw_on_missing=False)
        if override.key_or_group in choices or isinstance(value, Container) or value is None:
            return None
    config = copy.deepcopy(template)
    try:
        with read_write(config):
            for override in changed:
                OmegaConf.update(config, override.key_or_group, override.value(), merge=True)
    except Exception:  # a value its key refuses: Hydra composes it and reports its own error
        return None
    app = [o for o in parsed if not o.is_hydra_override()]
    job = config.hydra.job
    with read_write(config.hydra):
        config.hydra.overrides.task = [o.input_line for o in app]
        job.override_dirname = override_dirname(app, job.config.override_dirname)
    OmegaConf.copy_cache(from_config=master, to_config=config)
    return config


def compose_trials_once(sweeper) -> None:
    """The sweeper and its launcher share one ComposedTrials (both hold the HydraContext they were set up with)."""
    context = sweeper.hydra_context
    if isinstance(context.config_loader, ComposedTrials):
        return
    shared = HydraContext(config_loader=ComposedTrials(context.config_loader), callbacks=context.callbacks)
    sweeper.hydra_context = sweeper.launcher.hydra_context = shared


def override_dirname(overrides: list[Override], naming: DictConfig) -> str:
    """hydra.job.override_dirname as Hydra's loader writes it (its own function is not public): the typed
    overrides less the excluded keys, sorted, joined by item_sep, each `=` written as kv_sep. A derived trial
    must get the name Hydra would give it; tests/test_sweep_compose.py compares the two."""
    lines = sorted(o.input_line for o in overrides if o.key_or_group not in naming.exclude_keys)
    return naming.item_sep.join(lines).replace("=", naming.kv_sep)
