"""Tests of neuroplast.metrics.connectome against scipy/numpy/networkx/sklearn oracles and planted data."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter1d
from sklearn.metrics import normalized_mutual_info_score

from neuroplast.metrics.connectome import (
    affinity_tensor,
    detect_communities,
    dominant_factor,
    dynamic_connectome,
    instantaneous_affinity,
    ntf,
    pair_index,
    pairs_to_matrix,
    planted_calcium_traces,
    smoothed_derivative,
    static_correlation,
)


def _rand(shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_smoothed_derivative_matches_scipy_gaussian_and_numpy_gradient():
    x = _rand((2, 40, 3)).cumsum(1)
    for sigma in (0.0, 1.5, 3.0):
        ref = (
            x.numpy()
            if sigma == 0
            else gaussian_filter1d(x.numpy(), sigma, axis=1, mode="nearest", truncate=4.0)
        )
        ref = np.gradient(ref, axis=1)
        np.testing.assert_allclose(smoothed_derivative(x, sigma).numpy(), ref, atol=1e-12)
    assert smoothed_derivative(x[0], 1.0).shape == (1, 40, 3)  # (T, N) is one recording


def test_instantaneous_affinity_is_the_rectified_product_of_scaled_derivatives():
    x = _rand((1, 30, 4), seed=1).cumsum(1)
    d = np.gradient(gaussian_filter1d(x.numpy()[0], 2.0, axis=0, mode="nearest", truncate=4.0), axis=0)
    d = d / d.std(0)
    a = instantaneous_affinity(x, 2.0)[0].numpy()  # (T, P)
    for p, (i, j) in enumerate(zip(*np.triu_indices(4, 1), strict=True)):
        np.testing.assert_allclose(a[:, p], np.maximum(0.0, d[:, i] * d[:, j]), atol=1e-12)


def test_affinity_properties_flat_scale_offset_and_co_rising():
    t = torch.arange(60, dtype=torch.float64)
    rise = torch.sigmoid((t - 30) / 3)
    x = torch.stack([rise, 3 * rise + 7, torch.full_like(t, 2.0), -rise], 1)  # (T, 4)
    a = instantaneous_affinity(x, 1.0)[0]  # pairs (0,1) (0,2) (0,3) (1,2) (1,3) (2,3)
    assert (a >= 0).all()
    assert a[:, 0].max() > 1.0  # co-rising pair is affine where it rises
    assert a[:, [1, 3, 5]].abs().max() == 0  # a flat trace has no affinity
    assert a[:, 2].max() == 0 and a[:, 4].max() == 0  # opposite directions are not affine
    # invariance to a positive affine map of each trace
    y = _rand((50, 3), seed=2).cumsum(0)
    np.testing.assert_allclose(
        instantaneous_affinity(y * torch.tensor([2.0, 0.5, 9.0]) + 4.0), instantaneous_affinity(y), atol=1e-10
    )


def test_windowed_tensor_is_the_window_mean_and_correlation_matches_numpy():
    x = _rand((2, 50, 5), seed=3).cumsum(1)
    tens, starts = affinity_tensor(x, window=10, stride=7)
    assert starts.tolist() == [0, 7, 14, 21, 28, 35, 40][:6] == list(range(0, 41, 7))
    inst = instantaneous_affinity(x)
    assert tens.shape == (len(starts), 2, 10)
    for w, s in enumerate(starts.tolist()):
        torch.testing.assert_close(tens[w], inst[:, s : s + 10].mean(1))
    corr, _ = affinity_tensor(x, window=10, stride=7, kind="correlation")
    i, j = np.triu_indices(5, 1)
    for w, s in enumerate(starts.tolist()):
        for a in range(2):
            c = np.corrcoef(x[a, s : s + 10].numpy().T)
            np.testing.assert_allclose(corr[w, a].numpy(), np.maximum(c[i, j], 0), atol=1e-10)


def test_pairs_round_trip_and_index_order():
    i, j = pair_index(5)
    assert list(zip(i.tolist(), j.tolist(), strict=True))[:3] == [(0, 1), (0, 2), (0, 3)]
    p = torch.arange(10, dtype=torch.float64) + 1
    m = pairs_to_matrix(p, 5)
    assert torch.equal(m, m.T) and torch.equal(m.diagonal(), torch.zeros(5))
    assert torch.equal(m[i, j], p)


def test_ntf_recovers_planted_non_negative_factors():
    rs = np.random.RandomState(0)
    true = [rs.uniform(0, 1, (s, 3)) ** 3 for s in (12, 4, 20)]
    x = np.einsum("ar,br,cr->abc", *true)
    res = ntf(x, 3, seed=1, restarts=2, n_iter_max=2000)
    assert res.rel_error < 1e-3
    torch.testing.assert_close(res.reconstruct(), torch.as_tensor(x), atol=1e-2, rtol=0)
    # every true column is matched by a recovered column (congruence ~ 1)
    for mode, f in enumerate(res.factors):
        t = true[mode] / np.linalg.norm(true[mode], axis=0)
        cong = np.abs(t.T @ f.numpy()).max(1)
        assert cong.min() > 0.99
    assert (res.weights[:-1] >= res.weights[1:]).all()  # sorted by weight
    # deterministic with the seed
    again = ntf(x, 3, seed=1, restarts=2, n_iter_max=2000)
    assert torch.equal(again.factors[0], res.factors[0])


def test_louvain_matches_networkx_and_finds_blocks():
    rs = np.random.RandomState(0)
    truth = np.repeat([0, 1, 2], 6)
    w = np.where(truth[:, None] == truth[None, :], 1.0, 0.05) * rs.uniform(0.5, 1.0, (18, 18))
    w = (w + w.T) / 2
    np.fill_diagonal(w, 0)
    lab = detect_communities(torch.as_tensor(w), seed=3)
    assert normalized_mutual_info_score(truth, lab.numpy()) == pytest.approx(1.0)
    ref = nx.community.louvain_communities(nx.from_numpy_array(w), weight="weight", seed=3)
    assert sorted(sorted(c) for c in ref) == sorted(
        sorted(np.flatnonzero(lab.numpy() == k).tolist()) for k in range(int(lab.max()) + 1)
    )
    i, j = np.triu_indices(18, 1)
    assert torch.equal(detect_communities(torch.as_tensor(w[i, j]), seed=3), lab)  # pair vector form


def test_static_correlation_is_rectified_mean_pearson():
    x = _rand((3, 80, 4), seed=5)
    ref = np.mean([np.corrcoef(x[a].numpy().T) for a in range(3)], 0)
    ref = np.maximum(ref, 0)
    np.fill_diagonal(ref, 0)
    np.testing.assert_allclose(static_correlation(x).numpy(), ref, atol=1e-10)


def test_planted_traces_are_deterministic_with_planted_groups():
    a = planted_calcium_traces(12, 2, 2, 3, 100, generator=torch.Generator().manual_seed(4))
    b = planted_calcium_traces(12, 2, 2, 3, 100, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a.traces, b.traces) and torch.equal(a.labels, b.labels)
    assert a.traces.shape == (2, 200, 12) and a.labels.shape == (2, 12)
    assert all(torch.bincount(lab).tolist() == [4, 4, 4] for lab in a.labels)
    assert a.epoch.tolist() == [0] * 100 + [1] * 100


def test_pipeline_recovers_planted_time_varying_communities():
    # the PAPERS.md setting: 30 neurons, 5 animals, 3 epochs with fresh partitions into 3 groups
    pt = planted_calcium_traces(generator=torch.Generator().manual_seed(7))
    atlas = dynamic_connectome(pt.traces, window=50, rank=3, stride=25, seed=0, restarts=3)
    first, last = atlas.starts // 600, (atlas.starts + 49) // 600
    dom = dominant_factor(atlas)[first == last]  # windows inside one epoch
    ep = first[first == last]
    owners = [int(dom[ep == e].mode().values) for e in range(3)]
    assert sorted(owners) == [0, 1, 2]  # one factor per epoch
    assert (dom == torch.tensor(owners)[ep]).double().mean() >= 0.9
    for e, r in enumerate(owners):
        assert normalized_mutual_info_score(pt.labels[e].numpy(), atlas.labels[r].numpy()) > 0.9
    static = detect_communities(static_correlation(pt.traces), seed=0)
    assert (
        np.mean([normalized_mutual_info_score(pt.labels[e].numpy(), static.numpy()) for e in range(3)]) < 0.9
    )


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: affinity_tensor(torch.zeros(5), 2), "traces"),
        (lambda: affinity_tensor(torch.zeros(10, 3), 20), "window"),
        (lambda: affinity_tensor(torch.zeros(10, 3), 0), "window"),
        (lambda: affinity_tensor(torch.zeros(10, 3), 3, kind="mi"), "kind"),
        (lambda: smoothed_derivative(torch.zeros(10, 3), -1.0), "sigma"),
        (lambda: ntf(np.ones((3, 3)), 0), "rank"),
        (lambda: ntf(-np.ones((3, 3)), 1), "non-negative"),
        (lambda: detect_communities(torch.ones(3, 4)), "square"),
        (lambda: pairs_to_matrix(torch.ones(4), 4), "pairs"),
        (lambda: planted_calcium_traces(4, n_communities=5), "n_communities"),
    ],
)
def test_bad_input_is_rejected(call, match):
    with pytest.raises(ValueError, match=match):
        call()
