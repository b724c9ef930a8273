"""Tests of neuroplast.neurons.perforated: the cascade-correlation score, the correlation gradient
against autograd on the formula, the perforation, the phase controller, state and bad input."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from neuroplast.neurons.perforated import PerforatedBackprop, cascade_correlation
from neuroplast.testing import assert_same


def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(OrderedDict(fc1=nn.Linear(6, 5), act=nn.ReLU(), fc2=nn.Linear(5, 3)))


def _cnn(seed: int = 0, groups: int = 1) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        OrderedDict(conv=nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=groups), act=nn.ReLU(),
                    pool=nn.AdaptiveAvgPool2d(1), flat=nn.Flatten(), fc=nn.Linear(6, 3))
    )


def _xy(n: int = 16, shape: tuple[int, ...] = (6,), seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *shape, generator=g), torch.randint(0, 3, (n,), generator=g)


def _params(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


# -- the score -----------------------------------------------------------------------------------
def test_cascade_correlation_matches_the_formula_loop():
    g = torch.Generator().manual_seed(0)
    d = torch.randn(7, 3, generator=g, dtype=torch.float64)
    e = torch.randn(7, 4, generator=g, dtype=torch.float64)
    dn, en = d.numpy(), e.numpy()
    want = [sum(abs(sum((dn[p, k] - dn[:, k].mean()) * (en[p, o] - en[:, o].mean()) for p in range(7)))
                for o in range(4)) for k in range(3)]
    np.testing.assert_allclose(cascade_correlation(d, e).numpy(), want, rtol=1e-12)


def test_cascade_correlation_worked_example_and_errors():
    d = torch.tensor([[0.0], [1.0], [2.0]])  # centred: -1, 0, 1
    e = torch.tensor([[1.0, 3.0], [1.0, 1.0], [1.0, -1.0]])  # o=0 constant; o=1 centred: 2, 0, -2
    assert cascade_correlation(d, e).tolist() == [4.0]  # |0| + |-2 - 2|
    with pytest.raises(ValueError, match="same P"):
        cascade_correlation(torch.zeros(3, 1), torch.zeros(4, 1))
    with pytest.raises(TypeError, match="tensors"):
        cascade_correlation([[0.0]], torch.zeros(1, 1))


# -- the correlation gradient --------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["linear", "conv", "conv_groups"])
def test_candidate_gradient_is_the_gradient_of_minus_s(kind):
    """With loss = sum(out * R), the error at the site is e = R; the candidate's weight gradient must
    equal autograd's gradient of -S/P, S = sum_jk |sum_p (d - mean d)(e - mean e)|, per neuron j."""
    if kind == "linear":
        model, x, site = _mlp(), _xy()[0], "fc1"
    else:
        model, x, site = _cnn(groups=2 if kind == "conv_groups" else 1), _xy(4, (4, 7, 7))[0], "conv"
    module = model.get_submodule(site)
    pb = PerforatedBackprop(model, site, num_dendrites=2).attach()
    pb.add_dendrites()
    g = pb.banks_[site][0]
    out = {}
    h = module.register_forward_hook(lambda m, a, o: out.setdefault("z", o), prepend=False)
    model(x)
    h.remove()
    z = out["z"]  # the site's output after the dendrite hook
    r = torch.randn(z.shape, generator=torch.Generator().manual_seed(9))
    (z * r).sum().backward()  # the error at the site is e = R
    got_w, got_b = g.weight.grad.clone(), g.bias.grad.clone()
    d = g.dendrites(module, x)  # (.., N, K) or (B, N, K, H, W)
    if kind == "linear":
        dp, ep = d.reshape(-1, 5, 2), r.reshape(-1, 5)
    else:
        dp, ep = d.permute(0, 3, 4, 1, 2).reshape(-1, 6, 2), r.permute(0, 2, 3, 1).reshape(-1, 6)
    p = ep.shape[0]
    s = sum(cascade_correlation(dp[:, j, :], ep[:, j : j + 1]).sum() for j in range(ep.shape[1])) / p
    want_w, want_b = torch.autograd.grad(-s, [g.weight, g.bias])
    torch.testing.assert_close(got_w, want_w, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(got_b, want_b, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(pb.scores_[site], s.detach() * 1.0, rtol=1e-5, atol=1e-8)


def test_correlation_training_raises_the_score_and_leaves_the_function_unchanged():
    model = _mlp()
    x, y = _xy(64)
    pb = PerforatedBackprop(model, ["fc1", "fc2"], num_dendrites=2).attach()
    before_out, before_w = model(x).detach(), _params(model)
    pb.add_dendrites()
    assert pb.phase == "dendrite" and not any(p.requires_grad for p in model.parameters())
    opt = torch.optim.Adam(pb.parameters(), lr=0.05)
    scores = []
    for _ in range(60):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        scores.append(float(pb.scores_["fc1"]))
    assert scores[-1] > 3 * scores[0]
    assert torch.equal(model(x), before_out)  # candidates are not connected (v = 0), neurons frozen
    for a, b in zip(before_w, model.parameters(), strict=True):
        assert torch.equal(a, b)
    pb.freeze_dendrites()
    assert all(p.requires_grad for p in model.parameters())
    assert torch.equal(model(x), before_out)


def test_gradient_objective_trains_candidates_on_the_task_loss():
    model = _mlp()
    x, y = _xy(64)
    pb = PerforatedBackprop(model, ["fc1", "fc2"], objective="gradient").attach()
    pb.add_dendrites()
    loss0 = F.cross_entropy(model(x), y).item()
    opt = torch.optim.Adam(pb.parameters(), lr=0.05)
    assert len(pb.parameters()) == 6  # weight, bias and v on two sites
    for _ in range(40):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert F.cross_entropy(model(x), y).item() < loss0 - 0.05
    assert pb.banks_["fc1"][0].v.abs().sum() > 0


def test_perforation_no_gradient_flows_through_frozen_dendrites():
    model = _mlp()
    x = _xy(8)[0]
    pb = PerforatedBackprop(model, ["fc1", "fc2"]).attach()
    pb.add_dendrites()
    pb.freeze_dendrites()
    with torch.no_grad():
        for gens in pb.banks_.values():
            gens[0].v.uniform_(-2, 2, generator=torch.Generator().manual_seed(4))
    xa = x.clone().requires_grad_(True)
    out = model(xa)
    assert not torch.allclose(out, _plain_forward(model, x))  # the dendrites act on the output
    out.sum().backward()
    # gradient wrt the input and fc1: the plain path only, with fc2's dendrite input detached
    xb = x.clone().requires_grad_(True)
    h = F.linear(xb, model.fc1.weight, model.fc1.bias)  # no hooks
    g1 = pb.banks_["fc1"][0]
    with torch.no_grad():
        d1 = g1.dendrites(model.fc1, x)
    a = torch.relu(h + (d1 * g1.v).sum(-1))
    want = torch.autograd.grad((a @ model.fc2.weight.T).sum(), xb)[0]
    torch.testing.assert_close(xa.grad, want)
    # v gets dL/dv = sum_p e_p d_p with e = 1 at fc2's output
    with torch.no_grad():
        d2 = pb.banks_["fc2"][0].dendrites(model.fc2, a)
    torch.testing.assert_close(pb.banks_["fc2"][0].v.grad, d2.sum(0))
    assert pb.banks_["fc1"][0].weight.grad is None and not pb.banks_["fc1"][0].weight.requires_grad


def _plain_forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        h = torch.relu(F.linear(x, model.fc1.weight, model.fc1.bias))  # no hooks
        return F.linear(h, model.fc2.weight, model.fc2.bias)


def test_conv_dendrites_match_a_reference_convolution_and_unbatched_input():
    model = _cnn(groups=2)
    x = _xy(3, (4, 9, 9))[0]
    pb = PerforatedBackprop(model, "conv", num_dendrites=3).attach()
    pb.add_dendrites()
    pb.freeze_dendrites()
    g = pb.banks_["conv"][0]
    with torch.no_grad():
        g.v.normal_(generator=torch.Generator().manual_seed(2))
        ref_conv = nn.Conv2d(4, 18, 3, stride=2, padding=1, groups=2)
        ref_conv.weight.copy_(g.weight)
        ref_conv.bias.copy_(g.bias)
        d = torch.tanh(ref_conv(x)).reshape(3, 6, 3, 5, 5)  # (B, N, K, H, W)
        want = model.conv._conv_forward(x, model.conv.weight, model.conv.bias) + torch.einsum(
            "bnkhw,nk->bnhw", d, g.v
        )
        got = {}
        hk = model.conv.register_forward_hook(lambda m, a, o: got.setdefault("z", o))
        model(x)
        torch.testing.assert_close(got["z"], want)
        got.clear()
        model.conv(x[0])  # unbatched (C, H, W)
        torch.testing.assert_close(got["z"], want[0])
        hk.remove()


# -- the controller ------------------------------------------------------------------------------
def test_controller_worked_schedule():
    model = _mlp()
    pb = PerforatedBackprop(model, ["fc1", "fc2"], patience=2, dendrite_epochs=2, max_cycles=3,
                            min_delta=0.01).attach()
    script = [
        (0.50, False, "neuron"), (0.505, False, "neuron"),  # +0.005 < min_delta: not an improvement
        (0.50, True, "dendrite"),  # 2 epochs without improvement: plateau -> first cycle
        (0.50, False, "dendrite"), (0.50, True, "neuron"),  # 2 dendrite epochs, then frozen
        (0.60, False, "neuron"), (0.60, False, "neuron"), (0.59, True, "dendrite"),  # 0.60 > 0.50 + 0.01
        (0.0, False, "dendrite"), (0.0, True, "neuron"),
        (0.605, False, "neuron"), (0.6, False, "neuron"), (0.6, False, "done"),  # 0.605 < 0.60 + 0.01
        (0.9, False, "done"),
    ]
    for i, (score, changed, phase) in enumerate(script):
        assert pb.step(score) is changed, i
        assert pb.phase == phase, i
    assert pb.cycle_ == 2 and len(pb.banks_["fc1"]) == 2 and pb.epoch_ == len(script)


def test_controller_stops_at_max_cycles_and_mode_min():
    pb = PerforatedBackprop(_mlp(), "fc1", patience=1, dendrite_epochs=1, max_cycles=1, mode="min").attach()
    assert pb.step(1.0) is False
    assert pb.step(1.0) is True and pb.phase == "dendrite"
    assert pb.step(1.0) is True and pb.phase == "neuron"
    assert pb.step(0.5) is False  # lower loss is better
    assert pb.step(0.5) is False and pb.phase == "done"  # improved, but max_cycles = 1
    pb0 = PerforatedBackprop(_mlp(), "fc1", patience=1, max_cycles=0).attach()
    pb0.step(1.0)
    assert pb0.step(1.0) is False and pb0.phase == "done" and pb0.cycle_ == 0
    with pytest.raises(ValueError, match="val_score"):
        pb0.step(float("nan"))


def test_parameters_per_phase_and_user_frozen_params_stay_frozen():
    model = _mlp()
    model.fc2.bias.requires_grad_(False)
    pb = PerforatedBackprop(model, ["fc1", "fc2"], num_dendrites=2).attach()
    ids = lambda ps: {id(p) for p in ps}  # noqa: E731
    assert ids(pb.parameters()) == ids([model.fc1.weight, model.fc1.bias, model.fc2.weight])
    pb.add_dendrites()
    cands = [p for gens in pb.banks_.values() for p in (gens[0].weight, gens[0].bias)]
    assert ids(pb.parameters()) == ids(cands)
    pb.freeze_dendrites()
    vs = [gens[0].v for gens in pb.banks_.values()]
    assert ids(pb.parameters()) == ids([model.fc1.weight, model.fc1.bias, model.fc2.weight, *vs])
    assert not model.fc2.bias.requires_grad
    pb.add_dendrites()
    pb.detach()  # mid dendrite phase: flags restored
    assert [p.requires_grad for p in model.parameters()] == [True, True, True, False]
    assert pb.num_dendrite_parameters() == 2 * (5 * 2 * 6 + 5 * 2 + 5 * 2 + 3 * 2 * 5 + 3 * 2 + 3 * 2)


# -- state and identity --------------------------------------------------------------------------
def _train_through_a_cycle(
    model: nn.Module, pb: PerforatedBackprop, x: torch.Tensor, y: torch.Tensor
) -> None:
    opt = torch.optim.Adam(pb.parameters(), lr=0.05)
    for score in (0.1, 0.1, 0.1, 0.1, 0.1):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if pb.step(score):
            opt = torch.optim.Adam(pb.parameters(), lr=0.05)


def test_state_dict_round_trip_restores_function_and_continues_identically():
    x, y = _xy(32)
    model = _mlp()
    pb = PerforatedBackprop(model, ["fc1", "fc2"], patience=1, dendrite_epochs=2,
                            generator=torch.Generator().manual_seed(5)).attach()
    _train_through_a_cycle(model, pb, x, y)
    assert pb.phase == "neuron" and pb.cycle_ == 1
    state = pb.state_dict()
    model2 = _mlp()
    model2.load_state_dict(model.state_dict())
    pb2 = PerforatedBackprop(model2, ["fc1", "fc2"], patience=1, dendrite_epochs=2).attach()
    pb2.load_state_dict(state)
    assert_same(pb2.state_dict(), state)
    assert torch.equal(model(x), model2(x))
    pb.step(0.1)
    pb2.step(0.1)  # both add a second generation, drawn from the restored generator
    assert_same(pb2.state_dict(), pb.state_dict())


def test_detach_restores_the_model_bit_identically():
    model = _mlp()
    x, y = _xy(32)
    out0, params0 = model(x).detach(), list(model.parameters())
    pb = PerforatedBackprop(model, ["fc1", "fc2"]).attach()
    pb.add_dendrites()
    model(x).sum().backward()
    pb.detach()
    assert list(model.parameters()) == params0
    assert all(p.requires_grad for p in model.parameters())
    assert all(not m._forward_hooks for m in model.modules())
    assert torch.equal(model(x), out0)


def test_same_generator_seed_gives_the_same_dendrites():
    a = PerforatedBackprop(_mlp(), "fc1", generator=torch.Generator().manual_seed(3)).attach()
    b = PerforatedBackprop(_mlp(), "fc1", generator=torch.Generator().manual_seed(3)).attach()
    c = PerforatedBackprop(_mlp(), "fc1", generator=torch.Generator().manual_seed(4)).attach()
    for pb in (a, b, c):
        pb.add_dendrites()
    assert torch.equal(a.banks_["fc1"][0].weight, b.banks_["fc1"][0].weight)
    assert not torch.equal(a.banks_["fc1"][0].weight, c.banks_["fc1"][0].weight)
    rng = torch.random.get_rng_state()
    PerforatedBackprop(_mlp(), "fc1").attach().add_dendrites()
    assert torch.equal(rng, torch.random.get_rng_state())  # the global RNG is not consumed


# -- bad input -----------------------------------------------------------------------------------
def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"sites": ["fc1", "act"]}, TypeError, r"'act' is a ReLU.*Linear, Conv2d"),
        ({"sites": "nope"}, ValueError, "closest names"),
        ({"num_dendrites": 0}, ValueError, "num_dendrites: expected an int >= 1, got 0"),
        ({"num_dendrites": 1.5}, TypeError, "num_dendrites"),
        ({"patience": 0}, ValueError, "patience"),
        ({"dendrite_epochs": -1}, ValueError, "dendrite_epochs"),
        ({"max_cycles": -1}, ValueError, "max_cycles: expected an int >= 0"),
        ({"min_delta": -0.1}, ValueError, r"min_delta: expected a finite number >= 0, got -0.1"),
        ({"min_delta": float("inf")}, ValueError, "min_delta"),
        ({"objective": "hebbian"}, ValueError, r"objective: expected one of \('correlation', 'gradient'\)"),
        ({"mode": "up"}, ValueError, "mode"),
    ],
)
def test_bad_input_is_rejected_at_attach_and_leaves_the_model_unchanged(kwargs, exc, match):
    model = _mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    args = {"sites": ["fc1", "fc2"], **kwargs}
    pb = PerforatedBackprop(model, **args)  # the constructor only stores
    with pytest.raises(exc, match=match):
        pb.attach()
    assert _hooks(model) == 0 and not pb.attached
    assert_same(before, model.state_dict())


def test_wrong_axis_and_phase_misuse_are_rejected():
    from neuroplast.core import find_sites

    model = _cnn()
    with pytest.raises(ValueError, match="neuron axis -1"):
        PerforatedBackprop(model, find_sites(model, "conv", axis=-1)).attach()
    assert _hooks(model) == 0
    pb = PerforatedBackprop(model, "conv").attach()
    with pytest.raises(RuntimeError, match="no dendrite phase"):
        pb.freeze_dendrites()
    pb.add_dendrites()
    with pytest.raises(RuntimeError, match="already running"):
        pb.add_dendrites()
