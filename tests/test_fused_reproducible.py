"""What a fused sweep promises about its figures: run twice, a fused set gives identical figures (the same
steps in the same float order); against lone runs it drifts by float order, measured by bench/sweep.py on the
note's grid (docs/sweeps.md). And a summary that cannot rank its best cells names the tie."""

from conftest import compose_config

from experiments.fused.train import train_fused
from experiments.sweeps.summary import tied_with_best, ties_line

QUICK = ["trainer.max_epochs=2", "trainer.limit_train_batches=12", "watch.pictures=false", "model.hidden_sizes=[64]"]
CELLS = [["optimizer.lr=0.001", *QUICK], ["optimizer.lr=0.003", *QUICK]]
FIGURES = ("status", "best_val_acc", "best_epoch", "test_acc", "test_loss", "final_train_loss", "loss_curve")


def test_a_fused_set_trained_twice_gives_identical_figures(tmp_path):
    first, again = (
        train_fused([compose_config(*cell) for cell in CELLS], [tmp_path / run / str(n) for n in range(len(CELLS))])
        for run in ("first", "again")
    )
    for one, other in zip(first, again, strict=True):
        assert {key: one[key] for key in FIGURES} == {key: other[key] for key in FIGURES}
    assert first[0]["final_train_loss"] != first[1]["final_train_loss"]  # two trials, each its own figures


def row(trial: str, accuracy: float | None) -> dict:
    return {"trial": trial, "best_val_acc": accuracy, "val_images": 500}


def test_best_cells_within_one_validation_image_are_named_as_a_tie():
    rows = [row("a", 0.952), row("b", 0.952), row("c", 0.950), row("d", 0.9499), row("e", None)]
    assert [r["trial"] for r in tied_with_best(rows)] == ["b", "c"]  # 0.002 is one image of 500; 0.0021 is not
    line = ties_line(rows)
    assert line.startswith("Within one validation image (0.0020) of the best, a (0.9520): b (0.9520), c (0.9500).")
    assert tied_with_best([row("a", 0.96), row("b", 0.95)]) == [] and ties_line([row("a", 0.96)]) == ""
