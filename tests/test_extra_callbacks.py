"""A Lightning callback named in the config joins the run's Trainer, after the built-in ones."""

import pytest
from conftest import compose_config, run_here, train

from experiments.config.errors import UserError
from experiments.fused.train import check_fusable

SHORT = ["trainer.max_epochs=2", "trainer.limit_train_batches=3", "trainer.limit_val_batches=2"]


@pytest.mark.slow
def test_a_callback_from_the_command_line_joins_the_run(tmp_path):
    folder = tmp_path / "every_epoch"
    result = train(
        tmp_path,
        "+callbacks.every_epoch._target_=lightning.pytorch.callbacks.ModelCheckpoint",
        f"+callbacks.every_epoch.dirpath={folder}",
        "+callbacks.every_epoch.save_top_k=-1",  # keep every checkpoint
        "+callbacks.every_epoch.every_n_train_steps=2",  # not the run's own last.ckpt writer's settings
        *SHORT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(list(folder.glob("*.ckpt"))) == 3  # steps 2, 4 and 6, beside the run's own checkpoints
    [run_dir] = result.run_dirs
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()


def test_a_fused_set_refuses_extra_callbacks_so_its_trials_train_alone():
    swa = ["+callbacks.swa._target_=lightning.pytorch.callbacks.StochasticWeightAveraging"]
    swa.append("+callbacks.swa.swa_lrs=0.01")
    cfgs = [compose_config(*swa, f"optimizer.lr={lr}") for lr in ("0.001", "0.01")]
    with pytest.raises(UserError, match="callbacks.swa: a fused set runs no extra callbacks"):
        check_fusable(cfgs)


def test_stochastic_weight_averaging_from_the_config_averages_the_run(tmp_path):
    import torch

    swa = "+callbacks.swa._target_=lightning.pytorch.callbacks.StochasticWeightAveraging"
    metrics = run_here(tmp_path, swa, "+callbacks.swa.swa_lrs=0.01", "+callbacks.swa.swa_epoch_start=1", *SHORT)
    assert metrics["status"] == "completed"
    saved = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["callbacks"]
    [state] = [value for key, value in saved.items() if key.startswith("StochasticWeightAveraging")]
    assert state["n_averaged"] >= 1  # the average took the second epoch's weights in
