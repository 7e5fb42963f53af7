"""Readable names: `lr=0.001,wd=1e-05` for a trial, `lr_wd-model=cnn` for a sweep, and what a single run's
command changed (`activation=tanh`) at the start of its folder's name."""

import re

# The two keys of the note's grid get the short names people write on whiteboards.
SHORT_KEYS = {"optimizer.lr": "lr", "regularization.weight_decay": "wd"}
UNSAFE = re.compile(r"[^A-Za-z0-9=,._+\-\[\]]")

# Keys that change how a run or sweep runs or where it is shown, not what it learns: they stay out of folder
# names, and a sweep rerun that changes only them is the same sweep
NOT_IN_NAME = ("sweep", "sweep_name", "dry_run", "logger", "torch_threads", "paths.output_root", "watch", "final_table")


def belongs_in_name(override: str) -> bool:
    key = override.lstrip("+~").split("=", 1)[0]
    return not any(key == other or key.startswith(other + ".") for other in NOT_IN_NAME)


def short_keys(keys: list[str]) -> dict[str, str]:
    """Each key's short form: the known abbreviation, else its last part unless two keys share it."""
    lasts = [key.rsplit(".", 1)[-1] for key in keys]
    return {
        key: SHORT_KEYS.get(key, last if lasts.count(last) == 1 else key) for key, last in zip(keys, lasts, strict=True)
    }


def format_value(value: str) -> str:
    """Floats to three significant digits (0.001, 1e-05, 0.00316); anything else as typed."""
    try:
        number = float(value)
    except ValueError:
        return value
    if number.is_integer() and "e" not in value.lower() and "." not in value:
        return value
    return f"{number:.3g}"


def trial_name(assignments: dict[str, str], keys: dict[str, str]) -> str:
    """Directory name of one trial from its swept key -> value assignments, e.g. `lr=0.001,wd=1e-05`."""
    name = ",".join(f"{keys.get(key, key)}={format_value(value)}" for key, value in assignments.items())
    return UNSAFE.sub("_", name) or "default"


def sweep_name(label: str, fixed_overrides: list[str]) -> str:
    """`label-fixed,overrides` (e.g. `lr_wd-model=cnn,data=cifar10`), safe as one directory name."""
    shortened = [_last_part(override) for override in fixed_overrides]
    name = label if not fixed_overrides else f"{label}-{','.join(shortened)}"
    return UNSAFE.sub("_", name)[:150]


def _last_part(override: str) -> str:
    """`trainer.max_epochs=2` -> `max_epochs=2`: directory names stay short; sweep.json keeps the full form."""
    key, separator, value = override.partition("=")
    return f"{key.rsplit('.', 1)[-1]}{separator}{value}"


# A run's folder is typed back in commands (resume=, ckpt_path=), where Hydra reads = , [ ] as syntax
RUN_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def changes_label(overrides: list[str], skip: tuple[str, ...] = ()) -> str:
    """A single run's overrides as a short name part that a command can take back unquoted
    (`activation-tanh+lr-0.01`): keys by their last part, values as typed with anything else than letters,
    digits, `.`, `_` and `-` as `_`; the keys in `skip` and those that change no learning left out, and
    past about 40 characters the rest as `etc`."""
    kept = [o.lstrip("+~") for o in overrides if belongs_in_name(o) and o.lstrip("+~").split("=")[0] not in skip]
    parts = []
    for override in kept:
        key, _, value = _last_part(override).partition("=")
        parts.append(f"{key}-{RUN_UNSAFE.sub('_', value).strip('_')}")
    shown = []
    for part in parts:  # whole overrides only, about 40 characters: the folder name stays readable
        if shown and len("+".join([*shown, part])) > 40:
            return "+".join([*shown, "etc"])
        shown.append(part)
    return "+".join(shown)
