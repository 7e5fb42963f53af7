"""The note's fixed kernels: what each does to images built to show it, and `python -m experiments.kernels`."""

import subprocess
import sys

import numpy as np
import pytest
from documented import documented
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from experiments.scratch.fixed_kernels import KERNELS, apply

BLURS = ("mean blur 5x5", "Gaussian blur 5x5")


def bright_square() -> np.ndarray:
    """A 20x20 dark image with a bright square in rows and columns 6..13: four edges and flat regions."""
    image = np.zeros((20, 20))
    image[6:14, 6:14] = 1.0
    return image


@pytest.mark.parametrize("name", [*BLURS, "sharpen 3x3"])
def test_blurs_and_sharpen_keep_a_constant_image(name):
    constant = np.full((12, 12), 0.37)
    assert np.allclose(apply(KERNELS[name], constant), constant)  # up to the edges: borders are mirrored


def test_the_kernels_are_the_notes_matrices():
    assert KERNELS["Gaussian blur 5x5"].sum() == pytest.approx(1.0) and KERNELS["Gaussian blur 5x5"][2, 2] == 41 / 273
    assert KERNELS["mean blur 5x5"].sum() == pytest.approx(1.0)
    assert KERNELS["sharpen 3x3"].sum() == 1 and KERNELS["sharpen 3x3"][1, 1] == 5
    assert KERNELS["Sobel horizontal"].sum() == 0 and KERNELS["Sobel vertical"].sum() == 0


def test_blurs_soften_an_edge_and_sharpen_steepens_it():
    image = bright_square()
    for name in BLURS:
        blurred = apply(KERNELS[name], image)
        assert 0 < blurred[10, 6] < 1 and 0 < blurred[10, 5] < 1  # both sides of the edge move toward each other
    sharpened = apply(KERNELS["sharpen 3x3"], image)
    assert sharpened[10, 6] > 1 and sharpened[10, 5] < 0  # overshoot on both sides: the edge stands out


def test_sobel_is_zero_on_flat_regions_and_of_opposite_sign_on_opposite_edges():
    image = bright_square()
    across = apply(KERNELS["Sobel horizontal"], image)  # differences along a row: the left and right edges
    down = apply(KERNELS["Sobel vertical"], image)  # differences along a column: the top and bottom edges
    for response in (across, down):
        assert np.abs(response[0:3, 0:3]).max() == 0 == np.abs(response[9:11, 9:11]).max()  # corner, inside
    assert across[10, 5] > 0 and across[10, 14] < 0  # dark-to-bright at the left, bright-to-dark at the right
    assert down[5, 10] > 0 and down[14, 10] < 0  # the same going down: top edge positive, bottom negative
    assert across[5, 10] == 0 and down[10, 5] == 0  # each kernel is blind to the other's edges


def test_kernels_correlate_as_cv2_filter2d_does_rather_than_convolve():
    # On the note's 5x5 image of 1..25, values rise by 1 along a row and by 5 down a column. A correlation
    # with the horizontal Sobel gives +1 * (1 + 2 + 1) * 2 = 8 inside; a (flipped) convolution would give -8.
    ramp = np.arange(1, 26, dtype=float).reshape(5, 5)
    assert np.allclose(apply(KERNELS["Sobel horizontal"], ramp)[1:4, 1:4], 8)
    assert np.allclose(apply(KERNELS["Sobel vertical"], ramp)[1:4, 1:4], 40)


@pytest.mark.slow
def test_the_kernels_command_writes_one_labelled_grid_to_png_and_tensorboard(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "experiments.kernels", *documented("python -m experiments.kernels"), "--images", "3"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    [run_dir] = (tmp_path / "outputs" / "runs").glob("*_kernels_mnist_sample_p*")
    png = run_dir / "figures" / "kernels.png"
    with Image.open(png) as picture:
        width, height = picture.size
    assert width > 1.5 * height  # six columns, three rows
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    [image] = events.Images("kernels")
    assert (image.width, image.height) == (width, height)
    assert "Gaussian blur 5x5" in done.stdout and "sum to 1" in done.stdout and "sum to 0" in done.stdout


@pytest.mark.slow
def test_the_kernels_command_writes_under_paths_output_root(tmp_path):
    """As train.py's runs do: paths.output_root (this machine's conf/local/, or on the command line)."""
    done = subprocess.run(
        [sys.executable, "-m", "experiments.kernels", "paths.output_root=elsewhere", "--images", "1"],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert list((tmp_path / "elsewhere" / "runs").glob("*_kernels_mnist_sample_p*/figures/kernels.png"))
    assert not (tmp_path / "outputs").exists()


def test_the_kernels_command_refuses_bad_input_in_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "experiments.kernels", "--images", "0"], cwd=tmp_path, capture_output=True, text=True
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "argument --images: 0 is not allowed" in lines[0]
    assert not (tmp_path / "outputs").exists()


def test_the_grid_holds_each_image_then_its_five_outputs_in_colour_too():
    from experiments.kernels import kernel_grid

    images = np.random.default_rng(0).integers(0, 256, size=(2, 3, 32, 32), dtype=np.uint8)
    tiles = kernel_grid(images)
    assert tiles.shape == (12, 3, 32, 32) and tiles.min() >= 0 and tiles.max() <= 1
    assert np.allclose(tiles[0], images[0] / 255) and np.allclose(tiles[6], images[1] / 255)
    edges = tiles[4]  # Sobel horizontal of the first image: gray where the response is 0, the same in each channel
    assert np.allclose(edges[0], edges[2]) and 0 < edges.mean() < 1
