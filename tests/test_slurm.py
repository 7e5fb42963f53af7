"""Every SLURM path against a real one-node cluster (munge, slurmctld, slurmd: tests/slurm_cluster.py): sweeps
through submitit's SLURM executor, a fused set as one job, the docs' sbatch script with two DDP tasks, the
requeue by SLURM's own signals, and the jobs SLURM refuses. Skipped with the reason where no cluster can start."""

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from conftest import REPO, run_here, train
from documented import documented
from test_reliability import TIMINGS
from test_scale_out import DDP, SHORT_TRIALS

pytestmark = pytest.mark.slow
SCRIPT = REPO / "examples" / "slurm" / "ddp_cpu.sbatch"
SMALL_DDP = DDP[3:]  # the DDP tests' settings, without the trainer preset the script chooses


def submitted_jobs(tmp_path: Path) -> list[str]:
    """The SLURM job ids submitit kept a folder for (an array's tasks as JOB_TASK)."""
    return sorted(p.name for p in (tmp_path / "outputs" / "submitit").iterdir() if re.fullmatch(r"\d+(_\d+)?", p.name))


def sbatch(cluster, tmp_path: Path, *overrides: str, options: tuple[str, ...] = ()) -> str:
    """The docs' script submitted from the project's folder, its outputs under tmp_path: the job id."""
    documented("sbatch examples/slurm/ddp_cpu.sbatch trainer.max_epochs=5")  # the command the docs show
    command = ["sbatch", "--parsable", f"--output={tmp_path}/slurm-%j.out", *options, str(SCRIPT)]
    command += [f"paths.output_root={tmp_path / 'outputs'}", *overrides]
    done = subprocess.run(command, cwd=REPO, env=cluster.env, capture_output=True, text=True, check=True)
    return done.stdout.strip().split(";")[0]


def job_state(cluster, job: str) -> dict[str, str]:
    shown = subprocess.run(["scontrol", "-o", "show", "job", job], env=cluster.env, capture_output=True, text=True)
    return dict(field.split("=", 1) for field in shown.stdout.split() if "=" in field)


ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL"}
# Why a pending job may never start without someone acting (SLURM's reason codes); others pass with time.
NEVER_STARTS = ("PartitionDown", "PartitionInactive", "PartitionNodeLimit", "PartitionTimeLimit", "BadConstraints",
                "InvalidAccount", "InvalidQOS", "JobHeld", "DependencyNeverSatisfied", "launch_failed")  # fmt: skip


def wait_for_job(cluster, job: str) -> dict[str, str]:
    """The job's last state. No wall-clock limit of its own, so a busy machine cannot fail it: a running job
    ends by its own --time, and a pending one that can never start fails here with SLURM's reason."""
    while (state := job_state(cluster, job)).get("JobState") not in ENDED:
        stuck = state.get("JobState") == "PENDING" and state.get("Reason", "").startswith(NEVER_STARTS)
        assert not stuck, f"job {job} cannot start: {state.get('Reason')}"
        time.sleep(1)
    return state


def job_log(tmp_path: Path, job: str) -> str:
    return (tmp_path / f"slurm-{job}.out").read_text()


def test_a_grid_sweep_through_hydra_launcher_slurm_runs_every_trial_as_a_slurm_job(slurm_cluster, tmp_path):
    command = documented("python train.py -m sweep=lr_wd hydra/launcher=slurm sweep_name=lr_wd_slurm")
    grid = ["optimizer.lr=0.001,0.003", "regularization.weight_decay=0", *SHORT_TRIALS]
    result = train(tmp_path, *command, *grid, env=slurm_cluster.env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    sweep_dir = tmp_path / "outputs" / "sweeps" / "lr_wd_slurm"
    statuses = {p.parent.name: json.loads(p.read_text())["status"] for p in sweep_dir.glob("*/status.json")}
    assert statuses == {"lr=0.001": "completed", "lr=0.003": "completed"}
    [array] = {job.split("_")[0] for job in submitted_jobs(tmp_path)}  # one array job, a task per trial
    assert [job for job in submitted_jobs(tmp_path) if "_" in job] == [f"{array}_0", f"{array}_1"]
    assert len((sweep_dir / "summary.csv").read_text().splitlines()) == 3 and (sweep_dir / "best.yaml").is_file()
    assert (sweep_dir / "heatmap.png").stat().st_size > 0


def test_a_fused_sweep_through_fused_slurm_is_one_job_per_set_and_a_trial_left_alone_its_own(slurm_cluster, tmp_path):
    command = documented("python train.py -m sweep=lr_wd hydra/launcher=fused_slurm sweep_name=lr_wd_fused_slurm")
    grid = ["optimizer.lr=0.0005,0.001,0.002", "regularization.weight_decay=0", "hydra.launcher.max_trials=2"]
    result = train(tmp_path, *command, *grid, *SHORT_TRIALS, env=slurm_cluster.env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    sweep_dir = tmp_path / "outputs" / "sweeps" / "lr_wd_fused_slurm"
    metrics = {p.parent.name: json.loads(p.read_text()) for p in sorted(sweep_dir.glob("*/metrics.json"))}
    assert [m["status"] for m in metrics.values()] == ["completed"] * 3
    assert [m.get("fused", {}).get("trials") for m in metrics.values()] == [2, 2, None]  # a set of 2, one alone
    assert "trial lr=0.002 runs alone" in result.stdout + result.stderr
    assert len(submitted_jobs(tmp_path)) == 2  # the set's job and the lone trial's: nothing trains on the login node
    assert len((sweep_dir / "summary.csv").read_text().splitlines()) == 4


@pytest.fixture(scope="module")
def unbroken_ddp_job(slurm_cluster, tmp_path_factory):
    """The docs' sbatch script, two DDP tasks on the CPU, run once to its end."""
    tmp_path = tmp_path_factory.mktemp("ddp_job")
    job = sbatch(slurm_cluster, tmp_path, *SMALL_DDP)
    state = wait_for_job(slurm_cluster, job)
    return tmp_path, job, state


def test_the_docs_sbatch_script_runs_two_ddp_tasks_into_one_run_directory(unbroken_ddp_job, tmp_path):
    folder, job, state = unbroken_ddp_job
    assert state["JobState"] == "COMPLETED", job_log(folder, job)[-3000:]
    [run_dir] = (folder / "outputs" / "runs").iterdir()
    assert run_dir.name == f"slurm-{job}_mlp_mnist_sample"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs"] == 4 and len(metrics["epoch_seconds"]) == 4
    assert job_log(folder, job).count("final metrics") == 1  # rank zero's table, once
    figures = {p.name for p in (run_dir / "figures").iterdir()}
    assert {"test_confusion_matrix.png", "test_confident_mistakes.png", "test_predictions.png"} <= figures
    split = [o for o in SMALL_DDP if o.startswith(("data.val_fraction", "data.test_fraction"))]
    alone = run_here(tmp_path / "alone", "train=false", f"ckpt_path={metrics['best_checkpoint']}", *split)
    assert alone["test_acc"] == pytest.approx(metrics["test_acc"], abs=1e-6)


def test_scancel_usr1_requeues_the_job_which_resumes_in_place_to_the_unbroken_result(
    slurm_cluster, unbroken_ddp_job, tmp_path
):
    from test_reliability import checkpoint_writes

    unbroken = json.loads(next((unbroken_ddp_job[0] / "outputs" / "runs").glob("*/metrics.json")).read_text())
    job = sbatch(slurm_cluster, tmp_path, *SMALL_DDP)
    run_dir = tmp_path / "outputs" / "runs" / f"slurm-{job}_mlp_mnist_sample"
    written = checkpoint_writes(run_dir / "checkpoints" / "last.ckpt")
    while not written(1):  # bounded by the job's own --time, not by how busy the machine is
        assert job_state(slurm_cluster, job)["JobState"] in {"PENDING", "RUNNING"}, job_log(tmp_path, job)[-3000:]
        time.sleep(0.05)
    subprocess.run(["scancel", "-s", "USR1", job], env=slurm_cluster.env, check=True)
    state = wait_for_job(slurm_cluster, job)
    log = job_log(tmp_path, job)
    assert state["JobState"] == "COMPLETED" and int(state["Restarts"]) == 1, log[-3000:]
    assert f"resuming {run_dir}" in log
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {k: v for k, v in metrics.items() if k not in TIMINGS} == {
        k: v for k, v in unbroken.items() if k not in TIMINGS
    }
    assert len(metrics["epoch_seconds"]) == len(metrics["train_epoch_seconds"]) == 4  # every epoch timed


@pytest.mark.parametrize(
    ("setting", "fragment"),
    [
        ("hydra.launcher.partition=nosuch", "hydra.launcher.partition=nosuch is not a partition of this cluster"),
        ("hydra.launcher.gpus_per_node=1", "hydra.launcher.gpus_per_node=1: the nodes of partition default have no"),
        ("hydra.launcher.cpus_per_task=64", "hydra.launcher.cpus_per_task=64: the nodes of partition default have"),
        ("hydra.launcher.submitit.mem_gb=4096", "hydra.launcher.submitit.mem_gb=4096: the nodes of partition"),
    ],
)
def test_a_request_the_cluster_cannot_meet_is_one_line_before_anything_is_submitted(
    slurm_cluster, tmp_path, setting, fragment
):
    launcher = "hydra/launcher=fused_slurm" if ".submitit." in setting else "hydra/launcher=slurm"
    result = train(tmp_path, "-m", launcher, "optimizer.lr=0.001,0.003", setting, env=slurm_cluster.env)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    [line] = result.stderr.strip().splitlines()
    assert fragment in line, line
    assert not (tmp_path / "outputs").exists()


def test_a_submission_sbatch_refuses_is_one_line_naming_the_launcher_key(slurm_cluster, tmp_path, monkeypatch):
    """What the checks before a sweep cannot see, sbatch refuses: its reason, with the key that caused it."""
    import submitit

    from experiments.sweeps.sbatch_refusal import refused_job

    monkeypatch.setenv("SLURM_CONF", slurm_cluster.env["SLURM_CONF"])
    executor = submitit.AutoExecutor(folder=tmp_path / "%j", cluster="slurm")
    executor.update_parameters(slurm_partition="nosuch", timeout_min=1)
    with pytest.raises(Exception) as refused:
        executor.submit(print, "never runs")
    line = str(refused_job(refused.value, {"slurm_partition": "nosuch"}, "hydra.launcher.submitit"))
    assert line.startswith("hydra.launcher.submitit.slurm_partition=nosuch was refused by SLURM (sbatch: error:")
    assert "\n" not in line


def epochs_lasting(unbroken_ddp_job, seconds: float) -> int:
    """max_epochs for a run of about `seconds` on this machine, from the unbroken job's own epoch times."""
    timed = json.loads(next((unbroken_ddp_job[0] / "outputs" / "runs").glob("*/metrics.json")).read_text())
    per_epoch = sorted(timed["epoch_seconds"])[len(timed["epoch_seconds"]) // 2]
    return int(seconds / per_epoch) + 1


def test_slurms_warning_before_a_real_time_limit_requeues_the_job_which_resumes_to_its_end(
    slurm_cluster, unbroken_ddp_job, tmp_path
):
    """--time=2 --signal=USR1@40: SLURM warns 40 s before the limit (up to 60 s early, so 20-80 s after the
    start) and the run, longer than that, checkpoints and requeues, then ends in the same folder. 150 s of
    epochs at the unbroken job's pace: past the warning even if the machine runs this job twice as fast."""
    epochs = epochs_lasting(unbroken_ddp_job, 150)
    overrides = [o for o in SMALL_DDP if not o.startswith("trainer.max_epochs")] + [f"trainer.max_epochs={epochs}"]
    job = sbatch(slurm_cluster, tmp_path, *overrides, options=("--time=2", "--signal=USR1@40"))
    state = wait_for_job(slurm_cluster, job)
    log = job_log(tmp_path, job)
    assert state["JobState"] == "COMPLETED" and int(state["Restarts"]) >= 1, log[-3000:]
    [run_dir] = (tmp_path / "outputs" / "runs").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs"] == epochs
    assert len(metrics["epoch_seconds"]) == len(metrics["train_epoch_seconds"]) == epochs  # every epoch timed


def test_a_sweep_trial_past_its_time_limit_is_requeued_by_submitit_and_resumes_from_its_last_checkpoint(
    slurm_cluster, tmp_path
):
    """timeout_min=2, signal_delay_s=40: submitit's warning comes 20-80 s into the job, it requeues the trial,
    and the trial's next start continues from its own checkpoints/last.ckpt to the end."""
    trial = ["trainer.limit_train_batches=10", "data.batch_size=100", "watch.pictures=false"]
    timed = run_here(tmp_path / "timed", *trial, "trainer.max_epochs=3")
    epochs = int(60 / sorted(timed["epoch_seconds"])[1]) + 1  # 60 s of training here; about twice that in a job
    limits = ["hydra.launcher.timeout_min=2", "hydra.launcher.signal_delay_s=40", "hydra.launcher.max_num_timeout=6"]
    command = ["-m", "sweep=lr_wd", "hydra/launcher=slurm", "sweep_name=requeued", "optimizer.lr=0.001"]
    command += ["regularization.weight_decay=0", f"trainer.max_epochs={epochs}", *trial, *limits]
    result = train(tmp_path, *command, env=slurm_cluster.env, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    [trial_dir] = [p.parent for p in (tmp_path / "outputs" / "sweeps" / "requeued").glob("*/status.json")]
    metrics = json.loads((trial_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs"] == epochs
    assert len(metrics["epoch_seconds"]) == epochs
    assert f"resuming from {trial_dir / 'checkpoints' / 'last.ckpt'}" in (trial_dir / "train.log").read_text()
    job_logs = "".join(p.read_text() for p in (tmp_path / "outputs" / "submitit").rglob("*.err"))
    assert "DUE TO JOB REQUEUE" in job_logs  # SLURM's own word that it requeued the job


def test_an_optuna_sweep_through_slurm_prunes_trials_that_report_through_the_studys_journal(slurm_cluster, tmp_path):
    """Each trial a SLURM job, reporting after every validation through the journal file beside the sweep."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage
    from test_optuna_sweeps import PRUNABLE
    from test_sweeps import summary_rows, sweep_dirs

    side_by_side = ["hydra.launcher.cpus_per_task=1", "torch_threads=1"]  # a batch's two trials share the node
    command = ["-m", "sweep=optuna", "hydra/launcher=slurm", "hydra.sweeper.n_jobs=2", *side_by_side, *PRUNABLE]
    result = train(tmp_path, *command, env=slurm_cluster.env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    [sweep_dir] = sweep_dirs(tmp_path)
    rows = {int(row["trial"][:3]): row["status"] for row in summary_rows(sweep_dir)}
    assert len(rows) == 8 and "pruned" in rows.values(), rows
    study = optuna.load_study(
        study_name=sweep_dir.name, storage=JournalStorage(JournalFileBackend(str(sweep_dir / "optuna.journal")))
    )
    assert {n: s == "pruned" for n, s in rows.items()} == {t.number: t.state.name == "PRUNED" for t in study.trials}
    assert len([job for job in submitted_jobs(tmp_path) if "_" in job]) == 8  # every trial a SLURM job
