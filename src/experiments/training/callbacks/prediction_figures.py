"""Pictures of the test split (TensorBoard images and PNGs): sample predictions, the most confident mistakes,
and the confusion matrix."""

import lightning as L
import torch
from torchmetrics.classification import MulticlassConfusionMatrix

from experiments.records.figures import plt, publish, tile_figure

GRID = 32  # sample images shown, in a 4 x 8 grid
MISTAKES = 16  # the most confidently misclassified test images, in a 4 x 4 grid


class PredictionFigures(L.Callback):
    """Logs `test/predictions` (test images spread over the split, predicted vs true, misses in red),
    `test/confident_mistakes` and `test/confusion_matrix` after testing. It draws the pixels the module
    was given and what its test_step returned: no second forward pass, and no undoing of the preprocessing.

    Under DDP it runs on every rank: the confusion matrix and the mistakes are gathered from all of them
    (collectives every rank must join), and rank zero draws. The sample grid is rank zero's own shard."""

    def on_test_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.confusion = MulticlassConfusionMatrix(module.hparams.num_classes).to(module.device)
        self.samples: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.mistakes: tuple[torch.Tensor, ...] | None = None  # (confidence, images, predictions, labels)
        # An even share from every batch, so the grid spans the split even when it is stored by class.
        batches = max(1, int(sum(trainer.num_test_batches)))
        self.per_batch = -(-GRID // batches)

    def on_test_batch_end(self, trainer, module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        images, labels = batch
        predictions, confidence = outputs["predictions"], outputs["confidence"]  # ClassifierModule.test_step's
        self.confusion.update(predictions, labels)
        if sum(len(chunk[0]) for chunk in self.samples) < GRID:
            take = self.per_batch
            self.samples.append((images[:take].cpu(), predictions[:take].cpu(), labels[:take].cpu()))
        wrong = predictions != labels
        if wrong.any():
            found = (confidence[wrong], images[wrong], predictions[wrong], labels[wrong])
            if self.mistakes is not None:  # keep the MISTAKES most confident seen so far
                pairs = zip(self.mistakes, found, strict=True)
                found = tuple(torch.cat([kept, new.to(kept.device)]) for kept, new in pairs)
            top = found[0].topk(min(MISTAKES, len(found[0]))).indices
            self.mistakes = tuple(part[top] for part in found)

    def on_test_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        counts = self.confusion.compute()  # synced across ranks: every rank calls it
        mistakes = self._gathered_mistakes(trainer, module)
        if not trainer.is_global_zero or not self.samples:
            return
        names = module.hparams.data["class_names"]
        run_dir, step = trainer.default_root_dir, trainer.global_step
        publish(self._prediction_grid(names), "test/predictions", trainer.loggers, run_dir, step)
        if mistakes is not None:
            publish(mistake_grid(*mistakes, names), "test/confident_mistakes", trainer.loggers, run_dir, step)
        publish(self._confusion_figure(counts, names), "test/confusion_matrix", trainer.loggers, run_dir, step)

    def _gathered_mistakes(self, trainer: L.Trainer, module: L.LightningModule) -> tuple[torch.Tensor, ...] | None:
        """The MISTAKES most confident mistakes over every rank's shard, on the CPU (None: no mistakes)."""
        if trainer.world_size == 1:
            return None if self.mistakes is None else tuple(part.cpu() for part in self.mistakes)
        # Every rank sends MISTAKES rows, padded with confidence -1 where it has fewer, so the shapes agree.
        padded = (
            torch.full((MISTAKES,), -1.0),
            torch.zeros((MISTAKES, *module.hparams.input_shape)),  # unit-scaled floats, whatever the data path
            torch.zeros(MISTAKES, dtype=torch.long),
            torch.zeros(MISTAKES, dtype=torch.long),
        )
        padded = tuple(part.to(module.device) for part in padded)
        if self.mistakes is not None:
            kept = len(self.mistakes[0])
            confidence, images, predictions, labels = self.mistakes
            for target, part in zip(padded, (confidence, _unit_scale(images), predictions, labels), strict=True):
                target[:kept] = part.to(target.dtype)
        gathered = [module.all_gather(part).flatten(0, 1).cpu() for part in padded]
        real = gathered[0] >= 0
        if not real.any():
            return None
        found = tuple(part[real] for part in gathered)
        top = found[0].topk(min(MISTAKES, len(found[0]))).indices
        return tuple(part[top] for part in found)

    def _confusion_figure(self, counts: torch.Tensor, names: list[str]) -> plt.Figure:
        few = len(names) <= 20  # counts in the cells and class names on the axes only where they fit
        figure, ax = self.confusion.plot(counts, add_text=few, labels=names if few else None)
        figure.set_size_inches(8, 8)
        if not few:  # CIFAR-100: a tick every 10 classes instead of 100 overlapping numbers
            ticks = list(range(0, len(names), 10))
            ax.set_xticks(ticks, [str(t) for t in ticks], rotation=0)
            ax.set_yticks(ticks, [str(t) for t in ticks], rotation=0)
        ax.set_title("confusion matrix on the test split (rows: true class, columns: predicted)")
        return figure

    def _prediction_grid(self, names: list[str]) -> plt.Figure:
        images, predictions, labels = (torch.cat(parts)[:GRID] for parts in zip(*self.samples, strict=True))
        return tile_figure(
            _unit_scale(images),
            columns=8,
            title="test images: predicted / true (misses in red)",
            labels=[f"{names[p][:9]} / {names[t][:9]}" for p, t in zip(predictions, labels, strict=True)],
            colors=["black" if p == t else "red" for p, t in zip(predictions, labels, strict=True)],
            inches=1.5,
        )


def mistake_grid(confidence, images, predictions, labels, names: list[str]) -> plt.Figure:
    """The most confident wrong answers on the test split, most confident first."""
    return tile_figure(
        _unit_scale(images),
        columns=4,
        title="the most confident mistakes on the test split: true class, what the model said, its probability",
        labels=[
            f"true {names[t][:10]}\nsaid {names[p][:10]} ({c:.0%})"
            for c, p, t in zip(confidence, predictions, labels, strict=True)
        ],
        colors=["red"] * len(labels),
        inches=2.0,
    )


def _unit_scale(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels (the tensor path) or floats on [0, 1] (the per-sample path), as floats on [0, 1]."""
    return images.float() / 255.0 if images.dtype == torch.uint8 else images.float().clamp(0, 1)
