"""The per-step shortcuts keep their results: epoch metrics, batches and profiling are what they would be
without them (bench/epoch.py measures the time they save)."""

import logging

import lightning as L
import pytest
import torch
from conftest import SMOKE, run_here

from experiments.data.in_memory import TensorBatches
from experiments.training.lean_profiler import LeanPassThroughProfiler
from experiments.training.module import ClassifierModule


class Loader:
    """Fixed batches; a plain list would be read as one dataloader per batch."""

    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self):
        return len(self.batches)


def test_epoch_metrics_from_kept_step_outputs_equal_a_direct_computation():
    torch.manual_seed(0)
    module = ClassifierModule(
        model={"_target_": "experiments.models.mlp.MLP", "hidden_sizes": [8]},
        optimizer={"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1},
        input_shape=[1, 4, 4],
        num_classes=3,
        data={"name": "t", "class_names": ["a", "b", "c"], "preprocess": "none"},
    )
    generator = torch.Generator().manual_seed(1)
    batches = [
        (torch.randn(n, 1, 4, 4, generator=generator), torch.randint(0, 3, (n,), generator=generator))
        for n in (7, 5, 9)
    ]
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    [logged] = trainer.validate(module, dataloaders=Loader(batches), verbose=False)
    with torch.no_grad():
        logits = [module(images) for images, _ in batches]
    labels = torch.cat([labels for _, labels in batches])
    accuracy = (torch.cat(logits).argmax(dim=1) == labels).float().mean()
    # the mean loss weighs each batch by its size, as a loss over all 21 samples would
    loss = torch.nn.functional.cross_entropy(torch.cat(logits), labels)
    assert logged["val/acc"] == pytest.approx(accuracy.item())
    assert logged["val/loss"] == pytest.approx(loss.item(), rel=1e-5)
    assert module._epoch_outputs["val"] == []  # handed over and cleared at the epoch's end


def test_progress_bar_shows_the_live_step_loss_from_the_step_outputs(tmp_path):
    from experiments.training.callbacks.divergence import DivergenceAbort
    from experiments.training.callbacks.progress import SteadyRichProgressBar

    torch.manual_seed(0)
    module = ClassifierModule(
        model={"_target_": "experiments.models.mlp.MLP", "hidden_sizes": [8]},
        optimizer={"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1},
        input_shape=[1, 4, 4],
        num_classes=3,
        data={"name": "t", "class_names": ["a", "b", "c"], "preprocess": "none"},
    )
    generator = torch.Generator().manual_seed(2)
    batches = [(torch.rand(6, 1, 4, 4, generator=generator), torch.randint(0, 3, (6,), generator=generator))] * 5
    bar, recorder = SteadyRichProgressBar(), DivergenceAbort(factor=1e9)  # the recorder keeps the last step loss
    trainer = L.Trainer(
        max_epochs=1, logger=False, callbacks=[bar, recorder], enable_checkpointing=False, default_root_dir=tmp_path
    )
    trainer.fit(module, train_dataloaders=Loader(batches))
    # the epoch's last batch always updates the bar, so it shows exactly the last step's loss
    assert bar.get_metrics(trainer, module)["train/loss"] == pytest.approx(recorder.last_loss)


def test_tensor_batches_take_the_shuffled_rows():
    images, labels = torch.arange(10 * 4, dtype=torch.uint8).view(10, 1, 2, 2), torch.arange(10)
    batches = list(TensorBatches((images, labels), batch_size=4, generator=torch.Generator().manual_seed(3)))
    order = torch.randperm(10, generator=torch.Generator().manual_seed(3))
    assert [len(y) for _, y in batches] == [4, 4, 2]
    assert torch.equal(torch.cat([y for _, y in batches]), order)
    assert torch.equal(torch.cat([x for x, _ in batches]), images[order])


def test_lean_profiler_is_a_reusable_no_op_and_a_real_profiler_is_one_override_away(tmp_path, caplog, capsys):
    profiler = LeanPassThroughProfiler()
    with profiler.profile("outer"), profiler.profile("inner"):  # Lightning nests hook calls
        pass
    assert profiler.profile("a") is profiler.profile("b")
    caplog.set_level(logging.INFO)  # Lightning logs the report at INFO
    run_here(tmp_path, "+trainer.profiler=simple", "test=false", *SMOKE)
    assert "FIT Profiler Report" in caplog.text + capsys.readouterr().out
