"""Tests of neuroplast.neurons.gating: the gate formula (worked examples, gradients against autograd),
NeuronGate / NeuronScale on real sites (against a hand-written forward), hardening, firing counts,
safetensors files and bad input (clear errors, model left unchanged)."""

from __future__ import annotations

import math

import pytest
import safetensors
import torch
from torch import nn

from neuroplast.neurons.gating import (
    NeuronGate,
    NeuronScale,
    gate,
    hard_gate,
    load_gate_file,
)


def _sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3))


def _x(n: int = 7) -> torch.Tensor:
    return torch.randn(n, 4, generator=torch.Generator().manual_seed(1))


def _randomise(g: NeuronGate, seed: int = 2) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in g.site_params:
            p.threshold.normal_(0.0, 0.3, generator=gen)
            p.gain.uniform_(0.5, 1.5, generator=gen)


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


# -- the formula -----------------------------------------------------------------------------------
def test_gate_worked_example():
    h = torch.tensor([0.5, -1.0, 0.2])
    t = torch.tensor([0.0, 0.0, 0.2])
    g = torch.tensor([2.0, 1.0, 3.0])
    expected = [2 * 0.5 * _sig(0.5 / 0.5), -1.0 * _sig(-1.0 / 0.5), 3 * 0.2 * 0.5]
    torch.testing.assert_close(gate(h, t, g, 0.5), torch.tensor(expected))
    # hardened: h > t strictly; h == t is closed
    assert hard_gate(h, t, g).tolist() == [1.0, -0.0, 0.0]


@pytest.mark.parametrize(("shape", "tshape"), [((6, 5), (5,)), ((3, 4, 2, 2), (1, 4, 1, 1))])
def test_gate_gradients_match_the_analytic_derivatives(shape, tshape):
    # with s = sigmoid((h - t)/T), u = s (1 - s) / T:  dy/dh = g (s + h u),  dy/dt = -g h u,  dy/dg = h s
    gen = torch.Generator().manual_seed(0)
    h = torch.randn(*shape, dtype=torch.float64, generator=gen, requires_grad=True)
    t = torch.randn(*tshape, dtype=torch.float64, generator=gen, requires_grad=True)
    g = torch.randn(*tshape, dtype=torch.float64, generator=gen, requires_grad=True)
    w = torch.randn(*shape, dtype=torch.float64, generator=gen)
    T = 0.3
    got = torch.autograd.grad((gate(h, t, g, T) * w).sum(), (h, t, g))
    with torch.no_grad():
        s = 1 / (1 + torch.exp(-(h - t) / T))
        u = s * (1 - s) / T
        dh = w * g * (s + h * u)
        expected = (dh, (-w * g * h * u).sum_to_size(t.shape), (w * h * s).sum_to_size(g.shape))
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b)


def test_small_temperature_approaches_the_hard_gate():
    h = torch.linspace(-2, 2, 41)
    t, g = torch.full((41,), 0.05), torch.full((41,), 1.5)
    torch.testing.assert_close(gate(h, t, g, 1e-4), hard_gate(h, t, g), atol=1e-6, rtol=0)


# -- on a model ------------------------------------------------------------------------------------
def test_gate_on_relu_site_equals_hand_written_forward():
    model = _mlp()
    g = NeuronGate(model, "1", temperature=0.2)
    _randomise(g)
    x = _x()
    with g:
        out = model(x)
    p = g.site_params[0]
    h = torch.relu(model[0](x))
    expected = model[2](p.gain * h * torch.sigmoid((h - p.threshold) / 0.2))
    torch.testing.assert_close(out, expected)
    assert g.trainable_parameters() == {"1": 10}  # 2 per neuron, 5 neurons inferred from Linear(4, 5)
    with g, g.hardened():
        hard = model(x)
    torch.testing.assert_close(hard, model[2](p.gain * h * (h > p.threshold).float()))
    assert not g.hard  # restored after the block


def test_gate_on_conv_site_uses_the_channel_axis():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU())
    g = NeuronGate(model, "0", temperature=0.5)
    _randomise(g)
    x = torch.randn(2, 2, 4, 4, generator=torch.Generator().manual_seed(3))
    with g:
        out = model(x)
    p = g.site_params[0]
    h = model[0](x)
    t, gain = p.threshold.view(1, 3, 1, 1), p.gain.view(1, 3, 1, 1)
    torch.testing.assert_close(out, torch.relu(gain * h * torch.sigmoid((h - t) / 0.5)))


def test_only_gate_parameters_get_gradients_and_training_moves_them():
    model = _mlp().requires_grad_(False)
    g = NeuronGate(model, ["1"], temperature=0.1).attach()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(g.parameters(), lr=0.5)
    x, y = _x(16), torch.arange(16) % 3
    losses = []
    for _ in range(10):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
    assert all(p.grad is None for p in model.parameters())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    g.detach()
    assert _hooks(model) == 0


def test_neuron_scale_is_ia3_scaling_initialised_to_ones():
    model = _mlp()
    x = _x()
    ref = model(x)
    s = NeuronScale(model, "1")
    assert torch.equal(s.site_params[0].gain, torch.ones(5)) and s.trainable_parameters() == {"1": 5}
    with s:
        torch.testing.assert_close(model(x), ref)  # ones: the frozen model exactly
        with torch.no_grad():
            s.site_params[0].gain.copy_(torch.tensor([0.0, 1.0, 2.0, 0.5, 1.0]))
        out = model(x)
    h = torch.relu(model[0](x)) * torch.tensor([0.0, 1.0, 2.0, 0.5, 1.0])
    torch.testing.assert_close(out, model[2](h))


def test_firing_rates_worked_example():
    lin = nn.Linear(3, 3)
    with torch.no_grad():
        lin.weight.copy_(torch.eye(3))
        lin.bias.zero_()
    model = nn.Sequential(lin)
    g = NeuronGate(model, "0", temperature=0.1, threshold=torch.tensor([0.0, -1.0, 0.5]))
    x = torch.tensor([[1.0, 0.0, 0.4], [-1.0, -0.5, 0.6], [2.0, -2.0, 0.7], [0.0, 3.0, 0.1]])
    with g, g.hardened(), g.track_firing():
        out = model(x)
    rates = g.firing_rates()["0"]
    # unit 0: h > 0 in rows 0, 2; unit 1: h > -1 in rows 0, 1, 3 but h == 0 in row 0;
    # unit 2: h > 0.5 in rows 1, 2
    assert rates["open"].tolist() == [0.5, 0.75, 0.5]
    assert rates["active"].tolist() == [0.5, 0.5, 0.5]
    assert torch.equal((out != 0).double().mean(0), rates["active"])
    assert g.fired(0.4) == {"0": [0, 1, 2]} and g.fired(0.5) == {"0": []}
    with pytest.raises(RuntimeError, match="track_firing"):
        NeuronGate(model, "0").firing_rates()


def test_float64_model_gives_float64_parameters_and_output():
    model = _mlp().double()
    g = NeuronGate(model, "1")
    assert g.site_params[0].threshold.dtype == torch.float64
    with g:
        assert model(_x().double()).dtype == torch.float64


# -- state and files -------------------------------------------------------------------------------
def test_state_dict_holds_only_gate_parameters_and_temperature():
    model = _mlp()
    g = NeuronGate(model, ["1", "0"], temperature=0.3)
    sd = g.state_dict()
    assert sorted(sd) == ["_extra_state", "site_params.0.gain", "site_params.0.threshold",
                          "site_params.1.gain", "site_params.1.threshold"]
    assert sd["_extra_state"] == {"temperature": 0.3}
    other = NeuronGate(_mlp(), ["1", "0"], temperature=1.0)
    other.load_state_dict(sd)
    assert other.temperature == 0.3


def test_save_and_load_only_the_gate(tmp_path):
    model = _mlp()
    g = NeuronGate(model, ["1", "2"], temperature=0.25)
    _randomise(g)
    path = g.save(tmp_path / "mode")
    assert path.name == "mode.safetensors"
    with safetensors.safe_open(str(path), framework="pt") as f:
        assert sorted(f.keys()) == ["1/gain", "1/threshold", "2/gain", "2/threshold"]
    tensors, meta = load_gate_file(path)
    assert meta == {"sites": ["1", "2"], "temperature": 0.25}
    fresh_model = _mlp()
    fresh = NeuronGate(fresh_model, ["1", "2"], temperature=1.0)
    fresh.load(path)
    assert fresh.temperature == 0.25
    for a, b in zip(g.site_params, fresh.site_params, strict=True):
        assert torch.equal(a.threshold, b.threshold) and torch.equal(a.gain, b.gain)
    x = _x()
    with g:
        y1 = model(x)
    with fresh:  # same base (same seed), same gate: the same outputs
        assert torch.equal(fresh_model(x), y1)
    wrong = NeuronGate(_mlp(), ["1"], temperature=1.0)
    before = [p.clone() for p in wrong.parameters()]
    with pytest.raises(ValueError, match="gates sites"):
        wrong.load(path)
    assert all(torch.equal(a, b) for a, b in zip(before, wrong.parameters(), strict=True))
    assert wrong.temperature == 1.0


def test_load_rejects_a_foreign_safetensors_file(tmp_path):
    import safetensors.torch

    path = tmp_path / "other.safetensors"
    safetensors.torch.save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(ValueError, match="not a neuroplast gate file"):
        load_gate_file(path)


# -- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"temperature": 0.0}, ValueError, "temperature.*> 0.*0.0"),
        ({"temperature": -1.0}, ValueError, "temperature"),
        ({"temperature": float("inf")}, ValueError, "temperature"),
        ({"temperature": float("nan")}, ValueError, "temperature"),
        ({"temperature": "0.1"}, TypeError, "temperature.*str"),
        ({"threshold": float("nan")}, ValueError, "threshold for site '1'"),
        ({"threshold": float("-inf")}, ValueError, "threshold"),
        ({"threshold": torch.zeros(4)}, ValueError, r"expected shape \(5,\).*\(4,\)"),
        ({"threshold": torch.tensor([0.0, 1.0, float("inf"), 0.0, 0.0])}, ValueError, "finite"),
        ({"threshold": {"3": 0.0}}, ValueError, "not gated"),
        ({"gain": float("nan")}, ValueError, "gain"),
        ({"hard": 1}, TypeError, "hard"),
    ],
)
def test_bad_hyperparameters_fail_before_touching_the_model(kwargs, exc, match):
    model = _mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(exc, match=match):
        NeuronGate(model, "1", **kwargs)
    assert _hooks(model) == 0
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_temperature_stays_in_range_after_construction():
    g = NeuronGate(_mlp(), "1", temperature=0.5)
    g.temperature = 0.05  # annealing
    assert g.temperature == 0.05
    for bad in (0.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="temperature"):
            g.temperature = bad
    assert g.temperature == 0.05
    before = [p.clone() for p in g.parameters()]
    bad_state = {k: v + 1 if isinstance(v, torch.Tensor) else v for k, v in g.state_dict().items()}
    bad_state["_extra_state"] = {"temperature": -1.0}
    with pytest.raises(ValueError, match="temperature"):
        g.load_state_dict(bad_state)
    assert all(torch.equal(a, b) for a, b in zip(before, g.parameters(), strict=True))


def test_unsupported_site_type_names_the_type_and_the_supported_ones():
    model = nn.Sequential(nn.Linear(3, 4), nn.LSTM(4, 4), nn.Dropout(0.1))
    for site, name in (("1", "LSTM"), ("2", "Dropout"), ("", "Sequential")):
        msg = rf"site '{site}' is a {name}.*supported module types: Linear, Conv1d"
        with pytest.raises(TypeError, match=msg):
            NeuronGate(model, site)
        with pytest.raises(TypeError, match=name):
            NeuronScale(model, site)
    assert _hooks(model) == 0
    with pytest.raises(ValueError, match="cannot tell how many neurons"):
        NeuronGate(nn.Sequential(nn.ReLU(), nn.Linear(3, 2)), "0")
    with pytest.raises(ValueError, match="matches no module"):
        NeuronGate(model, "nope")


def test_wrong_neuron_axis_is_caught_at_the_first_forward():
    from neuroplast.core import Site

    model = _mlp()
    g = NeuronGate(model, Site("1", model[1], axis=0)).attach()
    msg = r"site '1' has 5 neurons along axis 0, got an output of shape \(7, 5\)"
    with pytest.raises(ValueError, match=msg):
        model(_x())
    g.detach()


def test_attach_twice_is_an_error_and_detach_is_idempotent():
    model = _mlp()
    g = NeuronGate(model, "1").attach()
    with pytest.raises(RuntimeError, match="already attached"):
        g.attach()
    g.detach()
    g.detach()
    assert _hooks(model) == 0 and not g.attached
    with pytest.raises(TypeError, match="call the model"):
        g(_x())
