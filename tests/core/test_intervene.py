"""Clamp / Ablate / Scale / Noise / Patch / SiteMean: only masked neurons change, oracles computed by
hand (hand-built forwards with the masked neurons edited, means computed with torch.mean)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neuroplast.core import (
    Ablate,
    Clamp,
    Noise,
    Patch,
    Recorder,
    Scale,
    Schedule,
    Site,
    SiteMean,
    site_output,
)
from neuroplast.testing import check_attach_detach_identity


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


# -- full-shape values: a (B, T, heads, d_head) site with the head axis 2 ------------------------------
H, D, T_LEN = 3, 4, 5


class Heads(nn.Module):
    """x (B, T, 6) -> per-head values (B, T, H, D) at site "heads" (head axis 2) -> logits (B, T, 2)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(6, H * D)
        self.heads = nn.Identity()
        self.out = nn.Linear(H * D, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.heads(self.proj(x).unflatten(-1, (H, D)))  # (B, T, H, D)
        return self.out(z.flatten(-2))

    def by_hand(self, x: torch.Tensor, edit) -> torch.Tensor:
        return self.out(edit(self.proj(x).unflatten(-1, (H, D))).flatten(-2))


def heads_model(seed: int = 0) -> tuple[Heads, Site, torch.Tensor]:
    torch.manual_seed(seed)
    model = Heads()
    return model, Site("heads", model.heads, 2), torch.randn(4, T_LEN, 6)


def test_clamp_full_shape_value_one_vector_per_head():
    model, site, x = heads_model()
    value = torch.arange(H * D, dtype=torch.float32).reshape(H, D)

    def set_heads(vals, heads):
        def edit(z):
            z = z.clone()
            z[:, :, heads] = vals.expand(z.shape)[:, :, heads]
            return z
        return edit

    with Clamp(model, site, [0, 2], value=value):  # (heads, d_head)
        out = model(x)
    torch.testing.assert_close(out, model.by_hand(x, set_heads(value, [0, 2])), rtol=0, atol=0)
    per_pos = torch.randn(T_LEN, H, D)  # (T, heads, d_head): one vector per head and position
    with Clamp(model, site, [1], value=per_pos):
        out = model(x)
    torch.testing.assert_close(out, model.by_hand(x, set_heads(per_pos, [1])), rtol=0, atol=0)
    col = torch.tensor([[1.0], [-2.0], [3.0]])  # (heads, 1): one number per head, broadcast over d_head
    with Clamp(model, site, None, value=col):
        out = model(x)
    torch.testing.assert_close(out, model.by_hand(x, set_heads(col, [0, 1, 2])), rtol=0, atol=0)
    per_head = torch.tensor([1.0, -2.0, 3.0])  # (N,): still one number per neuron, on the head axis
    with Clamp(model, site, None, value=per_head):
        torch.testing.assert_close(model(x), out, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"factor must be"):
        with Scale(model, site, [1], factor=torch.linspace(0, 2, D)):  # (d_head,) does not reach axis 2
            model(x)
    with Scale(model, site, [1], factor=torch.linspace(0, 2, D).expand(H, D)):
        out = model(x)
    scale = torch.ones(H, D)
    scale[1] = torch.linspace(0, 2, D)
    torch.testing.assert_close(out, model.by_hand(x, lambda z: z * scale))


def test_clamp_value_that_does_not_fit_names_the_expected_shapes():
    model, site, x = heads_model()
    bad = {
        "transposed": torch.zeros(D, H),
        "with batch dim": torch.zeros(4, T_LEN, H, D),
        "wrong length": torch.zeros(H + 1),
        "last dims only": torch.zeros(D + 1),
    }
    for name, value in bad.items():
        with pytest.raises(ValueError, match=r"site 'heads'.*\(3,\).*\(5, 3, 4\).*\(3, 4\).*got shape") as e:
            with Clamp(model, site, [0], value=value):
                model(x)
        assert str(tuple(value.shape)) in str(e.value), name
    conv = nn.Sequential(nn.Conv2d(1, 2, 3))
    with Clamp(conv, "0", [1], value=torch.tensor([[[5.0]], [[6.0]]])):  # (C, 1, 1)
        out = conv(torch.randn(2, 1, 5, 5))
    assert torch.equal(out[:, 1], torch.full((2, 3, 3), 6.0))
    with pytest.raises(ValueError, match=r"value must be.*\(2, 3, 3\).*got shape \(3, 3\)"):
        with Clamp(conv, "0", [1], value=torch.zeros(3, 3)):  # (H, W): does not reach the channel axis
            conv(torch.randn(2, 1, 5, 5))
    assert all(len(m._forward_hooks) == 0 for m in conv.modules())


def test_site_mean_dims_and_clamp_to_the_recorded_mean():
    model, site, x = heads_model()
    x2 = torch.randn(3, T_LEN, 6)
    z = torch.cat([model.proj(v).unflatten(-1, (H, D)) for v in (x, x2)]).detach().double()  # (7, T, H, D)
    with SiteMean(model, site, dims=(0, 1)) as sm, torch.no_grad():
        model(x)
        model(x2)  # streaming over batches of different sizes
    torch.testing.assert_close(sm.mean, z.mean((0, 1)))  # (H, D)
    with SiteMean(model, site, dims=(0,)) as sm_t, torch.no_grad():
        model(torch.cat([x, x2]))
    torch.testing.assert_close(sm_t.mean, z.mean(0))  # (T, H, D)
    with SiteMean(model, site, dims=(0, 3)) as sm_d, torch.no_grad():
        model(torch.cat([x, x2]))
    torch.testing.assert_close(sm_d.mean, z.mean((0, 3)).unsqueeze(-1))  # (T, H, 1)
    with SiteMean(model, site) as sm_n, Recorder(model, site, stats=("mean",)) as rec, torch.no_grad():
        model(x)
        model(x2)
    torch.testing.assert_close(sm_n.mean, rec.stats["heads"]["mean"])  # default: the Recorder's (N,)
    torch.testing.assert_close(sm_n.mean, z.mean((0, 1, 3)))

    with Clamp(model, site, [1], value="mean", stats=sm.stats):
        out = model(x)

    def edit(zz):
        zz = zz.clone()
        zz[:, :, 1] = sm.mean[1].float()
        return zz

    torch.testing.assert_close(out, model.by_hand(x, edit), rtol=0, atol=0)
    with Clamp(model, site, [1], value="mean", stats=rec.stats["heads"]):  # the default: one number
        out = model(x)
    torch.testing.assert_close(
        out, model.by_hand(x, lambda zz: torch.where(torch.arange(H).reshape(H, 1) == 1,
                                                      rec.stats["heads"]["mean"][1].float(), zz)),
        rtol=0, atol=0,
    )
    # state round trip and errors
    other = SiteMean(model, site, dims=(0, 1))
    other.load_state_dict(sm.state_dict())
    assert torch.equal(other.mean, sm.mean)
    with pytest.raises(ValueError, match="batch dim 0"):
        with SiteMean(model, site, dims=(1,)):
            model(x)
    with pytest.raises(ValueError, match="neuron axis 2"):
        with SiteMean(model, site, dims=(0, 2)):
            model(x)
    with pytest.raises(ValueError, match="kept shape changed"):
        with SiteMean(model, site, dims=(0,)):
            model(x)
            model(x[:, :3])
    with pytest.raises(RuntimeError, match="no forward pass"):
        _ = SiteMean(model, site).mean
    with pytest.raises(TypeError, match="dims"):
        SiteMean(model, site, dims=0)
    assert len(model.heads._forward_hooks) == 0


# -- Patch ----------------------------------------------------------------------------------------------
def hidden(model: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    return torch.relu(model[0](x))


def test_patch_from_another_model_equals_a_hand_built_forward():
    model, x = mlp(), torch.randn(4, 5)
    torch.manual_seed(9)
    source = nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 3))
    src_h = hidden(source, x).detach()

    def edit(h):
        h = h.clone()
        h[:, [1, 4]] = src_h[:, [1, 4]]
        return h

    with Patch(model, "1", [1, 4], source=source):
        out = model(x)
    torch.testing.assert_close(out, manual(model, x, edit), rtol=0, atol=0)
    # the same through a cached activation, a one-input cache broadcast over the batch, and a callable
    with Patch(model, "1", [1, 4], source=src_h):
        torch.testing.assert_close(model(x), out, rtol=0, atol=0)
    with Patch(model, "1", [1, 4], source=src_h[:1]):
        out1 = model(x)
    torch.testing.assert_close(out1, manual(model, x, lambda h: torch.where(
        torch.tensor([False, True, False, False, True, False]), src_h[:1], h)), rtol=0, atol=0)
    with Patch(model, "1", [0], source=lambda a: a.mean(0, keepdim=True)):  # batch-mean ablation
        out_m = model(x)
    h = hidden(model, x).detach()
    mean_h = h.clone()
    mean_h[:, 0] = h[:, 0].mean()
    torch.testing.assert_close(out_m, model[2](mean_h))
    # patched units get no gradient; the others keep it
    with Patch(model, "1", [1, 4], source=source):
        model(x).sum().backward()
    g = model[0].weight.grad
    assert torch.equal(g[[1, 4]], torch.zeros(2, 5)) and (g[[0, 2, 3, 5]] != 0).any()
    assert all(p.grad is None for p in source.parameters())


def test_patch_with_the_model_itself_is_the_identity_and_detach_restores_it():
    model, x = mlp(), torch.randn(4, 5)
    plain = model(x)
    with Patch(model, "1", [0, 2, 3], source=model):
        out = model(x)
    assert torch.equal(out, plain)
    torch.manual_seed(1)
    conv = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Conv2d(4, 1, 3))
    xc = torch.randn(2, 2, 7, 7)
    plain_c = conv(xc)
    with Patch(conv, "1", None, source=conv):
        assert torch.equal(conv(xc), plain_c)
    assert torch.equal(model(x), plain)
    assert len(model._forward_pre_hooks) == 0 and len(model[1]._forward_hooks) == 0

    def other(m: nn.Module) -> Patch:
        torch.manual_seed(5)
        return Patch(m, "1", [1, 2], source=nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 3)))

    for factory in (other, lambda m: Patch(m, "1", [1], source=m),
                    lambda m: Patch(m, "1", [1], source=torch.ones(1, 6))):
        check_attach_detach_identity(mlp, factory, lambda: torch.randn(3, 5))


def test_patch_schedule_runs_the_source_only_when_active():
    model, x = mlp(), torch.randn(2, 5)
    plain = model(x)
    torch.manual_seed(3)
    source = nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 3))
    calls = []
    source.register_forward_pre_hook(lambda m, a: calls.append(1))
    patch = Patch(model, "1", [0, 1, 2, 3, 4, 5], source=source, schedule=Schedule(start=1, stop=3)).attach()
    changed = []
    for _ in range(4):
        n = len(calls)
        changed.append((not torch.equal(model(x), plain), len(calls) - n))
        patch.step()
    patch.detach()
    assert changed == [(False, 0), (True, 1), (True, 1), (False, 0)]
    assert patch.state_dict() == {"step": 4}
    with Patch(model, "1", None, source=source):  # every neuron patched: model's readout of source's layer
        torch.testing.assert_close(model(x), model[2](hidden(source, x)), rtol=0, atol=0)


def test_patch_a_module_called_several_times_per_forward():
    class Loop(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cell = nn.Sequential(nn.Linear(4, 4), nn.Tanh())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for _ in range(3):
                x = self.cell(x)
            return x

    torch.manual_seed(0)
    model, source, x = Loop(), Loop(), torch.randn(2, 4)
    with Patch(model, "cell", [0], source=source):
        out = model(x)
    h, hs = x, x  # by hand: neuron 0 of call k comes from the source's call k
    for _ in range(3):
        hs = source.cell(hs)
        h = model.cell(h).clone()
        h[:, 0] = hs[:, 0]
    torch.testing.assert_close(out, h.detach(), rtol=0, atol=0)


def test_patch_errors_name_the_mistake():
    model, x = mlp(), torch.randn(4, 5)
    with pytest.raises(TypeError, match="source must be"):
        Patch(model, "1", [0], source=None)
    with pytest.raises(ValueError, match=r"no module '1' to patch from \(closest: \['10'\]\)"):
        Patch(model, "1", [0], source=nn.ModuleDict({"10": nn.ReLU()}))
    with pytest.raises(ValueError, match="Clamp for a constant"):
        Patch(model, "1", [0], source=torch.tensor(1.0))
    wide = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))
    with pytest.raises(ValueError, match=r"source output has shape \(4, 7\).*\(4, 6\)"):
        with Patch(model, "1", [0], source=wide):
            model(x)
    with pytest.raises(ValueError, match=r"cached source has shape \(3, 6\).*\(4, 6\)"):
        with Patch(model, "1", [0], source=torch.zeros(3, 6)):
            model(x)
    with pytest.raises(TypeError, match="must return a Tensor"):
        with Patch(model, "1", [0], source=lambda a: 1.0):
            model(x)
    with pytest.raises(RuntimeError, match=r"through model\(\.\.\.\)"):
        with Patch(model, "1", [0], source=mlp()):
            model[1](torch.randn(4, 6))  # the site reached directly: the source never ran
    assert all(len(m._forward_hooks) == 0 and len(m._forward_pre_hooks) == 0 for m in model.modules())


def test_per_sample_bool_mask_patches_chosen_heads_at_chosen_positions():
    model, site, x = heads_model()
    torch.manual_seed(4)
    source = Heads()
    src_z = source.proj(x).unflatten(-1, (H, D)).detach()
    where = torch.zeros(T_LEN, H, 1, dtype=torch.bool)  # (T, heads, 1): head 2 at positions 1 and 3
    where[[1, 3], 2] = True
    with Patch(model, site, where, source=source):
        out = model(x)

    def edit(z):
        z = z.clone()
        z[:, [1, 3], 2] = src_z[:, [1, 3], 2]
        return z

    torch.testing.assert_close(out, model.by_hand(x, edit), rtol=0, atol=0)
    with Ablate(model, site, where):
        out = model(x)
    torch.testing.assert_close(out, model.by_hand(x, lambda z: z * ~where), rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"per-sample boolean mask must be.*got shape \(2, 3, 1\)"):
        with Ablate(model, site, torch.zeros(2, H, 1, dtype=torch.bool)):
            model(x)
    with pytest.raises(ValueError, match="scalar"):
        Ablate(model, site, torch.tensor(True)).attach()


def test_site_output_caches_one_activation_and_rejects_other_counts():
    model, x = mlp(), torch.randn(4, 5)
    cached = site_output(model, "1", x)
    assert torch.equal(cached, hidden(model, x)) and not cached.requires_grad
    assert len(model[1]._forward_hooks) == 0

    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.act = nn.Tanh()
            self.unused = nn.ReLU()

        def forward(self, v: torch.Tensor) -> torch.Tensor:
            return self.act(self.act(v))

    for name, times in (("act", 2), ("unused", 0)):
        with pytest.raises(ValueError, match=f"reached {times} times"):
            site_output(Twice(), name, x)
