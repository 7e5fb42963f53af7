"""The device a run asks for, checked with torch alone: job.py calls this before Lightning is imported,
so a missing GPU is one line in about two seconds."""

import logging
from functools import cache

import torch

from experiments.config.errors import UserError

log = logging.getLogger(__name__)


@cache  # job.py checks first, run.py again for in-process callers: one warning per process
def check_device(accelerator: str, precision: str) -> None:
    """One line, before anything is built, for a device this machine lacks; a word on CPU half precision."""
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
