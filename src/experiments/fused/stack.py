"""N copies of one network trained as one: all of a trial's parameters in one row of a flat [N, P] tensor,
one batched forward.

Each trial's network is built exactly as a lone run builds it (same seed, same weights); `TrialStack`
lays their parameters side by side, one row per trial, and runs them all on the same batch with
torch.func.vmap over functional_call, each layer's weights a view into the row. A step's optimizer update
is then a handful of element-wise operations over one tensor, whatever the depth of the model, and the
batched matmuls and convolutions pay the per-step overhead once for N trials. Trial i's row sees only its
own weights, so its gradient is the gradient its lone run would compute.
"""

import copy

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from experiments.models.mlp import MLP
from experiments.training.callbacks.max_norm import hidden_weight_names

# Layers without parameters that act on each element alone: over [trials, batch, units] as over [batch, units]
ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.ELU)


class RowViews(torch.autograd.Function):
    """A stack's per-parameter views of its flat rows, whose gradients the stack writes into its kept flat
    gradient (TrialStack.take_gradients). Autograd's own backward of the views would allocate a fresh [N, P]
    gradient every step, and on a CPU faulting in that many new pages costs more than the step's arithmetic."""

    @staticmethod
    def forward(ctx, flat: Tensor, stack: "TrialStack") -> tuple[Tensor, ...]:
        ctx.stack = stack
        return tuple(stack.stored_views(flat).values())

    @staticmethod
    def backward(ctx, *grads: Tensor) -> tuple[None, None]:
        ctx.stack.take_gradients(grads)
        return None, None  # flat.grad is set by take_gradients


def _key(name: str) -> str:
    return name.replace(".", "/")  # buffer names may not contain dots


class TrialDropout(nn.Module):
    """nn.Dropout whose rate is a buffer, so stacking gives each trial its own rate (and, under vmap with
    randomness="different", its own masks)."""

    def __init__(self, p: float):
        super().__init__()
        self.register_buffer("rate", torch.tensor(float(p)))

    def forward(self, inputs: Tensor) -> Tensor:
        if not self.training:
            return inputs
        keep = (torch.rand_like(inputs) >= self.rate).to(inputs.dtype)
        return inputs * keep / (1 - self.rate)


def with_trial_dropout(net: nn.Module) -> tuple[nn.Module, list[str]]:
    """A copy of `net` with every nn.Dropout replaced by TrialDropout; the names of the rate buffers."""
    net = copy.deepcopy(net)
    rates = []
    for name, module in list(net.named_modules()):
        for child_name, child in module.named_children():
            if isinstance(child, nn.Dropout):
                setattr(module, child_name, TrialDropout(child.p))
                rates.append(f"{name}.{child_name}.rate" if name else f"{child_name}.rate")
    return net, rates


class TrialStack(nn.Module):
    def __init__(self, nets: list[nn.Module]):
        super().__init__()
        if not nets:
            raise ValueError("a trial stack needs at least one network")
        copies = [with_trial_dropout(net) for net in nets]
        nets, self.dropout_rates = [net for net, _ in copies], copies[0][1]
        params, buffers = stack_module_state(nets)
        # A single weight matrix or kernel (dim > 1 in one network) is what weight decay and L1 act on. The
        # weights come first in a row, so decay acts on one slice of it, [:, :decayed], in place.
        self.weight_names = [name for name in params if params[name].dim() > 2]
        self.names = self.weight_names + [name for name in params if name not in self.weight_names]
        self.shapes = [params[name].shape[1:] for name in self.names]
        self.sizes = [shape.numel() for shape in self.shapes]
        self.decayed = sum(size for name, size in zip(self.names, self.sizes, strict=True) if name in self.weight_names)
        # A matrix is stored transposed, [in, out]: the gradient autograd computes for it is then laid out as
        # its row already, and reaches the flat gradient without a copy of its own.
        self.transposed = {name for name in self.names if params[name].dim() == 3}
        rows = [params[name].transpose(1, 2) if name in self.transposed else params[name] for name in self.names]
        self.flat = nn.Parameter(torch.cat([row.detach().flatten(1) for row in rows], dim=1))
        for name, value in buffers.items():
            self.register_buffer(f"buffer_{_key(name)}", value)
        self.buffer_names = list(buffers)
        # The shape of one network, without storage of its own: functional_call swaps in each trial's slice.
        self.blueprint = [copy.deepcopy(nets[0]).to("meta")]  # a list, so it is not a registered submodule
        self.hidden_weight_names = hidden_weight_names(nets[0])  # what max-norm acts on
        self.plain = plain_layers(self.blueprint[0])
        # As RowViews hands them out: a matrix [in, out]; in a plain MLP a bias [1, out], to broadcast over the batch
        self.stored_shapes = [
            (shape[1], shape[0]) if name in self.transposed else (1, *shape) if self.plain is not None else shape
            for name, shape in zip(self.names, self.shapes, strict=True)
        ]
        self.gradient: Tensor | None = None  # flat.grad's storage, kept from step to step

    @property
    def trials(self) -> int:
        return self.flat.shape[0]

    def stored_views(self, rows: Tensor) -> dict[str, Tensor]:
        """A [N, P] tensor laid out as the stack as one view per parameter name, in `stored_shapes`."""
        chunks = rows.split(self.sizes, dim=1)
        shapes = self.stored_shapes
        return {name: chunk.view(-1, *shape) for name, chunk, shape in zip(self.names, chunks, shapes, strict=True)}

    def views(self, rows: Tensor) -> dict[str, Tensor]:
        """A [N, P] tensor laid out as the stack (its weights, their gradients, an optimizer's moments) as one
        view per parameter name, [N, *shape]."""
        views = {}
        for name, chunk, shape in zip(self.names, rows.split(self.sizes, dim=1), self.shapes, strict=True):
            if name in self.transposed:
                views[name] = chunk.view(-1, shape[1], shape[0]).transpose(1, 2)
            else:
                views[name] = chunk.view(-1, *shape)
        return views

    def weights(self) -> dict[str, Tensor]:
        """The stacked weights by name, views that share the flat tensor's storage (no autograd)."""
        return self.views(self.flat.detach())

    def forward(self, inputs: Tensor) -> Tensor:
        """inputs [B, ...], the same batch for every trial -> logits [N, B, classes]."""
        buffers = {name: getattr(self, f"buffer_{_key(name)}") for name in self.buffer_names}
        blueprint = self.blueprint[0].train(self.training)

        def one_trial(trial_params: dict, trial_buffers: dict, batch: Tensor) -> Tensor:
            return functional_call(blueprint, (trial_params, trial_buffers), (batch,))

        # randomness="different": each trial draws its own dropout mask, as it would alone
        stored = dict(zip(self.names, RowViews.apply(self.flat, self), strict=True))
        if self.plain is not None:
            return self.batched_mlp(stored, inputs)
        views = {name: view.transpose(1, 2) if name in self.transposed else view for name, view in stored.items()}
        return vmap(one_trial, in_dims=(0, 0, None), randomness="different")(views, buffers, inputs)

    def batched_mlp(self, stored: dict[str, Tensor], inputs: Tensor) -> Tensor:
        """A plain MLP over every trial at once: each Linear one batched matmul of the stored [N, in, out]
        weights, so a step issues a few calls per layer instead of vmap's views and reshapes around each."""
        hidden = inputs
        for name, layer in self.plain:
            if not isinstance(layer, nn.Linear):
                hidden = layer(hidden)
                continue
            if hidden.dim() == 2:  # the batch every trial shares
                hidden = hidden.expand(self.trials, -1, -1)
            weight, bias = stored[f"{name}.weight"], stored.get(f"{name}.bias")
            hidden = torch.bmm(hidden, weight) if bias is None else torch.baddbmm(bias, hidden, weight)
        return hidden

    def take_gradients(self, grads: tuple[Tensor | None, ...]) -> None:
        """The views' gradients as flat.grad: written into the kept storage after the optimizer's zero_grad
        set it to None, added to it when gradients accumulate over batches."""
        flat = self.flat
        rows = [
            torch.zeros(flat.shape[0], size, dtype=flat.dtype, device=flat.device)
            if grad is None
            else grad.reshape(flat.shape[0], size)  # as stored: a view, no copy
            for size, grad in zip(self.sizes, grads, strict=True)
        ]
        if flat.grad is not None:
            flat.grad.add_(torch.cat(rows, dim=1))
            return
        if self.gradient is None or self.gradient.shape != flat.shape or self.gradient.device != flat.device:
            self.gradient = torch.empty_like(flat)
        flat.grad = torch.cat(rows, dim=1, out=self.gradient)

    def trial_state(self, trial: int) -> dict[str, Tensor]:
        """Trial `trial`'s network as an ordinary state dict (the keys of one network)."""
        state = {
            name: value[trial].clone(memory_format=torch.contiguous_format) for name, value in self.weights().items()
        }
        for name in self.buffer_names:
            if name not in self.dropout_rates:  # the lone network's nn.Dropout keeps its rate as an attribute
                state[name] = getattr(self, f"buffer_{_key(name)}")[trial].clone()
        return state

    def weight_l1(self) -> Tensor:
        """sum |w| over each trial's weight matrices and kernels: [N]."""
        return self.flat[:, : self.decayed].abs().sum(dim=1)

    def keep(self, trials: list[int]) -> dict[nn.Parameter, nn.Parameter]:
        """Drop every trial not in `trials` (stopped ones stop costing compute); returns old -> new parameter,
        for the optimizer to follow (StackedOptimizer.keep)."""
        index = torch.tensor(trials, dtype=torch.long, device=self.flat.device)
        old = self.flat
        self.flat = nn.Parameter(old.detach().index_select(0, index))
        for name in self.buffer_names:
            attribute = f"buffer_{_key(name)}"
            setattr(self, attribute, getattr(self, attribute).index_select(0, index))
        return {old: self.flat}


def plain_layers(net: nn.Module) -> list[tuple[str, nn.Module]] | None:
    """An MLP's layers when it is only a Flatten, Linear layers and element-wise activations (no dropout, norm,
    PReLU or maxout): the stack runs those as batched matmuls itself. None for any other network."""
    if type(net) is not MLP:
        return None
    layers = list(net.layers.named_children())
    first_linear = next((i for i, (_, layer) in enumerate(layers) if isinstance(layer, nn.Linear)), len(layers))
    for index, (_, layer) in enumerate(layers):
        flattens_input = isinstance(layer, nn.Flatten) and index < first_linear
        if not (flattens_input or type(layer) is nn.Linear or type(layer) in ELEMENTWISE):
            return None
    return [(f"layers.{name}", layer) for name, layer in layers]
