"""Pixels -> preprocessed float batches (`data.preprocess`): the first layer of every ClassifierModule.

The statistics come from the training split only. They live in buffers of an nn.Module inside the
ClassifierModule, so its checkpoint carries them: a 3072 x 3072 whitening matrix would not fit in
hyperparameters, and training, evaluation, `predict` and the pictures all go through this one object.
"""

import torch
from torch import Tensor, nn

from experiments.config.rules import RULES, check_value

PREPROCESSING = RULES["data.preprocess"].options
CHUNK = 4096  # rows per covariance product: bounded memory for 50k x 3072 CIFAR


class InputTransform(nn.Module):
    """(N, C, H, W) pixels -> float32 model inputs. Pixels come as uint8 on 0..255 (the tensor path) or as
    floats on [0, 1] (torchvision's ToTensor, kornia's augmentation): the dtype says which, as in
    torchvision.transforms.v2.

    - none: pixels scaled to [0, 1];
    - standardize: per channel, (x/255 - mean) / std;
    - pca_whiten: centred pixels projected on the principal axes, each divided by sqrt(eigenvalue + eps);
    - zca_whiten: the PCA-whitened vector rotated back to pixel space (keeps the image layout).
    Create with `fit` on training images, or empty (`InputTransform(kind, shape)`) to load a state dict.
    """

    def __init__(self, kind: str, input_shape: tuple[int, ...] | list[int], epsilon: float = 0.1):
        super().__init__()
        check_value("data.preprocess", kind)
        self.kind, self.epsilon = kind, epsilon
        channels = input_shape[0]
        features = int(torch.tensor(input_shape).prod())
        if kind in ("standardize", "none"):
            # (x - shift) * scale with per-channel constants already folded with the 1/255.
            self.register_buffer("shift", torch.zeros(1, channels, 1, 1))
            self.register_buffer("scale", torch.full((1, channels, 1, 1), 1 / 255.0))
        else:
            # x_flat @ matrix + bias, with the centring and the 1/255 folded into one addmm.
            self.register_buffer("matrix", torch.eye(features) / 255.0)
            self.register_buffer("bias", torch.zeros(features))

    @classmethod
    def fit(cls, kind: str, images: Tensor, epsilon: float = 0.1) -> "InputTransform":
        """Statistics of `images` (uint8, the training split) for the chosen preprocessing."""
        transform = cls(kind, tuple(images.shape[1:]), epsilon)
        if kind == "standardize":
            mean, std = channel_stats(images)
            transform.shift.copy_(torch.tensor(mean).view(1, -1, 1, 1) * 255.0)
            transform.scale.copy_(1.0 / (torch.tensor(std).view(1, -1, 1, 1) * 255.0))
        elif kind in ("pca_whiten", "zca_whiten"):
            mean, covariance = pixel_covariance(images)
            eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
            # eps keeps near-zero directions (MNIST's always-black border) from being blown up to noise.
            whiten = eigenvectors / (eigenvalues.clamp_min(0) + epsilon).sqrt()
            if kind == "zca_whiten":
                whiten = whiten @ eigenvectors.T
            matrix = whiten / 255.0
            transform.matrix.copy_(matrix.float())
            transform.bias.copy_((-(mean * 255.0) @ matrix).float())
        return transform

    def forward(self, images: Tensor) -> Tensor:
        # The buffers hold constants for the 0..255 scale (checkpoints since v0.1 store them so); floats
        # on [0, 1] are brought to it first. That costs a batch-sized multiply on the float paths only.
        if images.is_floating_point():
            pixels = images.to(torch.float32) * 255.0
        else:  # one float copy, then in place: no further batch-sized temporaries (this runs every step)
            pixels = images.to(torch.float32, copy=True)
        if self.kind in ("standardize", "none"):
            return pixels.sub_(self.shift).mul_(self.scale)
        return torch.addmm(self.bias, pixels.reshape(len(pixels), -1), self.matrix).view(images.shape)


def channel_stats(images: Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std, on the [0, 1] scale, of a uint8 (N, C, H, W) tensor."""
    channels = images.shape[1]
    # float64 sums over the whole split: float32 loses digits on 50k x 1024 pixels.
    flat = images.transpose(0, 1).reshape(channels, -1).double() / 255.0
    mean = flat.mean(dim=1)
    std = flat.std(dim=1).clamp_min(1e-6)  # a constant channel must not divide by zero
    return mean.tolist(), std.tolist()


def pixel_covariance(images: Tensor) -> tuple[Tensor, Tensor]:
    """Mean (D,) and covariance (D, D) of the flattened [0, 1] pixels, float64, in chunks of rows.

    Chunks are centred before the product (no E[x^2] - E[x]^2 cancellation); each product runs in
    float32 (fast) and is summed in float64. For CIFAR's 45k x 3072 the whole fit takes 5-9 s on 2 cores."""
    flat = images.reshape(len(images), -1)
    mean = torch.zeros(flat.shape[1], dtype=torch.float64, device=flat.device)
    for chunk in flat.split(CHUNK):
        mean += chunk.double().sum(dim=0) / 255.0
    mean /= len(flat)
    covariance = torch.zeros(flat.shape[1], flat.shape[1], dtype=torch.float64, device=flat.device)
    for chunk in flat.split(CHUNK):
        centred = chunk.float() / 255.0 - mean.float()
        covariance += (centred.T @ centred).double()
    return mean, covariance / max(len(flat) - 1, 1)
