"""Homeostatic and random learning-rate regulators (arXiv:2205.08645) against hand-worked examples,
a functional re-computation of the simulated steps, a copied-optimizer oracle and binomial statistics."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn
from torch.func import functional_call

from neuroplast.core.seed import seed_everything
from neuroplast.plasticity.homeostasis import HomeostaticRegulator, RandomRegulator, threshold_effects
from neuroplast.testing import assert_same, check_determinism

EFFECTS = threshold_effects(10, 5)


def _net(seed: int = 0, d_in: int = 6, hidden: int = 8, d_out: int = 10) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ELU(), nn.Linear(hidden, d_out))


def _grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    model.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(model(x), y).backward()


def test_threshold_effects_is_the_papers_split():
    assert threshold_effects(10, 5).tolist() == [-1.0] * 5 + [1.0] * 5
    assert threshold_effects(4, 1).tolist() == [-1.0, 1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="num_classes"):
        threshold_effects(0)


def test_take_moves_eta_by_the_true_class_and_clips_worked_example():
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    reg = HomeostaticRegulator(opt, EFFECTS, step=4e-4, max_lr=1.5e-3)
    assert reg.lr == 1e-3 and opt.param_groups[0]["lr"] == 1e-3
    assert reg.take(7) == pytest.approx(1.4e-3)  # excitatory digit
    assert reg.take(9) == 1.5e-3  # clipped at max_lr
    for expected in (1.1e-3, 7e-4, 3e-4):  # inhibitory digits
        assert reg.take(torch.tensor(2)) == pytest.approx(expected)
    assert reg.take(0) == 1e-8  # would be -1e-4: clipped at the small positive floor (reference: 1e-8)
    assert opt.param_groups[0]["lr"] == reg.lr


def test_param_groups_keep_their_ratio():
    model = _net()
    opt = torch.optim.SGD([{"params": model[0].parameters()}, {"params": model[2].parameters(), "lr": 0.05}],
                          lr=0.1)
    reg = HomeostaticRegulator(opt, EFFECTS)  # eta_0 = 0.1 (first group), delta = eta_0 / 10
    assert reg.delta == pytest.approx(0.01)
    reg.take(8)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.11, 0.055])


def _oracle_accuracy(model: nn.Module, lr: float, x: torch.Tensor, y: torch.Tensor) -> float:
    """Accuracy after theta <- theta - lr * grad, computed functionally (plain SGD)."""
    params = {n: p.detach() - lr * p.grad for n, p in model.named_parameters()}
    with torch.no_grad():
        pred = functional_call(model, params, (x,)).argmax(-1)
    return float((pred == y).double().mean())


def test_decide_matches_a_functional_recomputation_of_both_simulated_steps():
    g = torch.Generator().manual_seed(1)
    outcomes = []
    for trial in range(40):
        model = _net(trial)
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        reg = HomeostaticRegulator(opt, EFFECTS, step=0.4)
        xb, yb = torch.randn(10, 6, generator=g), torch.randint(0, 10, (10,), generator=g)
        xm, ym = torch.randn(20, 6, generator=g), torch.randint(0, 10, (20,), generator=g)
        _grads(model, xb, yb)
        predicted = int(torch.randint(0, 10, (), generator=g))
        leave = _oracle_accuracy(model, 0.5, xm, ym)
        take = _oracle_accuracy(model, 0.5 + 0.4 * float(EFFECTS[predicted]), xm, ym)
        got = reg.decide(model, predicted, xm, ym)
        assert got == (take > leave), f"trial {trial}"
        outcomes.append(got)
    assert any(outcomes) and not all(outcomes)  # both decisions occur: the comparison is exercised


@pytest.mark.parametrize("make_opt", [
    lambda ps: torch.optim.Adam(ps, lr=0.05),
    lambda ps: torch.optim.SGD(ps, lr=0.3, momentum=0.9),
], ids=["adam", "sgd_momentum"])
def test_decide_simulates_any_optimizer_exactly_and_restores_everything(make_opt):
    g = torch.Generator().manual_seed(2)
    model = _net(3)
    opt = make_opt(model.parameters())
    for _ in range(3):  # optimizer state (moments / momentum) is not empty
        _grads(model, torch.randn(10, 6, generator=g), torch.randint(0, 10, (10,), generator=g))
        opt.step()
    reg = HomeostaticRegulator(opt, EFFECTS)
    xb, yb = torch.randn(10, 6, generator=g), torch.randint(0, 10, (10,), generator=g)
    xm, ym = torch.randn(30, 6, generator=g), torch.randint(0, 10, (30,), generator=g)
    _grads(model, xb, yb)
    before = {"params": copy.deepcopy(model.state_dict()), "opt": copy.deepcopy(opt.state_dict()),
              "grads": [p.grad.clone() for p in model.parameters()]}

    def copied_accuracy(lr: float) -> float:  # oracle: step a deep copy of model and optimizer
        m2 = copy.deepcopy(model)
        for p2, p in zip(m2.parameters(), model.parameters(), strict=True):
            p2.grad = p.grad.clone()  # deepcopy does not carry .grad
        o2 = type(opt)(m2.parameters(), **{k: v for k, v in opt.defaults.items() if k != "lr"}, lr=lr)
        o2.load_state_dict(copy.deepcopy(opt.state_dict()))  # load_state_dict may share tensors
        for gr in o2.param_groups:
            gr["lr"] = lr
        o2.step()
        with torch.no_grad():
            return float((m2(xm).argmax(-1) == ym).double().mean())

    model.train()
    for predicted in (2, 8):
        trial = reg.shifted(predicted)
        assert reg._simulated_accuracy(model, trial, xm, ym) == copied_accuracy(trial)
        assert reg.decide(model, predicted, xm, ym) == (copied_accuracy(trial) > copied_accuracy(reg.lr))
    assert model.training
    assert_same(before["params"], model.state_dict(), "parameters")
    assert_same(before["opt"], opt.state_dict(), "optimizer state")
    assert_same(before["grads"], [p.grad for p in model.parameters()], "grads")


def test_regulate_takes_by_the_true_label_not_the_percept():
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    reg = HomeostaticRegulator(opt, EFFECTS, step=0.01)
    reg.decide = lambda *a, **k: True  # the simulation said "take it"
    xm, ym = torch.randn(4, 6), torch.tensor([0, 1, 2, 3])
    assert reg.regulate(model, 8, 3, xm, ym) is True  # perceived an exciting 8, it was an inhibiting 3
    assert reg.lr == pytest.approx(0.09) and reg.decisions_ == reg.taken_ == 1
    reg.decide = lambda *a, **k: False
    assert reg.regulate(model, 8, 3, xm, ym) is False
    assert reg.lr == pytest.approx(0.09) and (reg.decisions_, reg.taken_) == (2, 1) and reg.take_rate == 0.5


def test_neutral_percept_is_never_taken_and_runs_no_simulation():
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    reg = HomeostaticRegulator(opt, [0.0] * 5 + [1.0] * 5)
    reg._simulated_accuracy = None  # would raise if called
    assert reg.decide(model, 3, torch.randn(4, 6), torch.tensor([0, 1, 2, 3])) is False


def test_random_regulator_take_rate_is_binomial_and_moves_by_the_label():
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    reg = RandomRegulator(opt, EFFECTS, step=1e-4, take_prob=0.25, seed=5)
    n, up = 4000, 0
    for i in range(n):
        label = i % 10
        lr_before = reg.lr
        took = reg.regulate(None, None, label)
        delta = reg.lr - lr_before
        assert math.isclose(delta, (1e-4 * (1 if label >= 5 else -1)) if took else 0.0, abs_tol=1e-12)
        up += took and label >= 5
    sd = math.sqrt(n * 0.25 * 0.75)
    assert abs(reg.taken_ - n * 0.25) < 5 * sd
    assert reg.decisions_ == n and opt.param_groups[0]["lr"] == reg.lr


def test_state_dict_restores_eta_into_the_optimizer_and_the_random_stream():
    opt = torch.optim.SGD(_net().parameters(), lr=0.1)
    reg = RandomRegulator(opt, EFFECTS, seed=3)
    for label in range(7):
        reg.regulate(None, None, label)
    state = reg.state_dict()
    future = [reg.regulate(None, None, 9) for _ in range(20)]
    opt2 = torch.optim.SGD(_net().parameters(), lr=0.1)
    reg2 = RandomRegulator(opt2, EFFECTS, seed=99)
    reg2.load_state_dict(state)
    assert opt2.param_groups[0]["lr"] == state["lr"]
    assert [reg2.regulate(None, None, 9) for _ in range(20)] == future and reg2.lr == reg.lr


def test_a_regulated_training_loop_is_deterministic():
    def loop(seed: int) -> dict:
        g = torch.Generator().manual_seed(seed)
        model = _net(seed)
        opt = torch.optim.SGD(model.parameters(), lr=0.2)
        hom = HomeostaticRegulator(opt, EFFECTS)
        x, y = torch.randn(120, 6, generator=g), torch.randint(0, 10, (120,), generator=g)
        trace = []
        for b in range(2, 12):
            xb, yb = x[b * 10:(b + 1) * 10], y[b * 10:(b + 1) * 10]
            logits = model(xb)
            opt.zero_grad()
            nn.functional.cross_entropy(logits, yb).backward()
            hom.regulate(model, logits[0].argmax(), yb[0], x[(b - 2) * 10:b * 10], y[(b - 2) * 10:b * 10])
            opt.step()
            trace.append(hom.lr)
        return {"trace": trace, "params": model.state_dict(), "taken": hom.taken_}

    check_determinism(loop, seed=0, distinct_seed=1)


class _Exploding(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(6, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            raise RuntimeError("boom")
        return self.lin(x)


def test_failure_inside_the_simulation_leaves_model_and_optimizer_unchanged():
    model = _Exploding()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    _grads(model, torch.randn(5, 6), torch.arange(5))
    opt.step()
    _grads(model, torch.randn(5, 6), torch.arange(5))
    reg = HomeostaticRegulator(opt, EFFECTS)
    params, state = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())
    with pytest.raises(RuntimeError, match="boom"):
        reg.regulate(model, 7, 7, torch.randn(3, 6), torch.tensor([1, 2, 3]))
    assert model.training and reg.lr == 0.01 and reg.decisions_ == 0
    assert_same(params, model.state_dict(), "parameters")
    assert_same(state, opt.state_dict(), "optimizer")


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"effects": [[1.0, -1.0]]}, ValueError, "effects"),
    ({"effects": [1.0, float("nan")]}, ValueError, "effects"),
    ({"step": 0.0}, ValueError, "step"),
    ({"lr": -0.1}, ValueError, "lr"),
    ({"min_lr": 0.0}, ValueError, "min_lr"),
    ({"max_lr": 0.01}, ValueError, "lr"),  # eta_0 = 0.1 outside [min_lr, max_lr]
    ({"take_prob": 1.5}, ValueError, "take_prob"),
    ({"take_prob": "half"}, TypeError, "take_prob"),
])
def test_bad_constructor_arguments_are_named(kwargs, exc, match):
    opt = torch.optim.SGD(_net().parameters(), lr=0.1)
    args = {"effects": EFFECTS, **kwargs}
    cls = RandomRegulator if "take_prob" in kwargs else HomeostaticRegulator
    with pytest.raises(exc, match=match):
        cls(opt, **args)
    with pytest.raises(TypeError, match="optimizer"):
        HomeostaticRegulator(_net(), EFFECTS)
    with pytest.raises(TypeError, match="closure"):
        HomeostaticRegulator(torch.optim.LBFGS(_net().parameters()), EFFECTS)


def test_bad_call_arguments_are_named_and_change_nothing():
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    reg = HomeostaticRegulator(opt, EFFECTS)
    _grads(model, torch.randn(4, 6), torch.arange(4))
    params = copy.deepcopy(model.state_dict())
    xm, ym = torch.randn(4, 6), torch.tensor([0, 1, 2, 3])
    cases = [
        ((model, 10, 3, xm, ym), ValueError, "predicted"),
        ((model, 3, -1, xm, ym), ValueError, "label"),
        ((model, 3.0, 3, xm, ym), TypeError, "predicted"),
        ((model, 3, 3, xm, ym[:3]), ValueError, "memory"),
        ((model, 3, 3, xm, torch.tensor([0, 1, 2, 12])), ValueError, "memory_y"),
        ((model, 3, 3, xm, ym.float()), ValueError, "memory_y"),
        (("model", 3, 3, xm, ym), TypeError, "model"),
    ]
    for args, exc, match in cases:
        with pytest.raises(exc, match=match):
            reg.regulate(*args)
    assert reg.lr == 0.1 and reg.decisions_ == 0
    assert_same(params, model.state_dict(), "parameters")
    with pytest.raises(ValueError, match="state"):
        reg.load_state_dict({"lr": 0.2})
    with pytest.raises(ValueError, match="lr"):
        reg.load_state_dict({"lr": -1.0, "decisions": 0, "taken": 0})
    assert reg.lr == 0.1
    rnd = RandomRegulator(opt, EFFECTS)
    with pytest.raises(ValueError, match="generator"):
        rnd.load_state_dict({"lr": 0.2, "decisions": 0, "taken": 0})


def test_seed_everything_does_not_drive_the_random_regulator():
    """Randomness comes only from the regulator's own seed/generator (no global RNG)."""
    draws = []
    for global_seed in (0, 1):
        seed_everything(global_seed)
        reg = RandomRegulator(torch.optim.SGD(_net().parameters(), lr=0.1), EFFECTS, seed=4)
        draws.append([reg.regulate(None, None, 5) for _ in range(30)])
    assert draws[0] == draws[1]
