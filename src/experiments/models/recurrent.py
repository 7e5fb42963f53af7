"""RNN, LSTM and GRU classifiers that read an image row by row (seq_len = H, features = C*W)."""

from collections.abc import Sequence

from torch import Tensor, nn

from experiments.config.rules import check_recurrent_options, check_value
from experiments.models.layers import initialize

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class RecurrentClassifier(nn.Module):
    """A stacked (optionally bidirectional) recurrent net; a linear head reads each direction's last state."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        cell: str = "lstm",
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = False,
        init: str = "default",
        init_std: float = 0.1,
        tbptt_steps: int | None = None,
        dropout: float = 0.0,
        batchnorm: bool = False,
    ):
        super().__init__()
        check_value("model.cell", cell)
        check_recurrent_options(cell, num_layers, dropout, batchnorm)
        channels, _, width = input_shape
        self.directions = 2 if bidirectional else 1
        self.tbptt_steps = tbptt_steps
        self.rnn = CELLS[cell](
            input_size=channels * width,
            hidden_size=hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout,  # between stacked layers, as PyTorch applies it
        )
        self.head = nn.Linear(hidden_size * self.directions, num_classes)
        initialize(self, init, init_std, activation="tanh")

    def forward(self, images: Tensor) -> Tensor:
        batch, channels, height, width = images.shape
        rows = images.permute(0, 2, 1, 3).reshape(batch, height, channels * width)
        state = None
        # Truncated BPTT: the state carried into each chunk of k rows is detached, so gradients flow
        # back at most k steps. Without it the whole sequence is one chunk.
        for chunk in rows.split(self.tbptt_steps or height, dim=1):
            if state is not None and self.tbptt_steps:
                state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
            _, state = self.rnn(chunk, state)
        final = state[0] if isinstance(state, tuple) else state  # LSTM returns (h_n, c_n)
        # final is (layers * directions, N, hidden); the last layer's directions are its last entries.
        # The backward direction's final state has read the whole sequence, from the last row to the first.
        last_layer = final[-self.directions :].transpose(0, 1).reshape(batch, -1)
        return self.head(last_layer)
