"""Reading this project's checkpoints safely (weights_only) and checking they fit the data at hand."""

from pathlib import Path

import torch

from experiments.errors import UserError


def read_hparams(path: str | Path) -> dict:
    """The hyperparameters a ClassifierModule checkpoint was saved with."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"ckpt_path={path} cannot be read as a checkpoint: {first_line}") from None
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if not hparams or not {"model", "data", "input_shape", "num_classes"} <= hparams.keys():
        raise UserError(f"ckpt_path={path} was not written by this project (no model/data hyperparameters)")
    return hparams


def check_fits_data(path: str | Path, hparams: dict, input_shape: tuple, num_classes: int, data_name: str) -> None:
    expected = (tuple(hparams["input_shape"]), hparams["num_classes"])
    if expected != (tuple(input_shape), num_classes):
        shape = "x".join(map(str, expected[0]))
        raise UserError(
            f"ckpt_path={path} expects {shape} images and {expected[1]} classes (trained on "
            f"data={hparams['data']['name']}), but data={data_name} has "
            f"{'x'.join(map(str, input_shape))} images and {num_classes} classes"
        )


def check_same_model(path: str | Path, hparams: dict, model_cfg: dict) -> None:
    """Resuming needs the architecture the checkpoint was trained with."""
    if hparams["model"] != model_cfg:
        raise UserError(
            f"ckpt_path={path} was trained with model {hparams['model']}, not {model_cfg}; "
            "pass the same model options to resume"
        )
