"""A sweep composes each trial's config once: the preflight's config, routed to the trial's folder, is the
one Hydra would compose for the launcher; and a trial that differs from an earlier one only in plain values
is derived from it, equal to what Hydra composes."""

import pickle

import pytest
from conftest import REPO
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from omegaconf import OmegaConf

from experiments.sweeps.composed import ComposedTrials

TRIAL = ["optimizer.lr=0.001", "regularization.weight_decay=1e-06"]
ROUTING = ["hydra.sweep.dir='/elsewhere/lr_wd'", "hydra.sweep.subdir='lr=0.001,wd=1e-06'"]
GRID = [
    ["sweep=lr_wd", f"optimizer.lr={lr}", f"regularization.weight_decay={wd}"]
    for lr in ("1e-4", "0.001", "0.01", "0.1")
    for wd in ("1e-06", "1e-5", "0.0001", "0.001", "0.01")
]


@pytest.fixture(scope="module")
def hydra_loader():
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration("config", overrides=["sweep=lr_wd"], run_mode=RunMode.MULTIRUN)
        yield loader, master


def test_a_trial_composed_once_is_the_config_hydra_composes_for_its_folder(hydra_loader):
    loader, master = hydra_loader
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


def test_trials_that_differ_in_plain_values_are_derived_and_equal_what_hydra_composes(hydra_loader):
    loader, master = hydra_loader
    composed = ComposedTrials(loader)
    derived = [composed.load_sweep_config(master, trial) for trial in GRID]
    assert composed.derived == len(GRID) - 1  # only the first trial was composed by Hydra
    for trial, config in zip(GRID, derived, strict=True):
        assert OmegaConf.to_yaml(config) == OmegaConf.to_yaml(loader.load_sweep_config(master, trial)), trial
    assert [c.optimizer.lr for c in derived[::5]] == [1e-4, 0.001, 0.01, 0.1]
    assert "optimizer.lr=0.1,regularization.weight_decay=0.01" in derived[-1].hydra.job.override_dirname


def test_a_config_group_or_an_added_key_is_composed_by_hydra(hydra_loader):
    loader, master = hydra_loader
    composed = ComposedTrials(loader)
    models = [composed.load_sweep_config(master, [f"model={name}", "optimizer.lr=0.01"]) for name in ("mlp", "cnn")]
    assert composed.derived == 0
    assert [c.hydra.runtime.choices.model for c in models] == ["mlp", "cnn"]
    assert models[1].model._target_ != models[0].model._target_
    added = [composed.load_sweep_config(master, [f"+trainer.limit_val_batches={n}"]) for n in (1, 2)]
    assert composed.derived == 0 and [c.trainer.limit_val_batches for c in added] == [1, 2]


def test_a_key_the_config_lacks_gets_hydras_own_error(hydra_loader):
    loader, master = hydra_loader
    composed = ComposedTrials(loader)
    composed.load_sweep_config(master, ["optimizer.lr=0.1"])
    with pytest.raises(Exception, match="Could not override 'optimizer.lrr'"):
        composed.load_sweep_config(master, ["optimizer.lrr=0.1"])
    text = composed.load_sweep_config(master, ["optimizer.lr=abc"])  # no schema: Hydra takes it as a string too
    assert OmegaConf.to_yaml(text) == OmegaConf.to_yaml(loader.load_sweep_config(master, ["optimizer.lr=abc"]))
