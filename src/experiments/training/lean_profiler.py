"""The Trainer's default do-nothing profiler, without its per-hook cost.

Lightning wraps each hook call (about 70 per training step) in `trainer.profiler.profile(name)`. The
default PassThroughProfiler records nothing, yet builds a generator-based context manager every time:
about 0.08 ms per step, 5% of a batch-64 MLP step on a CPU. This one hands back one shared no-op
context instead. A real profiler is still one override away: `+trainer.profiler=simple`.
"""

from contextlib import nullcontext

from lightning.pytorch.profilers import PassThroughProfiler


class LeanPassThroughProfiler(PassThroughProfiler):
    _no_op = nullcontext()  # stateless, so one instance serves every (nested) hook call

    def profile(self, action_name: str) -> nullcontext:
        return self._no_op
