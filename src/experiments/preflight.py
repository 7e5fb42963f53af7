"""What a run settles before torch and Lightning load: the device, the checkpoint, the configuration a run
from a checkpoint takes, the dataset's files, and how many threads a parallel trial gets. Each problem is a
one-line UserError within a second or two, and no run folder is left behind (job.py)."""

from pathlib import Path

from omegaconf import DictConfig


def prepare_run(cfg: DictConfig, typed: list[str], choices: dict) -> dict:
    """What a run settles before Lightning is imported: the device is there, the checkpoint is readable
    and safe, a run from a checkpoint takes its configuration (checkpoint_config.py), and the dataset's
    files are whole. Returns the config-group choices the run records."""
    from experiments.config.devices import check_device  # torch only: a missing GPU is named before Lightning loads

    check_device(cfg.trainer.accelerator, str(cfg.trainer.precision))
    if cfg.ckpt_path:
        from experiments.checkpoints.adopt_config import adopt_checkpoint_config, check_trains_more
        from experiments.checkpoints.reading import read_hparams

        saved = read_hparams(cfg.ckpt_path)
        if not cfg.get("resume"):  # resume= composes the run's own overrides: its config is the checkpoint's
            choices = adopt_checkpoint_config(cfg, saved, typed, choices)
            check_trains_more(cfg)
    if "name" in cfg.data and "root" in cfg.data:  # a torchvision set: damaged files, before Lightning too
        from experiments.data.file_checks import check_dataset_files

        check_dataset_files(cfg.data.name, Path(cfg.data.root).expanduser().resolve(), cfg.data.verify_checksums)
    return choices


def threads_per_trial(launcher: DictConfig, cores: int) -> int | None:
    """The cores shared out among the trials a parallel launcher runs at once (joblib's n_jobs; -1 or
    null means one trial per core); None, torch's own default, when trials run one at a time."""
    if "joblib" not in str(launcher.get("_target_", "")):
        return None
    parallel = launcher.get("n_jobs", 1)
    parallel = cores if parallel is None or parallel < 1 else parallel
    return max(1, cores // parallel) if parallel > 1 else None
