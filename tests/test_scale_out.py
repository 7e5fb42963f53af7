"""Scaling out on Lightning's own engines: the trainer presets, and DDP under Hydra with one run directory."""

import json
import os
import signal
from pathlib import Path

import pytest
import torch
from conftest import REPO, compose_config, run_here, train
from documented import documented

from experiments.data.in_memory import TensorBatches

SHORT_TRIALS = ["trainer.max_epochs=1", "trainer.limit_train_batches=5", "watch.pictures=false"]


@pytest.mark.parametrize("shuffle", [True, False])
def test_ddp_shards_of_the_fast_data_path_never_overlap(shuffle):
    count, ranks = 103, 2
    split = (torch.arange(count, dtype=torch.uint8).view(-1, 1, 1, 1), torch.arange(count))

    def epoch(rank: int) -> list[int]:
        generator = torch.Generator().manual_seed(7) if shuffle else None  # alike on every rank, as seeded
        batches = TensorBatches(split, 8, generator, rank, ranks)
        seen = [label for _, labels in batches for label in labels.tolist()]
        assert len(batches) == -(-len(seen) // 8)
        return seen

    shards = [epoch(rank) for rank in range(ranks)]
    assert not set(shards[0]) & set(shards[1])
    if shuffle:  # training: the same number of steps on every rank; one example of 103 sits this epoch out
        assert len(shards[0]) == len(shards[1]) == 51
    else:  # evaluation: every example exactly once
        assert sorted(shards[0] + shards[1]) == list(range(count))


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ("auto", {"accelerator": "auto", "devices": 1, "strategy": "auto"}),
        ("cpu", {"accelerator": "cpu", "devices": 1, "strategy": "auto"}),
        ("gpu", {"accelerator": "gpu", "devices": 1, "precision": "32-true"}),
        ("ddp", {"accelerator": "auto", "devices": 2, "strategy": "ddp", "num_nodes": 1}),
        ("slurm", {"accelerator": "auto", "devices": 1, "strategy": "ddp", "num_nodes": 1, "requeue": True}),
    ],
)
def test_trainer_presets_compose(preset, expected):
    trainer = compose_config(f"trainer={preset}").trainer
    assert {key: trainer[key] for key in expected} == expected
    assert trainer.max_epochs == 10 and trainer.log_every_n_steps == 10  # the rest comes from trainer=auto


def test_the_default_trainer_is_auto():
    assert compose_config().trainer == compose_config("trainer=auto").trainer


DDP = ["trainer=ddp", "trainer.devices=2", "trainer.accelerator=cpu", "trainer.max_epochs=4"]
# Splits of odd size (val 499, test 501) in batches of 100: the ranks hold shards of different sizes, and
# rank zero one test batch more. Pictures stay on, as by default: their collectives must pair up too.
DDP += [
    "trainer.limit_train_batches=10",
    "data.val_fraction=0.0998",
    "data.test_fraction=0.1002",
    "data.batch_size=100",
]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """One unbroken DDP run on two CPU processes (gloo), shared by the DDP tests."""
    return train(tmp_path_factory.mktemp("ddp"), *DDP)


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_writes_one_run_directory_with_synchronized_metrics(ddp_run, tmp_path):
    assert ddp_run.returncode == 0, ddp_run.stdout[-3000:] + ddp_run.stderr[-3000:]
    [run_dir] = ddp_run.run_dirs  # one directory for both processes
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs"] == 4
    assert len(list((run_dir / "tensorboard").glob("events.out.tfevents.*"))) >= 1
    assert {p.name for p in (run_dir / "checkpoints").iterdir()} == {"last.ckpt", Path(metrics["best_checkpoint"]).name}
    assert ddp_run.stdout.count("final metrics") == 1  # one table: rank zero's
    figures = {p.name for p in (run_dir / "figures").iterdir()}
    assert {"test_confusion_matrix.png", "test_confident_mistakes.png", "test_predictions.png"} <= figures
    # The test accuracy over both shards equals one process evaluating the same checkpoint on the whole split.
    split = [o for o in DDP if o.startswith(("data.val_fraction", "data.test_fraction"))]
    alone = run_here(tmp_path / "alone", "train=false", f"ckpt_path={metrics['best_checkpoint']}", *split)
    assert alone["test_acc"] * 501 == pytest.approx(round(alone["test_acc"] * 501))  # the odd-sized split
    assert alone["test_acc"] == pytest.approx(metrics["test_acc"], abs=1e-6)
    assert alone["test_loss"] == pytest.approx(metrics["test_loss"], rel=1e-5)


@pytest.mark.slow
def test_a_ddp_run_killed_in_epoch_3_resumes_in_place_to_the_unbroken_result(ddp_run, tmp_path):
    from test_reliability import TIMINGS, checkpoint_writes, start, wait_for

    unbroken = ddp_run.metrics
    run_dir = tmp_path / "killed"
    run_dir.mkdir()
    process = start(run_dir, *DDP)
    written = checkpoint_writes(run_dir / "checkpoints" / "last.ckpt")
    wait_for(process, lambda: written(2), "the end of epoch 2")
    os.killpg(process.pid, signal.SIGKILL)  # both ranks at once, as a lost node would
    process.wait()
    resumed = train(tmp_path, f"resume={run_dir}")
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {k: v for k, v in metrics.items() if k not in TIMINGS} == {
        k: v for k, v in unbroken.items() if k not in TIMINGS
    }


@pytest.mark.slow
def test_a_sweep_through_submitits_local_executor_runs_each_trial_in_its_own_process(tmp_path):
    command = documented("python train.py -m sweep=lr_wd hydra/launcher=local sweep_name=lr_wd_local")
    result = train(tmp_path, *command, "optimizer.lr=0.001,0.002", "regularization.weight_decay=0", *SHORT_TRIALS)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    [sweep_dir] = (tmp_path / "outputs" / "sweeps").glob("*")
    assert sweep_dir.name == "lr_wd_local"
    statuses = {p.parent.name: json.loads(p.read_text()) for p in sweep_dir.glob("*/status.json")}
    assert {name: s["status"] for name, s in statuses.items()} == {
        "lr=0.001": "completed",
        "lr=0.002": "completed",
    }
    pids = {s["pid"] for s in statuses.values()}
    assert len(pids) == 2  # two processes, started by submitit, each writing its own status
    assert len(list((tmp_path / "outputs" / "submitit").iterdir())) >= 2  # submitit's job folders
    rows = (sweep_dir / "summary.csv").read_text().splitlines()
    assert len(rows) == 3 and (sweep_dir / "best.yaml").is_file()


@pytest.mark.parametrize("launcher", ["local", "slurm"])
def test_the_submitit_presets_compose_with_their_documented_keys(launcher):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True)
    assert cfg.hydra.launcher.submitit_folder == "outputs/submitit/%j" and cfg.hydra.launcher.timeout_min == 60
    if launcher == "slurm":
        keys = ("partition", "gpus_per_node", "array_parallelism", "cpus_per_task", "mem_gb")
        assert all(key in cfg.hydra.launcher for key in keys)


def srun_environment(rank: int, ranks: int, scontrol_log: Path, restarted: bool) -> dict:
    """What srun gives each task of a one-node job, and an `scontrol` that records what it was asked."""
    bin_dir = scontrol_log.parent / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> {scontrol_log}\n')
    (bin_dir / "scontrol").chmod(0o755)
    slurm = {"SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "train", "SLURM_NODELIST": "localhost", "SLURM_NODEID": "0"}
    slurm |= {"SLURM_NTASKS": str(ranks), "SLURM_NTASKS_PER_NODE": str(ranks)}
    slurm |= {"SLURM_PROCID": str(rank), "SLURM_LOCALID": str(rank)}
    slurm |= {"SLURM_RESTART_COUNT": "1"} if restarted else {}
    return os.environ | slurm | {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


@pytest.mark.slow
def test_trainer_slurm_shares_one_directory_across_srun_tasks_and_requeues_on_the_time_limit_warning(tmp_path):
    """Two tasks as srun starts them; SIGUSR1 reaches one of them only: both stop at the same step, rank
    zero asks SLURM to requeue the job, and the job's next start resumes the run in place to the end."""
    import subprocess
    import sys

    from test_reliability import checkpoint_writes, wait_for

    command = [sys.executable, str(REPO / "train.py"), "trainer=slurm", "trainer.devices=2", *DDP[2:]]
    scontrol_log = tmp_path / "scontrol.log"

    def srun(restarted: bool) -> list[subprocess.Popen]:
        environments = [srun_environment(rank, 2, scontrol_log, restarted) for rank in range(2)]
        logs = [(tmp_path / f"task{rank}_{restarted}.log").open("w") for rank in range(2)]
        return [subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
                for env, log in zip(environments, logs, strict=True)]  # fmt: skip

    run_dir = tmp_path / "outputs" / "runs" / "slurm-4242_mlp_mnist_sample"
    tasks = srun(restarted=False)
    wait_for(tasks[1], lambda: checkpoint_writes(run_dir / "checkpoints" / "last.ckpt")(1), "the first checkpoint")
    tasks[1].send_signal(signal.SIGUSR1)
    assert [task.wait(timeout=120) for task in tasks] == [128 + signal.SIGUSR1] * 2  # neither waits for the other
    assert scontrol_log.read_text().split() == ["requeue", "4242"]  # asked once, by rank zero
    stopped = json.loads((run_dir / "metrics.json").read_text())
    assert stopped["status"] == "interrupted" and stopped["epochs"] < 4

    tasks = srun(restarted=True)
    assert [task.wait(timeout=300) for task in tasks] == [0, 0], (tmp_path / "task0_True.log").read_text()[-2000:]
    assert "resuming outputs/runs/slurm-4242_mlp_mnist_sample" in (tmp_path / "task0_True.log").read_text()
    assert [p.name for p in (tmp_path / "outputs" / "runs").iterdir()] == [run_dir.name]
    finished = json.loads((run_dir / "metrics.json").read_text())
    assert finished["status"] == "completed" and finished["epochs"] == 4 and finished["test_acc"] > 0.5


@pytest.mark.slow
def test_a_fused_set_runs_as_one_submitit_job(tmp_path):
    """hydra/launcher=fused_local: what fused_slurm does, with submitit's local executor: three trials, one job."""
    grid = ["optimizer.lr=0.001,0.003,0.01", "regularization.weight_decay=0", "model.hidden_sizes=[64]", *SHORT_TRIALS]
    command = documented("python train.py -m sweep=lr_wd hydra/launcher=fused_local sweep_name=lr_wd_fused_local")
    result = train(tmp_path, *command, *grid)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    [sweep_dir] = (tmp_path / "outputs" / "sweeps").glob("*")
    statuses = [json.loads(p.read_text())["status"] for p in sweep_dir.glob("*/status.json")]
    assert statuses == ["completed"] * 3
    metrics = [json.loads(p.read_text()) for p in sweep_dir.glob("*/metrics.json")]
    assert all(m["fused"]["trials"] == 3 for m in metrics)
    [job_folder] = [p for p in (tmp_path / "outputs" / "submitit").iterdir() if p.name != "%j"]  # one job, one set
    assert "fused set of 3 trials" in "".join(p.read_text() for p in job_folder.glob("*.err"))
    assert len((sweep_dir / "summary.csv").read_text().splitlines()) == 4 and (sweep_dir / "best.yaml").is_file()


def test_a_trial_started_again_by_its_launcher_resumes_from_its_own_last_checkpoint(tmp_path):
    """submitit requeues a timed-out SLURM trial with its original overrides: no ckpt_path, same directory."""
    from experiments.sweeps.trials import resume_restarted_trial

    fresh, requeued = compose_config(), compose_config()
    resume_restarted_trial(fresh, tmp_path)
    assert fresh.ckpt_path is None  # nothing there yet: a first start
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    resume_restarted_trial(requeued, tmp_path)
    assert requeued.ckpt_path == str(tmp_path / "checkpoints" / "last.ckpt")
