"""The part every sweeper shares: one stable directory per sweep, one readable directory per trial, a
plan file listing the trials, and resume (finished trials are skipped, unfinished ones continue from
their last.ckpt). It wraps whichever Hydra launcher runs the jobs (basic, joblib)."""

import json
import logging
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import DictConfig, OmegaConf, open_dict

from experiments.config.errors import UserError
from experiments.config.overrides import override_key, quoted
from experiments.records.metrics import PLAN
from experiments.records.provenance import provenance
from experiments.records.status import FINISHED, read_status
from experiments.sweeps.naming import belongs_in_name, short_keys, sweep_name, trial_name
from experiments.sweeps.sbatch_refusal import refused_job

log = logging.getLogger(__name__)


def parse(arguments: list[str]) -> tuple[list[Override], list[Override]]:
    """(swept, fixed) overrides, from the sweeper's `params` plus the command line."""
    parsed = OverridesParser.create().parse_overrides(arguments)
    # The command line overrides a preset's params for the same key, as in Hydra's basic sweeper.
    latest = {o.get_key_element(): o for o in parsed}
    parsed = [o for o in parsed if latest[o.get_key_element()] is o]
    swept = [o for o in parsed if o.is_sweep_override()]
    fixed = [o for o in parsed if not o.is_sweep_override() and not o.is_hydra_override()]
    return swept, fixed


def params_as_arguments(params) -> list[str]:
    return [f"{key}={value}" for key, value in (params or {}).items()]


def preset_overrides(config, choice) -> list[str]:
    """What conf/sweep/CHOICE.yaml sets outside hydra (e.g. trainer.max_epochs=10), as overrides."""
    if choice in (None, "null", "grid"):
        return []
    for source in config.hydra.runtime.config_sources:
        if source.provider == "main" and source.schema == "file":
            path = Path(source.path) / "sweep" / f"{choice}.yaml"
            if path.is_file():
                settings = OmegaConf.load(path)
                settings.pop("hydra", None), settings.pop("defaults", None)
                return [f"{key}={value}" for key, value in _flatten(OmegaConf.to_container(settings))]
    return []


def _flatten(tree: dict, prefix: str = "") -> list[tuple[str, object]]:
    pairs = []
    for key, value in tree.items():
        if isinstance(value, dict):
            pairs += _flatten(value, f"{prefix}{key}.")
        else:
            pairs.append((f"{prefix}{key}", value))
    return pairs


def fixed_strings(fixed: list[Override]) -> list[str]:
    return [o.input_line for o in fixed if o.input_line]


def typed_sweep_dir(config) -> Path | None:
    """hydra.sweep.dir as the user typed it: honoured as the sweep directory rather than silently replaced."""
    for override in config.hydra.overrides.hydra:
        key, _, value = str(override).partition("=")
        if key.lstrip("+") == "hydra.sweep.dir":
            return Path(value.strip("'\""))
    return None


class SweepPlan:
    """outputs/sweeps/NAME/sweep.json: what the sweep is and which trials it holds."""

    def __init__(self, config, swept: list[Override], fixed: list[Override]):
        self.swept_keys = [o.get_key_element() for o in swept]
        self.short = short_keys(self.swept_keys)
        self.fixed = [o for o in fixed_strings(fixed) if override_key(o) != "dry_run"]  # a preview is the same sweep
        choice = config.hydra.runtime.choices.get("sweep")
        label = choice if choice not in (None, "null", "grid") else "grid-" + "_".join(self.short.values())
        self.name = config.get("sweep_name") or sweep_name(label, list(filter(belongs_in_name, self.fixed)))
        sweeps = Path(config.paths.output_root) / "sweeps"
        self.dir = Path(config.hydra.runtime.cwd) / (typed_sweep_dir(config) or sweeps / self.name)
        self.preset_overrides = preset_overrides(config, choice)
        self.trials: list[dict] = []
        self.skipped: list[str] = []  # trials that had finished in an earlier run of this sweep
        self.provenance = provenance(list(config.get("logger") or {}))  # the code and command; each trial its device

    def check_matches_existing(self) -> None:
        """Rerunning resumes; reusing the name for a different sweep would mix results, so it is refused."""
        if not (self.dir / PLAN).is_file():
            return
        old = json.loads((self.dir / PLAN).read_text())
        old_fixed = list(filter(belongs_in_name, old.get("fixed_overrides", [])))
        if old_fixed != list(filter(belongs_in_name, self.fixed)) or old.get("swept_keys") != self.swept_keys:
            raise UserError(
                f"sweep_name={self.name}: {self.dir} holds a different sweep (fixed {old.get('fixed_overrides')}, "
                f"swept {old.get('swept_keys')}); pass another sweep_name=... or remove that directory"
            )
        self.trials = list(old.get("trials", []))  # the same sweep again: its trials so far stay in its plan

    def announce(self) -> None:
        """Where the sweep writes, before its first trial (the name leaves out settings such as torch_threads)."""
        log.info(f"sweep folder: {self.dir}")

    def add(self, name: str, values: dict[str, str], overrides: list[str], save: bool = True) -> None:
        if any(trial["name"] == name for trial in self.trials):
            return
        self.trials.append({"name": name, "values": values, "overrides": overrides})
        if save:
            self.save()

    def save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        plan = {
            "name": self.name,
            "swept_keys": self.swept_keys,
            "fixed_overrides": self.fixed,
            "preset_overrides": self.preset_overrides,
            "trials": self.trials,
            "provenance": self.provenance,
        }
        (self.dir / PLAN).write_text(json.dumps(plan, indent=2))

    def describe(self, job: list[str], number: int | None = None) -> tuple[str, dict[str, str]]:
        """A job's trial directory name and its swept values."""
        values = {}
        for override in job:
            key, _, value = override.partition("=")
            if key in self.swept_keys:
                values[key] = value
        name = trial_name(values, self.short)
        return (name if number is None else f"{number:03d}_{name}"), values


class TrialLauncher:
    """Wraps a Hydra launcher: routes each job to its trial directory, skips finished trials and resumes
    unfinished ones from their last checkpoint. `numbered` prefixes names with the job number (Optuna's
    values are never on a grid, so two trials could round to the same name)."""

    def __init__(self, launcher, plan: SweepPlan, settings, numbered: bool = False):
        self.launcher, self.plan, self.numbered = launcher, plan, numbered
        self.settings = OmegaConf.to_container(settings, resolve=True)  # hydra.launcher: named when sbatch refuses

    def launch(self, job_overrides, initial_job_idx: int) -> list[JobReturn]:
        results: dict[int, JobReturn] = {}
        to_run, positions = [], []
        for offset, job in enumerate(job_overrides):
            job = list(job)
            name, values = self.plan.describe(job, initial_job_idx + offset if self.numbered else None)
            self.plan.add(name, values, job)
            trial_dir = self.plan.dir / name
            finished = finished_result(trial_dir, job)
            if finished is not None:
                log.info(f"trial {name}: already {read_status(trial_dir)['status']}, skipped")
                self.plan.skipped.append(name)
                results[offset] = finished
                continue
            extra = [f"hydra.sweep.dir={quoted(self.plan.dir)}", f"hydra.sweep.subdir={quoted(name)}"]
            last = trial_dir / "checkpoints" / "last.ckpt"
            if last.is_file():
                log.info(f"trial {name}: resuming from {last}")
                extra.append(f"ckpt_path={quoted(last)}")
            to_run.append(job + extra)
            positions.append(offset)
        if to_run:
            try:
                launched = self.launcher.launch(to_run, initial_job_idx=initial_job_idx)
            except Exception as err:
                refusal = refused_job(err, self.settings, "hydra.launcher")
                if refusal is None:
                    raise
                raise refusal from None
            results.update(zip(positions, launched, strict=True))
        return [results[i] for i in range(len(job_overrides))]


def finished_result(trial_dir: Path, job: list[str]) -> JobReturn | None:
    """A JobReturn standing in for a trial that finished in an earlier run of the same sweep."""
    status = read_status(trial_dir)
    if status["status"] not in FINISHED:
        return None
    result = JobReturn(overrides=job, working_dir=str(trial_dir), status=JobStatus.COMPLETED)
    result.return_value = status.get("objective", 0.0)
    return result


def resume_restarted_trial(cfg: DictConfig, trial_dir: Path) -> None:
    """A trial whose job its launcher started again (submitit requeues a timed-out or pre-empted SLURM job
    with the same overrides) finds its own last.ckpt and resumes from it instead of starting over. A rerun
    sweep passes ckpt_path itself (TrialLauncher), and finished trials never start."""
    last = trial_dir / "checkpoints" / "last.ckpt"
    if cfg.train and not cfg.ckpt_path and last.is_file():
        log.warning(f"trial {trial_dir.name} was started again: resuming from {last}")
        with open_dict(cfg):
            cfg.ckpt_path = str(last)
