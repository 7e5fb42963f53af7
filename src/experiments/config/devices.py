"""The device a run asks for, and the threads a trial gets. A missing GPU is one line before Lightning loads;
torch is imported only when the answer needs it, so the default run's checks stay torch-free."""

import logging
from functools import cache

from omegaconf import DictConfig

from experiments.config.errors import UserError

log = logging.getLogger(__name__)


@cache  # the preflight checks first, run.py again for in-process callers: one warning per process
def check_device(accelerator: str, precision: str) -> None:
    """One line, before anything is built, for a device this machine lacks; a word on CPU half precision."""
    if accelerator not in ("gpu", "cuda", "mps") and precision != "16-mixed":
        return  # a CPU, or whatever `auto` finds: nothing to refuse
    import torch

    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise UserError(
            f"trainer.accelerator={accelerator} but torch sees no CUDA GPU on this machine: "
            "use trainer.accelerator=auto (a GPU when there is one) or cpu"
        )
    if accelerator == "mps" and not torch.backends.mps.is_available():
        raise UserError(
            "trainer.accelerator=mps but this machine has no Apple GPU: use trainer.accelerator=auto or cpu"
        )
    on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
    if on_cpu and precision == "16-mixed":
        log.warning(
            "trainer.precision=16-mixed runs as bf16-mixed on a CPU (Lightning's rule), often slower than 32-true"
        )


def threads_per_trial(launcher: DictConfig, cores: int) -> int | None:
    """The cores shared out among the trials a parallel launcher runs at once (joblib's n_jobs; -1 or
    null means one trial per core); None, torch's own default, when trials run one at a time."""
    if "joblib" not in str(launcher.get("_target_", "")):
        return None
    parallel = launcher.get("n_jobs", 1)
    parallel = cores if parallel is None or parallel < 1 else parallel
    return max(1, cores // parallel) if parallel > 1 else None
