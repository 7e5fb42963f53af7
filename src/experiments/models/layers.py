"""The note's activations (maxout included), hidden blocks with optional BatchNorm and dropout, and
weight initialization schemes shared by the MLP, LeNet and the recurrent models."""

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor, nn

from experiments.config.rules import check_value

# Each activation's usual alpha when model.activation_alpha is null.
DEFAULT_ALPHA = {"leaky_relu": 0.01, "prelu": 0.25, "elu": 1.0}


@dataclass(frozen=True)
class Activation:
    name: str = "relu"
    alpha: float | None = None  # leaky_relu slope, prelu's initial slope, elu's alpha
    pieces: int = 2  # maxout: affine pieces per unit

    def __post_init__(self) -> None:
        check_value("model.activation", self.name)
        check_value("model.activation_alpha", self.alpha)
        check_value("model.maxout_pieces", self.pieces)

    def width(self, units: int) -> int:
        """Outputs the affine layer needs for `units` hidden units."""
        return units * self.pieces if self.name == "maxout" else units

    def build(self) -> nn.Module:
        alpha = self.alpha if self.alpha is not None else DEFAULT_ALPHA.get(self.name)
        layers: dict[str, Callable[[], nn.Module]] = {
            "relu": nn.ReLU,
            "sigmoid": nn.Sigmoid,
            "tanh": nn.Tanh,
            "leaky_relu": lambda: nn.LeakyReLU(alpha),
            "prelu": lambda: nn.PReLU(num_parameters=1, init=alpha),  # alpha learned with the weights
            "elu": lambda: nn.ELU(alpha),
            "maxout": lambda: Maxout(self.pieces),
        }
        return layers[self.name]()


class Maxout(nn.Module):
    """max_j (w_j^T x + b_j) over `pieces` affine maps: the preceding layer produces units * pieces
    outputs (features or channels), grouped per unit along dimension 1."""

    def __init__(self, pieces: int):
        super().__init__()
        self.pieces = pieces

    def forward(self, x: Tensor) -> Tensor:
        return x.unflatten(1, (x.shape[1] // self.pieces, self.pieces)).amax(dim=2)


def hidden_block(
    affine: Callable[[int], nn.Module],
    units: int,
    activation: Activation,
    norm: Callable[[int], nn.Module] | None,
    dropout: float,
) -> list[nn.Module]:
    """affine -> [BatchNorm] -> activation (or maxout) -> [Dropout]: BatchNorm before the
    nonlinearity, as the note orders it."""
    width = activation.width(units)
    layers = [affine(width)]
    if norm is not None:
        layers.append(norm(width))
    layers.append(activation.build())
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return layers


def initialize(model: nn.Module, scheme: str, std: float, activation: str = "relu") -> None:
    """Apply an init scheme to every weight matrix/kernel; biases start at zero except for `default` and `uniform`."""
    check_value("model.init", scheme)
    if scheme == "default":
        return
    gain_name = {
        "relu": "relu",
        "leaky_relu": "leaky_relu",
        "prelu": "leaky_relu",
        "tanh": "tanh",
        "sigmoid": "sigmoid",
    }.get(activation, "linear")
    if scheme == "uniform":  # the note's NumPy net: weights and biases from U(-1, 1); norm/PReLU scales kept
        for name, param in model.named_parameters():
            if param.dim() >= 2 or "bias" in name:
                nn.init.uniform_(param, -1.0, 1.0)
        return
    for name, param in model.named_parameters():
        if "weight" not in name or param.dim() < 2:  # biases, and BatchNorm/PReLU scales keep theirs
            if "bias" in name:
                nn.init.zeros_(param)
            continue
        if scheme == "zeros":
            nn.init.zeros_(param)
        elif scheme == "normal":
            nn.init.normal_(param, mean=0.0, std=std)
        elif scheme == "xavier":
            nn.init.xavier_normal_(param, gain=nn.init.calculate_gain(gain_name))
        elif scheme == "he":  # derived for ReLU, as the note presents it
            nn.init.kaiming_normal_(param, nonlinearity="relu")
