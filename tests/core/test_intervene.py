"""Clamp / Ablate / Scale / Noise: only masked neurons change, oracles computed by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neuroplast.core import Ablate, Clamp, Noise, Recorder, Scale, Schedule, Site


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 3))


def manual(model: nn.Sequential, x: torch.Tensor, edit) -> torch.Tensor:
    """Oracle: run the MLP by hand with ``edit`` applied to the hidden ReLU output."""
    h = edit(torch.relu(model[0](x)))
    return model[2](h)


def test_clamp_changes_only_masked_neurons():
    model, x = mlp(), torch.randn(4, 5)
    plain_hidden = model[1](model[0](x))
    with Clamp(model, "1", mask=[1, 4], value=2.5):
        seen = []
        handle = model[1].register_forward_hook(lambda m, a, o: seen.append(o.detach()))
        out = model(x)
        handle.remove()
    hidden = seen[0]
    assert torch.equal(hidden[:, [1, 4]], torch.full((4, 2), 2.5))
    unmasked = [0, 2, 3, 5]
    assert torch.equal(hidden[:, unmasked], plain_hidden[:, unmasked])  # bit-identical

    def edit(h):
        h = h.clone()
        h[:, [1, 4]] = 2.5
        return h

    torch.testing.assert_close(out, manual(model, x, edit), rtol=0, atol=0)
    assert torch.equal(model(x), manual(model, x, lambda h: h))  # detached: back to normal


def test_clamp_cuts_gradients_of_clamped_units_only():
    model, x = mlp(), torch.randn(4, 5)
    with Clamp(model, "1", mask=torch.tensor([True, False, False, True, False, False]), value=1.0):
        model(x).sum().backward()
    g = model[0].weight.grad
    assert torch.equal(g[[0, 3]], torch.zeros(2, 5))  # replaced values pass no gradient back

    ref = mlp()
    def edit(h):
        keep = torch.tensor([0.0, 1, 1, 0, 1, 1])
        return h * keep + (1 - keep) * 1.0
    manual(ref, x, edit).sum().backward()
    torch.testing.assert_close(g, ref[0].weight.grad)


def test_clamp_per_neuron_value_and_mean_from_recorder():
    model, x = mlp(), torch.randn(8, 5)
    with Recorder(model, "1", stats=("mean",)) as rec:
        model(x)
    stats = rec.stats["1"]
    values = torch.arange(6.0)
    with Clamp(model, "1", mask=[0, 5], value=values):
        out_v = model(x)
    with Clamp(model, "1", mask=[0, 5], value="mean", stats=stats):
        out_m = model(x)

    def set_cols(vals):
        def edit(h):
            h = h.clone()
            h[:, [0, 5]] = vals[[0, 5]].to(h.dtype)
            return h
        return edit

    torch.testing.assert_close(out_v, manual(model, x, set_cols(values)), rtol=0, atol=0)
    torch.testing.assert_close(out_m, manual(model, x, set_cols(stats["mean"])), rtol=0, atol=0)


def test_callable_mask_on_recorder_stats():
    model, x = mlp(), torch.randn(16, 5)
    with Recorder(model, "1", stats=("frac_active",)) as rec:
        model(x)
    stats = rec.stats["1"]
    quiet = stats["frac_active"] < 0.5
    with Ablate(model, "1", mask=lambda s: s["frac_active"] < 0.5, stats=stats):
        out = model(x)
    torch.testing.assert_close(out, manual(model, x, lambda h: h * (~quiet)), rtol=0, atol=0)
    with pytest.raises(ValueError, match="stats=None"):
        Ablate(model, "1", mask=lambda s: s["mean"] > 0).attach()


def test_conv_channels_and_time_first_tensors():
    torch.manual_seed(1)
    conv = nn.Sequential(nn.Conv2d(2, 4, 3))
    x = torch.randn(3, 2, 5, 5)
    plain = conv(x)
    with Clamp(conv, "0", mask=[2], value=-1.0):  # axis 1 inferred for Conv2d
        out = conv(x)
    assert torch.equal(out[:, 2], torch.full_like(out[:, 2], -1.0))
    assert torch.equal(out[:, [0, 1, 3]], plain[:, [0, 1, 3]])

    seq = nn.Sequential(nn.Identity())  # a [T, B, N] time-first site
    t = torch.randn(7, 3, 5)
    with Clamp(seq, Site("0", seq[0], -1), mask=[0, 4], value=0.5):
        out = seq(t)
    assert torch.equal(out[..., [0, 4]], torch.full((7, 3, 2), 0.5))
    assert torch.equal(out[..., 1:4], t[..., 1:4])


def test_rnn_tuple_output_first_element_is_clamped():
    torch.manual_seed(2)
    rnn = nn.Sequential(nn.LSTM(3, 4))
    x = torch.randn(6, 2, 3)
    out0, (h0, c0) = rnn(x)
    with Clamp(rnn, "0", mask=[1], value=0.0):
        out, (h, c) = rnn(x)
    assert torch.equal(out[..., 1], torch.zeros(6, 2))
    assert torch.equal(out[..., [0, 2, 3]], out0[..., [0, 2, 3]])
    assert torch.equal(h, h0) and torch.equal(c, c0)  # the returned state is left alone


def test_scale_and_ablate():
    model, x = mlp(), torch.randn(4, 5)
    with Scale(model, "1", mask=[2, 3], factor=3.0):
        out = model(x)
    scale = torch.tensor([1.0, 1, 3, 3, 1, 1])
    torch.testing.assert_close(out, manual(model, x, lambda h: h * scale), rtol=0, atol=0)
    with Scale(model, "1", factor=torch.linspace(0, 1, 6)):  # mask=None: every neuron
        out = model(x)
    torch.testing.assert_close(out, manual(model, x, lambda h: h * torch.linspace(0, 1, 6)))
    with Ablate(model, "1", mask=[0]):
        out = model(x)
    torch.testing.assert_close(out, manual(model, x, lambda h: h * torch.tensor([0.0, 1, 1, 1, 1, 1])))


def test_noise_statistics_mask_and_generator():
    seq = nn.Sequential(nn.Identity())
    site = Site("0", seq[0], -1)
    x = torch.zeros(20000, 3)
    with Noise(seq, site, mask=[0, 2], std=torch.tensor([0.5, 9.0, 2.0]),
               generator=torch.Generator().manual_seed(0)):
        out = seq(x)
    assert torch.equal(out[:, 1], torch.zeros(20000))
    # sample std of 20000 normal draws is within 3% of sigma with overwhelming probability
    torch.testing.assert_close(out[:, [0, 2]].std(0), torch.tensor([0.5, 2.0]), rtol=0.03, atol=0)
    assert out[:, [0, 2]].mean(0).abs().max() < 0.05
    runs = []
    for _ in range(2):
        with Noise(seq, site, mask=[0], std=1.0, generator=torch.Generator().manual_seed(3)):
            runs.append(seq(torch.zeros(4, 3)))
    assert torch.equal(runs[0], runs[1])
    with pytest.raises(ValueError, match="std must be >= 0"):
        Noise(seq, site, std=-1.0)


def test_schedule_counter_and_state_dict():
    model, x = mlp(), torch.randn(2, 5)
    plain = model(x)
    clamp = Clamp(model, "1", mask=[0], value=9.0, schedule=Schedule(start=2, stop=4)).attach()
    active = []
    for _ in range(6):
        active.append(not torch.equal(model(x), plain))
        clamp.step()
    assert active == [False, False, True, True, False, False]
    assert clamp.state_dict() == {"step": 6}
    other = Clamp(model, "1", mask=[0], value=9.0, schedule=Schedule(2, 4))
    other.load_state_dict({"step": 3})
    assert other.active and other.step_count == 3
    with pytest.raises(ValueError, match="step"):
        other.load_state_dict({"step": -1})
    clamp.detach()
    with pytest.raises(ValueError, match="stop"):
        Schedule(5, 2)
    with pytest.raises(ValueError, match="start"):
        Schedule(-1)


def test_attach_twice_detach_and_exception_cleanup():
    model = mlp()
    clamp = Clamp(model, "1", mask=[0])
    clamp.attach()
    with pytest.raises(RuntimeError, match="already attached"):
        clamp.attach()
    clamp.detach()
    clamp.detach()  # idempotent
    assert len(model[1]._forward_hooks) == 0
    with pytest.raises(KeyError):
        with Clamp(model, "1", mask=[0]):
            raise KeyError("inside")
    assert len(model[1]._forward_hooks) == 0


def test_mask_and_value_errors_name_site_and_sizes():
    model, x = mlp(), torch.randn(2, 5)
    with pytest.raises(ValueError, match=r"site '1'.*length 4.*6 neurons"):
        with Ablate(model, "1", mask=torch.ones(4, dtype=torch.bool)):
            model(x)
    with pytest.raises(ValueError, match=r"site '1'.*\[-6, 6\).*to 9"):
        with Ablate(model, "1", mask=[0, 9]):
            model(x)
    with pytest.raises(ValueError, match=r"site '1'.*value.*\(6,\).*\(5,\)"):
        with Clamp(model, "1", mask=[0], value=torch.zeros(5)):
            model(x)
    with pytest.raises(ValueError, match="neuron axis 1 does not fit"):
        with Clamp(model, Site("1", model[1], 1), mask=[0]):
            model(torch.randn(5))
    with pytest.raises(ValueError, match="needs stats"):
        with Clamp(model, "1", mask=[0], value="mean"):
            model(x)
    with pytest.raises(ValueError, match="'mean'"):
        Clamp(model, "1", value="median")
    with pytest.raises(TypeError, match="mask"):
        Clamp(model, "1", mask=[0.5]).attach()
    with pytest.raises(ValueError, match="matches 3 modules"):
        Clamp(model, "*", mask=[0])
    assert all(len(m._forward_hooks) == 0 for m in model.modules())


def test_recorder_after_intervention_sees_the_intervened_output():
    model, x = mlp(), torch.randn(3, 5)
    with Clamp(model, "1", mask=[0, 1], value=4.0), Recorder(model, "1", stats=("mean", "var")) as rec:
        model(x)
    assert torch.equal(rec.stats["1"]["mean"][:2], torch.full((2,), 4.0, dtype=torch.float64))
    assert torch.equal(rec.stats["1"]["var"][:2], torch.zeros(2, dtype=torch.float64))
