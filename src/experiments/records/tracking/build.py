"""build_loggers(cfg, run_dir, resumed_step): the Lightning loggers the `logger` group chose, one per entry.

A run that resumes in place continues its own tracker runs: their ids are kept in RUN_DIR/trackers.json. A
sweep's trial joins its sweep's MLflow experiment and parent run and its W&B group (sweep_runs.py)."""

import csv
import json
import time
import uuid
import warnings
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger, Logger, MLFlowLogger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

from experiments.records.tracking.sweep_runs import RUN_IDS, SweepTrackers, absolute_tracking_uri, default_artifacts


def build_loggers(cfg: DictConfig, run_dir: Path, resumed_step: int | None) -> list[Logger]:
    remembered = read_run_ids(run_dir)
    sweep = SweepTrackers.of_trial(run_dir)
    loggers = []
    for name, settings in (cfg.get("logger") or {}).items():
        build = BUILDERS[name]
        loggers.append(build(settings, run_dir, resumed_step, remembered.get(name), sweep))
    remember_run_ids(run_dir, loggers)
    return loggers


class TensorBoardRunLogger(TensorBoardLogger):
    """Lightning adds an `epoch` scalar to what it logs; TensorBoard would draw it as the first card group, above
    the loss and accuracy curves. The epoch is already where each val/ point lies, so it is not written here."""

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        super().log_metrics({name: value for name, value in metrics.items() if name != "epoch"}, step)


def build_tensorboard(settings, run_dir: Path, resumed_step, _run_id, _sweep) -> TensorBoardLogger:
    # purge_step: TensorBoard drops what an interrupted run logged after its checkpoint; no step twice
    purge = {"purge_step": resumed_step} if resumed_step else {}
    return TensorBoardRunLogger(
        save_dir=str(run_dir), name=settings.subdir, version="", default_hp_metric=False, **purge
    )


class ResumingCSVLogger(CSVLogger):
    """Lightning's CSVLogger deletes an existing metrics.csv when it opens the folder again. A resumed run keeps
    the rows logged before its checkpoint's step (as TensorBoard's purge_step does) and appends to them."""

    def __init__(self, *args, resumed_step: int | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        path = Path(self.log_dir) / "metrics.csv"
        kept = kept_rows(path, resumed_step) if resumed_step else []
        with warnings.catch_warnings():  # "exists and is not empty": the rows before the checkpoint come back next
            warnings.filterwarnings("ignore", message=".*exists and is not empty")
            writer = self.experiment
        for row in kept:
            writer.log_metrics(row, step=row.pop("step"))


def kept_rows(path: Path, before_step: int) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="") as file:
        rows = [{key: value for key, value in row.items() if value != ""} for row in csv.DictReader(file)]
    numbers = [{key: number(value) for key, value in row.items()} for row in rows]
    return [row for row in numbers if row["step"] < before_step]


def number(text: str) -> int | float:
    """A value as the logger wrote it: steps and epochs are integers, the rest floats."""
    return int(text) if text.lstrip("-").isdigit() else float(text)


def build_csv(settings, run_dir: Path, resumed_step, _run_id, _sweep) -> CSVLogger:
    return ResumingCSVLogger(
        save_dir=str(run_dir),
        name=settings.subdir,
        version="",
        flush_logs_every_n_steps=settings.flush_logs_every_n_steps,
        resumed_step=resumed_step,
    )


class BufferedMLFlowLogger(MLFlowLogger):
    """Lightning's MLFlowLogger writes every log_metrics call as its own database transaction: at a log every
    50 steps, 20% more epoch time for an MLP at batch 64 on a CPU. This one keeps the points and writes them
    in one batch when Lightning saves its loggers (after each validation), at each checkpoint and at the end."""

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.pending: list = []

    @rank_zero_only
    def log_metrics(self, metrics, step: int | None = None) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        self.pending += [Metric(key=k, value=float(v), timestamp=stamp, step=step or 0) for k, v in metrics.items()]

    @rank_zero_only
    def save(self) -> None:
        pending, self.pending = self.pending, []
        for start in range(0, len(pending), 1000):  # MLflow takes at most 1000 metrics a batch
            self.experiment.log_batch(run_id=self.run_id, metrics=pending[start : start + 1000])

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        self.save()
        super().finalize(status)


# The MLflow experiment of every run outside a sweep (a sweep's is named after it); its files go to
# mlflow-artifacts/runs/, as the runs' own folders are outputs/runs/.
SINGLE_RUNS = "single runs"


def build_mlflow(settings, run_dir: Path, _resumed_step, run_id: str | None, sweep: SweepTrackers | None) -> Logger:
    uri = absolute_tracking_uri(str(settings.tracking_uri))
    tags = {str(key): str(value) for key, value in (settings.tags or {}).items()}
    tags["run_dir"] = str(run_dir.resolve())
    parent = sweep.mlflow_parent(uri) if sweep is not None else None
    if parent is not None:
        tags["mlflow.parentRunId"] = parent
    experiment = settings.experiment_name or (sweep.name if sweep is not None else SINGLE_RUNS)
    folder = sweep.name if sweep is not None else "runs"
    return BufferedMLFlowLogger(
        experiment_name=experiment,
        run_name=run_dir.name,
        tracking_uri=uri,
        tags=tags,
        artifact_location=settings.artifact_location or default_artifacts(uri, folder),
        run_id=run_id,
    )


def build_wandb(settings, run_dir: Path, _resumed_step, run_id: str | None, sweep: SweepTrackers | None) -> Logger:
    from lightning.pytorch.loggers import WandbLogger

    run_id = run_id or uuid.uuid4().hex[:12]
    group = settings.group or (sweep.name if sweep is not None else None)
    started = start_wandb_run(settings, run_dir, run_id, group) if rank_zero_only.rank == 0 else None
    return WandbLogger(experiment=started, name=run_dir.name, save_dir=str(run_dir), id=run_id)


def start_wandb_run(settings, run_dir: Path, run_id: str, group: str | None):
    """Its own W&B run, even beside others in the process (a fused set's trials): Lightning's logger would
    reuse the process's current run."""
    import wandb

    run = wandb.init(
        project=settings.project,
        entity=settings.entity,
        group=group,
        tags=list(settings.tags or []),
        name=run_dir.name,
        id=run_id,
        dir=str(run_dir),
        mode=settings.mode,
        resume="allow",
        reinit="create_new",
        settings=wandb.Settings(silent=True, console="off"),
    )
    run.define_metric("trainer/global_step")
    run.define_metric("*", step_metric="trainer/global_step", step_sync=True)
    return run


BUILDERS = {"tensorboard": build_tensorboard, "csv": build_csv, "mlflow": build_mlflow, "wandb": build_wandb}


def read_run_ids(run_dir: Path) -> dict:
    path = run_dir / RUN_IDS
    return json.loads(path.read_text()) if path.is_file() else {}


@rank_zero_only
def remember_run_ids(run_dir: Path, loggers: list[Logger]) -> None:
    """The tracker runs' ids, so that resuming this run in place continues them."""
    from lightning.pytorch.loggers import WandbLogger

    ids = {}
    for logger in loggers:
        if isinstance(logger, MLFlowLogger):
            ids["mlflow"] = logger.run_id  # creates the run: an unwritable store fails here, before training
        elif isinstance(logger, WandbLogger):
            ids["wandb"] = logger.version
    if ids:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / RUN_IDS).write_text(json.dumps(ids, indent=2) + "\n")
