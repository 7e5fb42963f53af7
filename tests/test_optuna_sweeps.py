"""`python train.py -m sweep=optuna` through the real command: trials that diverge, the summary and the
study's results, and a rerun that asks for one more trial."""

import re

import pytest
import yaml
from conftest import train
from documented import documented
from test_sweeps import QUICK, summary_rows, sweep_dirs


@pytest.mark.slow  # several runs through `python train.py`; in the full suite and CI
def test_optuna_preset_survives_diverged_trials(tmp_path):
    result = train(
        tmp_path,
        *documented("python train.py -m sweep=optuna"),
        "hydra.sweeper.n_trials=3",
        "optimizer=sgd",
        "optimizer.lr=tag(log, interval(5.0, 50.0))",
        *QUICK,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    [sweep_dir] = sweep_dirs(tmp_path)
    assert sweep_dir.name.startswith("optuna-")
    rows = summary_rows(sweep_dir)
    assert len(rows) == 3 and all(row["trial"][:4] in ("000_", "001_", "002_") for row in rows)
    assert "diverged" in {row["status"] for row in rows}
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert 0.0 <= results["best_value"] <= 1.0
    assert (sweep_dir / "heatmap.png").is_file()
    # Trials that diverged before validating have no best val acc: best.yaml names only a trial that has one
    if all(row["best_val_acc"] in ("", None) for row in rows):
        assert (
            not (sweep_dir / "best.yaml").exists() and "no trial reached a validation" in result.stdout + result.stderr
        )
    else:
        assert (sweep_dir / "best.yaml").is_file()
    # Same sampler seed, same suggestions: a rerun asking for one more trial skips the three it has.
    more = train(
        tmp_path,
        "-m",
        "sweep=optuna",
        "hydra.sweeper.n_trials=4",
        "optimizer=sgd",
        "optimizer.lr=tag(log, interval(5.0, 50.0))",
        *QUICK,
    )
    assert more.returncode == 0, more.stderr[-2000:]
    assert len(re.findall(r"trial \S+: already \w+, skipped", more.stdout + more.stderr)) == 3
    assert "3 of 4 trials of sweep" in more.stdout + more.stderr
    assert len(summary_rows(sweep_dir)) == 4
