"""Tests of neuroplast.neurons.astro: golden trajectories worked by hand, reduction to plain LIF,
the astrocyte update as a formula, gradients, modules and bad input."""

from __future__ import annotations

import pytest
import torch

from neuroplast.neurons.astro import (
    AstroLIF,
    AstroParams,
    AstroState,
    RecurrentAstroLIF,
    astro_lif_multistep,
    astro_lif_step,
)
from neuroplast.neurons.spiking import LIFParams, LIFState, lif_multistep_reference, lif_step

# beta = 0.5, V_th = 1, subtract reset, gamma = 1, lambda_a = 0.5, one astrocyte over 2 neurons,
# constant input x = [0.6, 0.3] for 5 steps. By hand (m = gamma a[t-1]):
#  t1: m=0      I=[.6,.3]       h=[.6,.3]            s=[0,0] v=[.6,.3]          a=0
#  t2: m=0      I=[.6,.3]       h=[.9,.45]           s=[0,0] v=[.9,.45]         a=0
#  t3: m=0      I=[.6,.3]       h=[1.05,.525]        s=[1,0] v=[.05,.525]       a=.5*0+.5*.5=.25
#  t4: m=.25    I=[.75,.375]    h=[.775,.6375]       s=[0,0] v=[.775,.6375]     a=.125
#  t5: m=.125   I=[.675,.3375]  h=[1.0625,.65625]    s=[1,0] v=[.0625,.65625]   a=.0625+.25=.3125
GOLDEN_INPUT_S = [[0, 0], [0, 0], [1, 0], [0, 0], [1, 0]]
GOLDEN_INPUT_A = [0.0, 0.0, 0.25, 0.125, 0.3125]
GOLDEN_INPUT_V = [0.0625, 0.65625]
# The same in threshold mode (V_th[t] = 1 - a[t-1]; the subtract reset removes V_th[t]):
#  t1..t3 as above (a = 0 until the spike at t3): v=[.05,.525], a=.25
#  t4: Vth=.75   h=[.625,.5625]      s=[0,0] v=[.625,.5625]        a=.125
#  t5: Vth=.875  h=[.9125,.58125]    s=[1,0] v=[.9125-.875=.0375,.58125]   a=.0625+.25=.3125
GOLDEN_THR_S = [[0, 0], [0, 0], [1, 0], [0, 0], [1, 0]]
GOLDEN_THR_A = [0.0, 0.0, 0.25, 0.125, 0.3125]
GOLDEN_THR_V = [0.0375, 0.58125]


def _params(mode: str = "input", **kw) -> AstroParams:
    return AstroParams(LIFParams(beta=0.5, threshold=1.0), gamma=1.0, lambda_a=0.5, groups=1, mode=mode, **kw)


@pytest.mark.parametrize("mode,s_ref,a_ref,v_ref", [
    ("input", GOLDEN_INPUT_S, GOLDEN_INPUT_A, GOLDEN_INPUT_V),
    ("threshold", GOLDEN_THR_S, GOLDEN_THR_A, GOLDEN_THR_V),
])
def test_golden_trajectory_by_hand(mode, s_ref, a_ref, v_ref):
    x = torch.tensor([[0.6, 0.3]], dtype=torch.float64).expand(5, 1, 2)
    s, state, a = astro_lif_multistep(x, None, _params(mode))
    torch.testing.assert_close(s[:, 0], torch.tensor(s_ref, dtype=torch.float64))
    torch.testing.assert_close(a[:, 0, 0], torch.tensor(a_ref, dtype=torch.float64))
    torch.testing.assert_close(state.v[0], torch.tensor(v_ref, dtype=torch.float64))
    torch.testing.assert_close(state.a, torch.tensor([[a_ref[-1]]], dtype=torch.float64))


def test_golden_trajectory_of_the_module_matches_the_function():
    m = AstroLIF(2, beta=0.5, threshold=1.0, gamma=1.0, lambda_a=0.5).double()
    x = torch.tensor([[0.6, 0.3]], dtype=torch.float64).expand(5, 1, 2)
    s = m(x)
    torch.testing.assert_close(s[:, 0], torch.tensor(GOLDEN_INPUT_S, dtype=torch.float64))
    torch.testing.assert_close(m.astro_[:, 0, 0], torch.tensor(GOLDEN_INPUT_A, dtype=torch.float64))


@pytest.mark.parametrize("mode", ["input", "threshold"])
def test_gamma_zero_is_plain_lif(mode):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 3, 8, generator=g) + 0.6
    lif = LIFParams(beta=0.8, threshold=1.0)
    p = AstroParams(lif, gamma=0.0, lambda_a=0.9, groups=4, mode=mode)
    s, state, _ = astro_lif_multistep(x, None, p)
    s_ref, ref_state = lif_multistep_reference(x, None, lif)
    torch.testing.assert_close(s, s_ref, rtol=0, atol=0)
    torch.testing.assert_close(state.v, ref_state.v)


def test_astrocyte_is_a_leaky_average_of_its_groups_spikes():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(20, 2, 6, generator=g) * 2.0
    lam = torch.tensor([0.7, 0.95, 0.5])
    p = AstroParams(LIFParams(beta=0.6, threshold=1.0), gamma=torch.tensor([0.5, -0.3, 1.0]),
                    lambda_a=lam, groups=3)
    s, _, a = astro_lif_multistep(x, None, p)
    expect = torch.zeros(2, 3)
    for t in range(20):
        expect = lam * expect + (1 - lam) * s[t].view(2, 3, 2).mean(-1)  # groups of 2 neighbours
        torch.testing.assert_close(a[t], expect)
    assert s.sum() > 0 and ((a >= 0) & (a <= 1)).all()


def test_groups_only_modulate_their_own_neurons():
    # group 0 fires strongly and lifts its astrocyte; group 1's neurons get no input at all and
    # its modulation must stay exactly 1: its membrane is the plain LIF one
    x = torch.zeros(6, 1, 4)
    x[:, :, :2] = 1.5
    x[:, :, 2:] = 0.2
    p = AstroParams(LIFParams(beta=0.5), gamma=torch.tensor([2.0, 2.0]), lambda_a=0.5, groups=2)
    _, st, a = astro_lif_multistep(x, None, p)
    assert (a[1:, 0, 0] > 0).all() and (a[:, 0, 1] == 0).all()
    _, ref = lif_multistep_reference(x[:, :, 2:], None, LIFParams(beta=0.5))
    torch.testing.assert_close(st.v[:, 2:], ref.v)


def test_step_is_composed_with_lif_step():
    x = torch.tensor([[0.4, 1.3]])
    st = AstroState(torch.tensor([[0.5, 0.2]]), torch.tensor([[0.4]]))
    p = AstroParams(LIFParams(beta=0.75), gamma=0.5, lambda_a=0.9, groups=1)
    s, new = astro_lif_step(x, st, p)
    s_ref, v_ref = lif_step(x * 1.2, LIFState(st.v), LIFParams(beta=0.75))  # 1 + 0.5 * 0.4
    torch.testing.assert_close(s, s_ref)
    torch.testing.assert_close(new.v, v_ref.v)
    torch.testing.assert_close(new.a, 0.9 * st.a + 0.1 * s_ref.mean(-1, keepdim=True))


def test_gradients_reach_gamma_and_input_through_the_astrocyte():
    m = AstroLIF(6, 3, beta=0.8, gamma=1.0, lambda_a=0.9)
    x = (torch.rand(15, 2, 6, generator=torch.Generator().manual_seed(2)) * 1.5).requires_grad_()
    m(x).sum().backward()
    assert m.gamma.grad is not None and m.gamma.grad.abs().sum() > 0
    assert x.grad is not None and torch.isfinite(x.grad).all()
    learn = AstroLIF(6, 3, learn_lambda=True, lambda_a=0.9)
    torch.testing.assert_close(learn.lambda_a, torch.full((3,), 0.9))
    learn(x.detach()).sum().backward()
    assert learn.lambda_logit.grad is not None


def test_single_step_module_carries_state_like_the_sequence():
    x = torch.rand(5, 2, 4, generator=torch.Generator().manual_seed(3)) * 2
    multi = AstroLIF(4, 2, gamma=0.7, lambda_a=0.8)
    single = AstroLIF(4, 2, gamma=0.7, lambda_a=0.8, step_mode="single")
    s_multi = multi(x)
    s_single = torch.stack([single(x[t]) for t in range(5)])
    torch.testing.assert_close(s_multi, s_single)
    torch.testing.assert_close(single.state.a, multi.astro_[-1])
    single.reset_state()
    assert single.state is None


def test_recurrent_layer_plain_and_astro():
    torch.manual_seed(0)
    plain = RecurrentAstroLIF(3, 8, 4, astro=False)
    torch.manual_seed(0)
    astro = RecurrentAstroLIF(3, 8, 4, astro=True, gamma=0.0)
    n_plain = sum(p.numel() for p in plain.parameters())
    n_astro = sum(p.numel() for p in astro.parameters())
    assert n_plain == 3 * 8 + 8 + 8 * 8 and n_astro == n_plain + 4  # one gamma per astrocyte
    x = torch.rand(10, 2, 3, generator=torch.Generator().manual_seed(4)) * 3
    s_p, st_p = plain(x)
    s_a, st_a = astro(x)  # gamma = 0 and the same weights: the same spikes
    torch.testing.assert_close(s_p, s_a)
    assert isinstance(st_p, LIFState) and isinstance(st_a, AstroState) and astro.astro_.shape == (10, 2, 4)
    # a hand loop with lif_step is the plain layer
    v, s, out = None, torch.zeros(2, 8), []
    for t in range(10):
        s, v = lif_step(plain.w_in(x[t]) + plain.w_rec(s), v, plain.cell.params().lif)
        out.append(s)
    torch.testing.assert_close(torch.stack(out), s_p)


# -- bad input ---------------------------------------------------------------------------------
def test_wrong_time_layout_is_named():
    m = AstroLIF(4, 2)
    with pytest.raises(ValueError, match=r"x: expected time-first \[T, B, N\]"):
        m(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="step_mode='single'"):
        m(torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r"x: expected one time step \[B, N\]"):
        astro_lif_step(torch.zeros(5, 3, 4), None, AstroParams(groups=2))
    with pytest.raises(ValueError, match="N=4"):
        m(torch.zeros(5, 3, 6))
    with pytest.raises(TypeError, match="x: expected a floating-point"):
        m(torch.zeros(5, 3, 4, dtype=torch.long))
    layer = RecurrentAstroLIF(3, 8, 4)
    with pytest.raises(ValueError, match=r"x: expected a time-first sequence \[T, B, 3\]"):
        layer(torch.zeros(2, 3))


def test_state_from_another_batch_is_named():
    m = AstroLIF(4, 2, return_state=True)
    _, st = m(torch.rand(5, 3, 4))
    with pytest.raises(ValueError, match=r"state: .*batch size 3 but x has batch size 2"):
        m(torch.rand(5, 2, 4), st)
    with pytest.raises(ValueError, match="batch-first"):
        m(torch.rand(3, 7, 4), st)  # [B=3, T=7, N]
    with pytest.raises(ValueError, match="state: expected v of shape"):
        bad = AstroState(torch.zeros(3, 4), torch.zeros(3, 1))
        astro_lif_step(torch.rand(3, 4), bad, AstroParams(groups=2))
    with pytest.raises(TypeError, match="state: expected an AstroState"):
        astro_lif_step(torch.rand(3, 4), LIFState(torch.zeros(3, 4)), AstroParams(groups=2))
    layer = RecurrentAstroLIF(3, 8, 4)
    _, st = layer(torch.rand(5, 2, 3))
    with pytest.raises(ValueError, match=r"state: expected v of shape \(6, 8\)"):
        layer(torch.rand(5, 6, 3), st)


def test_bad_constructor_arguments_are_named():
    with pytest.raises(ValueError, match="groups"):
        AstroLIF(6, 4)
    with pytest.raises(ValueError, match="mode"):
        AstroLIF(4, mode="calcium")
    with pytest.raises(ValueError, match="lambda_a"):
        AstroLIF(4, lambda_a=1.0)
    with pytest.raises(ValueError, match="beta"):
        AstroLIF(4, beta=1.5)
    with pytest.raises(ValueError, match="surrogate"):
        AstroLIF(4, surrogate="boxcar")
    with pytest.raises(ValueError, match="groups"):
        astro_lif_step(torch.rand(2, 6), None, AstroParams(groups=4))
