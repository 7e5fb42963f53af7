"""Pictures of the test split in TensorBoard: sample predictions and the confusion matrix."""

import lightning as L
import matplotlib

matplotlib.use("Agg")  # headless: figures go to TensorBoard, never to a window

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torchmetrics.classification import MulticlassConfusionMatrix  # noqa: E402

GRID = 32  # sample images shown, in a 4 x 8 grid


class PredictionFigures(L.Callback):
    """Logs `test/predictions` (test images spread over the split, predicted vs true, misses in red) and
    `test/confusion_matrix` after testing. It draws the pixels the module was given and the predictions
    its test_step returned: no second forward pass, and no undoing of the preprocessing."""

    def on_test_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.confusion = MulticlassConfusionMatrix(module.hparams.num_classes).to(module.device)
        self.samples: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        # An even share from every batch, so the grid spans the split even when it is stored by class.
        batches = max(1, int(sum(trainer.num_test_batches)))
        self.per_batch = -(-GRID // batches)

    def on_test_batch_end(self, trainer, module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        images, labels = batch
        predictions = outputs["predictions"]  # what ClassifierModule.test_step returns
        self.confusion.update(predictions, labels)
        if sum(len(chunk[0]) for chunk in self.samples) < GRID:
            take = self.per_batch
            self.samples.append((images[:take].cpu(), predictions[:take].cpu(), labels[:take].cpu()))

    def on_test_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        writer = getattr(trainer.logger, "experiment", None)
        if writer is None or not hasattr(writer, "add_figure") or not self.samples:
            return
        names = module.hparams.data["class_names"]
        writer.add_figure("test/predictions", self._prediction_grid(module, names), trainer.global_step)
        figure, _ = self.confusion.plot(add_text=len(names) <= 20, labels=names if len(names) <= 20 else None)
        figure.set_size_inches(8, 8)
        writer.add_figure("test/confusion_matrix", figure, trainer.global_step)

    def _prediction_grid(self, module: L.LightningModule, names: list[str]) -> plt.Figure:
        images, predictions, labels = (torch.cat(parts)[:GRID] for parts in zip(*self.samples, strict=True))
        pictures = images.float() / 255.0 if images.dtype == torch.uint8 else images  # ToTensor's are on [0, 1]
        figure, axes = plt.subplots(4, 8, figsize=(12, 7))
        for ax, image, predicted, true in zip(axes.flat, pictures, predictions, labels, strict=False):
            pixels = image.permute(1, 2, 0).squeeze(-1).numpy()
            ax.imshow(pixels, cmap="gray" if pixels.ndim == 2 else None)
            ax.set_title(
                f"{names[predicted][:10]} / {names[true][:10]}",
                fontsize=8,
                color="black" if predicted == true else "red",
            )
        for ax in axes.flat:
            ax.axis("off")
        figure.suptitle("test images: predicted / true (misses in red)")
        figure.tight_layout()
        return figure
