"""The seed's multi-layer perceptron, with hidden sizes from the config."""

import math
from collections.abc import Sequence

from torch import Tensor, nn


class MLP(nn.Module):
    """Flatten -> [Linear -> ReLU] for each hidden size -> Linear head."""

    def __init__(self, input_shape: Sequence[int], num_classes: int, hidden_sizes: Sequence[int] = (512, 512)):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for size in hidden_sizes:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, images: Tensor) -> Tensor:
        return self.layers(images)
