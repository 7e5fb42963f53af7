"""The note's multi-layer perceptron, with hidden sizes, activation and initialization from the config."""

import math
from collections.abc import Sequence

from torch import Tensor, nn

from experiments.models.layers import Activation, hidden_block, initialize


class MLP(nn.Module):
    """Flatten -> [Linear -> (BatchNorm) -> activation -> (Dropout)] per hidden size -> Linear head.
    With activation="maxout", each unit is the max of `maxout_pieces` affine maps instead."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        hidden_sizes: Sequence[int] = (512, 512),
        activation: str = "relu",
        activation_alpha: float | None = None,
        maxout_pieces: int = 2,
        init: str = "default",
        init_std: float = 0.1,
        dropout: float = 0.0,
        batchnorm: bool = False,
    ):
        super().__init__()
        act = Activation(activation, activation_alpha, maxout_pieces)
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for size in hidden_sizes:
            layers += hidden_block(
                lambda n, w=width: nn.Linear(w, n), size, act, nn.BatchNorm1d if batchnorm else None, dropout
            )
            width = size
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)
        initialize(self, init, init_std, activation)

    def forward(self, images: Tensor) -> Tensor:
        return self.layers(images)
