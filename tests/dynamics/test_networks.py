"""Coupled-map networks: equations worked by hand, the K4 higher-order identity, Jacobians against
autograd, the fast run path against the plain step, divergence flags and bad input."""

import math
import shutil

import pytest
import torch

from neuroplast.dynamics import analysis as A
from neuroplast.dynamics.networks import MapNetwork, chialvo_rulkov_chain, ring_star_network


def chialvo(x, y, a=0.89, b=0.18, c=0.28, k=0.03):
    return x * x * math.exp(y - x) + k, a * y - b * x + c


def test_ring_star_step_by_hand():
    s1, s2 = 0.07, 0.02
    net = ring_star_network(sigma1=s1, sigma2=s2, b=0.18, k=0.03)
    z = torch.tensor([[0.1, 0.4, 0.7, 0.2, 0.5, 0.3, 0.9, 0.6]], dtype=torch.float64)
    x, y = z[0, :4].tolist(), z[0, 4:].tolist()
    out = net.step(z)[0]
    for i in range(4):
        fx, fy = chialvo(x[i], y[i])
        pair = sum(x[j] - x[i] for j in range(4) if j != i)  # K4: star + ring edges
        tris = [t for t in [(0, 1, 2), (0, 1, 3), (0, 2, 3), (1, 2, 3)] if i in t]
        hyper = sum(sum(x[j] for j in t if j != i) - 2 * x[i] for t in tris)
        assert float(out[i]) == pytest.approx(fx + s1 * pair + s2 * hyper, abs=1e-14)
        assert float(out[4 + i]) == pytest.approx(fy, abs=1e-14)


def test_higher_order_on_k4_equals_pairwise_with_twice_the_strength():
    g = torch.Generator().manual_seed(0)
    z = torch.rand(5, 8, generator=g, dtype=torch.float64)
    only_hyper = ring_star_network(sigma1=0.0, sigma2=0.05)
    only_pair = ring_star_network(sigma1=0.1, sigma2=0.0)
    assert torch.allclose(only_hyper.step(z), only_pair.step(z), atol=1e-15)
    c = ring_star_network(0.1, 0.05).coupling_matrix()
    assert torch.allclose(c.sum(-1), torch.zeros(1, 4, dtype=torch.float64), atol=1e-15)  # diffusive


def test_larger_ring_star_triangles():
    net = ring_star_network(sigma1=0.0, sigma2=1.0, n_peripheral=5)
    c = net.coupling_matrix()[0]
    # triangles are {0, i, i+1}: the centre is in 5 of them (-10 on its diagonal), each peripheral in 2
    assert c[0, 0] == -10 and c[1, 1] == -4 and c[1, 3] == 0 and c[1, 2] == 1 and c[0, 1] == 2


def test_chain_step_by_hand():
    net = chialvo_rulkov_chain(
        sigma12=0.1,
        sigma21=0.2,
        sigma23=0.3,
        sigma32=0.4,
        b=0.6,
        k=0.03,
        alpha=4.3,
        mu=0.001,
        rulkov_sigma=-1.0,
    )
    x1, x2, x3, y1, y2, y3 = 0.3, -0.8, 0.9, 0.5, -3.0, 0.2
    z = torch.tensor([[x1, x2, x3, y1, y2, y3]], dtype=torch.float64)
    out = net.step(z)[0].tolist()
    f1, g1 = chialvo(x1, y1, b=0.6)
    f3, g3 = chialvo(x3, y3, b=0.6)
    exp = [
        f1 + 0.2 * (x2 - x1),
        4.3 / (1 + x2 * x2) + y2 + 0.1 * (x1 - x2) + 0.4 * (x3 - x2),
        f3 + 0.3 * (x2 - x3),
        g1,
        y2 - 0.001 * (x2 + 1.0),
        g3,
    ]
    assert out == pytest.approx(exp, abs=1e-14)


def test_chain_outer_swap_symmetry():
    """With sigma12 = sigma32 and sigma21 = sigma23 the chain commutes with swapping its two Chialvo
    neurons (so x1 = x3 is invariant); with unequal strengths it does not."""
    perm = [2, 1, 0, 5, 4, 3]  # (x1, x2, x3, y1, y2, y3) -> neurons 1 and 3 swapped
    z = chialvo_rulkov_chain().initial_state(8, generator=torch.Generator().manual_seed(3))
    sym = chialvo_rulkov_chain(sigma12=0.07, sigma21=-0.04, sigma23=-0.04, sigma32=0.07, alpha=4.1)
    assert torch.allclose(sym.step(z[:, perm]), sym.step(z)[:, perm], rtol=0, atol=1e-14)
    on = z.clone()
    on[:, 2], on[:, 5] = on[:, 0], on[:, 3]  # a state on x1 = x3, y1 = y3
    nxt = sym.step(on)
    assert torch.allclose(nxt[:, 0], nxt[:, 2], rtol=0, atol=1e-14)
    assert torch.allclose(nxt[:, 3], nxt[:, 5], rtol=0, atol=1e-14)
    assert (nxt[:, 0] - nxt[:, 1]).abs().min() > 1e-3  # not trivially all equal
    asym = chialvo_rulkov_chain(sigma12=0.07, sigma21=-0.04, sigma23=0.05, sigma32=0.07)
    assert not torch.allclose(asym.step(z[:, perm]), asym.step(z)[:, perm])


@pytest.mark.parametrize("which", ["ring", "chain"])
def test_analytic_jacobian_and_tangent_match_autograd(which):
    g = torch.Generator().manual_seed(2)
    if which == "ring":
        net = ring_star_network(
            sigma1=torch.tensor([0.1, -0.05, 0.2]), sigma2=0.03, k=torch.tensor([0.0, 0.02, 0.03])
        )
    else:
        net = chialvo_rulkov_chain(
            sigma12=torch.tensor([0.1, 0.3, -0.2]), sigma21=0.05, sigma23=0.1, sigma32=0.02
        )
    z = net.initial_state(generator=g)
    j_an = net.jacobian(z)
    j_ad = A.jacobian(net.step, z)  # plain callable -> forward-mode autograd
    assert torch.allclose(j_an, j_ad, atol=1e-12)
    v = torch.randn(z.shape, generator=g, dtype=torch.float64)
    assert torch.allclose(net.tangent(z, v), (j_ad @ v.unsqueeze(-1)).squeeze(-1), atol=1e-12)


def test_run_matches_step_loop_and_records():
    k = torch.linspace(-0.05, 0.02, 6, dtype=torch.float64)
    net = ring_star_network(sigma1=0.1, sigma2=0.05, k=k)
    z0 = net.initial_state(generator=torch.Generator().manual_seed(0))
    res = net.run(z0, 30, 10, observe=[0, 5], record_every=4)
    z = z0.clone()
    recs = []
    for t in range(30):
        z = net.step(z)
        if t >= 10 and (t - 10) % 4 == 0:
            recs.append(z[:, [0, 5]])
    assert torch.allclose(res.records, torch.stack(recs), atol=1e-12)
    assert torch.allclose(res.state, z, atol=1e-12)
    chain = chialvo_rulkov_chain(sigma12=torch.linspace(-0.1, 0.1, 4), sigma21=0.05)
    z0 = chain.initial_state(generator=torch.Generator().manual_seed(1))
    res = chain.run(z0, 15, 0)
    z = z0
    for _ in range(15):
        z = chain.step(z)
    assert torch.allclose(res.state, z, atol=1e-12) and res.records.shape == (15, 4, 3)


@pytest.mark.skipif(
    shutil.which("g++") is None and shutil.which("c++") is None, reason="needs a C++ compiler"
)
def test_compiled_run_matches_eager():
    chain = chialvo_rulkov_chain(sigma12=torch.linspace(-0.1, 0.1, 4), sigma21=0.05, sigma32=0.1)
    z0 = chain.initial_state(generator=torch.Generator().manual_seed(1))
    eager = chain.run(z0, 11, 3, observe=[0, 4], record_every=2)
    comp = chain.run(z0, 11, 3, observe=[0, 4], record_every=2, backend="compile", chunk=2)
    assert torch.allclose(eager.records, comp.records, atol=1e-12)
    assert torch.allclose(eager.state, comp.state, atol=1e-12)


def test_divergence_is_flagged_and_never_chaos():
    net = ring_star_network(sigma1=torch.tensor([0.05, 0.6]), sigma2=0.0, b=0.18, k=0.03)
    z0 = net.initial_state(generator=torch.Generator().manual_seed(0))
    res = net.run(z0, 3000, 2000, observe=[0])
    assert res.diverged.tolist() == [False, True]
    assert torch.isnan(res.records[:, 1]).all() and torch.isfinite(res.records[:, 0]).all()
    lam, div = A.lyapunov_max(net, z0, 3000, 500)
    cls = A.classify_orbits(res.records, lam, res.diverged | div)
    assert cls.names()[1] == "divergent"


def test_lyapunov_spectrum_of_network_sums_to_log_det():
    # uncoupled Chialvo nodes at a stable fixed point: the spectrum is the node's log|multipliers|, twice
    net = ring_star_network(sigma1=0.0, sigma2=0.0, b=0.6, k=0.15)
    z0 = net.initial_state(generator=torch.Generator().manual_seed(0))
    spec, _ = A.lyapunov_spectrum(net, z0, 3000, 2000)
    fp = A.fixed_points(net, net.run(z0, 3000, 2999).state)
    expected = torch.sort(fp.eigenvalues[0].abs().log(), descending=True).values
    assert torch.allclose(spec[0], expected, atol=2e-3)


def test_bad_input_errors():
    with pytest.raises(ValueError, match="batch size 3"):
        ring_star_network(sigma1=torch.zeros(3), sigma2=torch.zeros(4))
    with pytest.raises(ValueError, match="no points"):
        ring_star_network(k=torch.tensor([]))
    net = ring_star_network(sigma1=torch.zeros(3))
    with pytest.raises(ValueError, match="shape \\(B, 8\\)"):
        net.step(torch.zeros(3, 6, dtype=torch.float64))
    with pytest.raises(ValueError, match="batch 2"):
        net.step(torch.zeros(2, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match="NaN"):
        net.run(torch.full((3, 8), float("nan"), dtype=torch.float64), 10)
    with pytest.raises(ValueError, match="no model"):
        MapNetwork(3).set_nodes("chialvo", [0]).step(torch.zeros(1, 6, dtype=torch.float64))
    with pytest.raises(ValueError, match="model must be"):
        MapNetwork(2).set_nodes("izhikevich")
    with pytest.raises(ValueError, match="hyperedge"):
        MapNetwork(3).add_hyperedges([(0, 1, 1)], 0.1)
