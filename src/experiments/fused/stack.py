"""N copies of one network trained as one: every parameter stacked to [N, ...], one batched forward.

Each trial's network is built exactly as a lone run builds it (same seed, same weights); `TrialStack`
stacks their parameters and buffers (torch.func.stack_module_state) and runs them all on the same batch
with torch.func.vmap over functional_call. The batched matmuls and convolutions pay the per-step
overhead once for N trials. Trial i's slice sees only its own weights, so its gradient is the gradient
its lone run would compute.
"""

import copy

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap


def _key(name: str) -> str:
    return name.replace(".", "/")  # ParameterDict keys may not contain dots


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
        self.names = list(params)
        self.stacked = nn.ParameterDict({_key(name): nn.Parameter(value) for name, value in params.items()})
        for name, value in buffers.items():
            self.register_buffer(f"buffer_{_key(name)}", value)
        self.buffer_names = list(buffers)
        # The shape of one network, without storage of its own: functional_call swaps in each trial's slice.
        self.blueprint = [copy.deepcopy(nets[0]).to("meta")]  # a list, so it is not a registered submodule
        # A single weight matrix or kernel (dim > 1 in one network) is what weight decay and L1 act on.
        self.weight_names = [name for name in self.names if params[name].dim() > 2]
        # What max-norm acts on: every Linear/Conv weight but the output layer's (callbacks/max_norm.py).
        layers = [(n, m) for n, m in nets[0].named_modules() if isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d)]
        if layers and isinstance(layers[-1][1], nn.Linear):
            layers = layers[:-1]
        self.hidden_weight_names = [f"{name}.weight" for name, _ in layers]

    @property
    def trials(self) -> int:
        return next(iter(self.stacked.values())).shape[0]

    def parameter(self, name: str) -> nn.Parameter:
        return self.stacked[_key(name)]

    def forward(self, inputs: Tensor) -> Tensor:
        """inputs [B, ...], the same batch for every trial -> logits [N, B, classes]."""
        params = {name: self.stacked[_key(name)] for name in self.names}
        buffers = {name: getattr(self, f"buffer_{_key(name)}") for name in self.buffer_names}
        blueprint = self.blueprint[0].train(self.training)

        def one_trial(trial_params: dict, trial_buffers: dict, batch: Tensor) -> Tensor:
            return functional_call(blueprint, (trial_params, trial_buffers), (batch,))

        # randomness="different": each trial draws its own dropout mask, as it would alone
        return vmap(one_trial, in_dims=(0, 0, None), randomness="different")(params, buffers, inputs)

    def trial_state(self, trial: int) -> dict[str, Tensor]:
        """Trial `trial`'s network as an ordinary state dict (the keys of one network)."""
        state = {name: self.stacked[_key(name)][trial].detach().clone() for name in self.names}
        for name in self.buffer_names:
            if name not in self.dropout_rates:  # the lone network's nn.Dropout keeps its rate as an attribute
                state[name] = getattr(self, f"buffer_{_key(name)}")[trial].clone()
        return state

    def weight_l1(self) -> Tensor:
        """sum |w| over each trial's weight matrices and kernels: [N]."""
        return sum(self.parameter(name).abs().flatten(1).sum(dim=1) for name in self.weight_names)

    def keep(self, trials: list[int]) -> dict[nn.Parameter, nn.Parameter]:
        """Drop every trial not in `trials` (stopped ones stop costing compute); returns old -> new parameter,
        for the optimizer to follow (StackedOptimizer.keep)."""
        index = torch.tensor(trials, dtype=torch.long, device=next(iter(self.stacked.values())).device)
        replaced = {}
        for name in self.names:
            old = self.stacked[_key(name)]
            new = nn.Parameter(old.detach().index_select(0, index))
            self.stacked[_key(name)] = new
            replaced[old] = new
        for name in self.buffer_names:
            attribute = f"buffer_{_key(name)}"
            setattr(self, attribute, getattr(self, attribute).index_select(0, index))
        return replaced
