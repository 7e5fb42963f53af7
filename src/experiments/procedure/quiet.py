"""Silence Lightning's start-up and bookkeeping lines around the trainers the procedure runs for itself
(the overfit check's, the learning-rate search's restore): they are not about the user's run."""

import logging
import warnings
from contextlib import contextmanager

CHATTER = (
    "lightning.pytorch.utilities.rank_zero",  # "GPU available: ...", "TPU available: ..."
    "lightning.pytorch.trainer.connectors.checkpoint_connector",  # "Restoring states from ..."
)


@contextmanager
def quiet_lightning():
    loggers = [logging.getLogger(name) for name in CHATTER]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*no `val_dataloader`")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
