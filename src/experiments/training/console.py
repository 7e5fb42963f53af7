"""What a run's console shows of its libraries: Lightning's and torchmetrics' records through the job's own
handlers (the console and train.log), without the lines the run says better itself or that are not about it."""

import logging
import warnings

# What Lightning's rank_zero_info says that the run's own lines already say (describe_run: the device, a
# resumed checkpoint; the table: the epochs, the tested checkpoint) or that is not about this run (its tips).
ALREADY_SAID = (
    "GPU available:", "TPU available:", "HPU available:", "`Trainer.fit` stopped:",
    "Restoring states from the checkpoint", "Loaded model weights from the checkpoint",
)  # fmt: skip


def _about_this_run(record: logging.LogRecord) -> bool:
    message = record.getMessage()
    return not message.startswith(ALREADY_SAID) and "💡" not in message  # "💡 Tip: ... litlogger"


def quiet_library_noise() -> None:
    # Lightning and torchmetrics install console handlers of their own; the job's root handlers already
    # print each record and file it in train.log, so route everything through those once.
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "torchmetrics"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_about_this_run)  # once: same function
    # On a machine with srun (every cluster login node), Lightning's checkpoint loader asks whether this is a
    # SLURM job and warns that srun is not used. trainer=slurm submits the job itself (training/trainer.py
    # picks the cluster environment); a run outside a SLURM job is not one.
    warnings.filterwarnings("ignore", message="The `srun` command is available on your system but is not used")
    # logger=[] chose no tracker: the figures still reach metrics.json and the table, and trainer.test returns
    # only what is logged with logger=True, so the module logs that way whatever the list holds.
    warnings.filterwarnings("ignore", message=r"You called `self.log\(.*logger=True\)` but have no logger configured")
    # Raised inside Lightning's own code against torch >= 2.10; nothing a user can act on.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
