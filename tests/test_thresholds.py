"""Every threshold the docs and the note state, pinned with a case on each side of its edge: the 3x rule,
the loss-curve verdicts, the update-ratio band, the initial-loss check, early stopping's patience and
min_delta. In-process and quick."""

import math

import lightning as L
import pytest
import torch
from conftest import compose_config
from lightning.pytorch.callbacks import EarlyStopping

from experiments.procedure.loss_curve import diagnose
from experiments.procedure.sanity import initial_loss
from experiments.run import build_data, build_module
from experiments.training.callbacks.divergence import loss_limit, within_limit
from experiments.training.callbacks.update_ratio import UpdateRatio
from experiments.training.trainer import optional_callbacks

FALLING = [2.3 * 0.97**step for step in range(100)]  # a long, smooth training curve: nothing else to report


@pytest.mark.parametrize(("loss", "stops"), [(2.99, False), (3.0, False), (3.01, True), (math.nan, True)])
def test_the_3x_rule_stops_a_loss_above_three_times_the_first(loss, stops):
    limit = loss_limit(torch.tensor(1.0, dtype=torch.float64), 3.0)
    assert bool(within_limit(torch.tensor(loss, dtype=torch.float64), limit)) is not stops


def test_the_3x_rule_in_the_loss_curve_verdict():
    """Against the opening level: the loss held at 1.0 for a while, then rose to just under or just over 3x."""
    assert "exploded" not in shapes(diagnose([1.0] * 40 + [2.95] * 60, [], []))
    assert "exploded" in shapes(diagnose([1.0] * 40 + [3.05] * 60, [], []))


def overfit_curves(epochs: int, best: int, rise: float) -> tuple[list[float], list[float]]:
    """Training loss falling every epoch; validation loss lowest at `best`, then `rise` above it at the end."""
    train = [1.0 - 0.05 * epoch for epoch in range(epochs)]
    val = [1.0 - 0.05 * min(epoch, best) for epoch in range(epochs)]
    val[-1] = val[best] * (1 + rise)
    return train, val


def shapes(result: dict) -> set[str]:
    return {result["verdict"], *result.get("also", [])}


@pytest.mark.parametrize(
    ("best", "rise", "overfitting"),
    [
        (5, 0.10, True),  # the best epoch three back from the last of eight: late enough to call it
        (6, 0.10, False),  # two back: too recent to call it overfitting
        (3, 0.051, True),  # validation loss 5% above its best: the edge of VAL_RISE
        (3, 0.049, False),
    ],
)
def test_overfitting_needs_a_best_epoch_two_back_and_a_five_percent_rise(best, rise, overfitting):
    train, val = overfit_curves(8, best, rise)
    result = diagnose(FALLING, train, val)
    assert ("overfitting" in shapes(result)) is overfitting, result
    if overfitting:
        assert result["evidence"]["lowest_val_loss_epoch"] == best


@pytest.mark.parametrize(("last_drop", "still_falling"), [(0.025, True), (0.015, False)])
def test_still_decreasing_means_the_last_epoch_fell_two_percent(last_drop, still_falling):
    train = [1.0, 0.8, 0.8 * (1 - last_drop)]
    result = diagnose(FALLING, train, [0.9, 0.8, 0.79])
    assert ("still decreasing" in shapes(result)) is still_falling, result


@pytest.mark.parametrize(
    ("medians", "verdict"),
    [
        ([0.011] * 6, "too high"),
        ([0.05] * 6, "too high"),  # between 1e-2 and 1e-1: still above the note's band
        ([0.009] * 6, "within the note's band"),
        ([1.1e-4] * 6, "within the note's band"),
        ([9e-5] * 6, "too low"),
        ([0.02] * 3 + [1e-3] * 3, "within the note's band"),  # half the readings above: not "most"
        ([0.02] * 4 + [1e-3] * 3, "too high"),  # more than half
    ],
)
def test_the_update_ratio_band_is_1e_4_to_1e_2_for_most_readings(medians, verdict):
    judge = UpdateRatio(every=10)
    judge.medians = list(medians)
    assert judge.summary()["verdict"].startswith(verdict)


def test_the_initial_loss_check_allows_the_tolerance_times_ln_c_and_no_more():
    cfg = compose_config()
    module = build_module(cfg, data := build_data(cfg))
    batch = data.probe_batch(64)
    measured = initial_loss(module, batch, tolerance=0.1).figures["loss"]
    edge = abs(measured - math.log(10)) / math.log(10)  # the tolerance this untrained net sits at
    assert initial_loss(module, batch, tolerance=edge * 1.01).passed
    assert not initial_loss(module, batch, tolerance=edge * 0.99).passed


class ScriptedValLoss(L.LightningModule):
    """Logs a validation loss read from a script, one value per epoch; training does a real, tiny step."""

    def __init__(self, val_losses: list[float]):
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)
        self.val_losses = val_losses

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).sum()

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", self.val_losses[self.current_epoch])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def epochs_run_under_early_stopping(val_losses: list[float], patience: int, min_delta: float = 0.0) -> int:
    cfg = compose_config(
        "regularization=[early_stopping]",
        f"regularization.early_stopping.patience={patience}",
        f"regularization.early_stopping.min_delta={min_delta}",
    )
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(2, 1)), batch_size=2)
    stopping = [callback for callback in optional_callbacks(cfg) if isinstance(callback, EarlyStopping)]
    assert len(stopping) == 1
    trainer = L.Trainer(
        max_epochs=len(val_losses),
        callbacks=stopping,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(ScriptedValLoss(val_losses), loader, loader)
    return trainer.current_epoch


@pytest.mark.parametrize("patience", [1, 3])
def test_early_stopping_stops_after_patience_epochs_without_improvement(patience):
    """Best at epoch 2, flat after: the run stops `patience` epochs later, not one sooner or later."""
    assert epochs_run_under_early_stopping([1.0, 0.9, 0.8] + [0.8] * 8, patience) == 3 + patience
    # an improvement on the last allowed epoch resets the count
    curve = [1.0, 0.9, 0.8] + [0.8] * (patience - 1) + [0.7] + [0.7] * 8
    assert epochs_run_under_early_stopping(curve, patience) == 3 + patience + patience


@pytest.mark.parametrize(("drop", "counts"), [(0.06, True), (0.04, False)])
def test_early_stopping_counts_only_improvements_larger_than_min_delta(drop, counts):
    curve = [1.0, 1.0 - drop] + [1.0 - drop] * 8
    expected = (2 if counts else 1) + 2
    assert epochs_run_under_early_stopping(curve, patience=2, min_delta=0.05) == expected
