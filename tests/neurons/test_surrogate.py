"""Surrogate gradients: derivative of the primitive (oracle: autograd), area, reference libraries."""

from __future__ import annotations

import math

import pytest
import torch

from neuroplast.neurons import surrogate as sg

ALL = [sg.ATan(), sg.ATan(alpha=5.0), sg.Sigmoid(), sg.FastSigmoid(), sg.FastSigmoid(slope=3.0),
       sg.Triangle(), sg.Triangle(width=0.3)]


@pytest.mark.parametrize("s", ALL, ids=repr)
def test_grad_is_derivative_of_primitive(s: sg.Surrogate) -> None:
    x = torch.linspace(-3, 3, 2001, dtype=torch.float64).requires_grad_()
    (d,) = torch.autograd.grad(s.primitive(x).sum(), x)
    # the triangle's primitive has kinks at +-width and 0 where autograd picks one side
    mask = torch.ones_like(x, dtype=torch.bool)
    if isinstance(s, (sg.Triangle, sg.FastSigmoid)):
        w = getattr(s, "width", 0.0)
        mask = ((x.abs() - w).abs() > 1e-9) & (x.abs() > 1e-9)
    torch.testing.assert_close(d[mask], s.grad(x.detach())[mask], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("s", ALL, ids=repr)
def test_inplace_grad_matches(s: sg.Surrogate) -> None:
    x = torch.randn(1000, dtype=torch.float64) * 2
    want = s.grad(x)
    y = x.clone()
    out = s.grad_(y)
    assert out.data_ptr() == y.data_ptr()
    torch.testing.assert_close(out, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("s", [sg.ATan(), sg.Sigmoid(), sg.Triangle(), sg.Triangle(width=0.3)], ids=repr)
def test_unit_area(s: sg.Surrogate) -> None:
    x = torch.linspace(-2000, 2000, 4_000_001, dtype=torch.float64)
    area = torch.trapezoid(s.grad(x), x).item()
    assert area == pytest.approx(1.0, abs=2e-3)  # the atan tail beyond |x|=2000 holds ~1e-4


def test_fast_sigmoid_area_is_two_over_slope() -> None:
    s = sg.FastSigmoid(slope=25.0)
    x = torch.linspace(-1000, 1000, 2_000_001, dtype=torch.float64)
    assert torch.trapezoid(s.grad(x), x).item() == pytest.approx(2 / 25, rel=1e-3)


@pytest.mark.parametrize("s", ALL, ids=repr)
def test_forward_is_strict_heaviside_and_backward_is_surrogate(s: sg.Surrogate) -> None:
    x = torch.tensor([-1.0, -1e-7, 0.0, 1e-7, 2.0], requires_grad=True)
    y = s(x)
    assert y.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]
    g = torch.randn(5)
    y.backward(g)
    torch.testing.assert_close(x.grad, g * s.grad(x.detach()))


def test_atan_values_worked_example() -> None:
    s = sg.ATan(alpha=2.0)
    # g(0) = alpha/2 = 1; g(1/pi) = 1 / (1 + 1) = 0.5
    assert s.grad(torch.tensor(0.0)).item() == pytest.approx(1.0)
    assert s.grad(torch.tensor(1 / math.pi)).item() == pytest.approx(0.5)


def test_atan_matches_snntorch() -> None:
    snn_sg = pytest.importorskip("snntorch.surrogate")
    x = torch.randn(500, dtype=torch.float64, requires_grad=True)
    snn_sg.atan(alpha=2.0)(x).sum().backward()
    torch.testing.assert_close(x.grad, sg.ATan(2.0).grad(x.detach()))


def test_fast_sigmoid_matches_snntorch() -> None:
    snn_sg = pytest.importorskip("snntorch.surrogate")
    x = torch.randn(500, dtype=torch.float64, requires_grad=True)
    snn_sg.fast_sigmoid(slope=25)(x).sum().backward()
    torch.testing.assert_close(x.grad, sg.FastSigmoid(25.0).grad(x.detach()))


def test_get_by_name_and_passthrough() -> None:
    assert isinstance(sg.get("atan"), sg.ATan)
    assert isinstance(sg.get("fast-sigmoid"), sg.FastSigmoid)
    obj = sg.Triangle(0.5)
    assert sg.get(obj) is obj
    assert sg.names() == ["atan", "fast_sigmoid", "sigmoid", "triangle"]
    assert sg.ATan(2.0) == sg.ATan(2.0) and sg.ATan(2.0) != sg.ATan(3.0)


def test_bad_names_and_values() -> None:
    with pytest.raises(ValueError, match=r"surrogate: unknown surrogate 'atn'.*did you mean 'atan'"):
        sg.get("atn")
    with pytest.raises(ValueError, match="spike_fn: unknown surrogate"):
        sg.get("boxcar", argument="spike_fn")
    with pytest.raises(TypeError, match="surrogate: expected a surrogate name"):
        sg.get(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="alpha: expected a positive number"):
        sg.ATan(alpha=0)
    with pytest.raises(ValueError, match="width"):
        sg.Triangle(width=-1)


class _ScaledATan(sg.ATan):
    """A user surrogate overriding ``grad`` only: the parent's in-place fast form must not leak."""

    def grad(self, x):
        return 3.0 * super().grad(x)


def test_subclass_overriding_grad_gets_its_own_inplace_form():
    x = torch.linspace(-2, 2, 101)
    s = _ScaledATan()
    assert torch.allclose(s.grad_(x.clone()), 3.0 * sg.ATan().grad(x))


def test_fused_lif_uses_a_subclass_surrogate():
    from neuroplast.neurons.spiking import LIFParams, lif_multistep, lif_multistep_reference

    torch.manual_seed(0)
    x = torch.randn(12, 4, 6)
    grads = []
    for run in (lif_multistep, lif_multistep_reference):
        xi = x.clone().requires_grad_()
        s, _ = run(xi, None, LIFParams(beta=0.8, surrogate=_ScaledATan()))
        (s * torch.arange(6.0)).sum().backward()
        grads.append(xi.grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-6)
