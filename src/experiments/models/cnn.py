"""The seed's LeNet, with the flatten size computed from the input shape instead of 16*5*5."""

from collections.abc import Sequence

from torch import Tensor, nn

from experiments.errors import UserError


def _side_after_features(side: int) -> int:
    # conv 5x5 (no padding) then 2x2 max-pool, twice
    return ((side - 4) // 2 - 4) // 2


class LeNet(nn.Module):
    """conv(C->6,5) relu pool2, conv(6->16,5) relu pool2, fc120 relu, fc84 relu, fc(num_classes)."""

    def __init__(self, input_shape: Sequence[int], num_classes: int):
        super().__init__()
        channels, height, width = input_shape
        out_h, out_w = _side_after_features(height), _side_after_features(width)
        if out_h < 1 or out_w < 1:
            raise UserError(f"model=cnn needs images of at least 16x16 pixels, got {height}x{width}")
        self.features = nn.Sequential(
            nn.Conv2d(channels, 6, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.classifier = nn.Sequential(
            nn.Linear(16 * out_h * out_w, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, images: Tensor) -> Tensor:
        return self.classifier(self.features(images))
