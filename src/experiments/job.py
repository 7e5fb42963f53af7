"""The Hydra job around `run`: what `train.py` calls inside Hydra. It runs the preflight, reads what
a run needs from Hydra's job state (run directory, group choices, the launcher's parallelism) and hands
it to `experiments.run.run` as arguments, then turns bad input into one line.

Kept free of torch imports so `--help`, `--cfg job` and bad-input errors answer instantly.
"""

import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from experiments.checkpoints.resume import expand_resume
from experiments.checkpoints.slurm_requeue import expand_requeued, run_name
from experiments.config.errors import TrialsFailed, UserError, user_error_in
from experiments.preflight import describe_hydra_error, preflight
from experiments.records.disk_full import disk_full_line, stop_on_full_disk
from experiments.records.provenance import remember_command
from experiments.records.status import STATUS, record_finished
from experiments.sweeps.logspace import expand_logspace

log = logging.getLogger(__name__)


def run_hydra(hydra_main: Callable[[], Any], conf_dir: Path) -> None:
    """Call a @hydra.main function; composition errors become one line unless HYDRA_FULL_ERROR=1."""
    wants_trace = os.environ.get("HYDRA_FULL_ERROR") == "1"  # Hydra's own meaning; 0 means off
    os.environ["HYDRA_FULL_ERROR"] = "1"  # makes Hydra raise instead of printing its own report
    remember_command(sys.argv)  # as typed, before resume=RUN is expanded: recorded with the run (provenance)
    try:
        sys.argv[1:] = prepare_arguments(sys.argv[1:], conf_dir)
        check_printed_config(sys.argv[1:], conf_dir)
        hydra_main()
    except (HydraException, OmegaConfBaseException) as err:
        if wants_trace:
            raise
        print(f"error: {describe_hydra_error(err, conf_dir)}", file=sys.stderr)
        sys.exit(2)
    except UserError as err:  # raised by the sweepers' checks before any trial runs
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except TrialsFailed as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)


def prepare_arguments(arguments: list[str], conf_dir: Path | None = None) -> list[str]:
    """The command line as Hydra will read it: what this project adds to Hydra's grammar, rewritten."""
    refuse_combined_modes(arguments)
    arguments = expand_logspace(arguments)  # key=logspace(LOW,HIGH[,COUNT]) -> a list of values
    arguments = expand_requeued(arguments, conf_dir)  # trainer=slurm, started again: resume=its run
    return expand_resume(arguments)  # resume=RUN_DIR -> that run's overrides, in place


# Hydra's mode flags: it takes one per command, and raises a bare ValueError (a traceback) for two.
MODE_FLAGS = {
    "-m": "-m", "--multirun": "-m", "-c": "--cfg", "--cfg": "--cfg", "-i": "--info", "--info": "--info",
    "-r": "--run", "--run": "--run", "-sc": "--shell-completion", "--shell-completion": "--shell-completion",
}  # fmt: skip


def refuse_combined_modes(arguments: list[str]) -> None:
    modes = list(dict.fromkeys(MODE_FLAGS[a] for a in arguments if a in MODE_FLAGS))
    if len(modes) < 2:
        return
    hint = (
        "; to preview a sweep, drop -m: --cfg hydra shows the values it sweeps (hydra.sweeper.params), "
        "--cfg job one trial's config"
        if "-m" in modes
        else ""
    )
    raise UserError(f"{' and '.join(modes)} do not combine: Hydra takes one of them per command{hint}")


# Hydra's flags that take a value: it is not an override.
VALUED_FLAGS = {"-c", "--cfg", "-p", "--package", "-cn", "--config-name", "-cp", "--config-path", "-cd", "--config-dir"}


def check_printed_config(arguments: list[str], conf_dir: Path) -> None:
    """`--cfg job ...` prints a config without running it; the checks a run applies apply to it too."""
    if not {"-c", "--cfg"} & set(arguments):
        return
    overrides, skip = [], False
    for argument in arguments:
        if skip or argument.startswith("-"):
            skip = not skip and argument in VALUED_FLAGS
            continue
        if not argument.lstrip("+~").startswith(("hydra.", "hydra/")):
            overrides.append(argument)
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(conf_dir.resolve()), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    preflight(cfg, overrides, here=False)  # a printed config checks the config; the run checks the rest


def register_resolvers() -> None:
    # The run's name ends in the process id: runs started in the same second never share a directory.
    # Cached, as Hydra caches ${now:}: Lightning reads hydra.run.dir again to start the other DDP ranks.
    OmegaConf.register_new_resolver("run_name", name_run, replace=True, use_cache=True)


def name_run(train: bool, model: str, data: str, trainer: str, typed=()) -> str:
    """What the user changed, what the run does, timestamp, process id: `activation-tanh+lr-0.01_mlp_mnist_
    sample_2026-12-07_06-57-36_p123`, so runs side by side in TensorBoard's list differ where it shows them, at the
    start. `typed`: the command's overrides, shortened as a sweep's folder names them (model= and data= are
    in the label already). Evaluation runs are named after what they do: the model comes from the
    checkpoint, not the config. Under trainer=slurm: the job's id, shared by its ranks."""
    from experiments.sweeps.naming import changes_label

    label = f"{model}_{data}" if train else f"eval_{data}"
    changes = changes_label([str(o) for o in typed], skip=("model", "data", "trainer", "train", "ckpt_path"))
    return run_name(time.strftime("%Y-%m-%d_%H-%M-%S"), label, trainer, f"p{os.getpid()}", changes)


def run_job(cfg: DictConfig) -> float | None:
    """Run one job; a UserError becomes one line on stderr and exit status 2.

    Inside a sweep (-m) nothing escapes: the trial records its status (running, completed, diverged,
    failed with the one-line error) in status.json and the sweep goes on with the next trial. The return
    value is what Optuna maximizes: best val acc, 0.0 for a diverged trial that never validated, and
    None for a failed one (Optuna records it as failed)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    in_sweep = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    return _run_trial(cfg, Path(HydraConfig.get().runtime.output_dir)) if in_sweep else _run_single(cfg)


def _run_trial(cfg: DictConfig, trial_dir: Path) -> float | None:
    from experiments.records.status import record_failed, record_failure, record_finished, write_status
    from experiments.sweeps.trials import resume_restarted_trial

    resume_restarted_trial(cfg, trial_dir)
    write_status(trial_dir, "running", fresh=True, resumed_from=cfg.ckpt_path, pid=os.getpid(), started=time.time())
    try:
        metrics = _run_in_job(cfg)
    except Exception as err:
        if (full := disk_full_line(err, trial_dir)) is not None:
            stop_on_full_disk(trial_dir, full)  # the next trials would meet the same full disk
        log.error(f"trial failed: {record_failure(trial_dir, err)}")
        return None
    if metrics.get("failed_checks"):  # check=procedure in a sweep: a trial whose checks failed has failed
        record_failed(trial_dir, _failed_checks_line(metrics))
        return None
    objective = record_finished(trial_dir, metrics)
    from experiments.training.callbacks.interrupt import StopRequest  # loaded by the run already

    if StopRequest.pending():  # Ctrl-C or SIGTERM: the sweep stops here; rerunning it resumes this trial
        log.error(f"sweep interrupted: trial {trial_dir.name} is {metrics['status']}; rerun the same command to resume")
        sys.exit(StopRequest.exit_code())
    return objective


def _run_single(cfg: DictConfig) -> float | None:
    try:
        _refuse_sweep_keys_without_multirun(cfg)
        metrics = _run_in_job(cfg)
    except Exception as err:
        user_error = user_error_in(err)
        if user_error is None:
            run_dir = _run_dir()
            then = f"`python train.py resume={run_dir}` continues the run"
            full = disk_full_line(err, run_dir, then) if run_dir else None
            if full is None:
                raise
            stop_on_full_disk(run_dir, full)
        print(f"error: {user_error}", file=sys.stderr)
        _remove_run_dir_if_untouched()
        sys.exit(2)
    if metrics.get("failed_checks"):
        print(f"error: {_failed_checks_line(metrics)}", file=sys.stderr)
        sys.exit(1)
    failed_before = metrics.get("run_dir") and (Path(metrics["run_dir"]) / STATUS).is_file()
    if failed_before:  # a full disk stopped it, and it was resumed: its status says how it ends now
        record_finished(Path(metrics["run_dir"]), metrics)
    if metrics.get("status") == "interrupted":
        from experiments.training.callbacks.interrupt import StopRequest  # loaded by the run already

        print(f"interrupted: continue with `python train.py resume={metrics['run_dir']}`", file=sys.stderr)
        sys.exit(StopRequest.exit_code())
    return metrics.get("best_val_acc")


def _failed_checks_line(metrics: dict) -> str:
    failed, total = metrics["failed_checks"], len(metrics["checks"])
    return f"{len(failed)} of {total} checks failed ({'; '.join(failed)}); see {metrics['checks_file']}"


def _run_in_job(cfg: DictConfig) -> dict:
    """The preflight, then `run` with what it needs from Hydra's job state passed in."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from experiments.config.devices import threads_per_trial

    hydra = HydraConfig.get()
    choices = preflight(cfg, _command_line_overrides(), OmegaConf.to_container(hydra.runtime.choices))
    from experiments.run import check_procedure, run  # heavy: torch, Lightning, torchvision
    from experiments.sweeps.report_to_study import ReportToStudy
    from experiments.training.callbacks.interrupt import install_stop_handlers

    install_stop_handlers()  # Ctrl-C and SIGTERM: stop at the next step with a checkpoint
    if cfg.torch_threads is None:
        with open_dict(cfg):
            cfg.torch_threads = threads_per_trial(hydra.launcher, os.cpu_count() or 1)
    run_dir = Path(hydra.runtime.output_dir)
    if cfg.check == "procedure":
        results = check_procedure(cfg, run_dir)
        return {
            "status": "completed",  # a sweep trial whose checks all passed; failed ones are caught by the caller
            "checks": [result.label for result in results],
            "failed_checks": [result.label for result in results if not result.passed],
            "checks_file": str(run_dir / "checks.json"),
        }
    return run(cfg, run_dir, choices, pruning=ReportToStudy.for_trial(run_dir))  # a sweep=optuna trial reports


def _refuse_sweep_keys_without_multirun(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    if cfg.get("dry_run") is True:  # ahead of the preflight, whose rule table refuses any value but a boolean
        raise UserError(
            "dry_run=true previews a sweep: add -m; for one run, --cfg job prints its config and trains nothing"
        )
    if not HydraConfig.initialized():
        return
    preset = HydraConfig.get().runtime.choices.get("sweep")
    if preset not in (None, "null", "grid"):
        raise UserError(f"sweep={preset} is a sweep: add -m, as in `python train.py -m sweep={preset}`")


def _command_line_overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _run_dir() -> Path | None:
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else None


def _remove_run_dir_if_untouched() -> None:
    """Drop the directory Hydra made for this run if nothing but its own bookkeeping landed there."""
    from hydra.core.hydra_config import HydraConfig

    if (run_dir := _run_dir()) is None:
        return
    hydra_files = {".hydra", f"{HydraConfig.get().job.name}.log"}
    if run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= hydra_files:
        shutil.rmtree(run_dir)
        for made_for_it in (run_dir.parent, run_dir.parent.parent):  # outputs/runs and outputs, when empty
            try:
                made_for_it.rmdir()
            except OSError:  # not empty, or not ours to remove
                break
