"""Spiking neurons: golden trajectories, a scalar oracle, fused == reference (values and
gradients), gradcheck of the fused backward, snnTorch equivalence, module API and bad input."""

from __future__ import annotations

import math

import pytest
import torch

import neuroplast.neurons._lif_fused as lif_fused
import neuroplast.neurons.spiking as spk
from neuroplast.neurons import surrogate as sg
from neuroplast.neurons.mpr import mpr_inverse
from neuroplast.neurons.spiking import (
    IF,
    LIF,
    LIFParams,
    LIFState,
    lif_multistep,
    lif_multistep_reference,
    lif_step,
    mpr,
    mpr_grad,
    quantization_error,
    reset_states,
    snntorch_leaky_params,
)

# ----------------------------------------------------------------------------- oracle


def _phi_scalar(u: float, variant: str = "code") -> float:
    if u > 1:
        return u ** (1 / 3)
    if u < 0:
        return 1 - (1 - u) ** (1 / 3) if variant == "code" else -((-u) ** (1 / 3))
    return math.tanh(3 * (u - 0.5)) / (2 * math.tanh(1.5)) + 0.5


def _oracle(xs: list[float], beta: float, th: float, reset: str, reset_by: float | None = None,
            use_mpr: str | None = None, v0: float = 0.0) -> tuple[list[float], list[float], list[float]]:
    """Plain-Python LIF for one neuron: (spikes, h before reset, v after reset)."""
    v, out, hs, vs = v0, [], [], []
    r = th if reset_by is None else reset_by
    for x in xs:
        h = beta * v + x
        z = _phi_scalar(h, use_mpr) if use_mpr else h
        s = 1.0 if z > th else 0.0
        v = h - r * s if reset == "subtract" else (h * (1 - s) if reset == "zero" else h)
        out.append(s)
        hs.append(h)
        vs.append(v)
    return out, hs, vs


def _run(fn, xs, **kw):  # one neuron, batch 1
    x = torch.tensor(xs, dtype=torch.float64).view(-1, 1, 1)
    s, st, h = fn(x, None, LIFParams(**kw), return_membrane=True)
    return s.flatten().tolist(), h.flatten().tolist(), st.v.item()


# ----------------------------------------------------------------------------- golden trajectories

X = [0.6, 0.6, 0.6, 1.5, 0.0, 0.0]
GOLDEN = {
    # (beta, reset): (spikes, pre-reset membrane h) worked by hand, threshold 1
    (0.5, "subtract"): ([0, 0, 1, 1, 0, 0], [0.6, 0.9, 1.05, 1.525, 0.2625, 0.13125]),
    (0.5, "zero"): ([0, 0, 1, 1, 0, 0], [0.6, 0.9, 1.05, 1.5, 0.0, 0.0]),
    (0.5, "none"): ([0, 0, 1, 1, 1, 0], [0.6, 0.9, 1.05, 2.025, 1.0125, 0.50625]),
    (1.0, "subtract"): ([0, 1, 0, 1, 1, 0], [0.6, 1.2, 0.8, 2.3, 1.3, 0.3]),  # IF
    (1.0, "zero"): ([0, 1, 0, 1, 0, 0], [0.6, 1.2, 0.6, 2.1, 0.0, 0.0]),
}


@pytest.mark.parametrize("fn", [lif_multistep, lif_multistep_reference], ids=["fused", "reference"])
@pytest.mark.parametrize("key", list(GOLDEN), ids=str)
def test_golden_trajectories(fn, key) -> None:
    beta, reset = key
    spikes, hs = GOLDEN[key]
    s, h, _ = _run(fn, X, beta=beta, threshold=1.0, reset=reset)
    assert s == spikes
    assert h == pytest.approx(hs, abs=1e-12)


def test_subtract_reset_keeps_the_residual() -> None:
    # h = 1.05 fires; subtract keeps 0.05 (next h = 0.025 + 1.5), zero reset loses it (next h = 1.5)
    _, h_sub, _ = _run(lif_multistep, X, beta=0.5, threshold=1.0, reset="subtract")
    _, h_zero, _ = _run(lif_multistep, X, beta=0.5, threshold=1.0, reset="zero")
    assert h_sub[3] - h_zero[3] == pytest.approx(0.5 * 0.05)


def test_golden_mpr_trajectory() -> None:
    # InfLoR-SNN setting: V_th = 0.5 on phi(u), soft reset subtracts the spike (1.0)
    xs = [0.4, 0.4, 0.4, -0.3, 1.2, 0.1]
    s, h, v = _run(lif_multistep, xs, beta=0.5, threshold=0.5, reset="subtract", reset_by=1.0, mpr="code")
    # h: 0.4 (phi=0.3455 < .5) ; 0.6 (phi=.6545 fires, v=-.4) ; 0.2 ; -0.2 ; 1.1 (fires) ; 0.15
    assert s == [0, 1, 0, 0, 1, 0]
    assert h == pytest.approx([0.4, 0.6, 0.2, -0.2, 1.1, 0.15], abs=1e-12)
    assert v == pytest.approx(0.15)


@pytest.mark.parametrize("reset", spk.RESETS)
@pytest.mark.parametrize("use_mpr", [None, "code", "cube_root"])
@pytest.mark.parametrize("fn", [lif_multistep, lif_multistep_reference], ids=["fused", "reference"])
def test_matches_scalar_oracle(reset, use_mpr, fn) -> None:
    g = torch.Generator().manual_seed(3)
    xs = (torch.randn(60, generator=g, dtype=torch.float64) * 0.7 + 0.2).tolist()
    th = 0.5 if use_mpr else 0.8
    want_s, want_h, want_v = _oracle(xs, 0.8, th, reset, 1.0 if use_mpr else None, use_mpr)
    rb = 1.0 if use_mpr else None
    s, h, v = _run(fn, xs, beta=0.8, threshold=th, reset=reset, reset_by=rb, mpr=use_mpr)
    assert s == want_s
    assert h == pytest.approx(want_h, abs=1e-12)
    assert v == pytest.approx(want_v[-1], abs=1e-12)


# ----------------------------------------------------------------------------- MPR


def test_mpr_worked_values_and_continuity() -> None:
    u = torch.tensor([0.0, 0.5, 1.0, 8.0, -7.0, 0.25], dtype=torch.float64)
    want = [0.0, 0.5, 1.0, 2.0, -1.0, math.tanh(-0.75) / (2 * math.tanh(1.5)) + 0.5]
    assert mpr(u).tolist() == pytest.approx(want, abs=1e-12)
    assert mpr(torch.tensor([-8.0], dtype=torch.float64), "cube_root").item() == pytest.approx(-2.0)
    eps = 1e-9
    for a in (0.0, 1.0):
        for variant in spk.MPR_VARIANTS:
            lo, hi = mpr(torch.tensor([a - eps, a + eps], dtype=torch.float64), variant).tolist()
            assert hi - lo == pytest.approx(0.0, abs=1e-2 if (variant == "cube_root" and a == 0) else 1e-7)


def test_mpr_is_increasing_and_pulls_towards_spikes() -> None:
    u = torch.linspace(-5, 5, 10001, dtype=torch.float64)
    z = mpr(u)
    assert torch.all(z[1:] > z[:-1])
    # code variant: phi(u) is closer to the nearest spike value in {0, 1} than u (or equal)
    target = (u > 0.5).to(u.dtype)
    assert torch.all((z - target).abs() <= (u - target).abs() + 1e-12)


@pytest.mark.parametrize("variant", spk.MPR_VARIANTS)
def test_mpr_grad_matches_autograd(variant) -> None:
    u = (torch.linspace(-3, 3, 601, dtype=torch.float64) + 1e-3).requires_grad_()
    (g,) = torch.autograd.grad(mpr(u, variant).sum(), u)
    assert torch.isfinite(g).all()
    torch.testing.assert_close(g, mpr_grad(u.detach(), variant))


def test_quantization_error_worked_example() -> None:
    u = torch.tensor([0.2, 0.8, 1.0, -0.5])
    o = torch.tensor([0.0, 1.0, 1.0, 0.0])
    assert quantization_error(u, o).item() == pytest.approx((0.2 + 0.2 + 0 + 0.5) / 4)
    z = mpr(u)
    assert quantization_error(u, o, "code").item() == pytest.approx((z - o).abs().mean().item())
    assert quantization_error(u, o, "code") < quantization_error(u, o)
    with pytest.raises(ValueError, match="spikes: expected the shape"):
        quantization_error(u, o[:2])


# ----------------------------------------------------------------------------- fused == reference


def _configs():
    for reset in spk.RESETS:
        for detach in (False, True):
            for use_mpr in (None, "code"):
                yield reset, detach, use_mpr


@pytest.fixture
def small_blocks(monkeypatch):
    """Exercise the column blocks and time chunks of the fused kernels on small tensors."""
    monkeypatch.setattr(lif_fused, "_BLOCK", 4)
    monkeypatch.setattr(lif_fused, "_GRAIN", 9)


@pytest.mark.parametrize("reset,detach,use_mpr", list(_configs()))
@pytest.mark.parametrize("per_neuron", [False, True])
def test_fused_equals_reference_values_and_grads(small_blocks, reset, detach, use_mpr, per_neuron) -> None:
    g = torch.Generator().manual_seed(0)
    T, B, N = 9, 3, 5
    shape = (N,) if per_neuron else ()
    dt = torch.float64
    x = (torch.randn(T, B, N, generator=g, dtype=dt) * 0.8 + 0.3).requires_grad_()
    v0 = (torch.randn(B, N, generator=g, dtype=dt) * 0.3).requires_grad_()
    beta = (0.8 + torch.rand(shape, generator=g, dtype=dt) * 0.1).requires_grad_()
    th = torch.full(shape, 0.5 if use_mpr else 0.7, dtype=dt).requires_grad_(per_neuron)
    w_s = torch.randn(T, B, N, generator=g, dtype=dt)
    w_v = torch.randn(B, N, generator=g, dtype=dt)
    results = []
    for fn in (lif_multistep_reference, lif_multistep):
        p = LIFParams(beta=beta, threshold=th, reset=reset, surrogate=sg.ATan(), mpr=use_mpr,
                      detach_reset=detach)
        s, st, h = fn(x, LIFState(v0), p, return_membrane=True)
        loss = (s * w_s).sum() + (st.v * w_v).sum()
        wrt = [x, v0, beta] + ([th] if per_neuron else [])
        results.append([s, st.v, h, *torch.autograd.grad(loss, wrt)])
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("surrogate", [sg.Sigmoid(), sg.FastSigmoid(), sg.Triangle(0.7)], ids=repr)
def test_fused_grads_with_each_surrogate_and_unused_outputs(small_blocks, surrogate) -> None:
    g = torch.Generator().manual_seed(1)
    x = (torch.randn(7, 2, 6, generator=g, dtype=torch.float64) + 0.4).requires_grad_()
    p = LIFParams(beta=0.9, threshold=1.0, surrogate=surrogate)
    grads = []
    for fn in (lif_multistep_reference, lif_multistep):
        s, st = fn(x, None, p)
        grads.append(torch.autograd.grad(s.sum(), x)[0])  # final state unused
        grads.append(torch.autograd.grad(fn(x, None, p)[1].v.sum(), x)[0])  # spikes unused
    torch.testing.assert_close(grads[2], grads[0])
    torch.testing.assert_close(grads[3], grads[1])


def test_fused_float32_matches_reference_and_snn_scale(small_blocks) -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(50, 4, 33, generator=g) * 0.6 + 0.3
    p = LIFParams(beta=0.9, threshold=1.0)
    s_f, st_f = lif_multistep(x, None, p)
    s_r, st_r = lif_multistep_reference(x, None, p)
    assert (s_f != s_r).float().mean().item() < 1e-3  # float32 rounding may flip a borderline spike
    assert s_f.mean().item() > 0.05  # the test input actually spikes


class _SmoothSigmoid(sg.Sigmoid):
    """Forward = the surrogate's primitive, so the true gradient equals the surrogate one."""

    def heaviside(self, x: torch.Tensor) -> torch.Tensor:
        return self.primitive(x)


@pytest.mark.parametrize("reset", spk.RESETS)
@pytest.mark.parametrize("use_mpr,per_neuron", [(None, False), (None, True), ("code", True)])
def test_gradcheck_fused_backward(small_blocks, reset, use_mpr, per_neuron) -> None:
    g = torch.Generator().manual_seed(4)
    T, B, N = 5, 2, 3
    shape = (N,) if per_neuron else ()
    dt = torch.float64
    x = (torch.randn(T, B, N, generator=g, dtype=dt) * 0.8 + 0.3).requires_grad_()
    v0 = (torch.randn(B, N, generator=g, dtype=dt) * 0.3).requires_grad_()
    beta = torch.full(shape, 0.8, dtype=dt, requires_grad=True)
    th = torch.full(shape, 0.5, dtype=dt, requires_grad=True)

    def f(x, v0, beta, th):
        p = LIFParams(beta=beta, threshold=th, reset=reset, surrogate=_SmoothSigmoid(), mpr=use_mpr)
        s, st = lif_multistep(x, LIFState(v0), p)
        return s, st.v

    assert torch.autograd.gradcheck(f, (x, v0, beta, th), fast_mode=True)


def test_decay_input_and_reset_by(small_blocks) -> None:
    g = torch.Generator().manual_seed(5)
    x = (torch.randn(8, 2, 3, generator=g, dtype=torch.float64) + 1.0).requires_grad_()
    beta = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    p = LIFParams(beta=beta, threshold=0.4, decay_input=True, reset_by=0.9)
    out = []
    for fn in (lif_multistep_reference, lif_multistep):
        s, _ = fn(x, None, p)
        out.append((s, *torch.autograd.grad((s * torch.arange(3.0, dtype=torch.float64)).sum(), [x, beta])))
    for a, b in zip(*out, strict=True):
        torch.testing.assert_close(b, a)
    # the input is scaled by (1 - beta) = 0.3: a single step of 1.0 gives h = 0.3 < 0.4, no spike
    s, _ = lif_multistep(torch.ones(1, 1, 1, dtype=torch.float64), None, p)
    assert s.item() == 0.0


def test_step_function_matches_multistep() -> None:
    g = torch.Generator().manual_seed(6)
    x = torch.randn(12, 3, 4, generator=g, dtype=torch.float64) + 0.5
    p = LIFParams(beta=0.85, threshold=0.9, reset="zero")
    state, outs = None, []
    for t in range(12):
        s, state = lif_step(x[t], state, p)
        outs.append(s)
    s_m, st_m = lif_multistep(x, None, p)
    assert torch.equal(torch.stack(outs), s_m)
    torch.testing.assert_close(state.v, st_m.v)


# ----------------------------------------------------------------------------- snnTorch


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("beta,th", [(0.5, 1.0), (0.9, 0.7), (0.95, 1.0)])
def test_spike_trains_match_snntorch_subtract(dtype, beta, th) -> None:
    snn = pytest.importorskip("snntorch")
    g = torch.Generator().manual_seed(7)
    x = torch.randn(200, 8, 64, generator=g, dtype=dtype) * 0.6 + 0.25
    leaky = snn.Leaky(beta=beta, threshold=th, reset_mechanism="subtract").to(dtype)
    mem, ref = torch.zeros(8, 64, dtype=dtype), []
    for t in range(200):
        s, mem = leaky(x[t], mem)
        ref.append(s)
    ref_s = torch.stack(ref)
    ours, _ = lif_multistep(x, None, snntorch_leaky_params(beta, th))
    assert torch.equal(ours, ref_s)
    assert 0.05 < ref_s.mean().item() < 0.6
    # the documented semantic difference: with reset_by = V_th (the decayed, immediate reset)
    # the trains differ, because snnTorch's subtraction is not decayed
    plain, _ = lif_multistep(x, None, LIFParams(beta=beta, threshold=th))
    assert (plain != ref_s).float().mean().item() > 0.01
    # module form
    mod = LIF(beta=beta, threshold=th, reset_by=th / beta).to(dtype)
    assert torch.equal(mod(x), ref_s)


def test_spike_trains_match_snntorch_zero_reset() -> None:
    snn = pytest.importorskip("snntorch")
    g = torch.Generator().manual_seed(8)
    x = torch.randn(100, 4, 32, generator=g, dtype=torch.float64) * 0.6 + 0.3
    leaky = snn.Leaky(beta=0.8, threshold=1.0, reset_mechanism="zero").to(torch.float64)
    mem, ref = torch.zeros(4, 32, dtype=torch.float64), []
    for t in range(100):
        s, mem = leaky(x[t], mem)
        ref.append(s)
    ours, _ = lif_multistep(x, None, LIFParams(beta=0.8, threshold=1.0, reset="zero"))
    assert torch.equal(ours, torch.stack(ref))


# ----------------------------------------------------------------------------- modules


def test_module_single_step_loop_equals_multi_step() -> None:
    g = torch.Generator().manual_seed(9)
    x = torch.randn(10, 3, 8, generator=g) + 0.5
    multi = LIF(tau=4.0, threshold=0.8, shape=8)
    single = LIF(tau=4.0, threshold=0.8, shape=8, step_mode="single")
    out = torch.stack([single(x[t]) for t in range(10)])
    assert torch.equal(out, multi(x))
    single.reset_state()
    assert single.state is None
    assert torch.equal(single(x[0]), multi(x[:1])[0])


def test_module_state_return_and_carry() -> None:
    g = torch.Generator().manual_seed(10)
    x = torch.randn(10, 2, 4, generator=g) + 0.5
    full = LIF(beta=0.9)(x)
    lif = LIF(beta=0.9, return_state=True)
    s1, st = lif(x[:6])
    s2, _ = lif(x[6:], st)
    assert torch.equal(torch.cat([s1, s2]), full)
    carried = LIF(beta=0.9, stateful=True)
    assert torch.equal(torch.cat([carried(x[:6]), carried(x[6:])]), full)
    assert reset_states(torch.nn.Sequential(torch.nn.Identity(), carried)) == 1
    assert carried.state is None


def test_module_fused_and_reference_modules_agree_with_learnable_params() -> None:
    g = torch.Generator().manual_seed(11)
    x = torch.randn(15, 4, 6, generator=g, dtype=torch.float64) + 0.6
    grads = []
    for fused in (True, False):
        m = LIF(tau=3.0, learn_tau=True, learn_threshold=True, shape=6, fused=fused).double()
        s = m(x)
        (s * torch.arange(6.0, dtype=torch.float64)).sum().backward()
        grads.append((s, m.decay_logit.grad, m.threshold.grad))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)
    assert grads[0][1].abs().sum() > 0 and grads[0][2].abs().sum() > 0


def test_learnable_tau_parameterisation() -> None:
    m = LIF(tau=4.0, learn_tau=True)
    assert m.beta.item() == pytest.approx(0.75)
    assert m.tau.item() == pytest.approx(4.0)
    assert [n for n, _ in m.named_parameters()] == ["decay_logit"]
    fixed = LIF(beta=0.3)
    assert list(fixed.parameters()) == [] and fixed.beta.item() == pytest.approx(0.3)
    assert set(fixed.state_dict()) == {"threshold", "decay"}


def test_state_dict_roundtrip() -> None:
    a = LIF(tau=3.0, learn_tau=True, learn_threshold=True, shape=5)
    with torch.no_grad():
        a.threshold.add_(torch.arange(5.0))
        a.decay_logit.sub_(0.3)
    b = LIF(tau=3.0, learn_tau=True, learn_threshold=True, shape=5)
    b.load_state_dict(a.state_dict())
    x = torch.randn(6, 2, 5)
    assert torch.equal(a(x), b(x))


def test_if_module_and_record_membrane() -> None:
    m = IF(threshold=1.0, record_membrane=True)
    x = torch.tensor(X).view(-1, 1, 1)
    assert m(x).flatten().tolist() == GOLDEN[(1.0, "subtract")][0]
    assert m.membrane_.flatten().tolist() == pytest.approx(GOLDEN[(1.0, "subtract")][1])
    assert m.membrane_.requires_grad is False


def test_conv_shaped_neurons() -> None:
    m = LIF(beta=0.8, shape=(3, 1, 1), learn_threshold=True)
    x = torch.randn(4, 2, 3, 5, 5, requires_grad=True)
    y = m(x)
    y.sum().backward()
    assert y.shape == x.shape and m.threshold.grad.shape == (3, 1, 1)


def test_no_grad_inference_and_dtype_follow_input() -> None:
    m = LIF(beta=0.5)
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    with torch.no_grad():
        y = m(x)
    assert y.dtype == torch.float64 and not y.requires_grad


# ----------------------------------------------------------------------------- bad input


def test_bad_time_layout_is_named() -> None:
    m = LIF(shape=10)
    with pytest.raises(ValueError, match=r"x: expected time-first \[T, B, \.\.\.\].*step_mode='single'"):
        m(torch.randn(4, 10))
    single = LIF(shape=10, step_mode="single")
    with pytest.raises(ValueError, match=r"x: expected \[B, \.\.\.\].*step_mode='multi'"):
        single(torch.randn(5, 4, 10))
    # batch-first data with a time-first state: the error says so
    lif = LIF(return_state=True)
    _, st = lif(torch.randn(20, 8, 10))  # T=20, B=8
    with pytest.raises(ValueError, match=r"state: expected v of shape.*batch-first"):
        lif(torch.randn(8, 20, 10), st)


def test_state_from_a_different_batch_size_is_named() -> None:
    m = LIF(step_mode="single")
    m(torch.randn(32, 10))
    with pytest.raises(ValueError, match=r"state: .*batch size 32 but x has batch size 16.*reset_state\(\)"):
        m(torch.randn(16, 10))
    m.reset_state()
    assert m(torch.randn(16, 10)).shape == (16, 10)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match=r"surrogate: unknown surrogate 'atann'.*did you mean 'atan'"):
        LIF(surrogate="atann")
    with pytest.raises(ValueError, match="reset: expected one of"):
        LIF(reset="hard")
    with pytest.raises(ValueError, match="mpr: expected"):
        LIF(mpr="paper")
    with pytest.raises(ValueError, match="tau: expected a number > 1"):
        LIF(tau=0.5)
    with pytest.raises(ValueError, match=r"beta: expected a number in \(0, 1\)"):
        LIF(beta=1.0)
    with pytest.raises(ValueError, match="step_mode"):
        LIF(step_mode="s")
    with pytest.raises(ValueError, match="reset_by"):
        IF(reset_by=-1.0)
    with pytest.raises(TypeError, match="x: expected a floating-point tensor"):
        LIF()(torch.ones(3, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="x: expected at least one time step"):
        LIF()(torch.ones(0, 2))
    with pytest.raises(ValueError, match="reset: expected one of"):
        lif_step(torch.ones(2), None, LIFParams(reset="soft"))
    with pytest.raises(TypeError, match="surrogate: expected a Surrogate instance"):
        lif_multistep(torch.ones(2, 2), None, LIFParams(surrogate="atan"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="state: expected a LIFState"):
        LIF()(torch.ones(2, 2), torch.zeros(2))  # type: ignore[arg-type]


@pytest.mark.parametrize("variant", spk.MPR_VARIANTS)
def test_mpr_inverse_used_for_firing(variant) -> None:
    y = torch.tensor([-2.0, -0.3, 0.0, 0.2, 0.5, 0.9, 1.0, 1.5, 3.0], dtype=torch.float64)
    torch.testing.assert_close(mpr(mpr_inverse(y, variant), variant), y)
