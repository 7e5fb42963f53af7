"""The note's LeNet, with the flatten size computed from the input shape instead of 16*5*5."""

from collections.abc import Sequence

from torch import Tensor, nn

from experiments.config.errors import UserError
from experiments.models.layers import Activation, hidden_block, initialize


def _side_after_features(side: int, kernel_size: int, padding: int) -> int:
    # conv (kernel_size, padding) then 2x2 max-pool, twice
    shrink = kernel_size - 1 - 2 * padding
    return ((side - shrink) // 2 - shrink) // 2


class LeNet(nn.Module):
    """conv(C->6,5) act pool2, conv(6->16,5) act pool2, fc120 act, fc84 act, fc(num_classes) at the note's
    widths; `conv_channels` and `hidden_sizes` widen it (a wider CNN keeps LeNet's shape), and `kernel_size`
    and `padding` set both convolutions' (LeNet's 5 and 0; 3 and 1 keep each map's size).
    BatchNorm (optional) follows each conv and hidden fc layer; dropout (optional) the hidden fc layers."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        conv_channels: Sequence[int] = (6, 16),
        hidden_sizes: Sequence[int] = (120, 84),
        kernel_size: int = 5,
        padding: int = 0,
        activation: str = "relu",
        activation_alpha: float | None = None,
        maxout_pieces: int = 2,
        init: str = "default",
        init_std: float = 0.1,
        dropout: float = 0.0,
        batchnorm: bool = False,
    ):
        super().__init__()
        channels, height, width = input_shape
        out_h, out_w = (_side_after_features(side, kernel_size, padding) for side in (height, width))
        if out_h < 1 or out_w < 1:
            smallest = next(side for side in range(1, 1000) if _side_after_features(side, kernel_size, padding) >= 1)
            raise UserError(
                f"model=cnn with kernel_size={kernel_size} and padding={padding} needs images of at least "
                f"{smallest}x{smallest} pixels, got {height}x{width}"
            )
        act = Activation(activation, activation_alpha, maxout_pieces)
        conv_norm = nn.BatchNorm2d if batchnorm else None
        fc_norm = nn.BatchNorm1d if batchnorm else None
        first, second = conv_channels
        self.features = nn.Sequential(
            *hidden_block(lambda n: nn.Conv2d(channels, n, kernel_size, padding=padding), first, act, conv_norm, 0.0),
            nn.MaxPool2d(2),
            *hidden_block(lambda n: nn.Conv2d(first, n, kernel_size, padding=padding), second, act, conv_norm, 0.0),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        hidden, width = [], second * out_h * out_w
        for size in hidden_sizes:
            hidden += hidden_block(lambda n, w=width: nn.Linear(w, n), size, act, fc_norm, dropout)
            width = size
        self.classifier = nn.Sequential(*hidden, nn.Linear(width, num_classes))
        initialize(self, init, init_std, activation)

    def forward(self, images: Tensor) -> Tensor:
        return self.classifier(self.features(images))
