"""Oracles for the sweep measures: hand-worked agreement tables, the logistic map's period-doubling
branches (fixed point loses stability at r = 3, the period-2 orbit at r = 1 + sqrt 6) and a bistable
cubic map's coexisting fixed points."""

import math

import pytest
import torch

from neuroplast.dynamics import analysis as A
from neuroplast.dynamics import sweeps as S
from neuroplast.neurons.maps import logistic_step


def logistic(r):
    r = torch.as_tensor(r, dtype=torch.float64).reshape(-1, 1)
    return lambda z: logistic_step(z, r)


def test_finite_helpers_and_class_counts():
    x = torch.tensor([1.0, float("nan"), 3.0, float("inf")], dtype=torch.float64)
    assert S.finite_mean(x) == 2.0
    assert math.isnan(S.finite_mean(torch.tensor([float("nan")])))
    assert S.finite_or_none(x.tolist()) == [1.0, None, 3.0, None]
    cls = A.OrbitClass(torch.tensor([4, 1, 2, 4]), torch.tensor([0, 1, 2, 0]))
    assert S.class_counts(cls) == {"chaotic": 2, "fixed point": 1, "period-2": 1}
    assert S.class_counts(["b", "a", "b"]) == {"a": 1, "b": 2}


def test_regime_agreement_hand_worked():
    # rows: chaotic agree, chaotic disagree (K low), periodic agree, quasiperiodic (lam ~ 0, K high),
    # diverged (ignored), NaN K (ignored)
    k = torch.tensor([0.9, 0.2, 0.0, 0.8, 0.9, float("nan")], dtype=torch.float64)
    lam = torch.tensor([0.3, 0.2, -0.1, 0.001, 0.5, 0.4], dtype=torch.float64)
    div = torch.tensor([False, False, False, False, True, False])
    cls = A.OrbitClass(torch.tensor([4, 4, 2, 3, 0, 4]), torch.tensor([0, 0, 2, 0, 0, 0]))
    out = S.regime_agreement(k, lam, div, cls, lyap_tol=5e-3)
    assert out["n_orbits_compared"] == 3
    assert out["k_lyap_agreement"] == pytest.approx(2 / 3)
    # including the quasiperiodic orbit: K = 0.8 > 0.5 but lam <= tol, a disagreement
    assert out["k_lyap_agreement_incl_quasiperiodic"] == pytest.approx(2 / 4)
    assert out["mean_k_quasiperiodic"] == pytest.approx(0.8)
    assert out["mean_k_periodic"] == pytest.approx(0.0)
    assert out["mean_k_chaotic"] == pytest.approx((0.9 + 0.2) / 2)  # diverged and NaN rows left out
    with pytest.raises(ValueError, match="k_values"):
        S.regime_agreement(k[:3], lam, div, cls)


def test_regime_means_hand_worked():
    cls = A.OrbitClass(torch.tensor([4, 4, 2, 1, 3]), torch.tensor([0, 0, 4, 1, 0]))
    se = torch.tensor([0.5, float("nan"), 0.1, 0.0, 9.0], dtype=torch.float64)
    assert S.regime_means(se, cls) == (0.5, pytest.approx(0.1))
    with pytest.raises(ValueError, match="values"):
        S.regime_means(se[:2], cls)


def test_logistic_sweep_zero_one_agrees_with_lyapunov():
    r = torch.tensor([2.8, 3.2, 3.5, 3.7, 3.8, 3.9, 4.0], dtype=torch.float64)
    z0 = torch.full((7, 1), 0.3, dtype=torch.float64)
    res = A.iterate(logistic(r), z0, 3000, 2000)
    lam, ldiv = A.lyapunov_max(logistic(r), z0, 3000, 500)
    div = res.diverged | ldiv
    cls = A.classify_orbits(res.records, lam, div)
    assert cls.names() == ["fixed point", "period-2", "period-4"] + ["chaotic"] * 4
    g = torch.Generator().manual_seed(0)
    kk = S.zero_one_k(res.records[:, :, 0].t(), div, n_c=50, generator=g)
    assert float(kk[0]) == 0.0  # the fixed point's constant record: regular, not NaN
    out = S.regime_agreement(kk, lam, div, cls)
    assert out["n_orbits_compared"] == 7 and out["k_lyap_agreement"] == 1.0
    assert out["mean_k_periodic"] < 0.1 and out["mean_k_chaotic"] > 0.9
    assert math.isnan(out["mean_k_quasiperiodic"])


def test_zero_one_k_keeps_nan_on_diverged_rows():
    x = torch.ones(2, 200, dtype=torch.float64)
    kk = S.zero_one_k(x, torch.tensor([False, True]), n_c=10, generator=torch.Generator().manual_seed(0))
    assert kk[0] == 0.0 and math.isnan(float(kk[1]))


def test_branch_bifurcations_logistic_period_doubling_cascade():
    r = torch.linspace(2.6, 3.6, 51, dtype=torch.float64)
    fp = A.fixed_points(logistic(r), (1 - 1 / r)[:, None].clone())
    z0 = torch.full((51, 1), 0.3, dtype=torch.float64)
    res = A.iterate(logistic(r), z0, 4000, 3000)
    lam, _ = A.lyapunov_max(logistic(r), z0, 4000, 500)
    cls = A.classify_orbits(res.records, lam, res.diverged)
    p2 = A.fixed_points(logistic(r), torch.nan_to_num(res.state), period=2)
    genuine = p2.converged & ((logistic(r)(p2.points) - p2.points).abs().amax(1) > 1e-6)
    branches = [(fp.eigenvalues, fp.converged), (p2.eigenvalues, genuine)]
    bif = S.branch_bifurcations(r, branches, cls, window=3, require=("period-doubling",))
    params = [c.param for c, _ in bif.matched]
    assert [c.kind for c, _ in bif.matched] == ["period-doubling", "period-doubling"]
    assert params[0] == pytest.approx(3.0, abs=1e-9)  # multiplier 2 - r, linear in r
    assert params[1] == pytest.approx(1 + math.sqrt(6), abs=2e-3)  # multiplier -r^2 + 2r + 4
    assert bif.match == 1.0
    assert [t["kind"] for t in bif.transitions_json()][:2] == ["period-doubling", "period-doubling"]
    js = bif.crossings_json()
    assert js[0]["matched"] is True and js[0]["direction"] == "destabilising"
    assert js[0]["multiplier"][0] == pytest.approx(-1.0, abs=1e-9)
    # no Neimark-Sacker in the logistic map: the default requirement (PD and NS) gives 0
    assert S.branch_bifurcations(r, branches, cls).match == 0.0
    # an orbit transition too far away (window 0 on a shifted sweep) leaves the crossing unmatched
    assert S.branch_bifurcations(r, branches[:1], cls, window=0, require=()).match == 1.0
    shifted = A.OrbitClass(cls.code.roll(5), cls.period.roll(5))
    assert S.branch_bifurcations(r, branches[:1], shifted, window=0, require=()).match == 0.0


def test_attractors_per_point_bistable_cubic_map():
    # x' = a x + (1 - a) x^3: for a = 1.5 the fixed points +-1 are stable (multiplier 3 - 2a = 0) and
    # split (-1, 1) at 0; for a = 0.5 only 0 is stable inside (-1, 1)
    a = torch.tensor([0.5, 1.5], dtype=torch.float64).repeat_interleave(4)[:, None]
    z0 = torch.tensor([-0.9, -0.4, 0.4, 0.9] * 2, dtype=torch.float64)[:, None]
    res = A.iterate(lambda z: a * z + (1 - a) * z**3, z0, 300, 200)
    n, n_pos = S.attractors_per_point(res.records, res.diverged, 2, among=z0[:, 0] > 0)
    assert n == [1, 2] and n_pos == [1, 1]
    n_all, same = S.attractors_per_point(res.records[:, :, 0], res.diverged, 2)
    assert n_all == same == [1, 2]
    with pytest.raises(ValueError, match="n_points"):
        S.attractors_per_point(res.records, res.diverged, 3)


def test_regime_point_moves_into_the_regime_but_not_past_it():
    names = ["fixed point"] * 3 + ["period-2"] * 10 + ["chaotic"]
    assert S.regime_point(names, "period-2") == 3
    assert S.regime_point(names, "period-2", into=4) == 7
    assert S.regime_point(names, "fixed point", into=4) == 2  # the regime ends first
    assert S.regime_point(names, "chaotic", into=4) == 13
    assert S.regime_point(names, "quasiperiodic", into=4) is None


def test_plot_helpers_draw_the_sweep():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    r = torch.tensor([2.8, 3.2, 3.9], dtype=torch.float64)
    z0 = torch.tensor([[0.3], [0.6]] * 3, dtype=torch.float64)  # M = 2 orbits per r
    res = A.iterate(logistic(r.repeat_interleave(2)), z0, 600, 400)
    lam, _ = A.lyapunov_max(logistic(r.repeat_interleave(2)), z0, 600, 100)
    fig = Figure()
    ax = fig.subplots(1, 6)
    S.plot_bifurcation_lyapunov(ax[0], ax[1], r, res.records[:, :, 0], lam, res.diverged, n_last=50)
    assert len(ax[0].collections[0].get_offsets()) == 3 * 2 * 50
    assert torch.allclose(torch.as_tensor(ax[1].lines[1].get_ydata()), lam.reshape(3, 2)[:, 1])
    cls = A.classify_orbits(res.records[:, ::2], lam[::2], res.diverged[::2])
    first = res.records[:, ::2, 0]
    S.plot_phase_portraits(ax[2:5], ("period-2", "chaotic", "quasiperiodic"), cls, r, first, first, "r")
    assert ax[2].get_title() == "period-2\nr=3.2000" and len(ax[4].lines) == 0
    assert ax[2].get_ylabel() == "y" and ax[4].get_xlabel() == "x" and ax[3].get_ylabel() == ""
    assert sorted(set(ax[2].lines[0].get_xdata().round(6).tolist())) == sorted(
        set(first[:, 1].numpy().round(6).tolist())
    )
    S.plot_zero_one_sampen(ax[5], ax[5], r, torch.zeros(3), torch.ones(3))
    assert ax[5].get_ylabel() == "0-1 test K" and len(ax[5].lines) == 2
