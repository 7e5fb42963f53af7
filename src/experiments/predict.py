"""`python -m experiments.predict CKPT IMAGE_OR_FOLDER... [--top-k K] [--resize] [--invert]`

Classifies PNG/JPG files with a checkpoint, using the checkpoint's own preprocessing (fitted on its training split) and
class names, and prints the top-k classes with their probabilities.
"""

import argparse
import sys
from pathlib import Path

from experiments.config.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m experiments.predict", description=__doc__.split("\n\n")[1])
    parser.add_argument("checkpoint", type=Path, help="a .ckpt written by `python train.py`")
    parser.add_argument("images", type=Path, nargs="+", help="image files (.png, .jpg) or folders of them")
    parser.add_argument("--top-k", type=int, default=3, help="how many classes to show per image (default 3)")
    parser.add_argument("--resize", action="store_true", help="resize images to the checkpoint's input size")
    parser.add_argument(
        "--invert",
        action="store_true",
        help="flip dark-on-light images (a digit drawn in black on white) to light on dark",
    )
    return parser.parse_args(argv)


def collect_images(paths: list[Path]) -> list[Path]:
    """Expand folders into their image files; every path must exist and be a PNG or JPG."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise UserError(f"images: the folder {path} holds no {'/'.join(IMAGE_SUFFIXES)} files")
            files += found
        elif not path.is_file():
            raise UserError(f"images: {path} does not exist")
        elif path.suffix.lower() not in IMAGE_SUFFIXES:
            raise UserError(f"images: {path} is not a {'/'.join(IMAGE_SUFFIXES)} file")
        else:
            files.append(path)
    return files


# MNIST and Fashion-MNIST are light strokes on a black background; a photo or scan of a digit is the reverse.
DARK_BACKGROUND = ("mnist", "mnist_sample", "fashion_mnist")
LIGHT_BORDER = 128  # a border mean (of 255) above this looks like a light background

MAX_PIXELS = 4096 * 4096  # the note's images are 28x28 and 32x32; anything this large is a mistake or an attack


def load_image(path: Path, input_shape: list[int], resize: bool):
    """uint8 tensor (C, H, W) in the checkpoint's channel count; the size must match unless resize."""
    import numpy as np
    import torch
    from PIL import Image, UnidentifiedImageError

    channels, height, width = input_shape
    if path.stat().st_size == 0:
        raise UserError(f"images: {path} is empty (0 bytes)")
    try:
        with Image.open(path) as image:  # reads the header only: the size is known before any decoding
            if image.width * image.height > MAX_PIXELS:
                raise UserError(
                    f"images: {path} is {image.width}x{image.height} pixels, more than the {MAX_PIXELS:,} this "
                    "command decodes (a decompression bomb?); downscale it first"
                )
            image = image.convert("L" if channels == 1 else "RGB")
    except Image.DecompressionBombError:
        raise UserError(f"images: {path} declares more pixels than PIL will decode (a decompression bomb?)") from None
    except UnidentifiedImageError:
        raise UserError(f"images: {path} is not an image PIL can read (its content is not PNG, JPEG, ...)") from None
    except OSError as err:
        raise UserError(f"images: {path} is damaged or cut short and cannot be decoded ({err})") from None
    if image.size != (width, height):
        if not resize:
            raise UserError(
                f"images: {path} is {image.width}x{image.height} pixels but the checkpoint expects "
                f"{width}x{height}; resize it or pass --resize"
            )
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    pixels = torch.from_numpy(np.array(image, dtype=np.uint8))
    return pixels.unsqueeze(0) if channels == 1 else pixels.permute(2, 0, 1)


def border_mean(pixels) -> float:
    """The mean of an image's outermost two rows and columns, on 0..255: its background, for centred objects."""
    ring = pixels.clone().float()
    ring[:, 2:-2, 2:-2] = float("nan")
    return float(ring.nanmean())


def warn_if_inverted(path: Path, pixels, dataset: str) -> None:
    if dataset in DARK_BACKGROUND and (background := border_mean(pixels)) > LIGHT_BORDER:
        print(
            f"warning: images: {path} looks inverted: its border is light (mean {background:.0f} of 255), while "
            f"data={dataset} has light strokes on a dark background; pass --invert to flip it",
            file=sys.stderr,
        )


def predict(
    checkpoint: str | Path, images: list[Path], top_k: int, resize: bool, invert: bool = False
) -> list[tuple[Path, list[tuple[str, float]]]]:
    checkpoint = Path(checkpoint)
    if top_k < 1:
        raise UserError(f"--top-k={top_k} is not allowed: expected an integer >= 1")
    if not checkpoint.is_file():
        raise UserError(f"checkpoint: {checkpoint} does not exist: expected a .ckpt file written by a run")
    files = collect_images(images)

    import torch

    from experiments.checkpoints.reading import read_hparams
    from experiments.training.module import load_module

    hparams = read_hparams(checkpoint)
    module = load_module(checkpoint)
    class_names = hparams["data"]["class_names"]
    loaded = [load_image(path, hparams["input_shape"], resize) for path in files]
    if invert:
        loaded = [255 - image for image in loaded]
    for path, image in zip(files, loaded, strict=True):
        warn_if_inverted(path, image, hparams["data"]["name"])
    pixels = torch.stack(loaded)
    with torch.no_grad():
        probabilities = module(pixels).softmax(dim=1)  # the module preprocesses as it did in training
    top = probabilities.topk(min(top_k, len(class_names)), dim=1)
    return [
        (path, [(class_names[i], p) for i, p in zip(indices.tolist(), probs.tolist(), strict=True)])
        for path, indices, probs in zip(files, top.indices, top.values, strict=True)
    ]


def print_predictions(predictions: list[tuple[Path, list[tuple[str, float]]]]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="predictions", header_style="bold")
    table.add_column("image", overflow="fold")
    for rank in range(len(predictions[0][1])):
        table.add_column(f"#{rank + 1} class (prob)")
    for path, ranked in predictions:
        table.add_row(escape(str(path)), *(escape(f"{name} ({prob:.3f})") for name, prob in ranked))
    Console().print(table)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        predictions = predict(args.checkpoint, args.images, args.top_k, args.resize, args.invert)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print_predictions(predictions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
