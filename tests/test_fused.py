"""Fused trials: N networks stacked into one batched model take, trial by trial, the steps their lone runs take."""

import copy

import pytest
import torch
from torch import nn

from experiments.fused.optimizers import StackedAdam, StackedRMSprop, StackedSGD
from experiments.fused.stack import TrialStack
from experiments.models.cnn import LeNet
from experiments.models.mlp import MLP

GRID = [(1e-3, 1e-5), (1e-2, 1e-4), (1e-1, 1e-3)]  # three cells of the lr x weight-decay grid
STEPS = 30


MOMENTA = [0.0, 0.9, 0.5]  # kind "sgd_momenta": one momentum per trial, 0 among them


def lone_optimizer(kind: str, net: nn.Module, lr: float, weight_decay: float, trial: int = 0) -> torch.optim.Optimizer:
    """What ClassifierModule.configure_optimizers builds: decay on the weights, none on the rest."""
    weights = [p for p in net.parameters() if p.dim() > 1]
    others = [p for p in net.parameters() if p.dim() <= 1]
    groups = [{"params": weights, "weight_decay": weight_decay}, {"params": others, "weight_decay": 0.0}]
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True)
    if kind == "sgd_momenta":
        return torch.optim.SGD(groups, lr=lr, momentum=MOMENTA[trial])
    if kind == "rmsprop_momenta":
        return torch.optim.RMSprop(groups, lr=lr, momentum=MOMENTA[trial])
    return (torch.optim.AdamW if kind.startswith("adamw") else torch.optim.Adam)(groups, lr=lr)


def stacked_optimizer(kind: str, stack: TrialStack) -> torch.optim.Optimizer:
    lr = torch.tensor([lr for lr, _ in GRID], dtype=torch.float64)
    decay = torch.tensor([wd for _, wd in GRID], dtype=torch.float64)
    if kind == "sgd":
        return StackedSGD(stack, lr, decay, momentum=0.9, nesterov=True)
    if kind == "sgd_momenta":
        return StackedSGD(stack, lr, decay, momentum=torch.tensor(MOMENTA, dtype=torch.float64))
    if kind == "rmsprop_momenta":
        return StackedRMSprop(stack, lr, decay, momentum=torch.tensor(MOMENTA, dtype=torch.float64))
    optimizer = StackedAdam(stack, lr, decay, decoupled=kind.startswith("adamw"))
    optimizer.rows_on_cpu = not kind.endswith("whole_stack")  # the accelerator's path, run on the CPU
    return optimizer


def batches(shape: tuple[int, ...], count: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(1)
    images = [torch.rand(16, *shape, generator=generator, dtype=torch.float64) for _ in range(count)]
    return [(batch, torch.randint(0, 10, (16,), generator=generator)) for batch in images]


@pytest.mark.parametrize(
    ("kind", "build", "shape"),
    [
        ("adam", lambda: MLP((1, 28, 28), 10, hidden_sizes=[32, 16]), (1, 28, 28)),
        ("sgd", lambda: MLP((1, 28, 28), 10, hidden_sizes=[32], batchnorm=True), (1, 28, 28)),
        ("adamw", lambda: LeNet((3, 32, 32), 10), (3, 32, 32)),
        ("adam_whole_stack", lambda: MLP((1, 28, 28), 10, hidden_sizes=[32, 16]), (1, 28, 28)),
        ("adamw_whole_stack", lambda: LeNet((3, 32, 32), 10), (3, 32, 32)),
        ("sgd_momenta", lambda: MLP((1, 28, 28), 10, hidden_sizes=[32]), (1, 28, 28)),
        ("rmsprop_momenta", lambda: MLP((1, 28, 28), 10, hidden_sizes=[32]), (1, 28, 28)),
    ],
)
def test_fused_trials_take_the_steps_of_their_lone_runs(kind, build, shape):
    torch.manual_seed(0)
    net = build().double()  # float64: any difference is the math, not rounding
    data = batches(shape, STEPS)
    lone_losses, lone_nets = [], []
    for trial, (lr, weight_decay) in enumerate(GRID):
        lone = copy.deepcopy(net)  # trials that share a seed start from the same weights
        optimizer = lone_optimizer(kind, lone, lr, weight_decay, trial)
        losses = []
        for images, labels in data:
            loss = nn.functional.cross_entropy(lone(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        lone_losses.append(losses)
        lone_nets.append(lone)

    stack = TrialStack([copy.deepcopy(net) for _ in GRID])
    optimizer = stacked_optimizer(kind, stack)
    fused_losses = []
    for images, labels in data:
        logits = stack(images)  # [trials, batch, classes]
        per_trial = nn.functional.cross_entropy(logits.transpose(1, 2), labels.expand(len(GRID), -1), reduction="none")
        per_trial = per_trial.mean(dim=1)
        optimizer.zero_grad()
        per_trial.sum().backward()  # trial i's loss depends on trial i's slice only
        optimizer.step()
        fused_losses.append(per_trial.detach())

    fused_losses = torch.stack(fused_losses).T
    assert torch.allclose(fused_losses, torch.tensor(lone_losses, dtype=torch.float64), rtol=1e-5, atol=0)
    for trial, lone in enumerate(lone_nets):
        fused_state = stack.trial_state(trial)
        for name, value in lone.state_dict().items():
            assert torch.allclose(fused_state[name].to(value.dtype), value, rtol=1e-5, atol=1e-12), (trial, name)
    moved = (stack.trial_state(2)[stack.names[0]] - net.state_dict()[stack.names[0]]).abs().max()
    assert moved > 1e-3  # the weights moved: equal because the steps were equal, not because nothing happened


def test_each_trial_keeps_its_own_dropout_masks():
    torch.manual_seed(0)
    net = MLP((1, 28, 28), 10, hidden_sizes=[64], dropout=0.5)
    stack = TrialStack([copy.deepcopy(net) for _ in range(3)]).train()
    logits = stack(torch.rand(4, 1, 28, 28))
    assert not torch.allclose(logits[0], logits[1])  # same weights, same batch: only the masks differ
    stack.eval()
    logits = stack(torch.rand(4, 1, 28, 28))
    assert torch.allclose(logits[0], logits[1]) and torch.allclose(logits[1], logits[2])


def test_a_stopped_trial_leaves_the_stack_and_the_others_go_on_unchanged():
    torch.manual_seed(0)
    net = MLP((1, 28, 28), 10, hidden_sizes=[32]).double()
    data = batches((1, 28, 28), 20)

    def train(stack_or_net, optimizer, steps, fused: bool):
        for images, labels in steps:
            logits = stack_or_net(images)
            if fused:
                expanded = labels.expand(logits.shape[0], -1)
                loss = nn.functional.cross_entropy(logits.transpose(1, 2), expanded, reduction="none").mean(1).sum()
            else:
                loss = nn.functional.cross_entropy(logits, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    stack = TrialStack([copy.deepcopy(net) for _ in GRID])
    optimizer = stacked_optimizer("adam", stack)
    train(stack, optimizer, data[:10], fused=True)
    optimizer.keep([0, 2], stack.keep([0, 2]))  # trial 1 stopped: its slice is gone, compute and all
    assert stack.trials == 2 and all(p.shape[0] == 2 for p in stack.parameters())
    train(stack, optimizer, data[10:], fused=True)
    for position, trial in enumerate([0, 2]):
        lone = copy.deepcopy(net)
        train(lone, lone_optimizer("adam", lone, *GRID[trial]), data, fused=False)
        for name, value in lone.state_dict().items():
            assert torch.allclose(stack.trial_state(position)[name], value, rtol=1e-5, atol=1e-12), (trial, name)


def test_gradients_accumulate_over_batches_and_reuse_one_flat_storage():
    """Two backward passes without zero_grad sum their gradients, as a lone net's do; after zero_grad the next
    gradient is written into the storage the last one used (no fresh [N, P] tensor each step)."""
    torch.manual_seed(0)
    net = LeNet((3, 32, 32), 10).double()
    stack = TrialStack([copy.deepcopy(net) for _ in GRID])
    (first, labels_a), (second, labels_b) = batches((3, 32, 32), 2)
    for images, labels in ((first, labels_a), (second, labels_b)):
        logits = stack(images)
        nn.functional.cross_entropy(logits.transpose(1, 2), labels.expand(len(GRID), -1), reduction="sum").backward()
    for images, labels in ((first, labels_a), (second, labels_b)):
        nn.functional.cross_entropy(net(images), labels, reduction="sum").backward()
    gradients = stack.views(stack.flat.grad)
    for name, parameter in net.named_parameters():
        for trial in range(len(GRID)):
            assert torch.allclose(gradients[name][trial], parameter.grad, rtol=1e-10, atol=1e-12), name
    last = stack.flat.grad  # held, so a fresh tensor could not take its address
    stack.flat.grad = None  # what the optimizer's zero_grad does
    stack(first).sum().backward()
    assert stack.flat.grad.data_ptr() == last.data_ptr()
