"""Map neurons: formulas worked by hand, batching, Jacobians against autograd, bad input."""

import math

import pytest
import torch

from neuroplast.neurons import maps as M


def test_chialvo_step_by_hand_and_golden_trajectory():
    s = M.chialvo_step(
        M.MapState(torch.tensor(0.5, dtype=torch.float64), torch.tensor(0.2, dtype=torch.float64)),
        M.ChialvoParams(a=0.89, b=0.6, c=0.28, k=0.03),
    )
    assert float(s.x) == pytest.approx(0.25 * math.exp(-0.3) + 0.03, abs=1e-15)
    assert float(s.y) == pytest.approx(0.89 * 0.2 - 0.6 * 0.5 + 0.28, abs=1e-15)
    x, y = 0.5, 0.2
    st = M.MapState(torch.tensor([x], dtype=torch.float64), torch.tensor([y], dtype=torch.float64))
    for _ in range(50):  # golden trajectory: plain-Python floats as the reference
        x, y = x * x * math.exp(y - x) + 0.03, 0.89 * y - 0.6 * x + 0.28
        st = M.chialvo_step(st, M.ChialvoParams())
    assert float(st.x[0]) == pytest.approx(x, rel=1e-12)
    assert float(st.y[0]) == pytest.approx(y, rel=1e-12)


def test_batched_parameters_equal_one_by_one():
    g = torch.Generator().manual_seed(0)
    b = torch.linspace(0.1, 0.7, 5, dtype=torch.float64)
    k = torch.linspace(-0.02, 0.05, 5, dtype=torch.float64)
    x = torch.rand(5, 3, generator=g, dtype=torch.float64)  # 5 parameter sets x 3 neurons
    y = torch.rand(5, 3, generator=g, dtype=torch.float64)
    out = M.chialvo_step(M.MapState(x, y), M.ChialvoParams(0.89, b[:, None], 0.28, k[:, None]))
    for i in range(5):
        one = M.chialvo_step(M.MapState(x[i], y[i]), M.ChialvoParams(0.89, float(b[i]), 0.28, float(k[i])))
        assert torch.equal(out.x[i], one.x) and torch.equal(out.y[i], one.y)


def test_wrong_parameter_shape_names_the_parameter():
    st = M.MapState(torch.zeros(5, 3, dtype=torch.float64), torch.zeros(5, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="'k'.*shape \\(4,\\)"):
        M.chialvo_step(st, M.ChialvoParams(k=torch.zeros(4)))
    with pytest.raises(ValueError, match="'alpha'"):
        M.rulkov_step(st, M.RulkovParams(alpha=torch.zeros(7, 1)))
    with pytest.raises(TypeError, match="'mu'"):
        M.rulkov_step(st, M.RulkovParams(mu="0.1"))


@pytest.mark.parametrize("which", ["chialvo", "rulkov"])
def test_analytic_jacobians_match_autograd(which):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(6, generator=g, dtype=torch.float64) * 2 - 0.5
    y = torch.rand(6, generator=g, dtype=torch.float64)
    if which == "chialvo":
        p = M.ChialvoParams(0.89, 0.18, 0.28, 0.03)
        f, jac = M.chialvo_step, M.chialvo_jacobian
    else:
        p = M.RulkovParams(4.3, 0.001, -1.0)
        f, jac = M.rulkov_step, M.rulkov_jacobian
    for i in range(6):
        auto = torch.autograd.functional.jacobian(
            lambda v, i=i: torch.stack(list(f(M.MapState(v[0], v[1]), p))), torch.stack([x[i], y[i]])
        )
        assert torch.allclose(jac(M.MapState(x, y), p)[i], auto, atol=1e-13)


def test_rulkov_chaotic_formula_and_fixed_point():
    p = M.RulkovParams(4.1, 0.001, -1.0)
    s = M.rulkov_step(
        M.MapState(torch.tensor(-1.0, dtype=torch.float64), torch.tensor(-3.05, dtype=torch.float64)), p
    )
    # (x, y) = (sigma, sigma - alpha / (1 + sigma^2)) is the fixed point
    assert float(s.x) == pytest.approx(-1.0, abs=1e-14) and float(s.y) == pytest.approx(-3.05, abs=1e-14)


def test_rulkov_nonchaotic_piecewise_branches():
    p = M.RulkovNCParams(alpha=4.5, mu=0.001, sigma=0.1, beta=0.0)
    x = torch.tensor([-0.5, 0.5, 0.5, 6.0], dtype=torch.float64)
    y = torch.full((4,), -2.0, dtype=torch.float64)
    xp = torch.tensor([-1.0, -1.0, 0.5, -1.0], dtype=torch.float64)
    s = M.rulkov_nonchaotic_step(M.RulkovNCState(x, y, xp), p)
    expected = torch.tensor([4.5 / 1.5 - 2.0, 4.5 - 2.0, -1.0, -1.0], dtype=torch.float64)
    assert torch.allclose(s.x, expected)
    assert torch.allclose(s.y, y - 0.001 * (x + 1) + 0.001 * 0.1)
    assert torch.equal(s.x_prev, x)
    # tonic spiking: the orbit of an isolated neuron with alpha = 4.5 keeps spiking (x reaches the top value)
    st = M.RulkovNCState(
        torch.tensor([-1.0], dtype=torch.float64),
        torch.tensor([-2.9], dtype=torch.float64),
        torch.tensor([-1.0], dtype=torch.float64),
    )
    xs = []
    for _ in range(3000):
        st = M.rulkov_nonchaotic_step(st, p)
        xs.append(float(st.x[0]))
    assert max(xs[1000:]) > 0.5 and xs[1000:].count(-1.0) >= 5  # repeated spike-and-reset


def test_classic_maps():
    assert float(M.logistic_step(torch.tensor(0.25), 4.0)) == pytest.approx(0.75)
    s = M.henon_step(M.MapState(torch.tensor(0.5), torch.tensor(0.1)))
    assert float(s.x) == pytest.approx(1 - 1.4 * 0.25 + 0.1) and float(s.y) == pytest.approx(0.15)


def test_modules_match_functional_and_validate():
    mod = M.ChialvoNeuron(3, b=torch.tensor([0.6, 0.18, 0.3]))
    inp = torch.zeros(20, 2, 3, dtype=torch.float64)
    st = mod.initial_state(2, torch.Generator().manual_seed(0))
    xs, last = mod(inp, st)
    ref = st
    for t in range(20):
        ref = M.chialvo_step(
            ref, M.ChialvoParams(0.89, torch.tensor([0.6, 0.18, 0.3], dtype=torch.float64), 0.28, 0.03)
        )
        assert torch.allclose(xs[t], ref.x)
    assert set(mod.state_dict()) == {"a", "b", "c", "k"}
    with pytest.raises(ValueError, match="shape \\(T, B, 3\\)"):
        mod(torch.zeros(5, 3))
    with pytest.raises(ValueError, match="'b'"):
        M.ChialvoNeuron(3, b=torch.tensor([0.1, 0.2]))
    r = M.RulkovNeuron(2)
    xr, _ = r(torch.zeros(10, 1, 2, dtype=torch.float64))
    assert xr.shape == (10, 1, 2) and torch.isfinite(xr).all()
