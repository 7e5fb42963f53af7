"""Each trial's config composed once. The sweep's preflight composes every trial to check it; the launcher
that runs the trial then takes that config, routed to the trial's folder, instead of composing it again
(composing is a third of a second a trial here: more than the rest of a trial's bookkeeping)."""

import copy

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import HydraContext
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

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

    def __getattr__(self, name: str):
        return getattr(self.loader, name)

    def __reduce__(self):
        return plain_loader, (self.loader,)

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        trial = tuple(o for o in sweep_overrides if not o.startswith(ROUTING))
        if trial not in self.composed:
            self.composed[trial] = self.loader.load_sweep_config(master_config, list(trial))
        config = copy.deepcopy(self.composed[trial])
        routing = [o for o in sweep_overrides if o.startswith(ROUTING)]
        with read_write(config.hydra), open_dict(config.hydra):
            for override in OverridesParser.create().parse_overrides(routing):
                OmegaConf.update(config, override.key_or_group, override.value())
            config.hydra.overrides.hydra.extend(routing)
        return config


def compose_trials_once(sweeper) -> None:
    """The sweeper and its launcher share one ComposedTrials (both hold the HydraContext they were set up with)."""
    context = sweeper.hydra_context
    if isinstance(context.config_loader, ComposedTrials):
        return
    shared = HydraContext(config_loader=ComposedTrials(context.config_loader), callbacks=context.callbacks)
    sweeper.hydra_context = sweeper.launcher.hydra_context = shared
