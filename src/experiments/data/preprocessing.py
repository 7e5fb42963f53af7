"""uint8 images -> normalized float batches. Shared by training batches and `predict` on image files."""

import torch
from torch import Tensor


def channel_stats(images: Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std, on the [0, 1] scale, of a uint8 (N, C, H, W) tensor."""
    channels = images.shape[1]
    # float64 sums over the whole split: float32 loses digits on 50k x 1024 pixels.
    flat = images.transpose(0, 1).reshape(channels, -1).double() / 255.0
    mean = flat.mean(dim=1)
    std = flat.std(dim=1).clamp_min(1e-6)  # a constant channel must not divide by zero
    return mean.tolist(), std.tolist()


class Normalizer:
    """Turns uint8 (N, C, H, W) batches into float32 standardized with the training split's statistics."""

    def __init__(self, mean: list[float], std: list[float]):
        self.mean, self.std = list(mean), list(std)
        self._cached: dict[torch.device, tuple[Tensor, Tensor]] = {}

    def __call__(self, images: Tensor) -> Tensor:
        shift, scale = self._constants(images.device)
        # (x/255 - mean)/std folded into one subtract and one multiply on the whole batch.
        return (images.float() - shift) * scale

    def _constants(self, device: torch.device) -> tuple[Tensor, Tensor]:
        if device not in self._cached:
            mean = torch.tensor(self.mean, device=device).view(1, -1, 1, 1)
            std = torch.tensor(self.std, device=device).view(1, -1, 1, 1)
            self._cached[device] = (mean * 255.0, 1.0 / (std * 255.0))
        return self._cached[device]
