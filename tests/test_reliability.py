"""What a user can trust with hours of work: checkpoints that survive crashes, a diverged run that keeps
only what it reached before it exploded, and runs that resume in place."""

import torch
from conftest import logged_scalars, run_here

from experiments.checkpoints import AtomicCheckpointIO

# SGD at lr 0.8 on the sample validates once (epoch 1 of 3) and explodes at step 23, in epoch 2.
EXPLODES_IN_EPOCH_2 = [
    "optimizer=sgd",
    "optimizer.lr=0.8",
    "trainer.max_epochs=3",
    "trainer.limit_train_batches=20",
    "trainer.limit_val_batches=2",
    "watch.update_ratio_every=null",
]


def test_a_diverged_run_keeps_what_it_reached_before_it_exploded(tmp_path):
    metrics = run_here(tmp_path, *EXPLODES_IN_EPOCH_2)
    assert metrics["status"] == "diverged" and metrics["diverged_step"] == 23
    assert metrics["test_acc"] is None  # a diverged run is not tested
    # validated once, before the explosion: the exploded weights were never validated
    assert len(logged_scalars(tmp_path)["val/acc"]) == 1
    assert metrics["best_val_acc"] == logged_scalars(tmp_path)["val/acc"][0]
    checkpoints = tmp_path / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == [
        f"best-epoch00-val_acc{metrics['best_val_acc']:.4f}.ckpt",
        "last.ckpt",
    ]
    last = torch.load(checkpoints / "last.ckpt", weights_only=True)
    assert last["epoch"] == 0 and last["global_step"] == 20  # the last good epoch, not step 23
    assert all(bool(torch.isfinite(value).all()) for value in last["state_dict"].values() if value.is_floating_point())


def test_a_run_that_explodes_before_validating_has_no_checkpoint_and_no_best(tmp_path):
    metrics = run_here(tmp_path, "optimizer.lr=20", "trainer.max_epochs=2")
    assert metrics["status"] == "diverged" and metrics["best_val_acc"] is None
    assert metrics["best_checkpoint"] is None and not (tmp_path / "checkpoints").exists()


def test_a_checkpoint_is_written_beside_its_name_and_renamed_over_it(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"step": 1}, path)
    seen = []
    real_save = torch.save

    def watching_save(obj, file):  # what is on disk while the new checkpoint is being written
        seen.append(sorted(p.name for p in path.parent.iterdir()))
        seen.append(torch.load(path, weights_only=True))
        real_save(obj, file)

    monkeypatch.setattr(torch, "save", watching_save)
    AtomicCheckpointIO().save_checkpoint({"step": 2}, path)
    assert seen == [["last.ckpt", "last.ckpt.partial"], {"step": 1}]  # the old one stays whole meanwhile
    assert torch.load(path, weights_only=True) == {"step": 2} and sorted(p.name for p in path.parent.iterdir()) == [
        "last.ckpt"
    ]
