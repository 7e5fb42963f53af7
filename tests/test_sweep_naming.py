"""A sweep's folder is named by what its trials learn: settings that change how it runs or where it is shown
(torch_threads, watch.*, paths.output_root, logger) neither rename it nor make a rerun a different sweep.
Previews only (dry_run=true): no torch is imported."""

import json
import os

from conftest import train

GRID_KEYS = ["optimizer.lr", "regularization.weight_decay"]


def preview(cwd, *overrides):
    return train(cwd, "-m", "sweep=lr_wd", "dry_run=true", *overrides, timeout=120)


def test_settings_that_do_not_change_learning_leave_the_sweep_folder_alone(tmp_path):
    settings = ["torch_threads=1", "watch.pictures=false", "final_table=full", "logger=[csv]", "paths.output_root=out"]
    shown = preview(tmp_path, *settings)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "20 trials in out/sweeps/lr_wd with" in shown.stdout
    changed = preview(tmp_path, "model=cnn", "trainer.max_epochs=2", "torch_threads=1")
    assert "in outputs/sweeps/lr_wd-model=cnn,max_epochs=2 with" in changed.stdout


def test_a_rerun_with_another_thread_count_is_the_same_sweep_and_another_model_is_refused(tmp_path):
    folder = tmp_path / "outputs" / "sweeps" / "lr_wd"
    folder.mkdir(parents=True)
    plan = {"name": "lr_wd", "swept_keys": GRID_KEYS, "fixed_overrides": ["sweep=lr_wd"], "trials": []}
    (folder / "sweep.json").write_text(json.dumps(plan))  # as an earlier `python train.py -m sweep=lr_wd` left it
    again = preview(tmp_path, "torch_threads=1", "watch.histograms=false")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "in outputs/sweeps/lr_wd with" in again.stdout
    other = preview(tmp_path, "sweep_name=lr_wd", "model=cnn")
    assert other.returncode != 0
    assert other.stderr.strip().splitlines()[-1].startswith("error: sweep_name=lr_wd: ")
    assert "holds a different sweep" in other.stderr


def test_a_runs_folder_starts_with_what_its_command_changed():
    from experiments.job import name_run

    typed = ["model=cnn", "model.activation=tanh", "optimizer.lr=0.01", "torch_threads=1", "paths.output_root=/x"]
    name = name_run(True, "cnn", "mnist_sample", "auto", typed)
    assert name.startswith("activation-tanh+lr-0.01_cnn_mnist_sample_20") and name.endswith(f"_p{os.getpid()}")
    sizes = name_run(True, "mlp", "mnist_sample", "auto", ["model.hidden_sizes=[256,128]"])
    assert sizes.startswith("hidden_sizes-256_128_mlp_")  # no = , [ ]: resume= and ckpt_path= take it unquoted
    assert name_run(True, "mlp", "mnist_sample", "auto", []).startswith("mlp_mnist_sample_20")  # nothing changed
    evaluated = name_run(
        False, "mlp", "cifar10", "auto", ["train=false", "ckpt_path=/runs/a/best.ckpt", "data=cifar10"]
    )
    assert evaluated.startswith("eval_cifar10_20")
