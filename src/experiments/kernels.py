"""`python -m experiments.kernels [data=NAME] [data.KEY=VALUE ...] [--images N]`

The note's fixed kernels (mean blur, Gaussian blur, sharpen, horizontal and vertical Sobel) applied to a
few dataset images: one labelled grid, original plus the five, as a PNG in a run directory under
outputs/runs/ and as a TensorBoard image. Compare it with a trained LeNet's first-layer filters
(figures/weights_first_layer.png of a `python train.py model=cnn` run): the note's point is that learned filters
look like these.
"""

import sys

import numpy as np

from experiments.scratch.command_line import OneLineParser, load_arrays, new_run_dir, positive, run_command
from experiments.scratch.fixed_kernels import KERNELS, SIGNED, apply_per_channel


def parse_args(argv: list[str] | None):
    parser = OneLineParser(prog="python -m experiments.kernels", description=__doc__.split("\n\n")[1])
    parser.add_argument("overrides", nargs="*", help="data=NAME, data.KEY=VALUE and paths.*=DIR, as for train.py")
    parser.add_argument("--images", type=positive(int), default=4, help="how many images, one per class (default 4)")
    return parser.parse_args(argv)


def pick_images(images: np.ndarray, labels: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first training image of each class, classes in order, then the next of each, until `count`."""
    firsts = [np.flatnonzero(labels == label) for label in np.unique(labels)]
    order = [members[rank] for rank in range(max(map(len, firsts))) for members in firsts if rank < len(members)]
    chosen = np.array(order[:count])
    return images[chosen], labels[chosen]


def shown(name: str, response: np.ndarray) -> np.ndarray:
    """A kernel's output as a tile in [0, 1]. Brightness kernels are clipped as cv2.filter2D clips uint8.
    An edge response is signed: its channel mean is drawn with gray at 0, white positive, black negative."""
    if name not in SIGNED:
        return np.clip(response, 0.0, 1.0)
    gray = response.mean(axis=0, keepdims=True)
    scale = max(float(np.abs(gray).max()), 1e-12)
    return np.broadcast_to(0.5 + gray / (2 * scale), response.shape)


def kernel_grid(images: np.ndarray) -> np.ndarray:
    """uint8 (N, C, H, W) -> float (N * 6, C, H, W): each image, then each kernel's output, row by row."""
    tiles = []
    for image in images.astype(float) / 255.0:
        tiles.append(image)
        tiles += [shown(name, apply_per_channel(kernel, image)) for name, kernel in KERNELS.items()]
    return np.stack(tiles)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    splits, class_names, data_name, output_root = load_arrays(args.overrides)
    images, labels = pick_images(*splits["train"], args.images)
    import torch
    from lightning.pytorch.loggers import TensorBoardLogger

    from experiments.records.figures import publish, tile_figure

    columns = ["original", *(f"{name}\n({SIGNED[name]})" if name in SIGNED else name for name in KERNELS)]
    figure = tile_figure(
        torch.from_numpy(kernel_grid(images)),
        columns=len(columns),
        title=f"The note's kernels on {data_name} (Sobel: gray 0, white positive, black negative)",
        labels=columns + [""] * (len(columns) * (len(images) - 1)),
        row_labels=[class_names[label] for label in labels],
        inches=1.6,
    )
    run_dir = new_run_dir(output_root, "kernels", data_name)
    logger = TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version="")
    path = publish(figure, "kernels", [logger], run_dir)
    logger.finalize("success")
    for name, kernel in KERNELS.items():
        print(f"{name:18s} {kernel.shape[0]}x{kernel.shape[1]}, entries sum to {kernel.sum():.3g}")
    print(f"wrote {path} and its TensorBoard image ({len(images)} {data_name} images)")
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main, None))
