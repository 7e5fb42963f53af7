"""What each logger does with each kind of thing a run shows. Scalars go through every Lightning logger's own
log_metrics; the rest differs by tracker: an image is a TensorBoard image, an MLflow artifact, a W&B image
and, for CSV, the PNG the run writes anyway; histograms exist in TensorBoard and W&B only."""

import shutil
from pathlib import Path

import numpy as np
from lightning.pytorch.loggers import CSVLogger, Logger, MLFlowLogger, TensorBoardLogger, WandbLogger

BINS = 64  # fixed bins: TensorBoard's default ("tensorflow" bucketing) takes twice as long on 400k weights
RUN_FILES = (".hydra/config.yaml", "metrics.json")  # copied to the trackers that keep files


class Outlet:
    """A logger that takes scalars and hyperparameters only; the trackers below add what they can show."""

    def __init__(self, logger: Logger) -> None:
        self.logger = logger

    def image(self, tag: str, pixels: np.ndarray, path: Path, step: int) -> None:
        pass

    def histograms(self, tensors: dict, epoch: int, step: int) -> None:
        pass

    def tags(self, tags: dict[str, str]) -> None:
        """What made the run (records/provenance.py), where the tracker keeps tags."""

    def final(self, params: dict, finals: dict, checks: list[dict], run_dir: Path, swept: set[str]) -> None:
        self.logger.log_hyperparams(params)
        self.logger.log_metrics(finals)
        self.logger.finalize("success")

    def flush(self) -> None:
        pass


class TensorBoardOutlet(Outlet):
    def image(self, tag, pixels, path, step) -> None:
        self.logger.experiment.add_image(tag, pixels, step, dataformats="HWC")

    def histograms(self, tensors, epoch, step) -> None:
        for tag, values in tensors.items():
            self.logger.experiment.add_histogram(tag, values, epoch, bins=BINS)

    def tags(self, tags) -> None:
        if tags:
            self.logger.experiment.add_text(
                "provenance", "\n".join(f"- {key}: `{value}`" for key, value in tags.items())
            )

    def final(self, params, finals, checks, run_dir, swept) -> None:
        """The HParams row. TensorBoard shows five columns at first, those its experiment marks as differing
        first, then by name; it reads the experiment of one run it finds. So every trial of a sweep marks the
        sweep's swept keys, and they are the columns shown."""
        from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData
        from torch.utils.tensorboard.summary import hparams

        self.logger.log_metrics(finals)
        experiment, session_start, session_end = hparams(params, finals)
        content = experiment.value[0].metadata.plugin_data
        data = HParamsPluginData.FromString(content.content)
        for info in data.experiment.hparam_infos:
            info.differs = info.name in swept
        content.content = data.SerializeToString()
        writer = self.logger.experiment.file_writer  # the SummaryWriter's event file, opened by the first scalar
        for summary in (experiment, session_start, session_end):
            writer.add_summary(summary)
        if checks:
            self.logger.experiment.add_text("checks", markdown_table(checks))
        self.logger.finalize("success")

    def flush(self) -> None:
        self.logger.experiment.flush()


class CSVOutlet(Outlet):
    """hparams.yaml and metrics.csv; the pictures are the run's PNG files, the checks its metrics.json."""

    def final(self, params, finals, checks, run_dir, swept) -> None:
        super().final(params, finals, checks, run_dir, swept)
        self.logger.save()

    def flush(self) -> None:
        self.logger.save()


class MLflowOutlet(Outlet):
    """Params and metrics in the store; pictures, the checks and the run's config as the run's artifacts."""

    def image(self, tag, pixels, path, step) -> None:
        self.logger.experiment.log_artifact(self.logger.run_id, str(path), "figures")

    def tags(self, tags) -> None:
        from mlflow.entities import RunTag

        self.logger.experiment.log_batch(self.logger.run_id, tags=[RunTag(key, value) for key, value in tags.items()])

    def final(self, params, finals, checks, run_dir, swept) -> None:
        self.logger.log_hyperparams(params)
        self.logger.log_metrics(finals)
        client, run_id = self.logger.experiment, self.logger.run_id
        if checks:
            client.log_text(run_id, markdown_table(checks), "checks.md")
        for name in RUN_FILES:
            if (run_dir / name).is_file():
                client.log_artifact(run_id, str(run_dir / name))
        self.logger.finalize("success")

    def flush(self) -> None:
        self.logger.save()  # the buffered points (tracking/build.py)


class WandbOutlet(Outlet):
    """Config and summary, images and histograms in the run's history, the checks as a table."""

    def image(self, tag, pixels, path, step) -> None:
        self.logger.log_image(key=tag, images=[str(path)], step=step)

    def tags(self, tags) -> None:
        """W&B tags are short labels (64 characters): `commit=...`, `torch=...`; the whole record, the command
        included, goes in the run's config as well."""
        run = self.logger.experiment
        labels = [
            f"{key.rsplit('.', 1)[-1]}={value}"[:64] for key, value in tags.items() if key != "provenance.command"
        ]
        run.tags = (*(run.tags or ()), *labels)
        run.config.update({key: value for key, value in tags.items()}, allow_val_change=True)

    def histograms(self, tensors, epoch, step) -> None:
        import wandb

        counts = {tag: np.histogram(values.numpy(), bins=BINS) for tag, values in tensors.items()}
        shown = {tag: wandb.Histogram(np_histogram=pair) for tag, pair in counts.items()}
        self.logger.log_metrics(shown, step=step)

    def final(self, params, finals, checks, run_dir, swept) -> None:
        self.logger.log_hyperparams(params)
        run = self.logger.experiment
        run.summary.update(finals)
        if checks:
            rows = [[row["label"], "PASS" if row["passed"] else "FAIL", row["measured"]] for row in checks]
            self.logger.log_table(key="checks", columns=["check", "result", "measured"], data=rows)
        for name in RUN_FILES:  # the run's files folder is uploaded with it (wandb.save would link, and warn)
            if (run_dir / name).is_file():
                (Path(run.dir) / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(run_dir / name, Path(run.dir) / name)
        run.finish()  # the offline run's files are complete from here


OUTLETS = {
    TensorBoardLogger: TensorBoardOutlet,
    CSVLogger: CSVOutlet,
    MLFlowLogger: MLflowOutlet,
    WandbLogger: WandbOutlet,
}


def outlet(logger: Logger) -> Outlet:
    kind = next((kind for kind in OUTLETS if isinstance(logger, kind)), None)
    return OUTLETS[kind](logger) if kind is not None else Outlet(logger)


def markdown_table(checks: list[dict]) -> str:
    lines = ["| check | result | measured |", "|---|---|---|"]
    lines += [f"| {row['label']} | {'PASS' if row['passed'] else 'FAIL'} | {row['measured']} |" for row in checks]
    return "\n".join(lines)
