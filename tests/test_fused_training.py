"""train_fused: a set of lr x weight-decay trials trained as one model gives each trial its lone run's outcome."""

import json
import time
from pathlib import Path

import pytest
import torch
from conftest import compose_config, logged_scalars, run_here

from experiments.config.errors import UserError
from experiments.fused.train import check_fusable, train_fused

SHORT = ["trainer.max_epochs=2", "watch.pictures=false", "model.hidden_sizes=[64]"]  # a small MLP: the same path
CELLS = [("0.001", "0.0"), ("0.0003", "0.0001"), ("0.0001", "0.001")]


def cell(lr: str, wd: str, *extra: str) -> list[str]:
    return [f"optimizer.lr={lr}", f"regularization.weight_decay={wd}", *SHORT, *extra]


def assert_fused_matches_lone_runs(tmp_path, cells: list[list[str]]) -> list[dict]:
    """Train `cells` fused and each alone: the same best val acc (within 0.5 points) and the same step
    losses in TensorBoard (every 10 steps) for the first 60 steps. Returns the fused metrics."""
    dirs = [tmp_path / "fused" / f"trial{number}" for number in range(len(cells))]
    fused = train_fused([compose_config(*overrides) for overrides in cells], dirs)
    for number, overrides in enumerate(cells):
        lone_dir = tmp_path / "lone" / f"trial{number}"
        lone = run_here(lone_dir, *overrides)
        assert fused[number]["status"] == lone["status"], number
        assert abs(fused[number]["best_val_acc"] - lone["best_val_acc"]) <= 0.005, (number, fused[number], lone)
        fused_scalars, lone_scalars = logged_scalars(dirs[number]), logged_scalars(lone_dir)
        fused_curve, lone_curve = fused_scalars["train/loss"], lone_scalars["train/loss"]
        assert len(fused_curve) == len(lone_curve) == 12
        assert fused_curve[:6] == pytest.approx(lone_curve[:6], rel=1e-5), number
        assert_same_watch(fused[number], lone, fused_scalars, lone_scalars)
        fused_histograms, lone_histograms = histograms(dirs[number]), histograms(lone_dir)
        assert set(fused_histograms) == set(lone_histograms) != set()
        for tag, readings in lone_histograms.items():  # at the same epochs, of the same values
            assert [step for step, *_ in fused_histograms[tag]] == [step for step, *_ in readings], tag
            assert [num for _, num, _ in fused_histograms[tag]] == [num for _, num, _ in readings], tag
            squares = [squares for *_, squares in fused_histograms[tag]]
            assert squares == pytest.approx([squares for *_, squares in readings], rel=0.05), tag
    return fused


def assert_same_watch(fused: dict, lone: dict, fused_scalars: dict, lone_scalars: dict) -> None:
    """What steps 7 and 8 leave: the same metrics.json keys (and checks), update/weight ratio readings, and
    TensorBoard scalar tags."""
    assert set(fused) - {"fused"} == set(lone) and fused["checks"] == lone["checks"]
    assert fused["update_ratio"]["readings"] == lone["update_ratio"]["readings"] > 0
    assert fused["update_ratio"]["median"] == pytest.approx(lone["update_ratio"]["median"], rel=1e-3)
    assert set(fused_scalars) == set(lone_scalars)
    median = "watch/update_ratio/median"
    assert fused_scalars[median] == pytest.approx(lone_scalars[median], rel=1e-3)


def histograms(run_dir: Path) -> dict[str, list[tuple[int, float, float]]]:
    """tag -> (epoch, count, sum of squares) of each histogram in the run's TensorBoard."""
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    events = EventMultiplexer(size_guidance={"histograms": 0})
    events.AddRunsFromDirectory(str(run_dir / "tensorboard"))
    events.Reload()
    found = {}
    for run, tags in events.Runs().items():
        for tag in tags["histograms"]:
            values = [(event.step, event.histogram_value) for event in events.Histograms(run, tag)]
            found[tag] = [(step, value.num, value.sum_squares) for step, value in values]
    return found


def test_fused_trials_match_their_lone_runs(tmp_path):
    started = time.perf_counter()
    fused = assert_fused_matches_lone_runs(tmp_path, [cell(lr, wd) for lr, wd in CELLS])
    elapsed = time.perf_counter() - started  # the set's training and the three lone runs after it
    seconds = set()
    for metrics in fused:
        assert metrics["status"] == "completed"
        written = json.loads((Path(metrics["run_dir"]) / "metrics.json").read_text())
        assert written["fused"].keys() == {"trials", "with_others", "set_seconds"}
        assert (written["fused"]["trials"], written["fused"]["with_others"]) == (3, 2)
        # the set's whole fit: its epochs, training and validation, and no more than the test's own time
        assert elapsed > written["fused"]["set_seconds"] >= sum(written["epoch_seconds"]) - 0.01 > 0
        seconds.add(written["fused"]["set_seconds"])
    assert len(seconds) == 1  # one figure for the set, the same in every trial's record


def test_after_a_trial_leaves_the_set_each_other_trial_keeps_its_own_weights_and_curve(tmp_path):
    """The quick check of a set's bookkeeping: the first trial explodes in epoch 1 and leaves; the two that
    stay train on exactly as a set without it trains them, each with its own weights, curve and figures."""
    sgd = ["optimizer=sgd", "optimizer.momentum=0.9", "trainer.limit_train_batches=10"]
    calm = [compose_config(*cell(lr, "0.0", *sgd)) for lr in ("0.001", "0.03")]
    exploding = compose_config(*cell("20", "0.0", *sgd))
    with_exploding = train_fused([exploding, *calm], [tmp_path / f"a{n}" for n in range(3)])
    without = train_fused(calm, [tmp_path / f"b{n}" for n in range(2)])
    assert with_exploding[0]["status"] == "diverged" and with_exploding[0]["diverged_step"] < 10
    for number, alone in enumerate(without, start=1):
        together = with_exploding[number]
        assert together["status"] == alone["status"] == "completed" and together["epochs"] == 2
        assert together["best_val_acc"] == pytest.approx(alone["best_val_acc"], abs=1e-6), number
        assert logged_scalars(tmp_path / f"a{number}")["train/loss"] == pytest.approx(
            logged_scalars(tmp_path / f"b{number - 1}")["train/loss"], rel=1e-5
        )
        weights = [load(Path(m["run_dir"]) / LAST)["state_dict"] for m in (together, alone)]
        for name, value in weights[1].items():
            assert torch.allclose(weights[0][name], value, rtol=1e-5, atol=1e-7), (number, name)
    first, second = (load(Path(m["run_dir"]) / LAST)["state_dict"] for m in without)
    assert not torch.allclose(first["net.layers.1.weight"], second["net.layers.1.weight"])  # told apart


@pytest.mark.slow
def test_fused_trials_with_their_own_l1_strength_match_their_lone_runs(tmp_path):
    assert_fused_matches_lone_runs(
        tmp_path, [cell("0.001", "0.0", f"regularization.l1={l1}") for l1 in ("0.0", "0.0001")]
    )


@pytest.mark.slow
def test_a_fused_trial_that_explodes_is_diverged_and_the_others_complete(tmp_path):
    sgd = ["optimizer=sgd", "optimizer.momentum=0.9"]
    cfgs = [compose_config(*cell(lr, "0.0", *sgd)) for lr in ("20", "0.001")]
    exploded, calm = train_fused(cfgs, [tmp_path / "a", tmp_path / "b"])
    alone = run_here(tmp_path / "alone", *cell("20", "0.0", *sgd))
    assert exploded["status"] == alone["status"] == "diverged"
    assert exploded["diverged_step"] == alone["diverged_step"] and exploded["test_acc"] is None
    calm_alone = run_here(tmp_path / "calm_alone", *cell("0.001", "0.0", *sgd))
    assert calm["status"] == "completed" and abs(calm["best_val_acc"] - calm_alone["best_val_acc"]) <= 0.005
    assert calm["test_acc"] == pytest.approx(calm_alone["test_acc"], abs=0.005)


@pytest.mark.slow
def test_early_stopping_is_per_trial_and_stops_each_where_its_lone_run_stops(tmp_path):
    stopping = ["regularization=[early_stopping]", "regularization.early_stopping.patience=1", "trainer.max_epochs=8"]
    cells = [[f"optimizer.lr={lr}", *stopping, *SHORT[1:]] for lr in ("0.003", "0.0001")]
    fused = train_fused([compose_config(*c) for c in cells], [tmp_path / "f0", tmp_path / "f1"])
    lone = [run_here(tmp_path / f"lone{number}", *c) for number, c in enumerate(cells)]
    assert [m["epochs"] for m in fused] == [m["epochs"] for m in lone] and fused[0]["epochs"] < 8 == fused[1]["epochs"]
    for together, alone in zip(fused, lone, strict=True):
        assert together["best_val_acc"] == pytest.approx(alone["best_val_acc"], abs=0.005)
    # the stopped trial's last.ckpt holds its EarlyStopping's own state, as its lone run's does
    [state], [lone_state] = (
        [value for key, value in load(folder / LAST)["callbacks"].items() if key.startswith("EarlyStopping")]
        for folder in (tmp_path / "f0", tmp_path / "lone0")
    )
    assert state["wait_count"] == lone_state["wait_count"] and state["stopped_epoch"] == lone_state["stopped_epoch"] > 0


@pytest.mark.slow
def test_a_fused_trials_checkpoint_evaluates_to_its_reported_test_accuracy(tmp_path):
    [metrics] = train_fused([compose_config(*cell("0.001", "1e-05"))], [tmp_path / "fused"])
    evaluated = run_here(tmp_path / "eval", "train=false", f"ckpt_path={metrics['best_checkpoint']}")
    assert evaluated["test_acc"] == pytest.approx(metrics["test_acc"], abs=1e-6)
    weights_only = {key: value for key, value in load(metrics["best_checkpoint"]).items() if key != "optimizer_states"}
    torch.save(weights_only, tmp_path / "weights.ckpt")  # what earlier versions wrote for a fused trial
    with pytest.raises(UserError, match="holds weights only .* training cannot resume from it"):
        run_here(tmp_path / "resume", f"ckpt_path={tmp_path / 'weights.ckpt'}", "trainer.max_epochs=3", *SHORT[2:])


def test_a_fused_trials_checkpoints_hold_its_lone_runs_training_state_and_resume_alike(tmp_path):
    """Its last.ckpt and best checkpoint are what its lone run writes: weights, momentum buffers, scheduler,
    loop progress, data order, RNG and callback states. A run continued from either goes on alike."""
    schedule = ["optimizer=sgd", "optimizer.momentum=0.9", "scheduler=step", "scheduler.step_size=1"]
    cells = [cell(lr, wd, *schedule) for lr, wd in CELLS[:2]]
    dirs = [tmp_path / "fused" / f"trial{number}" for number in range(2)]
    train_fused([compose_config(*overrides) for overrides in cells], dirs)
    lone_dir = tmp_path / "lone"
    run_here(lone_dir, *cells[0])
    assert_same_training_state(load(dirs[0] / LAST), load(lone_dir / LAST))
    [fused_best], [lone_best] = ((folder / "checkpoints").glob("best-*.ckpt") for folder in (dirs[0], lone_dir))
    assert fused_best.name == lone_best.name
    assert_same_training_state(load(fused_best), load(lone_best))
    continued = [
        run_here(tmp_path / f"longer{number}", *cells[0], f"ckpt_path={folder / LAST}", "trainer.max_epochs=3")
        for number, folder in enumerate((dirs[0], lone_dir))
    ]
    assert continued[0]["epochs"] == continued[1]["epochs"] == 3
    assert continued[0]["final_train_loss"] == pytest.approx(continued[1]["final_train_loss"], rel=1e-3)
    assert abs(continued[0]["best_val_acc"] - continued[1]["best_val_acc"]) <= 0.005


LAST = Path("checkpoints") / "last.ckpt"
# What may differ: where the run lives, how long its epochs took, Lightning's counter of scheduler steps
# (a fused set steps its trials' schedulers itself), and a score ModelCheckpoint does not restore.
RUN_SPECIFIC = ("dirpath", "_path", "best_k_models", "EpochTimer", "scheduler_progress", "current_score")


def load(path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_same_training_state(fused, lone, where: str = "checkpoint") -> None:
    """Equal structure and values; tensors within 1e-4 relative (a batched matmul adds in another order)."""
    if any(part in where for part in RUN_SPECIFIC):
        return
    if isinstance(lone, dict):
        assert set(fused) == set(lone), where
        for key in fused:
            assert_same_training_state(fused[key], lone[key], f"{where}/{key}")
    elif isinstance(lone, list | tuple):
        assert len(fused) == len(lone), where
        for number, (mine, theirs) in enumerate(zip(fused, lone, strict=True)):
            assert_same_training_state(mine, theirs, f"{where}[{number}]")
    elif torch.is_tensor(lone) and lone.is_floating_point():
        assert torch.allclose(fused, lone, rtol=1e-4, atol=1e-6), where
    elif torch.is_tensor(lone):
        assert torch.equal(fused, lone), where
    else:
        assert fused == pytest.approx(lone, rel=1e-5) if isinstance(lone, float) else fused == lone, where


@pytest.mark.slow
def test_fused_trials_keep_their_own_dropout_rate_and_their_checkpoints_load_alone(tmp_path):
    cfgs = [compose_config(*cell("0.001", "0.0", f"regularization.dropout={rate}")) for rate in ("0.2", "0.5")]
    fused = train_fused(cfgs, [tmp_path / "low", tmp_path / "high"])
    assert [m["status"] for m in fused] == ["completed", "completed"] and fused[0]["best_val_acc"] > 0.85
    for metrics in fused:  # an ordinary checkpoint: nn.Dropout, no stacked rate buffer in it
        evaluated = run_here(tmp_path / "eval", "train=false", f"ckpt_path={metrics['best_checkpoint']}")
        assert evaluated["test_acc"] == pytest.approx(metrics["test_acc"], abs=1e-6)


@pytest.mark.slow
def test_max_norm_and_gradient_clipping_act_per_trial_as_in_lone_runs(tmp_path):
    extra = ["regularization=[grad_clip,maxnorm]", "regularization.grad_clip.value=0.5", "regularization.max_norm=1.0"]
    assert_fused_matches_lone_runs(tmp_path, [cell(lr, "0.0", *extra) for lr in ("0.001", "0.003")])


@pytest.mark.slow
def test_fused_trials_draw_the_pictures_and_get_the_loss_curve_verdict_of_a_lone_run(tmp_path):
    cells = [cell(lr, "0.0", "trainer.max_epochs=1", "watch.pictures=true") for lr in ("0.001", "0.0003")]
    fused = train_fused([compose_config(*c) for c in cells], [tmp_path / "a", tmp_path / "b"])
    for metrics, trial_dir in zip(fused, (tmp_path / "a", tmp_path / "b"), strict=True):
        drawn = {path.stem for path in (trial_dir / "figures").glob("*.png")}
        assert drawn == {
            "train_inputs_per_class", "weights_first_layer", "train_loss_curve",
            "test_predictions", "test_confident_mistakes", "test_confusion_matrix",
        }  # fmt: skip
        assert metrics["loss_curve"]["verdict"] and metrics["loss_curve"]["evidence"]["steps"] == 63  # one epoch
        assert {"test/acc", "test/loss"} <= set(logged_scalars(trial_dir))  # the test scalars reach its run too


@pytest.mark.parametrize(
    "schedule",
    [
        ["scheduler=onecycle", "optimizer=sgd", "optimizer.momentum=0.9"],  # per step; cycles SGD's momentum
        ["scheduler=onecycle"],  # cycles Adam's beta1
        ["scheduler=step", "scheduler.step_size=1", "scheduler.gamma=0.3"],  # per epoch
        # mode=max on val/loss: every improvement counts as none, so each trial's rate drops after epoch 2
        ["scheduler=plateau", "scheduler.mode=max", "scheduler.patience=0", "trainer.max_epochs=3"],
    ],
    ids=["onecycle-sgd", "onecycle-adam", "step", "plateau"],
)
def test_each_fused_trial_follows_its_own_learning_rate_schedule(tmp_path, schedule):
    cells = [cell(lr, wd, *schedule) for lr, wd in CELLS[:2]]
    dirs = [tmp_path / "fused" / f"trial{number}" for number in range(len(cells))]
    fused = train_fused([compose_config(*overrides) for overrides in cells], dirs)
    for number, overrides in enumerate(cells):
        lone = run_here(tmp_path / "lone" / f"trial{number}", *overrides)
        assert abs(fused[number]["best_val_acc"] - lone["best_val_acc"]) <= 0.005, number
        fused_curves, lone_curves = logged_scalars(dirs[number]), logged_scalars(tmp_path / "lone" / f"trial{number}")
        # every epoch's loss: a rate off by the schedule's factor in epoch 2 or 3 moves them by far more
        assert fused_curves["train/loss_epoch"] == pytest.approx(lone_curves["train/loss_epoch"], rel=1e-3), number
        assert fused_curves["train/loss"][:6] == pytest.approx(lone_curves["train/loss"][:6], rel=1e-5), number
        rates = [tag for tag in lone_curves if tag.startswith("watch/lr-")]  # LearningRateMonitor's, one per group
        assert len(rates) == 2 and all(fused_curves[tag] == pytest.approx(lone_curves[tag]) for tag in rates), number
        lone_steps = scalar_steps(tmp_path / "lone" / f"trial{number}", rates[0])
        assert scalar_steps(dirs[number], rates[0]) == lone_steps and len(lone_steps) > 1, number  # logged alike


def scalar_steps(run_dir: Path, tag: str) -> list[int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return [event.step for event in events.Scalars(tag)]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["optimizer=lbfgs"], "optimizer=lbfgs does not fuse yet"),
        (["model=lstm"], "model=lstm does not fuse: torch.func has no batching rule"),
    ],
)
def test_what_does_not_fuse_is_refused_in_one_line(overrides, expected):
    with pytest.raises(UserError, match=expected):
        check_fusable([compose_config(*overrides), compose_config(*overrides)])


def test_one_cycle_trials_fuse_with_their_own_peak_rate():
    """scheduler.max_lr follows each trial's optimizer.lr: it differs across the set and still fuses."""
    cfgs = [compose_config("scheduler=onecycle", f"optimizer.lr={lr}") for lr in ("0.001", "0.01")]
    assert [cfg.scheduler.max_lr for cfg in cfgs] == [0.001, 0.01]
    check_fusable(cfgs)


def test_trials_that_differ_in_more_than_the_fused_keys_are_refused():
    with pytest.raises(UserError, match="differ in more than"):
        check_fusable([compose_config("model=mlp"), compose_config("model=cnn")])


@pytest.mark.slow
def test_a_fused_trial_that_explodes_under_a_schedule_logs_its_rate_up_to_where_its_lone_run_stops(tmp_path):
    steady = ["optimizer=sgd", "optimizer.momentum=0.9", "scheduler=onecycle", "trainer.log_every_n_steps=1"]
    cells = [cell(lr, "0.0", *steady) for lr in ("10", "0.001")]  # 10: diverges at step 24, between two flushes
    fused = train_fused([compose_config(*c) for c in cells], [tmp_path / "a", tmp_path / "b"])
    alone = run_here(tmp_path / "alone", *cells[0])
    assert fused[0]["status"] == alone["status"] == "diverged" and fused[0]["diverged_step"] == alone["diverged_step"]
    [tag] = [tag for tag in logged_scalars(tmp_path / "alone") if tag.startswith("watch/lr-") and tag.endswith("pg1")]
    assert scalar_steps(tmp_path / "a", tag) == scalar_steps(tmp_path / "alone", tag)
