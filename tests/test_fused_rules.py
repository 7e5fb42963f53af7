"""A fused set applies a lone run's rules through the same functions, and its records follow a lone run's."""

import copy
import logging
import math

import lightning as L
import pytest
import torch
from conftest import compose_config, run_here

from experiments.fused.records import TrialRecord
from experiments.fused.stack import TrialStack
from experiments.fused.train import train_fused
from experiments.fused.trial_logs import TrialLog
from experiments.models.mlp import MLP
from experiments.training.callbacks.divergence import Diverged, DivergenceAbort, loss_limit, within_limit
from experiments.training.callbacks.max_norm import MaxNorm, clamp_unit_norms

CURVES = [[1.0, 2.0, 2.9, 3.0, 3.01, 1.0], [1.0, math.nan, 1.0], [1.0, 0.5, math.inf], [math.inf, 1.0], [2.0, 5.9, 0.1]]


def lone_stop(losses: list[float], factor: float | None) -> int | None:
    """The step where a lone run's DivergenceAbort stops, fed these losses; None if it never does."""
    abort = DivergenceAbort(factor)
    for step, loss in enumerate(losses):
        try:
            abort.on_train_batch_end(L.Trainer(logger=False), None, {"loss": torch.tensor(loss)}, None, step)
        except Diverged:
            return step
    return None


@pytest.mark.parametrize("factor", [3.0, None])
def test_the_3x_rule_decides_alike_for_a_lone_run_and_for_every_trial_of_a_set(factor):
    """FusedModule applies loss_limit and within_limit to all its trials at once, as here: [trials] per step."""
    steps = max(len(curve) for curve in CURVES)
    losses = torch.tensor([curve + [1.0] * (steps - len(curve)) for curve in CURVES], dtype=torch.float32).T
    limits = loss_limit(losses[0], factor)
    running = torch.ones(len(CURVES), dtype=torch.bool)
    fused_stops: list[int | None] = [None] * len(CURVES)
    for step, step_losses in enumerate(losses):
        after = running & within_limit(step_losses, limits)
        for trial in torch.nonzero(running & ~after).flatten().tolist():
            fused_stops[trial] = step
        running = after
    lone_stops = [lone_stop(curve, factor) for curve in CURVES]
    assert fused_stops == lone_stops
    assert lone_stops == ([4, 1, 2, 0, None] if factor else [None, 1, 2, 0, None])


def test_max_norm_rescales_a_set_as_it_rescales_each_lone_network():
    torch.manual_seed(0)
    nets = [MLP((1, 8, 8), 10, hidden_sizes=[16, 16]) for _ in range(3)]
    with torch.no_grad():
        for scale, net in zip((0.1, 1.0, 10.0), nets, strict=True):
            for weight in net.parameters():
                weight.mul_(scale)
    stack = TrialStack([copy.deepcopy(net) for net in nets])
    weights = stack.weights()
    for name in stack.hidden_weight_names:  # what FusedModule.apply_max_norm does
        clamp_unit_norms(weights[name], 1.5)
    for trial, net in enumerate(nets):
        MaxNorm(1.5).on_train_batch_end(None, net, None, None, 0)
        for name, value in net.state_dict().items():
            assert torch.allclose(stack.trial_state(trial)[name], value, atol=1e-6), (trial, name)
    output = stack.trial_state(2)["layers.5.weight"]
    assert output.norm(dim=1).max() > 1.5  # the output layer is left alone, in both


@pytest.mark.parametrize("algorithm", ["norm", "value"])
def test_gradient_clipping_clips_each_trial_as_lightning_clips_its_lone_run(algorithm):
    """The same gradients, clipped by FusedModule per trial and by the Trainer's torch functions per lone net."""
    from types import SimpleNamespace

    from experiments.fused.module import FusedModule

    torch.manual_seed(0)
    nets = [MLP((1, 28, 28), 10, hidden_sizes=[16]).double() for _ in range(3)]
    stack = TrialStack(nets)
    gradients = torch.randn(stack.flat.shape, dtype=torch.float64) * torch.tensor([[0.001], [1.0], [30.0]])
    stack.flat.grad = gradients.clone()  # one trial under the limit, two above it
    FusedModule.configure_gradient_clipping(SimpleNamespace(stack=stack), None, 0.5, algorithm)
    views = stack.views(gradients)
    for trial, net in enumerate(nets):
        for name, parameter in net.named_parameters():
            parameter.grad = views[name][trial].clone()
        clip = torch.nn.utils.clip_grad_norm_ if algorithm == "norm" else torch.nn.utils.clip_grad_value_
        clip(net.parameters(), 0.5)  # what Lightning's precision plugin calls
        clipped = stack.views(stack.flat.grad)
        for name, parameter in net.named_parameters():
            assert torch.allclose(clipped[name][trial], parameter.grad, rtol=1e-12, atol=1e-15), (trial, name)
    assert not torch.equal(stack.flat.grad[2], gradients[2]) and torch.equal(stack.flat.grad[0], gradients[0])


def test_a_trial_stopped_mid_epoch_logs_its_epoch_points_at_the_steps_its_epochs_ended(tmp_path):
    from lightning.pytorch.loggers import TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    record = TrialRecord()
    record.step_losses, record.step_penalties = [2.0] * 25, [None] * 25  # 10 steps an epoch, diverged at 25
    record.epochs = {epoch: {"train/loss": 1.0, "val/loss": 1.0, "val/acc": 0.5} for epoch in (0, 1)}
    record.epoch_end_steps = {0: 10, 1: 20}
    record.status, record.stopped_step = "diverged", 24
    logger = TensorBoardLogger(save_dir=str(tmp_path), name="tensorboard", version="")
    TrialLog([logger], every=5, with_l1=False).write(record)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    for tag in ("train/loss_epoch", "val/loss", "val/acc"):
        assert [event.step for event in events.Scalars(tag)] == [9, 19], tag  # where a lone run logs them
    assert [event.step for event in events.Scalars("train/loss")] == [4, 9, 14, 19, 24]


def test_a_fused_sets_fit_and_test_take_the_trainer_options_a_lone_run_takes(tmp_path, caplog):
    options = [
        "trainer.precision=bf16-mixed",
        "trainer.limit_test_batches=1",
        "+trainer.profiler=simple",
        "trainer.max_epochs=1",
    ]
    cells = [
        [f"optimizer.lr={lr}", "model.hidden_sizes=[64]", "watch.pictures=false", *options]
        for lr in ("0.001", "0.0003")
    ]
    with caplog.at_level(logging.INFO):
        fused = train_fused([compose_config(*cell) for cell in cells], [tmp_path / "f0", tmp_path / "f1"])
    reports = caplog.text
    assert "FIT Profiler Report" in reports and reports.count("TEST Profiler Report") == 2  # not replaced
    lone = run_here(tmp_path / "lone", *cells[0])
    whole = run_here(tmp_path / "whole", "train=false", f"ckpt_path={lone['best_checkpoint']}")
    evaluations = {
        precision: run_here(
            tmp_path / precision,
            "train=false",
            f"ckpt_path={fused[0]['best_checkpoint']}",
            f"trainer.precision={precision}",
            options[1],
        )["test_loss"]
        for precision in ("bf16-mixed", "32-true")
    }
    assert fused[0]["test_acc"] == pytest.approx(lone["test_acc"], abs=1e-6)  # one test batch, as alone
    assert lone["test_acc"] != whole["test_acc"]  # which differs from the whole test split's
    # the trial's own test, of its best weights, in bfloat16 as asked, not in float32
    assert fused[0]["test_loss"] == pytest.approx(evaluations["bf16-mixed"], abs=1e-6)
    assert abs(evaluations["32-true"] - fused[0]["test_loss"]) > 1e-5, evaluations


def test_fused_trials_log_to_their_own_runs_while_the_set_trains(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    seen = {}

    class ReadMidFit(L.Callback):
        def on_train_epoch_start(self, trainer, module) -> None:
            if trainer.current_epoch == 1:  # one epoch done, one to go
                for trial in ("f0", "f1"):
                    events = EventAccumulator(str(tmp_path / trial / "tensorboard"))
                    events.Reload()
                    seen[trial] = {tag: len(events.Scalars(tag)) for tag in events.Tags()["scalars"]}

    cells = [[f"optimizer.lr={lr}", "model.hidden_sizes=[64]", "trainer.max_epochs=2"] for lr in ("0.001", "0.0003")]
    cfgs = [compose_config("watch.pictures=false", *cell) for cell in cells]
    train_fused(cfgs, [tmp_path / "f0", tmp_path / "f1"], callbacks=[ReadMidFit()])
    for trial, tags in seen.items():
        assert tags["val/acc"] == tags["train/loss_epoch"] == 1, (trial, tags)  # epoch 0, before epoch 1 trains
        assert tags["train/loss"] >= 1 and tags["watch/update_ratio/median"] >= 1, (trial, tags)
