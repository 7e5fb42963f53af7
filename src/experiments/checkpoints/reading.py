"""Reading this project's checkpoints safely (weights_only) and checking they fit the data at hand.
Only torch is imported here: an unreadable checkpoint is refused before Lightning loads (preflight.py).
Writing them: atomic_io.py; the module they hold: training.module.load_module."""

import functools
from pathlib import Path

import torch

from experiments.config.errors import UserError
from experiments.config.rules import PREPROCESSING_KEYS


def load_checkpoint(path: str | Path) -> dict:
    """The checkpoint's contents (weights_only), read once per process however many checks ask; a file
    rewritten since (another size or time) is read again."""
    stat = Path(path).stat()
    return _load(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=1)
def _load(path: str, mtime_ns: int, size: int):
    return torch.load(path, map_location="cpu", weights_only=True)


def read_hparams(path: str | Path) -> dict:
    """The hyperparameters a ClassifierModule checkpoint was saved with."""
    try:
        checkpoint = load_checkpoint(path)
    except Exception as err:
        raise UserError(f"ckpt_path={path} {why_unreadable(Path(path), err)}") from None
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if not hparams or not {"model", "data", "input_shape", "num_classes"} <= hparams.keys():
        raise UserError(f"ckpt_path={path} was not written by this project (no model/data hyperparameters)")
    return hparams


def why_unreadable(path: Path, err: Exception) -> str:
    """What a file that torch.load refused is, in words: empty, text, cut short, or carrying code."""
    with open(path, "rb") as file:
        head = file.read(512)
    if not head:
        return "is empty: a checkpoint whose writing never finished? Use another (checkpoints/last.ckpt, best-*.ckpt)"
    if head.startswith(b"PK\x03\x04") or head[0] == 0x80:  # torch's zip archive, or a bare pickle
        culprit = next((line.strip() for line in str(err).splitlines() if "GLOBAL" in line), None)
        if culprit:
            return (
                "holds Python objects that would run code when unpickled, so it was refused unopened "
                f"({culprit.rstrip('.')}); this project's checkpoints hold tensors and plain values only"
            )
        return "is damaged or cut short (it does not read back as a whole checkpoint); use another checkpoint"
    try:
        head.decode("utf-8")
        return "is a text file, not a checkpoint (.ckpt files are zip archives that torch writes)"
    except UnicodeDecodeError:
        return "is not a checkpoint: torch writes checkpoints as zip archives, and this file is not one"


def trained_epochs(checkpoint: dict) -> int | None:
    """The epochs a checkpoint's fit completed (Lightning's loop progress); None for one without it."""
    progress = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {}).get("current", {})
    return progress.get("processed")  # an end-of-epoch checkpoint is written before Lightning counts it completed


def check_resumable(path: str | Path) -> None:
    """Resuming needs the optimizer and loop state, which a weights-only checkpoint lacks (earlier
    versions of this project wrote a fused trial's best epoch so)."""
    checkpoint = load_checkpoint(path)
    if "optimizer_states" not in checkpoint or "loops" not in checkpoint:
        raise UserError(
            f"ckpt_path={path} holds weights only (no optimizer or loop state), so training cannot resume "
            "from it; evaluate it with train=false, or rerun the trial"
        )


def check_fits_data(path: str | Path, hparams: dict, input_shape: tuple, num_classes: int, data_name: str) -> None:
    expected = (tuple(hparams["input_shape"]), hparams["num_classes"])
    if expected != (tuple(input_shape), num_classes):
        shape = "x".join(map(str, expected[0]))
        raise UserError(
            f"ckpt_path={path} expects {shape} images and {expected[1]} classes (trained on "
            f"data={hparams['data']['name']}), but data={data_name} has "
            f"{'x'.join(map(str, input_shape))} images and {num_classes} classes"
        )


def check_same_setup(path: str | Path, saved: dict, wanted: dict) -> None:
    """Resuming needs the architecture and the preprocessing the checkpoint was trained with. `wanted`: the
    run's model section and its data preprocessing keys, as a checkpoint's hyperparameters hold them."""
    if saved["model"] != wanted["model"]:
        before, now = saved["model"], wanted["model"]
        if before["_target_"] != now["_target_"]:
            kinds = (model["_target_"].rsplit(".", 1)[-1] for model in (before, now))
            raise UserError(
                f"ckpt_path={path} holds a {next(kinds)}, not a {next(kinds)}: pass the model it was trained with"
            )
        differ = [key for key in dict.fromkeys([*before, *now]) if before.get(key) != now.get(key)]
        trained = ", ".join(f"model.{key}={before.get(key)}" for key in differ)
        given = ", ".join(f"{now.get(key)}" for key in differ)
        raise UserError(
            f"ckpt_path={path} was trained with {trained}, not {given}; pass the same model options to resume"
        )
    for key in PREPROCESSING_KEYS:
        before, now = saved["data"].get(key), wanted["data"][key]
        if before is not None and before != now:
            raise UserError(
                f"ckpt_path={path} was trained with data.{key}={before}, not {now}; pass data.{key}={before} to resume"
            )
