"""The loops bench/epoch.py times. All of them train on the training split that the project's datamodule
carves from the same files, so they see the same images:
- note: the note's loop over the note's per-sample path (data.pipeline=torchvision: PIL image -> ToTensor);
- raw: one in-memory float tensor, sliced by a permutation; the floor for this model;
- lightning: the same model and data in a bare LightningModule and Trainer (no logger, callbacks,
  checkpoints or progress bar): Lightning's own per-step cost, which no project setting removes;
- framework: `python train.py ...` in this process: Hydra composes conf/ with the overrides, then the
  same `experiments.run.run(cfg, run_dir)` that train.py calls builds the datamodule, ClassifierModule,
  Trainer, default callbacks, logger and progress bar. Its EpochTimer times the epochs;
- framework_no_ratio: the same with watch.update_ratio_every=null, to price the update/weight ratio;
- framework_csv, framework_mlflow: the same with logger=[csv] or logger=[mlflow] (a SQLite store) instead of
  the default TensorBoard, to price each tracker.
"""

import tempfile
import time
from pathlib import Path

LR = 0.01
REPO = Path(__file__).resolve().parents[1]


def train_split(dataset: str, root: str, batch: int, pipeline: str = "tensor"):
    from experiments.data.torchvision_sets import TorchvisionDataModule

    datamodule = TorchvisionDataModule(
        dataset, root=root, download=False, verify_checksums=False, batch_size=batch, pipeline=pipeline
    )
    return datamodule.load()


def build_model(name: str, datamodule):
    import torch

    from experiments.models.cnn import LeNet
    from experiments.models.mlp import MLP

    torch.manual_seed(0)
    shape, classes = datamodule.input_shape, datamodule.num_classes
    return MLP(shape, classes) if name == "mlp" else LeNet(shape, classes)


def note_loop(model_name: str, dataset: str, root: str, batch: int, epochs: int) -> list[float]:
    """A DataLoader over a dataset that turns each uint8 image into a PIL image, then ToTensor, as the note does."""
    import torch

    datamodule = train_split(dataset, root, batch, pipeline="torchvision")
    datamodule.setup()
    model = build_model(model_name, datamodule)
    optimizer, loss_fn = torch.optim.SGD(model.parameters(), lr=LR), torch.nn.CrossEntropyLoss()
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        for step, (images, labels) in enumerate(datamodule.train_dataloader()):
            loss = loss_fn(model(images), labels)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            if step % 100 == 0:
                loss.item()  # the note prints the loss every 100 batches
        seconds.append(time.perf_counter() - start)
    return seconds


class ShuffledBatches:
    """The training split preprocessed once, up front, then cut into batches by a fresh permutation each
    epoch (index_select: the fastest gather, as the framework uses). Shared by the raw and bare-Lightning
    loops, so they do the same data work."""

    def __init__(self, dataset: str, root: str, batch: int):
        from experiments.data.preprocessing import InputTransform

        self.datamodule = train_split(dataset, root, batch)
        images, self.labels = self.datamodule.splits["train"]
        self.images = InputTransform.fit("standardize", images)(images)
        self.batch = batch

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch)

    def __iter__(self):
        import torch

        order = torch.randperm(len(self.labels))
        for first in range(0, len(self.labels), self.batch):
            index = order[first : first + self.batch]
            yield self.images.index_select(0, index), self.labels.index_select(0, index)


def raw_loop(model_name: str, dataset: str, root: str, batch: int, epochs: int) -> list[float]:
    import torch

    batches = ShuffledBatches(dataset, root, batch)
    model = build_model(model_name, batches.datamodule)
    optimizer, loss_fn = torch.optim.SGD(model.parameters(), lr=LR), torch.nn.CrossEntropyLoss()
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        for images, labels in batches:
            loss = loss_fn(model(images), labels)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        seconds.append(time.perf_counter() - start)
    return seconds


def lightning_loop(model_name: str, dataset: str, root: str, batch: int, epochs: int) -> list[float]:
    """The raw loop's work inside Lightning's Trainer, with everything optional switched off."""
    import lightning as L
    import torch

    batches = ShuffledBatches(dataset, root, batch)
    model = build_model(model_name, batches.datamodule)

    class Bare(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net, self.loss_fn = model, torch.nn.CrossEntropyLoss()

        def training_step(self, batch, batch_idx):
            return self.loss_fn(self.net(batch[0]), batch[1])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=LR)

    seconds: list[float] = []

    class Timer(L.Callback):
        def on_train_epoch_start(self, trainer, module):
            self.start = time.perf_counter()

        def on_train_epoch_end(self, trainer, module):
            seconds.append(time.perf_counter() - self.start)

    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Timer()],
    )
    trainer.fit(Bare(), train_dataloaders=batches)
    return seconds


def framework_overrides(model_name: str, dataset: str, root: str, batch: int, epochs: int) -> list[str]:
    return [
        f"model={model_name}",
        f"data={dataset}",
        f"data.root={root}",
        "data.download=false",
        "data.verify_checksums=false",
        f"data.batch_size={batch}",
        "optimizer=sgd",
        f"optimizer.lr={LR}",
        f"trainer.max_epochs={epochs}",
        "test=false",
    ]


def framework_loop(model_name: str, dataset: str, root: str, batch: int, epochs: int, extra=()) -> list[float]:
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    from experiments.run import run

    overrides = [*framework_overrides(model_name, dataset, root, batch, epochs), *extra]
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    with tempfile.TemporaryDirectory() as run_dir:
        with open_dict(cfg):
            cfg.logger.get("mlflow", {})["tracking_uri"] = f"sqlite:///{run_dir}/mlflow.db"  # no store left behind
        return run(cfg, run_dir)["train_epoch_seconds"]


def matmul_gflops() -> float:
    """fp32 2048 x 2048 matmul throughput: the machine's ceiling for dense work, measured now."""
    import torch

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(10):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * 2048**3 / best / 1e9


def framework_without_update_ratio(model_name: str, dataset: str, root: str, batch: int, epochs: int) -> list[float]:
    """The framework with its one per-step diagnostic off: what the update/weight ratio costs."""
    return framework_loop(model_name, dataset, root, batch, epochs, extra=["watch.update_ratio_every=null"])


def framework_with_logger(logger: str):
    def loop(model_name: str, dataset: str, root: str, batch: int, epochs: int) -> list[float]:
        return framework_loop(model_name, dataset, root, batch, epochs, extra=[f"logger=[{logger}]"])

    return loop


LOOPS = {
    "note": note_loop,
    "raw": raw_loop,
    "lightning": lightning_loop,
    "framework": framework_loop,
    "framework_no_ratio": framework_without_update_ratio,
    "framework_csv": framework_with_logger("csv"),
    "framework_mlflow": framework_with_logger("mlflow"),
}
