"""A sweep composes each trial's config once: the preflight's config, routed to the trial's folder, is the
one Hydra would compose for the launcher."""

import pickle

from conftest import REPO
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from omegaconf import OmegaConf

from experiments.sweeps.composed import ComposedTrials

TRIAL = ["optimizer.lr=0.001", "regularization.weight_decay=1e-06"]
ROUTING = ["hydra.sweep.dir='/elsewhere/lr_wd'", "hydra.sweep.subdir='lr=0.001,wd=1e-06'"]


def test_a_trial_composed_once_is_the_config_hydra_composes_for_its_folder():
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration("config", overrides=["sweep=lr_wd"], run_mode=RunMode.MULTIRUN)
        composed = ComposedTrials(loader)
        checked = composed.load_sweep_config(master, TRIAL)  # the preflight's
        routed = composed.load_sweep_config(master, TRIAL + ROUTING)  # the launcher's, from the same
        fresh = loader.load_sweep_config(master, TRIAL + ROUTING)  # what Hydra alone gives the launcher
    assert list(composed.composed) == [tuple(TRIAL)]  # composed once
    assert OmegaConf.to_yaml(routed) == OmegaConf.to_yaml(fresh)
    assert routed.hydra.sweep.subdir == "lr=0.001,wd=1e-06" and routed.optimizer.lr == 0.001
    assert checked.hydra.sweep.dir != "/elsewhere/lr_wd"  # each caller gets its own copy
    # a launcher that pickles its context for other processes sends the plain loader
    assert type(pickle.loads(pickle.dumps(composed))) is type(loader)
