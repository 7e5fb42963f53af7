"""A sweep in the trackers: for MLflow one experiment named after the sweep, with a parent run that the trials'
runs hang under and that receives the summary, the heatmap and best.yaml; for W&B one group, with a summary run
of its own. The sweeper opens them before the first trial (the SQLite store is created then, by one process:
parallel trials only ever write rows to it) and closes them when the sweep ends. Their ids are kept in
SWEEP_DIR/trackers.json, so a rerun of the sweep continues the same parent run."""

import csv
import json
import shutil
from pathlib import Path

from omegaconf import DictConfig

from experiments.records.metrics import PLAN

RUN_IDS = "trackers.json"  # a run's or a sweep's tracker ids, in its folder
SUMMARY_FILES = ("summary.csv", "summary.md", "heatmap.png", "best.yaml", PLAN)
SUMMARY_FILES += ("optimization_history.png", "param_importances.png", "contour.png")  # sweep=optuna's


def absolute_tracking_uri(uri: str) -> str:
    """A SQLite file relative to where the command started, made absolute (a trial or a SLURM job may start
    elsewhere), with its folder created."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return uri
    path = Path(uri.removeprefix(prefix)).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return prefix + str(path)


def default_artifacts(uri: str, experiment: str) -> str | None:
    """Beside the SQLite file: its folder's mlflow-artifacts/EXPERIMENT/. A server keeps its own."""
    if not uri.startswith("sqlite:///"):
        return None
    return str(Path(uri.removeprefix("sqlite:///")).parent / "mlflow-artifacts" / experiment)


class SweepTrackers:
    """`chosen`: the sweep's `logger` config (the sweeper's; a trial reading its sweep's ids needs none)."""

    def __init__(self, sweep_dir: Path, name: str, chosen: DictConfig | None = None) -> None:
        self.dir, self.name, self.chosen = Path(sweep_dir), name, chosen or {}
        path = self.dir / RUN_IDS
        self.ids = json.loads(path.read_text()) if path.is_file() else {}

    @classmethod
    def of_trial(cls, run_dir: Path) -> "SweepTrackers | None":
        plan = Path(run_dir).parent / PLAN
        if not plan.is_file():
            return None
        return cls(plan.parent, json.loads(plan.read_text())["name"])

    def mlflow_parent(self, uri: str) -> str | None:
        opened = self.ids.get("mlflow") or {}
        return opened.get("parent_run_id") if opened.get("tracking_uri") == uri else None

    def open(self) -> None:
        """Before the first trial: the MLflow experiment and parent run (reused by a rerun of the sweep)."""
        chosen = self.chosen
        if "mlflow" in chosen:
            settings = chosen.mlflow
            uri = absolute_tracking_uri(str(settings.tracking_uri))
            if self.mlflow_parent(uri) is None:
                self.ids["mlflow"] = self._start_mlflow_parent(settings, uri)
                self._save()

    def _start_mlflow_parent(self, settings: DictConfig, uri: str) -> dict:
        from mlflow.tracking import MlflowClient
        from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME

        client = MlflowClient(uri)  # the first use of a new SQLite store creates its tables
        name = settings.experiment_name or self.name
        found = client.get_experiment_by_name(name)
        if found is not None and found.lifecycle_stage != "deleted":
            experiment_id = found.experiment_id
        else:
            experiment_id = client.create_experiment(
                name, artifact_location=settings.artifact_location or default_artifacts(uri, name)
            )
        tags = {MLFLOW_RUN_NAME: self.name, "sweep_dir": str(self.dir.resolve())}
        run = client.create_run(experiment_id, tags=tags)
        return {"tracking_uri": uri, "experiment_id": experiment_id, "parent_run_id": run.info.run_id}

    def close(self, interrupted: bool) -> None:
        """When the sweep ends (or stops): the summary files on the parent run and in the W&B group."""
        chosen = self.chosen
        files = [self.dir / name for name in SUMMARY_FILES if (self.dir / name).is_file()]
        opened = self.ids.get("mlflow")
        if "mlflow" in chosen and opened:
            from mlflow.tracking import MlflowClient

            client = MlflowClient(opened["tracking_uri"])
            for path in files:
                client.log_artifact(opened["parent_run_id"], str(path))
            client.set_terminated(opened["parent_run_id"], "KILLED" if interrupted else "FINISHED")
        if "wandb" in chosen and chosen.wandb.mode != "disabled":
            self._wandb_summary_run(chosen.wandb, files)

    def _wandb_summary_run(self, settings: DictConfig, files: list[Path]) -> None:
        """The group's own summary run: the trials' table, the heatmap and best.yaml."""
        import wandb

        run = wandb.init(
            project=settings.project,
            entity=settings.entity,
            group=settings.group or self.name,
            job_type="sweep-summary",
            name=f"{self.name}-summary",
            dir=str(self.dir),
            mode=settings.mode,
            reinit="create_new",
            settings=wandb.Settings(silent=True, console="off"),
        )
        shown = {}
        summary = self.dir / "summary.csv"
        if summary.is_file():
            with summary.open(newline="") as handle:
                rows = list(csv.reader(handle))
            shown["sweep/summary"] = wandb.Table(columns=rows[0], data=rows[1:])
        if (self.dir / "heatmap.png").is_file():
            shown["sweep/heatmap"] = wandb.Image(str(self.dir / "heatmap.png"))
        run.log(shown)
        for path in files:  # the run's files folder is uploaded with it
            shutil.copyfile(path, Path(run.dir) / path.name)
        run.finish()

    def _save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / RUN_IDS).write_text(json.dumps(self.ids, indent=2) + "\n")
