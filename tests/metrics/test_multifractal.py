"""NeuroMFA metric: graphs of known dimension, a networkx reference of the sandbox sums, the analytic
spectrum of the binomial cascade, hand-built interaction networks and the emergence formula."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
import torch
from scipy import sparse

from neuroplast.metrics.multifractal import (
    emergence_degree,
    interaction_network,
    neuromfa,
    one_hop_spectrum,
    sandbox_spectrum,
    shuffle_within_layers,
    spectrum_from_tau,
)

Q = np.linspace(-3, 3, 25)


def _unit(g: nx.Graph) -> nx.Graph:
    g = nx.convert_node_labels_to_integers(g)
    nx.set_edge_attributes(g, 1.0, "weight")
    return g


@pytest.mark.parametrize(
    ("graph", "dim"),
    [(nx.grid_2d_graph(48, 48, periodic=True), 2.0), (nx.cycle_graph(400), 1.0)],
    ids=["2d-lattice", "1d-chain"],
)
def test_sandbox_dimension_of_graphs_of_known_dimension(graph, dim):
    s = sandbox_spectrum(_unit(graph), Q, centres=40, seed=0)
    assert abs(s.dimension / dim - 1) <= 0.10  # the oracle
    assert abs(s.alpha0 / dim - 1) <= 0.10
    assert s.width < 0.05 * dim  # a regular lattice is monofractal: tau(q) = (q - 1) D
    assert s.r2.min() > 0.99 and s.tau[np.argmin(abs(Q - 1))] == pytest.approx(0.0, abs=1e-12)


def test_sandbox_sums_match_a_networkx_reference():
    rng = np.random.default_rng(5)
    g = nx.connected_watts_strogatz_graph(120, 4, 0.2, seed=3)
    for u, v in g.edges:
        g[u][v]["weight"] = float(rng.uniform(0.2, 3.0))
    centres = [0, 7, 19, 44, 90, 111]
    s = sandbox_spectrum(g, Q, centres=centres, n_radii=9)
    n = g.number_of_nodes()
    dists = [np.array(list(nx.single_source_dijkstra_path_length(g, c).values())) for c in centres]
    assert s.diameter == pytest.approx(max(d.max() for d in dists))
    mass = np.array([[(d <= r).sum() for r in s.radii] for d in dists])  # (C, R)
    for k, qv in enumerate(Q):
        z = ((mass / n) ** (qv - 1)).mean(axis=0)
        assert np.allclose(s.log_z[k], np.log(z), rtol=1e-10, atol=1e-12)
        slope = np.polyfit(np.log(s.radii / s.diameter), np.log(z), 1)[0]
        assert s.tau[k] == pytest.approx(slope, rel=1e-9, abs=1e-10)


def test_legendre_transform_of_the_binomial_cascade():
    p = 0.3
    q = np.linspace(-3, 3, 601)
    tau = -np.log2(p**q + (1 - p) ** q)  # binomial measure: sum_i mu_i^q ~ l^tau(q)
    s = spectrum_from_tau(q, tau)
    alpha = -(p**q * np.log(p) + (1 - p) ** q * np.log(1 - p)) / ((p**q + (1 - p) ** q) * math.log(2))
    assert np.allclose(s.alpha[1:-1], alpha[1:-1], atol=1e-4)
    assert s.f.max() == pytest.approx(1.0, abs=1e-6)  # f(alpha_0) = D_0 = 1 (support is the interval)
    assert s.alpha0 == pytest.approx(-(math.log(p) + math.log(1 - p)) / (2 * math.log(2)), abs=1e-3)
    assert s.dimension == pytest.approx(1.0, abs=1e-12)
    assert s.width == pytest.approx(alpha.max() - alpha.min(), abs=1e-3)
    mono = spectrum_from_tau(Q, (Q - 1) * 1.7)
    assert np.allclose(mono.alpha, 1.7) and np.allclose(mono.f, 1.7)
    assert mono.width == pytest.approx(0, abs=1e-12)


def test_interaction_network_worked_example():
    w1 = np.array([[0.5, -2.0, 0.0], [0.01, 1.0, -0.25]])  # layer 0 (3) -> layer 1 (2)
    w2 = torch.tensor([[4.0, -0.1]])  # layer 1 (2) -> layer 2 (1), a torch tensor
    net = interaction_network([w1, w2], eps=0.05)
    assert net.n_nodes == 6 and net.layer.tolist() == [0, 0, 0, 1, 1, 2]
    assert net.unit.tolist() == [0, 1, 2, 0, 1, 0]
    expect = np.zeros((6, 6))
    edges = {(0, 3): 0.5, (1, 3): -2.0, (1, 4): 1.0, (2, 4): -0.25, (3, 5): 4.0, (4, 5): -0.1}
    for (i, j), w in edges.items():
        expect[i, j] = expect[j, i] = 1 / abs(w)
    assert np.allclose(net.lengths.toarray(), expect)  # |0.01| <= eps and the 0 weight give no edge
    assert net.n_edges == 6


def test_sampled_network_is_the_induced_subgraph_and_deterministic():
    rng = np.random.default_rng(0)
    ws = [rng.normal(size=(30, 20)), rng.normal(size=(25, 30))]
    a = interaction_network(ws, sample=10, seed=4)
    b = interaction_network(ws, sample=10, seed=4)
    c = interaction_network(ws, sample=10, seed=5)
    assert (a.lengths != b.lengths).nnz == 0 and not np.array_equal(a.unit, c.unit)
    assert np.bincount(a.layer).tolist() == [10, 10, 10]
    full = interaction_network(ws)
    gid = {(int(l_), int(u)): k for k, (l_, u) in enumerate(zip(full.layer, full.unit, strict=True))}
    keep = [gid[(int(l_), int(u))] for l_, u in zip(a.layer, a.unit, strict=True)]
    assert np.allclose(a.lengths.toarray(), full.lengths[keep][:, keep].toarray())


def test_spectrum_is_invariant_to_rescaling_the_weights_and_shuffle_keeps_values():
    rng = np.random.default_rng(1)
    ws = [rng.uniform(-1, 1, size=(40, 40)) for _ in range(3)]
    a = neuromfa(ws, Q, samples=3, per_layer=20, seed=9)
    b = neuromfa([3.7 * w for w in ws], Q, samples=3, per_layer=20, seed=9)
    assert np.allclose(a.tau, b.tau, atol=1e-9) and np.allclose(a.alpha0, b.alpha0)
    assert a.alpha0_mean == pytest.approx(float(np.mean(a.alpha0)))
    sh = shuffle_within_layers(ws, 0)
    for w, s in zip(ws, sh, strict=True):
        assert s.shape == w.shape and np.array_equal(np.sort(s.ravel()), np.sort(w.ravel()))
        assert not np.array_equal(s, w)
    assert np.array_equal(sh[0], shuffle_within_layers(ws, 0)[0])


def test_structure_changes_the_spectrum():
    # a weight matrix whose strong entries form a few hubs is more heterogeneous than its shuffle
    rng = np.random.default_rng(2)
    ws = []
    for _ in range(3):
        w = rng.uniform(0.01, 0.1, size=(60, 60))
        w[:, :3] *= 30.0  # three hub inputs with strong out-edges
        ws.append(w)
    hubs = neuromfa(ws, Q, samples=6, per_layer=None, centres=60, seed=0)
    flat = neuromfa(shuffle_within_layers(ws, 1), Q, samples=6, per_layer=None, centres=60, seed=0)
    # paths through the hubs fill balls in jumps: a far lower box dimension D_0 than the shuffle's
    noise = (hubs.dimension.std() + flat.dimension.std()) / math.sqrt(6)
    assert flat.dimension.mean() - hubs.dimension.mean() > 4 * noise


def test_one_hop_estimator_of_the_authors_code_by_hand():
    rng = np.random.default_rng(3)
    lengths = rng.integers(2, 40, size=(14, 4)).astype(float)  # forward edges: 4 inputs -> 14 outputs
    lengths[0, 0] = 500.0  # longer than max_length: dropped
    net = interaction_network([1.0 / lengths, rng.uniform(0.5, 0.9, size=(2, 14))])
    q = np.linspace(-2, 2, 9)
    s = one_hop_spectrum(net, q, max_length=150.0, min_edges=10)
    # by hand: centres are the 4 inputs (14 forward edges each); outputs have 2 forward edges (< 10)
    rows = [[v for v in lengths[:, i] if 1 < v <= 150] for i in range(4)]
    radii = sorted({v for r in rows for v in r})
    assert np.array_equal(s.radii, radii)
    x = [math.log(r / radii[-1]) for r in radii]
    tau = []
    for qv in q:
        z = [sum(((1 + sum(v <= r for v in row)) / (1 + len(row))) ** qv for row in rows) for r in radii]
        tau.append(np.polyfit(x, np.log(z), 1)[0])
    alpha = np.diff(tau) / np.diff(q)
    assert np.allclose(s.tau, tau[:-1], atol=1e-10) and np.allclose(s.alpha, alpha, atol=1e-9)
    assert np.allclose(s.f, q[:-1] * alpha - np.array(tau[:-1]), atol=1e-9)
    assert s.tau[4] == pytest.approx(0.0, abs=1e-12)  # q = 0: Z counts the centres at every radius
    with pytest.raises(ValueError, match="min_edges"):
        one_hop_spectrum(net, q, min_edges=20)


def test_emergence_degree_worked_example():
    e = emergence_degree([2.0, 1.0, 4.0], [1.0, 2.0, 0.5])
    assert np.allclose(e, [0.0, 2 * math.log(2.0), 0.5 * math.log(0.5)])


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: interaction_network([np.ones((3, 2)), np.ones((4, 2))]), r"weights\[1\].*3 inputs"),
        (lambda: interaction_network([np.ones(3)]), r"weights\[0\].*2-D"),
        (lambda: interaction_network([np.full((2, 2), np.nan)]), "finite"),
        (lambda: interaction_network([np.ones((2, 2))], sample=1), "seed"),
        (lambda: interaction_network([np.ones((2, 2))], eps=-1), "eps"),
        (lambda: sandbox_spectrum(sparse.eye(3), [0, 1]), "q"),
        (lambda: sandbox_spectrum(np.ones((3, 4))), "graph"),
        (lambda: sandbox_spectrum(_unit(nx.path_graph(5)), centres=[7]), "centres"),
        (lambda: sandbox_spectrum(_unit(nx.path_graph(50)), centres=3), "seed"),
        (lambda: sandbox_spectrum(_unit(nx.path_graph(5)), radii=[2, 1, 3]), "radii"),
        (lambda: emergence_degree([1.0, 2.0], [1.0]), "equal length"),
        (lambda: spectrum_from_tau([0, 1, 2], [1, 2]), "tau"),
    ],
)
def test_bad_input_is_rejected(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
