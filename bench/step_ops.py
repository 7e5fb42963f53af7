"""Operations per training step: the top-level aten calls torch.profiler records on the CPU in one training
step (data, forward, backward, optimizer, the step's rules), for a lone run and for fused sets of 1, 5 and
20 trials, on the default MLP and the embedded sample. On a GPU each of them is a kernel launch, so the
count, not the arithmetic, bounds a small model's step there.

    python bench/step_ops.py          # the table; bench/sweep.py prints it too

Also the matmul ceiling's share: a throughput in trial-epochs per second, times the multiply-adds of one
trial-epoch, over the machine's fp32 matmul rate (bench/loops.py).
"""

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SKIP, STEPS = 5, 10  # steps before counting (the first ones build state), steps counted
QUIET = ["watch.pictures=false", "trainer.max_epochs=1", "trainer.limit_val_batches=1", "trainer.limit_test_batches=1"]


def composed(*overrides: str):
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[*QUIET, *overrides], return_hydra_config=True)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def step_counter():
    """A Lightning callback that profiles training steps SKIP..SKIP+STEPS; `.per_step` is set after them."""
    import lightning as L
    from torch.profiler import ProfilerActivity, profile

    class StepOperations(L.Callback):
        def __init__(self) -> None:
            self.profiler, self.per_step = None, None

        def on_train_batch_start(self, trainer, module, batch, batch_idx: int) -> None:
            if batch_idx == SKIP:
                self.profiler = profile(activities=[ProfilerActivity.CPU])
                self.profiler.__enter__()
            elif batch_idx == SKIP + STEPS and self.profiler is not None:
                self.profiler.__exit__(None, None, None)
                calls, working = top_level_aten(self.profiler.events())
                self.per_step = (calls / STEPS, working / STEPS)
                self.profiler = None

    return StepOperations()


# Calls that only make a new view of existing memory (or return their input): no kernel, on any device.
METADATA = {
    "aten::view", "aten::reshape", "aten::transpose", "aten::t", "aten::expand", "aten::detach", "aten::slice",
    "aten::split_with_sizes", "aten::split", "aten::flatten", "aten::unsqueeze", "aten::squeeze", "aten::permute",
    "aten::alias", "aten::as_strided", "aten::select", "aten::resolve_conj", "aten::resolve_neg", "aten::to",
    "aten::_unsafe_view", "aten::lift_fresh",
}  # fmt: skip
COPIES = {"aten::copy_", "aten::clone", "aten::_to_copy", "aten::contiguous", "aten::empty_like"}


def top_level_aten(events) -> tuple[int, int]:
    """aten calls not made inside another aten call (what a caller issues, not how aten builds it), and how
    many of those do work: all but the views (a reshape or `to` that copies does work)."""

    def nested(event) -> bool:
        parent = event.cpu_parent
        while parent is not None:
            if parent.name.startswith("aten::"):
                return True
            parent = parent.cpu_parent
        return False

    def copies(event) -> bool:
        return any(child.name in COPIES or copies(child) for child in event.cpu_children)

    calls = [event for event in events if event.name.startswith("aten::") and not nested(event)]
    working = [event for event in calls if event.name not in METADATA or copies(event)]
    return len(calls), len(working)


def learning_rates(trials: int) -> list[float]:
    """Rates that all train (none diverges, so the set keeps its size while it is counted)."""
    return [10 ** (-4 + index / max(trials - 1, 1)) for index in range(trials)]


def fused_step_operations(trials: int, root: Path) -> float:
    from experiments.fused.train import train_fused

    cfgs = [composed(f"optimizer.lr={lr}") for lr in learning_rates(trials)]
    counter = step_counter()
    train_fused(cfgs, [root / f"fused{trials}" / f"trial{n}" for n in range(trials)], callbacks=[counter])
    return counter.per_step


def lone_step_operations(root: Path) -> float:
    from experiments.run import build_data, build_module, prepare_process
    from experiments.training.trainer import build_trainer

    cfg = composed()
    prepare_process(cfg)
    datamodule = build_data(cfg)
    module = build_module(cfg, datamodule)
    trainer, _ = build_trainer(cfg, root / "lone")
    counter = step_counter()
    trainer.callbacks.append(counter)
    trainer.fit(module, datamodule=datamodule)
    return counter.per_step


def step_operations() -> tuple[dict, dict]:
    """({"lone": calls, "fused_1": .., "fused_5": .., "fused_20": .., "fused_20_cpu": ..}, the same for the calls
    that do work), per training step. fused_N counts the step an accelerator runs (Adam's element-wise
    formulas over the whole stack); on a CPU, Adam takes torch's fused kernel once per trial row instead,
    counted as fused_20_cpu."""
    from experiments.fused.optimizers import StackedAdam

    with tempfile.TemporaryDirectory() as root:
        counts = {"lone": lone_step_operations(Path(root))}
        StackedAdam.rows_on_cpu = False
        try:
            counts |= {f"fused_{n}": fused_step_operations(n, Path(root)) for n in (1, 5, 20)}
        finally:
            StackedAdam.rows_on_cpu = True
        counts["fused_20_cpu"] = fused_step_operations(20, Path(root) / "cpu")
    calls = {name: round(count[0], 1) for name, count in counts.items()}
    return calls, {name: round(count[1], 1) for name, count in counts.items()}


def flops_per_trial_epoch(*overrides: str) -> float:
    """6 x parameters x training samples: the MLP's forward (2) and backward (4) FLOPs per weight."""
    from experiments.run import build_data, build_module

    cfg = composed(*overrides)
    datamodule = build_data(cfg)
    module = build_module(cfg, datamodule)
    parameters = sum(parameter.numel() for parameter in module.net.parameters())
    return 6.0 * parameters * len(datamodule.train_images)


def bare_batched_gflops(trials: int = 20, steps: int = 30) -> float:
    """What the machine allows this model: `trials` copies of the default MLP as plain batched matmuls (baddbmm,
    ReLU, cross-entropy, backward, torch's fused Adam over them all) on one batch of random pixels in memory,
    with no data loading, no framework and no per-trial rule. GFLOP/s, counted as flops_per_trial_epoch counts."""
    import itertools
    import time

    import torch

    cfg = composed()
    sizes = [28 * 28, *cfg.model.hidden_sizes, 10]
    batch = cfg.data.batch_size
    weights = [torch.randn(trials, n_in, n_out, requires_grad=True) for n_in, n_out in itertools.pairwise(sizes)]
    biases = [torch.zeros(trials, 1, n_out, requires_grad=True) for n_out in sizes[1:]]
    pixels, labels = torch.randn(batch, sizes[0]), torch.randint(0, 10, (batch,))
    optimizer = torch.optim.Adam(weights + biases, lr=1e-3, fused=True)

    def step() -> None:
        hidden = pixels.expand(trials, -1, -1)
        for layer, (weight, bias) in enumerate(zip(weights, biases, strict=True)):
            hidden = torch.baddbmm(bias, hidden, weight)
            hidden = hidden.relu() if layer < len(weights) - 1 else hidden
        loss = torch.nn.functional.cross_entropy(hidden.transpose(1, 2), labels.expand(trials, -1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(5):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - start) / steps
    multiply_adds = sum(n_in * n_out + n_out for n_in, n_out in itertools.pairwise(sizes))
    return 6.0 * multiply_adds * batch * trials / seconds / 1e9


def print_operations(calls: dict, working: dict) -> None:
    for label, counts in (("top-level aten calls", calls), ("of them doing work (not views)", working)):
        fused = ", ".join(f"{n}: {counts[f'fused_{n}']:g}" for n in (1, 5, 20))
        print(
            f"  {label} a training step (torch.profiler, CPU): lone run {counts['lone']:g}; fused sets of "
            f"{fused} (an accelerator's step); 20 trials with a CPU's Adam: {counts['fused_20_cpu']:g}"
        )


def build_parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(description=__doc__.split("\n\n")[0])


def main(argv: list[str] | None = None) -> None:
    build_parser().parse_args(argv)
    sys.path.insert(0, str(Path(__file__).parent))
    print_operations(*step_operations())


if __name__ == "__main__":
    main()
