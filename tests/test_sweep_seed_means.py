"""A grid that sweeps `seed` beside other keys: the summary ranks each setting by its mean over the seeds."""

import csv
import re
import statistics

import pytest
from conftest import train

QUICK = ["trainer.max_epochs=1", "trainer.limit_train_batches=4", "trainer.limit_val_batches=2", "test=false"]


@pytest.mark.slow
def test_a_grid_over_seeds_ranks_each_setting_by_its_mean_best_val_acc(tmp_path):
    result = train(tmp_path, "-m", "model=cnn", "model.conv_channels=[2,4],[4,8]", "seed=0,1", *QUICK)
    assert result.returncode == 0, result.stderr[-2000:]
    [sweep_dir] = (tmp_path / "outputs" / "sweeps").iterdir()
    with open(sweep_dir / "summary.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4 and {row["seed"] for row in rows} == {"0", "1"}
    expected = {
        widths: statistics.mean(float(row["best_val_acc"]) for row in rows if row["model.conv_channels"] == widths)
        for widths in ("[2,4]", "[4,8]")
    }
    text = (sweep_dir / "summary.md").read_text()
    section = text[text.index("## Mean over seeds") :]
    shown = re.findall(r"^\| (\[\d,\d\]) \| 2 of 2 \| ([0-9.]+) \| ([0-9.]+) \|$", section, flags=re.M)
    assert [widths for widths, _, _ in shown] == sorted(expected, key=expected.get, reverse=True)  # best mean first
    for widths, mean, _ in shown:
        assert abs(float(mean) - expected[widths]) < 1e-4
    assert "mean over seeds, best first" in result.stdout


@pytest.mark.slow
def test_a_grid_without_seeds_has_no_mean_section(tmp_path):
    result = train(tmp_path, "-m", "optimizer.lr=0.001,0.003", *QUICK)
    assert result.returncode == 0, result.stderr[-2000:]
    [sweep_dir] = (tmp_path / "outputs" / "sweeps").iterdir()
    assert "Mean over seeds" not in (sweep_dir / "summary.md").read_text()
    assert "mean over seeds" not in result.stdout
