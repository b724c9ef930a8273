"""Architecture-level SFQ neurons and stochastic synapses (neuroplast.neurons.sfq)."""

from __future__ import annotations

import math

import pytest
import torch

from neuroplast.neurons.sfq import (
    SFQLayer,
    SFQNetwork,
    SFQParams,
    bernoulli_pass,
    bias_for_probability,
    fit_mean_field,
    rate_decode,
    rate_encode,
    sfq_neuron_step,
    switching_probability,
)

# Golden trajectory of the flux counter (threshold 2): input pulse counts and pinned outputs
EXC = [1, 1, 0, 2, 3, 0, 0, 1]
INH = [0, 0, 1, 0, 0, 2, 0, 0]
OUT = [0, 1, 0, 1, 1, 0, 0, 0]
FLUX = [1, 0, 0, 0, 1, 0, 0, 1]
OUT_CAPPED = [0, 1, 0, 1, 1, 0, 0, 0]  # flux_max = 2: the 3 pulses at t = 4 saturate the loop
FLUX_CAPPED = [1, 0, 0, 0, 0, 0, 0, 1]


def _counter(
    exc: list[int], inh: list[int], theta: float, cap: float | None
) -> tuple[list[int], list[float]]:
    phi, out, flux = 0.0, [], []
    for e, i in zip(exc, inh, strict=True):
        phi = min(max(phi + e - i, 0.0), math.inf if cap is None else cap)
        o = int(phi >= theta)
        phi -= theta * o
        out.append(o)
        flux.append(phi)
    return out, flux


@pytest.mark.parametrize("cap,out,flux", [(None, OUT, FLUX), (2.0, OUT_CAPPED, FLUX_CAPPED)])
def test_flux_counter_golden_trajectory(cap, out, flux):
    state, got, phis = None, [], []
    for e, i in zip(EXC, INH, strict=True):
        o, state = sfq_neuron_step(
            torch.tensor([[float(e)]]),
            torch.tensor([[float(i)]]),
            state,
            SFQParams(threshold=2.0, flux_max=cap),
        )
        got.append(int(o))
        phis.append(float(state.flux))
    assert got == out and phis == flux
    assert _counter(EXC, INH, 2.0, cap) == (out, flux)


def test_switching_curve_and_its_inverse():
    assert float(switching_probability(1.0, i_50=1.0, sigma=0.05)) == pytest.approx(0.5)
    assert float(switching_probability(1.05, i_50=1.0, sigma=0.05)) == pytest.approx(0.8413447, rel=1e-6)
    p = torch.tensor([0.01, 0.3, 0.5, 0.9])
    torch.testing.assert_close(switching_probability(bias_for_probability(p, 0.8, 0.1), 0.8, 0.1), p)
    b = torch.linspace(0.5, 1.5, 11)
    assert bool((switching_probability(b).diff() >= 0).all())


@pytest.mark.parametrize("p", [0.1, 0.5, 0.83])
def test_bernoulli_synapse_pass_rate_matches_p(p):
    g = torch.Generator().manual_seed(0)
    n = 20000
    passed = bernoulli_pass(torch.ones(n, 1), torch.tensor([[p]]), generator=g)
    rate = float(passed.mean())
    assert abs(rate - p) < 4 * math.sqrt(p * (1 - p) / n)  # binomial 4-sigma interval
    blocked = bernoulli_pass(torch.zeros(100, 1), torch.tensor([[p]]), generator=g)
    assert float(blocked.sum()) == 0.0  # no pulse in, no pulse out


def test_rate_encoding_and_decoding():
    x = torch.tensor([[0.0, 0.25, 0.5, 1.0]])
    reg = rate_encode(x, 40, mode="regular")
    assert reg.shape == (40, 1, 4)
    for n in (1, 7, 40):
        torch.testing.assert_close(reg[:n].sum(0), torch.floor(n * x + 1e-9))
    g = torch.Generator().manual_seed(1)
    bern = rate_encode(torch.full((1, 1), 0.3), 10000, generator=g)
    assert abs(float(rate_decode(bern)) - 0.3) < 4 * math.sqrt(0.21 / 10000)
    assert float(rate_decode(reg, window=4)[0, 2]) == 0.5


def test_mean_field_agrees_with_stochastic_rate_as_the_window_grows():
    """Single layer in the linear regime (excitatory drift 0.4 fluxons/tick, threshold 2, no
    inhibition lost at the empty loop): the stochastic rate converges to the mean-field 0.2 and its
    spread falls as N^-1/2."""
    layer = SFQLayer(1, 1, threshold=2.0, bias=False)
    layer.set_probabilities(exc=torch.tensor([[0.4]]), inh=torch.tensor([[0.0]]))
    mf = float(layer.mean_field(torch.ones(1, 1)).detach())
    assert mf == pytest.approx(0.2, abs=1e-6)
    g = torch.Generator().manual_seed(2)
    out = layer(torch.ones(2048, 400, 1), generator=g)  # 400 independent trials
    err = {n: (out[:n].mean(0) - mf).squeeze(1) for n in (64, 256, 1024, 2048)}
    assert abs(float(err[2048].mean())) < 0.005
    ratio = float(err[64].std() / err[1024].std())
    assert 3.0 < ratio < 5.3  # sqrt(1024 / 64) = 4


def test_inhibition_at_the_empty_loop_raises_the_rate_above_mean_field():
    """With inhibition the loop's floor at 0 discards inhibitory pulses, so the stochastic rate exceeds
    the mean-field (drift 0.6 - 0.2 = 0.4, threshold 2: mean-field 0.2)."""
    layer = SFQLayer(1, 1, threshold=2.0, bias=False)
    layer.set_probabilities(exc=torch.tensor([[0.6]]), inh=torch.tensor([[0.2]]))
    rate = float(layer(torch.ones(2048, 200, 1), generator=torch.Generator().manual_seed(3)).mean())
    assert rate > 0.2 + 0.01


def test_mean_field_clips_like_the_counter_saturates():
    layer = SFQLayer(2, 1, threshold=1.0, bias=False)
    layer.set_probabilities(exc=torch.tensor([[1.0, 1.0]]), inh=torch.tensor([[0.0, 0.0]]))
    assert (
        float(layer.mean_field(torch.ones(1, 2)).detach()) == 1.0
    )  # drift 2 > threshold: one pulse per tick
    out = layer(torch.ones(50, 1, 2))
    assert float(out.mean()) == 1.0
    layer.set_probabilities(exc=torch.tensor([[0.0, 0.0]]), inh=torch.tensor([[1.0, 1.0]]))
    assert (
        float(layer.mean_field(torch.ones(1, 2)).detach()) == 0.0
        and float(layer(torch.ones(50, 1, 2)).sum()) == 0.0
    )


def test_fit_mean_field_solves_xor_deterministically():
    X = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    Y = torch.tensor([[0.0], [0.8], [0.8], [0.0]])
    margins = []
    for _ in range(2):
        net = SFQNetwork([2, 4, 1], threshold=2.0, generator=torch.Generator().manual_seed(6))
        fit_mean_field(net, X, Y, steps=800)
        r = net.mean_field(X).detach().squeeze(1)
        margins.append(float(r[1:3].min() - torch.stack([r[0], r[3]]).max()))
    assert margins[0] > 0.2 and margins[0] == margins[1]


def test_state_dict_round_trip():
    net = SFQNetwork([2, 3, 1], generator=torch.Generator().manual_seed(0))
    other = SFQNetwork([2, 3, 1])
    other.load_state_dict(net.state_dict())
    x = torch.tensor([[0.3, 0.9]])
    torch.testing.assert_close(other.mean_field(x), net.mean_field(x))
    pulses = rate_encode(x.expand(5, 2), 30, mode="regular")
    torch.testing.assert_close(
        other(pulses, generator=torch.Generator().manual_seed(1)),
        net(pulses, generator=torch.Generator().manual_seed(1)),
    )


def test_bad_input_is_named():
    layer = SFQLayer(2, 1)
    with pytest.raises(ValueError, match="exc: expected probabilities in"):
        layer.set_probabilities(exc=torch.tensor([[1.2, 0.1]]))
    with pytest.raises(ValueError, match="bias_inh: expected probabilities in"):
        layer.set_probabilities(bias_inh=torch.tensor([-0.1]))
    with pytest.raises(ValueError, match="x: expected probabilities"):
        rate_encode(torch.tensor([1.5]), 10)
    with pytest.raises(ValueError, match=r"pulses: expected pulse trains of shape \[T, B, 2\].*time first"):
        layer(torch.ones(4, 2))
    with pytest.raises(ValueError, match="pulses: expected 0/1"):
        layer(torch.full((3, 1, 2), 2.0))
    with pytest.raises(ValueError, match="state: expected flux of shape"):
        _, st = sfq_neuron_step(torch.zeros(3, 1), torch.zeros(3, 1), None)
        sfq_neuron_step(torch.zeros(2, 1), torch.zeros(2, 1), st)
    with pytest.raises(ValueError, match="threshold"):
        SFQNetwork([2, 1], threshold=0.0)
