"""The benchmarks run end to end and record every figure docs/performance.md shows.

Its smoke mode trains each loop on a few batches: the figures mean nothing there, so this checks the
table's shape and the arithmetic of its ratios, never the speed."""

import json
import subprocess
import sys

import pytest
from conftest import REPO

CASES = ("mlp_b64", "mlp_b256", "lenet_b64")
LOOPS = ("note", "raw", "lightning", "framework")


@pytest.mark.slow  # a dozen loops in one process
def test_bench_smoke_mode_prints_the_table_and_a_json_summary(tmp_path, monkeypatch):
    command = [sys.executable, str(REPO / "bench" / "epoch.py"), "--smoke", "--json", str(tmp_path / "epoch.json")]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = recorded(tmp_path / "epoch.json", done)
    assert summary["mode"] == "smoke" and summary["rounds"] == 1 and summary["compose_s"] > 0
    for case in CASES:
        figures = summary[case]
        assert min(figures[f"{kind}_s"] for kind in LOOPS) > 0 and figures["matmul_gflops"] > 0
        [main] = figures["rounds"]["main"]
        trackers = {"framework_csv", "framework_mlflow"} if case == "mlp_b64" else set()  # priced at batch 64
        assert set(main) == {"gflops", *LOOPS, "framework_no_ratio", *trackers}
        cost = figures["update_ratio_cost"]
        assert cost == pytest.approx(main["framework"] / main["framework_no_ratio"] - 1, abs=1e-3)
        # ratios are taken within a round, each against the raw loop of its own round
        assert figures["framework_over_raw"] == pytest.approx(main["framework"] / main["raw"], rel=0.01)
        assert figures["lightning_over_raw"] == pytest.approx(main["lightning"] / main["raw"], rel=0.01)
        # the summary rounds this one to 2 decimals
        assert figures["note_over_framework"] == pytest.approx(main["note"] / main["framework"], abs=0.006)
        assert figures["framework_pty_s"] is None and figures["peak_mib"] == {}  # not measured in smoke mode
    b256 = summary["mlp_b256"]
    assert b256["matmul_share"] == pytest.approx(b256["raw_matmul_share"] / b256["framework_over_raw"], rel=0.01)
    assert summary["lenet_b64"]["matmul_share"] is None
    [b64] = summary["mlp_b64"]["rounds"]["main"]
    for name in ("csv", "mlflow"):  # each tracker against the TensorBoard default, within the round
        assert summary["mlp_b64"][f"{name}_over_tensorboard"] == pytest.approx(
            b64[f"framework_{name}"] / b64["framework"], abs=1e-3
        )
    table = done.stdout[done.stdout.index("seconds per training epoch") :]
    assert all(case in table for case in CASES) and "fw/raw" in table and "fp32 matmul" in table
    docs_table = rendered("epoch_table", tmp_path, monkeypatch)  # what docs/performance.md would show
    assert "LeNet, CIFAR-shaped, batch 64" in docs_table and "bench/epoch.py --smoke --json" in docs_table
    assert "`logger=[mlflow]`" in docs_table and "against the TensorBoard default" in table


def recorded(path, done) -> dict:
    """A benchmark's --json file: the summary it printed last, with where it was measured."""
    record = json.loads(path.read_text())
    assert set(record["provenance"]) == {"date", "commit", "machine", "command"}
    assert "cores" in record["provenance"]["machine"] and record["provenance"]["commit"]
    printed = json.loads(next(line for line in reversed(done.stdout.splitlines()) if line.startswith("{")))
    assert record["summary"] == printed
    return record["summary"]


def rendered(renderer: str, results, monkeypatch) -> str:
    """bench/report.py's block for the result files in `results`."""
    from test_docs import load_script

    report = load_script("report")
    monkeypatch.setattr(report, "RESULTS", results)
    return getattr(report, renderer)()


@pytest.mark.slow
def test_sweep_bench_smoke_mode_times_both_launchers_and_agrees_on_the_best_cell(tmp_path, monkeypatch):
    command = [sys.executable, str(REPO / "bench" / "sweep.py"), "--smoke", "--json", str(tmp_path / "sweep.json")]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = recorded(tmp_path / "sweep.json", done)
    assert summary["mode"] == "smoke" and summary["trials"] == 2 and summary["diverged"] == 1
    assert summary["best_sequential"] == summary["best_fused"] == "lr=0.001"
    for cell, (alone, fused) in summary["cells"].items():  # every trial's outcome, the same both ways
        assert (alone is None) == (fused is None) and (alone is None or abs(alone - fused) <= 0.005), cell
    assert summary["speedup"] == pytest.approx(summary["sequential_s"] / summary["fused_s"], abs=0.02)
    assert "sequential (hydra's basic launcher)" in done.stdout and "fused (hydra/launcher=fused)" in done.stdout
    counts = summary["step_operations"]
    assert set(counts) == {"lone", "fused_1", "fused_5", "fused_20", "fused_20_cpu"} and counts["lone"] > 0
    assert counts["fused_20"] <= 1.1 * counts["fused_1"]  # a step's calls do not grow with the trials
    working = summary["step_working_operations"]  # the views left out: fewer, but never none
    assert set(working) == set(counts) and all(0 < working[key] < counts[key] for key in counts)
    assert summary["bare_batched_matmul_share"] > 0
    assert summary["import_s"] > 0 and summary["lone_epoch_s"] > 0
    for way in ("sequential", "fused"):  # what a trial costs outside its epochs, and that against an epoch
        outside, ratio = summary[f"{way}_outside_epochs_per_trial_s"], summary[f"{way}_outside_epochs_ratio"]
        assert outside < summary[f"{way}_s"] / 2 and ratio == pytest.approx(outside / summary["lone_epoch_s"], abs=0.01)
    assert "outside the epochs, per trial" in done.stdout
    assert "fused_matmul_share" in summary and "against the matmul ceiling" in done.stdout  # None at 1 epoch
    docs_table = rendered("sweep_table", tmp_path, monkeypatch)
    assert "lr_wd on mnist_sample, 2 trials" in docs_table and "On a GPU: not measured." in docs_table
    assert "Outside the epochs, per trial" in docs_table
    assert "doing work" in docs_table and "a bare batched loop" in docs_table


@pytest.mark.slow  # five sweep=optuna commands
def test_pruning_bench_smoke_mode_runs_the_studies_and_compares_them(tmp_path, monkeypatch):
    command = [sys.executable, str(REPO / "bench" / "pruning.py"), "--smoke", "--seeds", "3"]
    done = subprocess.run(
        [*command, "--json", str(tmp_path / "pruning.json")], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = recorded(tmp_path / "pruning.json", done)
    ways = ("pruned", "unpruned", "halving", "fused_pruned", "fused_unpruned")
    assert summary["seeds"] == [3] and all(summary[way]["trials"] == 5 for way in ways)
    assert summary["unpruned"]["pruned"] == summary["fused_unpruned"]["pruned"] == 0  # pruner=none prunes nothing
    assert all(summary[way]["trial_epochs"] <= 5 * 3 for way in ways)
    comparisons = (("one_at_a_time", "pruned", "unpruned"), ("successive_halving", "halving", "unpruned"))
    for key, pruned, unpruned in (*comparisons, ("fused", "fused_pruned", "fused_unpruned")):
        share = summary[pruned]["seconds"] / summary[unpruned]["seconds"]
        assert summary[key]["time_share"] == pytest.approx(share, abs=0.01)
        points = 100 * (summary[pruned]["best_val_acc"] - summary[unpruned]["best_val_acc"])
        assert summary[key]["best_val_acc_points"] == pytest.approx(points, abs=0.01)
    docs_table = rendered("pruning", tmp_path, monkeypatch)
    assert "5 trials of at most 3 epochs on mnist_sample; means over sampler seeds 3" in docs_table
    assert "fused, median pruner (sets of 6)" in docs_table and "bench/pruning.py --smoke --seeds 3" in docs_table
    assert "one at a time, successive halving" in docs_table and "of the trial-epochs), best val acc" in docs_table


def test_pruning_bench_averages_each_way_over_its_seeds():
    sys.path.insert(0, str(REPO / "bench"))
    from pruning import mean_over_seeds

    seeds = [
        {"seconds": 10.0, "trials": 30, "pruned": 19, "diverged": 5, "trial_epochs": 87, "best_val_acc": 0.946},
        {"seconds": 20.0, "trials": 30, "pruned": 16, "diverged": 4, "trial_epochs": 123, "best_val_acc": None},
    ]
    mean = mean_over_seeds(seeds)
    assert mean["seconds"] == 15.0 and mean["pruned"] == 17.5 and mean["trial_epochs"] == 105.0
    assert mean["best_val_acc"] == 0.946  # a seed without a finished trial has no best to average
    assert mean["per_seed"] == seeds


@pytest.mark.slow
def test_fashion_bench_smoke_mode_runs_the_first_command_on_the_installed_dataset(tmp_path, monkeypatch):
    from test_fashion_mnist_real import missing

    if reason := missing():
        pytest.skip(reason)
    command = [sys.executable, str(REPO / "bench" / "fashion.py"), "--smoke", "--only", "cnn"]
    done = subprocess.run([*command, "--json", str(tmp_path / "fashion.json")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    [run] = recorded(tmp_path / "fashion.json", done)["runs"]
    assert run["label"] == "cnn" and run["status"] == "completed" and 0 < run["test_acc"] <= 1
    assert run["command"].startswith("python train.py model=cnn data=fashion_mnist trainer.max_epochs=1")
    docs_table = rendered("fashion_defaults", tmp_path, monkeypatch)
    assert f"| `{run['command']}` | {100 * run['test_acc']:.1f}% (" in docs_table
    assert "2 Conv + pooling: 91.6%" in docs_table and "bench/fashion.py --smoke --only cnn" in docs_table


@pytest.mark.slow  # one real run of the note's NumPy net
def test_presets_bench_update_remeasures_one_preset_and_keeps_the_others_with_their_origin(tmp_path, monkeypatch):
    earlier = {"date": "2026-01-01", "commit": "abc1234", "machine": "an older machine", "command": "python old"}
    kept = {"preset": "note_mlp_old", "seed": 42, "command": "python train.py", "seconds": 1.0, "test_acc": 0.5}
    replaced = {"preset": "scratch", "seed": 0, "command": "python -m experiments.scratch", "test_acc": 0.01}
    path = tmp_path / "presets.json"
    path.write_text(json.dumps({"provenance": earlier, "summary": {"runs": [kept, replaced]}}))
    command = [sys.executable, str(REPO / "bench" / "presets.py"), "--only", "scratch", "--update", "--json", str(path)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    runs = {run["preset"]: run for run in json.loads(path.read_text())["summary"]["runs"]}
    assert set(runs) == {"note_mlp_old", "scratch"}
    assert runs["note_mlp_old"] == kept | {"provenance": earlier}  # credited to the command that measured it
    assert runs["scratch"]["test_acc"] > 0.5 and "--only scratch --update" in runs["scratch"]["provenance"]["command"]
    note_table = rendered("presets_note", tmp_path, monkeypatch)
    assert "at commit abc1234" not in note_table  # note_mlp_old is not a preset the table shows
    assert note_table.count("_Measured on") == 1 and "--only scratch --update" in note_table


def test_presets_bench_update_needs_an_existing_result_file(tmp_path):
    command = [sys.executable, str(REPO / "bench" / "presets.py"), "--update", "--json", str(tmp_path / "none.json")]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2 and "--update needs --json naming an existing result file" in done.stderr
