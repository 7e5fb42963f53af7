"""SGD, Adam, AdamW and RMSprop over a trial stack's flat [N, P] parameters, with one learning rate and
weight decay per trial.

torch.optim takes one scalar learning rate per parameter group, and the stack is one tensor, so these
apply torch.optim's update rules (the single-tensor formulas of torch 2.x, step for step) with the
hyperparameters as [N] tensors broadcast over each trial's row. Trial i's row moves exactly as its lone
run's parameters move under torch.optim. Weight decay acts on weights only, the first `decayed` columns of
the stack, as in a lone run, where biases and norm scales sit in a group with decay 0.

A step is a fixed handful of element-wise operations, whatever the depth of the model: each per-trial
factor is worked out once, as an [N, 1] column, and the step's temporaries live in buffers kept from step
to step (a stack of 20 networks is 20 networks' worth of memory: a fresh allocation of that size costs more
than the arithmetic on it). Adam on a CPU is the exception: there one pass of torch's fused kernel per
trial row beats a few passes over the stack. The per-trial values move to the parameters' device on the
first step and stay there, and `running` (a bool [N] mask on that device, set by FusedModule) zeroes the
learning rate of stopped trials: a step needs no copy from the host and no wait for the device.
"""

import torch
from torch import Tensor
from torch.optim.adam import adam

PER_TRIAL = ("lr", "weight_decay", "momentum")  # hyperparameters held as [N] tensors, one value per trial


def hyperparameter(values) -> Tensor:
    return torch.as_tensor(values, dtype=torch.float64)  # float32 would turn 0.9 into 0.8999999762


class StackedOptimizer(torch.optim.Optimizer):
    """`stack`: a TrialStack; `lr` and `weight_decay` are [N] (one per trial)."""

    def __init__(self, stack, lr: Tensor, weight_decay: Tensor, **options):
        defaults = {"lr": hyperparameter(lr), "weight_decay": hyperparameter(weight_decay), **options}
        super().__init__([{"params": [stack.flat], "decayed": stack.decayed}], defaults)
        self.running: Tensor | None = None  # bool [N]; False stops a trial's row (learning rate 0)
        self.scratch: dict[str, Tensor] = {}  # the step's temporaries, not optimizer state: never saved
        self.cast: tuple[Tensor, Tensor] | None = None  # (weight decay, its column): cast once, not every step

    def buffer(self, name: str, like: Tensor) -> Tensor:
        """A temporary shaped as `like`, reused from step to step (again after the stack shrinks)."""
        kept = self.scratch.get(name)
        if kept is None or kept.shape != like.shape or kept.device != like.device or kept.dtype != like.dtype:
            kept = self.scratch[name] = torch.empty_like(like)
        return kept

    def column(self, values: Tensor, param: Tensor) -> Tensor:
        """[N] (or one value for all) -> [N, 1] in the parameter's dtype. Factors are worked out in float64
        and cast last, as torch.optim works out its Python-float scalars."""
        return values.to(param.dtype).view(-1, 1)

    def learning_rate(self, group: dict) -> Tensor:
        """Each trial's learning rate, 0 where it no longer runs: [N] in float64."""
        return group["lr"] if self.running is None else group["lr"] * self.running

    def decayed_gradient(self, group: dict, param: Tensor) -> Tensor:
        """L2 through the gradient: each trial's weight decay x its weights, added to their gradient in place."""
        weights, decay = slice(0, group["decayed"]), group["weight_decay"]
        if self.cast is None or self.cast[0] is not decay:  # keep() and a reload give new values
            self.cast = (decay, self.column(decay, param))
        param.grad[:, weights].addcmul_(param[:, weights], self.cast[1])
        return param.grad

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            [param] = group["params"]
            for key in PER_TRIAL:  # once: later steps find them there
                if key in group and group[key].device != param.device:
                    group[key] = group[key].to(param.device)
            if param.grad is not None:
                self.update(group, param, self.state[param])
        return loss

    def update(self, group: dict, param: Tensor, state: dict) -> None:
        raise NotImplementedError

    def keep(self, trials: list[int], replaced: dict[Tensor, Tensor]) -> None:
        """Follow TrialStack.keep: the kept trials' hyperparameters and state, on the new parameters."""
        index = torch.tensor(trials, dtype=torch.long)
        if self.running is not None:
            self.running = self.running.index_select(0, index.to(self.running.device))
        for group in self.param_groups:
            for key in PER_TRIAL:
                if key in group and group[key].dim() > 0:  # a 0-d value is shared by every trial
                    group[key] = group[key].index_select(0, index.to(group[key].device))
            old_params, group["params"] = group["params"], [replaced[param] for param in group["params"]]
            for old, new in zip(old_params, group["params"], strict=True):
                state = self.state.pop(old, {})
                self.state[new] = {
                    key: value.index_select(0, index.to(value.device)) if torch.is_tensor(value) else value
                    for key, value in state.items()
                }


class StackedSGD(StackedOptimizer):
    """SGD with momentum per trial ([N]); a trial at momentum 0 steps by its plain gradient, as torch's does."""

    def __init__(self, stack, lr, weight_decay, momentum: Tensor, nesterov: bool = False):
        momentum = hyperparameter(momentum)
        super().__init__(stack, lr, weight_decay, momentum=momentum, nesterov=nesterov)
        self.with_momentum = bool((momentum > 0).any())  # decided on the host, once

    def update(self, group: dict, param: Tensor, state: dict) -> None:
        grad = self.decayed_gradient(group, param)
        if self.with_momentum:
            momentum = self.column(group["momentum"], param)
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = grad.clone()
            else:  # buffer x 0 + grad: trials without momentum keep their plain gradient
                state["momentum_buffer"].mul_(momentum).add_(grad)
            buffer = state["momentum_buffer"]
            grad = torch.addcmul(grad, momentum, buffer) if group["nesterov"] else buffer
        param.addcmul_(self.column(self.learning_rate(group), param), grad, value=-1.0)


class StackedAdam(StackedOptimizer):
    """Adam (L2 through the gradient) or, with decoupled=True, AdamW (weights shrink by lr x decay). On a CPU
    each trial's row takes torch's fused kernel (`rows_on_cpu`); elsewhere the stack takes the element-wise
    formulas at once."""

    rows_on_cpu = True  # bench/step_ops.py turns it off to count the accelerator's step on a CPU

    def __init__(self, stack, lr, weight_decay, betas=(0.9, 0.999), eps: float = 1e-8, decoupled: bool = False):
        super().__init__(stack, lr, weight_decay, betas=tuple(betas), eps=eps, decoupled=decoupled)

    def update(self, group: dict, param: Tensor, state: dict) -> None:
        lr = self.learning_rate(group)
        if group["decoupled"]:
            grad = param.grad
            param[:, : group["decayed"]].mul_(1 - self.column(lr * group["weight_decay"], param))  # weights only
        else:
            grad = self.decayed_gradient(group, param)
        if not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(param)
            state["exp_avg_sq"] = torch.zeros_like(param)
        state["step"] += 1
        if param.device.type == "cpu" and self.rows_on_cpu:
            self.rows_in_one_pass(group, param, grad, state, lr)
        else:
            self.whole_stack(group, param, grad, state, lr)

    def whole_stack(self, group: dict, param: Tensor, grad: Tensor, state: dict, lr: Tensor) -> None:
        """torch's update, param - step_size x exp_avg / denom, as a fixed handful of element-wise operations
        over the whole stack, whatever the number of trials: the fewest launches, for an accelerator."""
        beta1, beta2 = group["betas"]
        state["exp_avg"].lerp_(grad, 1 - beta1)
        state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        bias_correction1 = 1 - beta1 ** state["step"]
        bias_correction2_sqrt = (1 - beta2 ** state["step"]) ** 0.5
        step_size = self.column(lr / bias_correction1, param)  # [N, 1]: 0 for a stopped trial
        denom = torch.sqrt(state["exp_avg_sq"], out=self.buffer("denom", param))
        denom.div_(bias_correction2_sqrt).add_(group["eps"])
        param.addcdiv_(torch.mul(state["exp_avg"], step_size, out=self.buffer("step", param)), denom, value=-1.0)

    def rows_in_one_pass(self, group: dict, param: Tensor, grad: Tensor, state: dict, lr: Tensor) -> None:
        """torch's own fused Adam kernel, one pass over each trial's row at that trial's rate (0 for a stopped
        trial, read on the device): on a CPU memory traffic, not launches, bounds the step, and the handful of
        passes above cost five times this one (bench/README.md)."""
        beta1, beta2 = group["betas"]
        steps = self.buffer("steps", lr.to(param.dtype)).fill_(state["step"] - 1)  # the kernel advances them
        rows = zip(param.detach(), grad, state["exp_avg"], state["exp_avg_sq"], steps, lr, strict=True)
        for weights, grads, moments, squares, step, rate in rows:
            adam(
                [weights], [grads], [moments], [squares], [], [step],
                foreach=False, capturable=False, differentiable=False, fused=True, grad_scale=None,
                found_inf=None, has_complex=False, amsgrad=False, beta1=beta1, beta2=beta2, lr=rate,
                weight_decay=0.0, eps=group["eps"], maximize=False,
            )  # fmt: skip


class StackedRMSprop(StackedOptimizer):
    """RMSprop (not centered), with momentum per trial; a trial at momentum 0 steps by grad / avg, as torch's."""

    def __init__(self, stack, lr, weight_decay, momentum: Tensor, alpha: float = 0.99, eps: float = 1e-8):
        momentum = hyperparameter(momentum)
        super().__init__(stack, lr, weight_decay, momentum=momentum, alpha=alpha, eps=eps)
        self.with_momentum = bool((momentum > 0).any())  # decided on the host, once

    def update(self, group: dict, param: Tensor, state: dict) -> None:
        grad = self.decayed_gradient(group, param)
        if not state:
            state["square_avg"] = torch.zeros_like(param)
            state["momentum_buffer"] = torch.zeros_like(param)
        state["square_avg"].mul_(group["alpha"]).addcmul_(grad, grad, value=1 - group["alpha"])
        avg = torch.sqrt(state["square_avg"], out=self.buffer("avg", param)).add_(group["eps"])
        lr = self.column(self.learning_rate(group), param)
        if self.with_momentum:  # buffer x 0 + grad / avg for the trials without momentum
            buffer = state["momentum_buffer"]
            buffer.mul_(self.column(group["momentum"], param)).addcdiv_(grad, avg)
            param.addcmul_(lr, buffer, value=-1.0)
        else:
            param.addcdiv_(torch.mul(grad, lr, out=self.buffer("step", param)), avg, value=-1.0)
