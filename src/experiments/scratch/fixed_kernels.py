"""The note's fixed kernels ("Kernels" in "Convolutional Neural Networks"), exactly as printed, and how they
are applied. NumPy and SciPy only: no torch here.

The note applies them with OpenCV's `cv2.filter2D`: a correlation (the kernel is not flipped, like a
PyTorch Conv2d), the output the size of the input, and borders filled by reflection without repeating
the edge pixel (OpenCV's BORDER_REFLECT_101, SciPy's mode="mirror"). `apply` does the same with SciPy.
"""

import numpy as np
from scipy.ndimage import correlate

KERNELS: dict[str, np.ndarray] = {
    "mean blur 5x5": np.ones((5, 5)) / 25.0,
    "Gaussian blur 5x5": np.array(
        [
            [1, 4, 7, 4, 1],
            [4, 16, 26, 16, 4],
            [7, 26, 41, 26, 7],
            [4, 16, 26, 16, 4],
            [1, 4, 7, 4, 1],
        ]
    )
    / 273.0,
    "sharpen 3x3": np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype=float),
    # The note's names. "Horizontal" differences columns (left to right), so it responds to VERTICAL
    # edges; "Vertical" differences rows and responds to horizontal edges.
    "Sobel horizontal": np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=float),
    "Sobel vertical": np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], dtype=float),
}

# Kernels whose entries sum to 0: their output is signed (an edge response), not a brightness. The
# values say which edges each one finds.
SIGNED = {"Sobel horizontal": "vertical edges", "Sobel vertical": "horizontal edges"}


def apply(kernel: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Correlate one (H, W) image with a kernel, same size out, mirrored borders: cv2.filter2D's result
    before it rounds and clips to the image's dtype."""
    return correlate(np.asarray(image, dtype=float), kernel, mode="mirror")


def apply_per_channel(kernel: np.ndarray, image: np.ndarray) -> np.ndarray:
    """(C, H, W) -> (C, H, W): the same kernel over each colour channel separately, as the note describes."""
    return np.stack([apply(kernel, channel) for channel in image])
