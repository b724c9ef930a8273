"""Pair STDP, traces and homeostasis (neuroplast.plasticity.stdp) against closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from neuroplast.plasticity.stdp import (
    STDP,
    AdaptiveThreshold,
    STDPParams,
    SynapticScaling,
    pair_weight_change,
    stdp_step,
)

WIDE = dict(w_min=-100.0, w_max=100.0)  # bounds that never bind


def _run_pair(t_pre: int, t_post: int, params: STDPParams, w0: float = 0.0, steps: int = 20) -> float:
    w = torch.full((1, 1), w0, dtype=torch.float64)
    state = None
    for t in range(steps):
        pre = torch.tensor([[float(t == t_pre)]], dtype=torch.float64)
        post = torch.tensor([[float(t == t_post)]], dtype=torch.float64)
        state = stdp_step(w, pre, post, state, params)
    return float(w)


@pytest.mark.parametrize("delta", [0, 1, 2, 5, 9])
def test_single_pair_potentiation_is_a_plus_exp(delta):
    p = STDPParams(a_plus=0.3, a_minus=0.2, tau_plus=4.0, tau_minus=7.0, **WIDE)
    assert _run_pair(3, 3 + delta, p) == pytest.approx(0.3 * math.exp(-delta / 4.0), rel=1e-12)


@pytest.mark.parametrize("delta", [1, 2, 5, 9])
def test_single_pair_depression_is_minus_a_minus_exp(delta):
    p = STDPParams(a_plus=0.3, a_minus=0.2, tau_plus=4.0, tau_minus=7.0, **WIDE)
    assert _run_pair(3 + delta, 3, p) == pytest.approx(-0.2 * math.exp(-delta / 7.0), rel=1e-12)


def test_pair_window_function_matches_the_online_rule_and_dt():
    p = STDPParams(a_plus=0.1, a_minus=0.05, tau_plus=10.0, tau_minus=5.0, dt=0.5, **WIDE)
    # with dt = 0.5 ms, a pair 4 steps apart is 2 ms apart
    assert _run_pair(2, 6, p) == pytest.approx(0.1 * math.exp(-2.0 / 10.0), rel=1e-12)
    d = torch.tensor([-3.0, 0.0, 2.0])
    expect = torch.tensor([-0.05 * math.exp(-3 / 5), 0.1, 0.1 * math.exp(-2 / 10)])
    torch.testing.assert_close(pair_weight_change(d, p), expect)


def test_all_to_all_equals_sum_over_pairs():
    g = torch.Generator().manual_seed(3)
    T = 60
    pre = (torch.rand(T, generator=g) < 0.2).double()
    post = (torch.rand(T, generator=g) < 0.2).double()
    p = STDPParams(a_plus=0.02, a_minus=0.03, tau_plus=5.0, tau_minus=8.0, **WIDE)
    w = torch.zeros(1, 1, dtype=torch.float64)
    state = None
    for t in range(T):
        state = stdp_step(w, pre[t].view(1, 1), post[t].view(1, 1), state, p)
    total = 0.0
    for tp in torch.nonzero(pre).flatten().tolist():
        for tq in torch.nonzero(post).flatten().tolist():
            total += float(pair_weight_change(float(tq - tp), p))
    assert float(w) == pytest.approx(total, rel=1e-9)


@pytest.mark.parametrize("pairing", ["all", "nearest"])
def test_traces_follow_the_closed_form(pairing):
    g = torch.Generator().manual_seed(0)
    T, tau = 40, 6.0
    spikes = (torch.rand(T, 3, generator=g) < 0.3).double()
    stdp = STDP(3, 1, tau_plus=tau, tau_minus=tau, pairing=pairing)
    w = torch.zeros(1, 3, dtype=torch.float64)
    for t in range(T):
        stdp.step(w, spikes[t].unsqueeze(0), torch.zeros(1, 1, dtype=torch.float64))
        for i in range(3):
            times = [k for k in range(t + 1) if spikes[k, i] > 0]
            if pairing == "all":
                expect = sum(math.exp(-(t - k) / tau) for k in times)
            else:
                expect = math.exp(-(t - times[-1]) / tau) if times else 0.0
            assert float(stdp.pre_trace[0, i]) == pytest.approx(expect, rel=1e-9, abs=1e-12)


def test_multiplicative_rule_scales_with_distance_to_bounds():
    p = STDPParams(
        a_plus=0.5,
        a_minus=0.5,
        tau_plus=3.0,
        tau_minus=3.0,
        w_min=0.0,
        w_max=2.0,
        weight_dependence="multiplicative",
    )
    assert _run_pair(1, 2, p, w0=0.5) == pytest.approx(0.5 + 0.5 * (2.0 - 0.5) * math.exp(-1 / 3), rel=1e-12)
    assert _run_pair(2, 1, p, w0=0.5) == pytest.approx(0.5 - 0.5 * 0.5 * math.exp(-1 / 3), rel=1e-12)


@pytest.mark.parametrize("dep", ["additive", "multiplicative"])
def test_weights_stay_within_bounds(dep):
    g = torch.Generator().manual_seed(1)
    stdp = STDP(
        20, 10, a_plus=0.8, a_minus=0.7, tau_plus=5, tau_minus=5, w_min=-0.2, w_max=0.6, weight_dependence=dep
    )
    w = torch.rand(10, 20, generator=g) * 0.8 - 0.2
    seen_max, seen_min = -1.0, 1.0
    for _ in range(200):
        stdp.step(
            w, (torch.rand(4, 20, generator=g) < 0.5).float(), (torch.rand(4, 10, generator=g) < 0.5).float()
        )
        seen_max, seen_min = max(seen_max, float(w.max())), min(seen_min, float(w.min()))
    lo, hi = float(torch.tensor(-0.2)), float(torch.tensor(0.6))  # the float32 bounds
    assert lo <= seen_min and seen_max <= hi
    assert seen_max > 0.5 and seen_min < -0.1  # the bounds were actually reached


def test_teacher_spikes_drive_potentiation():
    p = STDPParams(a_plus=0.4, a_minus=0.1, tau_plus=5.0, tau_minus=5.0, **WIDE)
    w = torch.zeros(1, 2)
    state = None
    for t in range(6):
        pre = torch.tensor([[float(t == 1), float(t == 4)]])
        teacher = torch.tensor([[float(t == 3)]])
        state = stdp_step(w, pre, torch.zeros(1, 1), state, p, teacher=teacher)
    # input 0 fired 2 steps before the teacher spike, input 1 one step after
    torch.testing.assert_close(w, torch.tensor([[0.4 * math.exp(-2 / 5), -0.1 * math.exp(-1 / 5)]]))
    # "replace": the actual post spike is ignored
    w2 = torch.zeros(1, 1)
    state = None
    for t in range(4):
        state = stdp_step(
            w2,
            torch.tensor([[float(t == 0)]]),
            torch.tensor([[float(t == 1)]]),
            state,
            p,
            teacher=torch.zeros(1, 1),
            teacher_mode="replace",
        )
    assert float(w2) == 0.0


def test_batch_shared_weight_sums_and_per_sample_weights_match_independent_runs():
    g = torch.Generator().manual_seed(5)
    T, B = 30, 3
    pre = (torch.rand(T, B, 4, generator=g) < 0.3).double()
    post = (torch.rand(T, B, 2, generator=g) < 0.3).double()
    kw = dict(a_plus=0.05, a_minus=0.04, tau_plus=4.0, tau_minus=6.0, w_min=-50.0, w_max=50.0)
    shared = torch.zeros(2, 4, dtype=torch.float64)
    per = torch.zeros(B, 2, 4, dtype=torch.float64)
    s1, s2 = STDP(4, 2, **kw), STDP(4, 2, **kw)
    for t in range(T):
        s1.step(shared, pre[t], post[t])
        s2.step(per, pre[t], post[t])
    singles = []
    for b in range(B):
        w = torch.zeros(2, 4, dtype=torch.float64)
        s = STDP(4, 2, **kw)
        for t in range(T):
            s.step(w, pre[t, b : b + 1], post[t, b : b + 1])
        singles.append(w)
    torch.testing.assert_close(per, torch.stack(singles))
    torch.testing.assert_close(shared, torch.stack(singles).sum(0))  # additive, unbounded: sums


def test_state_dict_round_trip_continues_identically():
    g = torch.Generator().manual_seed(2)
    spikes = [
        ((torch.rand(2, 5, generator=g) < 0.4).float(), (torch.rand(2, 3, generator=g) < 0.4).float())
        for _ in range(20)
    ]
    a = STDP(5, 3, a_plus=0.1, a_minus=0.12, tau_plus=5, tau_minus=5)
    wa = torch.full((3, 5), 0.5)
    for pre, post in spikes[:10]:
        a.step(wa, pre, post)
    b = STDP(5, 3, a_plus=0.1, a_minus=0.12, tau_plus=5, tau_minus=5)
    b.load_state_dict(a.state_dict())
    wb = wa.clone()
    for pre, post in spikes[10:]:
        a.step(wa, pre, post)
        b.step(wb, pre, post)
    torch.testing.assert_close(wa, wb)
    torch.testing.assert_close(a.pre_trace, b.pre_trace)


def test_stdp_on_a_spiking_layer_learns_causal_inputs():
    """Input 0 fires 2 ms before a teacher-driven LIF output, input 1 fires 2 ms after: STDP on the
    layer's nn.Linear weight raises w0 and lowers w1."""
    from neuroplast.neurons.spiking import LIFParams, lif_step

    layer = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(0.2)
    stdp = STDP(2, 1, a_plus=0.01, a_minus=0.01, tau_plus=10, tau_minus=10)
    state = None
    params = LIFParams(beta=0.9, threshold=1.0, reset="zero")
    for t in range(100):
        phase = t % 10
        pre = torch.tensor([[float(phase == 1), float(phase == 5)]])
        teacher = torch.tensor([[2.0 if phase == 3 else 0.0]])
        post, state = lif_step(layer(pre).detach() + teacher, state, params)
        stdp.step(layer.weight, pre, post)
    w = layer.weight.detach()[0]
    assert w[0] > 0.2 + 0.05 and w[1] < 0.2 - 0.05
    assert layer.weight.grad is None


def test_bad_input_is_named():
    stdp = STDP(3, 2)
    w = torch.zeros(2, 3)
    stdp.step(w, torch.zeros(4, 3), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="pre: batch size 5 .* 4"):
        stdp.step(w, torch.zeros(5, 3), torch.zeros(5, 2))
    with pytest.raises(ValueError, match="post: expected 2 neurons"):
        stdp.step(w, torch.zeros(4, 3), torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"pre: expected spikes of shape \(B, N\)"):
        stdp.step(w, torch.zeros(7, 4, 3), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="weight: expected shape"):
        stdp.step(torch.zeros(3, 2), torch.zeros(4, 3), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="tau_plus"):
        STDP(3, 2, tau_plus=-1.0)
    with pytest.raises(ValueError, match="weight_dependence"):
        STDP(3, 2, weight_dependence="power")
    stdp.reset()  # a new batch size is fine after reset
    stdp.step(w, torch.zeros(5, 3), torch.zeros(5, 2))


def test_adaptive_threshold_closed_form_and_target_rate():
    th = AdaptiveThreshold(2, theta_0=1.0, alpha=0.3, tau_theta=4.0)
    th.step(torch.tensor([1.0, 0.0]))
    for _ in range(5):
        th.step(torch.zeros(2))
    torch.testing.assert_close(th.theta, torch.tensor([1.0 + 0.3 * math.exp(-5 / 4), 1.0]))
    # target-rate form, no relaxation: firing at exactly rho leaves theta where it started after a period
    h = AdaptiveThreshold(1, theta_0=1.0, alpha=0.2, rho=0.25)
    for t in range(8):
        h.step(torch.tensor([float(t % 4 == 0)]))
    torch.testing.assert_close(h.theta, torch.tensor([1.0]))
    h.step(torch.zeros(1))  # silent: threshold drops by alpha * rho
    torch.testing.assert_close(h.theta, torch.tensor([0.95]))
    sd = h.state_dict()
    h2 = AdaptiveThreshold(1, theta_0=1.0, alpha=0.2, rho=0.25)
    h2.load_state_dict(sd)
    torch.testing.assert_close(h2.theta, h.theta)
    with pytest.raises(ValueError, match="spikes"):
        h.step(torch.zeros(3))


def test_synaptic_scaling_normalises_rows_and_keeps_ratios():
    w = torch.tensor([[1.0, 3.0, 0.0], [0.0, 0.0, 0.0], [2.0, 2.0, 4.0]])
    out = SynapticScaling(2.0).step(w.clone())
    torch.testing.assert_close(out.sum(1), torch.tensor([2.0, 0.0, 2.0]))
    torch.testing.assert_close(out[0, 1] / out[0, 0], torch.tensor(3.0))
    half = SynapticScaling(2.0, rate=0.5).step(w.clone())
    torch.testing.assert_close(half[0], w[0] * (1 + 0.5 * (2.0 / 4.0 - 1)))
    with pytest.raises(ValueError, match="target"):
        SynapticScaling(0.0)
