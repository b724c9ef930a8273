"""Oracles for the dynamical analysis: Lyapunov exponents of the logistic and Henon maps, closed-form
fixed points, eigenvalue crossings at known bifurcations, orbit classification, divergence."""

import math

import pytest
import torch

from neuroplast.dynamics import analysis as A
from neuroplast.neurons.maps import MapState, henon_step, logistic_step


def logistic(r):
    r = torch.as_tensor(r, dtype=torch.float64).reshape(-1, 1)
    return lambda z: logistic_step(z, r)


def henon(a=1.4, b=0.3):
    a = torch.as_tensor(a, dtype=torch.float64).reshape(-1)
    b = torch.as_tensor(b, dtype=torch.float64).reshape(-1)

    def step(z):
        s = henon_step(MapState(z[:, 0], z[:, 1]), a, b)
        return torch.stack([s.x, s.y], 1)

    return step


class Henon:
    """Henon map with an analytic Jacobian (the Lyapunov routines use it instead of autograd)."""

    def __init__(self, a=1.4, b=0.3):
        self.a, self.b = a, b

    def step(self, z):
        return henon()(z)

    def jacobian(self, z):
        j = torch.zeros(z.shape[0], 2, 2, dtype=z.dtype)
        j[:, 0, 0] = -2 * self.a * z[:, 0]
        j[:, 0, 1] = 1.0
        j[:, 1, 0] = self.b
        return j

    def tangent(self, z, v):
        return (self.jacobian(z) @ v.unsqueeze(-1)).squeeze(-1)


def delayed_logistic(r):
    """x' = r x (1 - y), y' = x: Neimark-Sacker of the fixed point (1 - 1/r, 1 - 1/r) at r = 2."""
    r = torch.as_tensor(r, dtype=torch.float64).reshape(-1)
    return lambda z: torch.stack([r * z[:, 0] * (1 - z[:, 1]), z[:, 0]], 1)


def test_lyapunov_logistic_r4_is_ln2_and_r32_negative():
    g = torch.Generator().manual_seed(0)
    z0 = torch.linspace(0.1, 0.4, 16, dtype=torch.float64)[:, None]
    r = torch.tensor([4.0] * 8 + [3.2] * 8)
    lam, div = A.lyapunov_max(logistic(r), z0, 4000, 500, generator=g)
    assert not div.any()
    assert float(lam[:8].mean()) == pytest.approx(math.log(2), abs=0.01)
    # at r = 3.2 the period-2 orbit has multiplier r^2 (1-2x1)(1-2x2) = -r^2 + 2r + 4 = 0.16
    assert torch.allclose(lam[8:], torch.full((8,), 0.5 * math.log(0.16), dtype=torch.float64), atol=2e-3)


def test_lyapunov_henon_and_spectrum():
    g = torch.Generator().manual_seed(0)
    z0 = 0.1 + 0.05 * torch.rand(8, 2, generator=g, dtype=torch.float64)
    lam, _ = A.lyapunov_max(Henon(), z0, 6000, 500, generator=g, renorm_every=5)
    assert float(lam.mean()) == pytest.approx(0.419, abs=0.01)
    spec, _ = A.lyapunov_spectrum(Henon(), z0, 6000, 500, generator=g)
    assert float(spec[:, 0].mean()) == pytest.approx(0.419, abs=0.01)
    # the exponents sum to log|det J| = log 0.3 for the Henon map
    assert torch.allclose(spec.sum(1), torch.full((8,), math.log(0.3), dtype=torch.float64), atol=1e-9)


def test_autograd_jacobian_and_tangent_match_closed_form():
    z = torch.tensor([[0.2, -0.5], [1.1, 0.3]], dtype=torch.float64)
    j = A.jacobian(henon(), z)
    assert torch.allclose(j, Henon().jacobian(z), atol=1e-14)
    v = torch.tensor([[1.0, 2.0], [-0.5, 0.25]], dtype=torch.float64)
    assert torch.allclose(A.tangent(henon(), z, v), Henon().tangent(z, v), atol=1e-14)
    # the generic (autograd) Benettin path agrees with the analytic one on the same orbit and vector
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    l_ad, _ = A.lyapunov_max(henon(), z[:1], 300, 50, generator=g1)
    l_an, _ = A.lyapunov_max(Henon(), z[:1], 300, 50, generator=g2)
    assert torch.allclose(l_ad, l_an, atol=1e-10)


def test_fixed_points_henon_closed_form_and_stability():
    a, b = 1.4, 0.3
    guesses = torch.tensor([[1.0, 0.3], [-1.0, -0.3]], dtype=torch.float64)
    fp = A.fixed_points(henon(a, b), guesses)
    disc = math.sqrt((1 - b) ** 2 + 4 * a)
    xs = sorted([(-(1 - b) + disc) / (2 * a), (-(1 - b) - disc) / (2 * a)], reverse=True)
    assert fp.converged.all()
    assert torch.allclose(fp.points[:, 0], torch.tensor(xs, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(fp.points[:, 1], b * fp.points[:, 0], atol=1e-12)
    assert fp.stability == ["saddle", "saddle"]


def test_logistic_fixed_point_and_period_two_orbit():
    r = 3.2
    fp = A.fixed_points(logistic(r), torch.tensor([[0.6]], dtype=torch.float64))
    assert float(fp.points[0, 0]) == pytest.approx(1 - 1 / r, abs=1e-12)
    assert fp.stability == ["unstable node"]  # multiplier 2 - r = -1.2
    p2 = A.periodic_orbits(logistic(r), torch.tensor([[0.5]], dtype=torch.float64), period=2)
    x1 = (r + 1 - math.sqrt((r + 1) * (r - 3))) / (2 * r)
    assert float(p2.points[0, 0]) == pytest.approx(x1, abs=1e-10)
    assert p2.stability == ["stable node"]
    res = A.iterate(logistic(r), torch.tensor([[0.3]], dtype=torch.float64), 2000, 1800)
    assert A.orbit_period(res.records).tolist() == [2]


def test_crossings_logistic_period_doubling_and_fold():
    r = torch.linspace(0.5, 3.5, 61, dtype=torch.float64)
    fp = A.fixed_points(logistic(r), torch.full((61, 1), 0.5, dtype=torch.float64))
    # follow the non-trivial branch x* = 1 - 1/r (multiplier 2 - r); Newton from 0.5 finds it for r > 1
    ok = fp.converged & (r > 1.05)
    crossings = A.detect_crossings(r, fp.eigenvalues, valid=ok)
    assert [c.kind for c in crossings] == ["period-doubling"]
    assert crossings[0].param == pytest.approx(3.0, abs=1e-9)  # multiplier is linear in r: exact
    # the trivial branch x = 0 has multiplier r: it crosses +1 at r = 1 (a fold-type crossing)
    ev0 = r.to(torch.complex128).reshape(-1, 1)
    c0 = A.detect_crossings(r, ev0)
    assert [(c.kind, round(c.param, 9)) for c in c0] == [("saddle-node", 1.0)]


def test_crossings_neimark_sacker_of_delayed_logistic():
    r = torch.linspace(1.5, 2.5, 41, dtype=torch.float64)
    guess = (1 - 1 / r)[:, None].expand(41, 2).clone() + 0.01
    fp = A.fixed_points(delayed_logistic(r), guess)
    assert fp.converged.all()
    cr = A.detect_crossings(r, fp.eigenvalues)
    assert [c.kind for c in cr] == ["neimark-sacker"]
    assert cr[0].param == pytest.approx(2.0, abs=0.01)
    assert abs(abs(cr[0].multiplier) - 1) < 1e-9 and cr[0].direction == "destabilising"


def test_orbit_classes_and_transitions_logistic():
    r = torch.tensor([2.8, 3.2, 3.5, 3.9, 4.2], dtype=torch.float64)
    z0 = torch.full((5, 1), 0.3, dtype=torch.float64)
    res = A.iterate(logistic(r), z0, 3000, 2800, bound=1e3)
    lam, div = A.lyapunov_max(logistic(r), z0, 3000, 500, bound=1e3)
    cls = A.classify_orbits(res.records, lam, res.diverged | div)
    assert cls.names() == ["fixed point", "period-2", "period-4", "chaotic", "divergent"]
    kinds = [k for _, _, k in A.orbit_transitions(r, cls)]
    assert kinds == ["period-doubling", "period-doubling", "chaos"]  # no transition into divergence


def test_divergent_orbits_flagged_never_chaos():
    z0 = torch.tensor([[0.3], [0.3]], dtype=torch.float64)
    res = A.iterate(logistic([3.9, 4.5]), z0, 500, 400)
    assert res.diverged.tolist() == [False, True]
    assert torch.isnan(res.records[:, 1]).all()
    lam, div = A.lyapunov_max(logistic([3.9, 4.5]), z0, 500, 100)
    assert div.tolist() == [False, True] and math.isnan(float(lam[1])) and lam[0] > 0


def test_coexisting_attractors_of_a_bistable_map():
    # x' = 3 x - x^3 / ... bistable cubic map with two stable fixed points +-1: x' = 1.5 x - 0.5 x^3
    step = lambda z: 1.5 * z - 0.5 * z**3  # noqa: E731
    z0 = torch.linspace(-1.5, 1.5, 8, dtype=torch.float64)[:, None]
    res = A.iterate(step, z0, 300, 200)
    labels, n = A.coexisting_attractors(res.records, res.diverged)
    assert n == 2
    assert labels.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]


def test_bifurcation_diagram_shapes_and_bad_input():
    r = torch.linspace(2.5, 4.0, 7, dtype=torch.float64)
    m = 3
    z0 = torch.rand(21, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 0.8 + 0.1
    step = logistic(r.repeat_interleave(m))
    d = A.bifurcation_diagram(step, r, z0, 600, 400, n_record=50)
    assert d.points.shape == (7, 150) and d.diverged.shape == (7, 3)
    assert torch.allclose(d.points[0], torch.full((150,), 1 - 1 / 2.5, dtype=torch.float64), atol=1e-9)
    with pytest.raises(ValueError, match="non-empty"):
        A.bifurcation_diagram(step, torch.tensor([]), z0, 600, 400)
    with pytest.raises(ValueError, match="multiple"):
        A.bifurcation_diagram(step, r, z0[:20], 600, 400)
    with pytest.raises(ValueError, match="NaN"):
        A.iterate(step, torch.full((21, 1), float("nan"), dtype=torch.float64), 10, 0)
