"""The Optuna study of `sweep=optuna`, shared by the sweeper (which asks and tells) and by each trial (which
reports its objective after every validation and asks whether to stop): the search space from Hydra's
sweep grammar, the samplers and pruners by name, and the study's storage, named in SWEEP_DIR/optuna.json so
that a trial in another process (joblib, submitit, SLURM) finds the same study. Optuna is imported only here."""

import inspect
import json
import math
import warnings
from pathlib import Path

from experiments.config.errors import UserError

LINK = "optuna.json"  # in the sweep's folder: where its study is, and how its trials are pruned
TRIAL = "optuna_trial.json"  # in a trial's folder: its number in the study
SAMPLERS = ("tpe", "random", "grid", "cmaes", "qmc")
PRUNERS = ("median", "percentile", "hyperband", "successive_halving", "none")
DIRECTIONS = ("maximize", "minimize")


def distributions(swept) -> dict:
    """{key: an Optuna distribution} from the swept overrides: interval(LOW,HIGH) (tag(log, ...) for a log
    scale; integers give an integer range), range(START,STOP[,STEP]) and choice(...) or a, b, c."""
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    space = {}
    for override in swept:
        key, value = override.get_key_element(), override.value()
        if isinstance(value, IntervalSweep):
            low, high, log = value.start, value.end, "log" in (value.tags or set())
            if not low < high:
                raise UserError(f"{key}: interval({low}, {high}) is empty: expected low < high")
            if log and low <= 0:
                raise UserError(f"{key}: tag(log, interval({low}, {high})) needs low > 0")
            whole = isinstance(low, int) and isinstance(high, int)
            space[key] = (IntDistribution if whole else FloatDistribution)(low, high, log=log)
        elif isinstance(value, RangeSweep):
            values = list(override.sweep_iterator())
            if not values:
                raise UserError(f"{override.input_line} is an empty range: a search needs at least one value")
            step = value.step
            whole = all(isinstance(v, int) for v in (value.start, step))
            space[key] = (IntDistribution if whole else FloatDistribution)(values[0], values[-1], step=step)
        elif isinstance(value, ChoiceSweep):
            choices = list(override.sweep_iterator())
            if not choices:
                raise UserError(f"{override.input_line} is an empty choice: a search needs at least one value")
            space[key] = CategoricalDistribution(choices)
    return space


def grid_of(space: dict) -> dict:
    """The grid sampler's values per key: every one of them must be discrete."""
    from optuna.distributions import CategoricalDistribution

    grid = {}
    for key, distribution in space.items():
        if isinstance(distribution, CategoricalDistribution):
            grid[key] = list(distribution.choices)
        elif distribution.step is not None:
            count = round((distribution.high - distribution.low) / distribution.step) + 1
            grid[key] = [distribution.low + index * distribution.step for index in range(count)]
        else:
            raise UserError(
                f"hydra.sweeper.sampler.name=grid needs a list of values per key: {key} is an interval; "
                "give it choice(...), range(...) or a, b, c"
            )
    return grid


def build(kind: str, spec: dict, space: dict | None = None):
    """A sampler or a pruner from its settings: `name`, and the class's own keyword arguments, beside the name
    for a sampler (every sampler takes a seed) and under the pruner's name for a pruner (each takes others)."""
    import optuna

    name = spec.get("name")
    allowed = SAMPLERS if kind == "sampler" else PRUNERS
    if name not in allowed:
        raise UserError(f"hydra.sweeper.{kind}.name={name} is not allowed: expected one of {', '.join(allowed)}")
    where = f"hydra.sweeper.{kind}"
    if kind == "sampler":
        options = {key: value for key, value in spec.items() if key != "name"}
    else:
        stray = [key for key in spec if key != "name" and key not in PRUNERS]
        if stray:
            raise UserError(
                f"{where}.{stray[0]}: a pruner's settings go under its name, e.g. {where}.{name}.{stray[0]}=..."
            )
        options, where = dict(spec.get(name) or {}), f"{where}.{name}"
    classes = {
        "tpe": optuna.samplers.TPESampler,
        "random": optuna.samplers.RandomSampler,
        "grid": optuna.samplers.GridSampler,
        "cmaes": optuna.samplers.CmaEsSampler,
        "qmc": optuna.samplers.QMCSampler,
        "median": optuna.pruners.MedianPruner,
        "percentile": optuna.pruners.PercentilePruner,
        "hyperband": optuna.pruners.HyperbandPruner,
        "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
        "none": optuna.pruners.NopPruner,
    }
    chosen = classes[name]
    accepted = [p for p in inspect.signature(chosen).parameters if p not in ("self", "search_space")]
    for key in options:
        if key not in accepted:
            raise UserError(
                f"{where}.{key}: the {name} {kind} takes no {key} (it takes {', '.join(accepted) or 'none'})"
            )
    if name == "cmaes":
        import importlib.util

        if importlib.util.find_spec("cmaes") is None:
            raise UserError("hydra.sweeper.sampler.name=cmaes needs the cmaes package: pip install cmaes")
    if name == "grid":
        options["search_space"] = grid_of(space or {})
    try:
        with warnings.catch_warnings():  # QMC and others are marked experimental; chosen by name, on purpose
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return chosen(**options)
    except (TypeError, ValueError) as err:
        raise UserError(f"{where}: the {name} {kind} refused its settings: {err}") from err


def storage_url(sweep_dir: Path, typed: str | None, parallel: bool) -> str:
    """The study's storage: a SQLite file for one process; Optuna's journal file when trials run in several
    (SQLite locks under concurrent writers and on network file systems); or the URL typed."""
    if typed:
        return typed
    return str(sweep_dir / "optuna.journal") if parallel else f"sqlite:///{sweep_dir / 'optuna.db'}"


def open_storage(url: str):
    """The storage behind a URL or journal file; one that cannot be opened is one line."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    try:
        if "://" not in url:
            Path(url).parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(url))
        return optuna.storages.RDBStorage(url)
    except Exception as err:  # SQLAlchemy and the journal raise many kinds; the cause is the URL
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"hydra.sweeper.storage={url} cannot be opened: {reason}") from err


def write_link(sweep_dir: Path, link: dict) -> None:
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / LINK).write_text(json.dumps(link, indent=2) + "\n")


def write_trial_number(trial_dir: Path, number: int) -> None:
    trial_dir.mkdir(parents=True, exist_ok=True)
    (trial_dir / TRIAL).write_text(json.dumps({"number": number}) + "\n")


def linked_trial(run_dir: Path):
    """(the study's trial, the metric it reports) for a trial of `sweep=optuna`, or None for any other run."""
    link, numbered = Path(run_dir).parent / LINK, Path(run_dir) / TRIAL
    if not (link.is_file() and numbered.is_file()):
        return None
    import optuna

    settings = json.loads(link.read_text())
    storage = open_storage(settings["storage"])
    study = optuna.load_study(study_name=settings["study"], storage=storage, pruner=build("pruner", settings["pruner"]))
    study_id = storage.get_study_id_from_name(settings["study"])
    number = json.loads(numbered.read_text())["number"]
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
    return optuna.trial.Trial(study, trial_id), settings["metric"]


def objective(reported: dict[int, float], returned: float | None, metric: str, direction: str) -> float | None:
    """The value told to the study: the best of the values the trial reported after its validations; a
    trial that reported none (it diverged before validating, or ran fused) gives what its job returned.
    None when there is no finite value (the study records a failure)."""
    finite = [value for value in reported.values() if math.isfinite(value)]
    if finite:
        return max(finite) if direction == "maximize" else min(finite)
    if metric == "val/acc" and returned is not None and math.isfinite(returned):
        return returned  # best val acc; 0.0 for a trial that diverged before its first validation
    return None
