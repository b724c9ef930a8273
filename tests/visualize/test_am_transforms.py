"""Random affine transforms (vs scipy.ndimage and the data package's Rotate) and the image priors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from neuroplast.data.transforms import Rotate
from neuroplast.visualize import (
    Compose,
    Jitter,
    RandomRotate,
    RandomScale,
    affine_warp,
    l2,
    standard_transforms,
    total_variation,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one thread avoids contention on a shared machine (the numbers do not change)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _g(seed):
    return torch.Generator().manual_seed(seed)


def _x(b=2, h=9, w=9, seed=0):
    return torch.rand(b, 1, h, w, generator=_g(seed), dtype=torch.float64)


def test_identity_warp_returns_the_image():
    x = _x()
    y = affine_warp(x, torch.zeros(2), torch.ones(2), torch.zeros(2, 2))
    torch.testing.assert_close(y, x)


def test_integer_shift_is_a_zero_filled_translation():
    x = _x(1, 7, 8)
    y = affine_warp(x, torch.zeros(1), torch.ones(1), torch.tensor([[2.0, -1.0]]))  # right 2, up 1
    ref = torch.zeros_like(x)
    ref[..., :-1, 2:] = x[..., 1:, :-2]
    torch.testing.assert_close(y, ref)
    # with fill, the uncovered border takes the fill value
    y5 = affine_warp(x, torch.zeros(1), torch.ones(1), torch.tensor([[2.0, -1.0]]), fill=0.5)
    assert torch.all(y5[..., :, :2] == 0.5) and torch.all(y5[..., -1, :] == 0.5)


def test_rotation_matches_the_data_rotate_and_rot90():
    x = _x(3, 10, 10)
    t = 23.0
    ang = torch.full((3,), -math.radians(t), dtype=torch.float64)
    y = affine_warp(x, ang, torch.ones(3), torch.zeros(3, 2))
    torch.testing.assert_close(y, Rotate(t)(x), atol=1e-10, rtol=0)
    q = affine_warp(x, torch.full((3,), -math.pi / 2, dtype=torch.float64), torch.ones(3), torch.zeros(3, 2))
    torch.testing.assert_close(q, torch.rot90(x, 1, dims=(-2, -1)), atol=1e-10, rtol=0)


@pytest.mark.parametrize("s", [0.9, 1.1, 1.7])
def test_scaling_matches_scipy_affine_transform(s):
    x = _x(1, 11, 13)
    y = affine_warp(x, torch.zeros(1), torch.tensor([s], dtype=torch.float64), torch.zeros(1, 2))
    img = x[0, 0].numpy()
    c = (np.array(img.shape) - 1) / 2
    ref = ndimage.affine_transform(img, np.full(2, 1 / s), offset=c - c / s, order=1, mode="grid-constant",
                                   cval=0.0)
    np.testing.assert_allclose(y[0, 0].numpy(), ref, atol=1e-10)


def test_random_transforms_are_seeded_in_range_and_differentiable():
    j = Jitter(2)
    ang, sc, sh = j.params(500, _g(0))
    assert set(sh.unique().tolist()) == {-2.0, -1.0, 0.0, 1.0, 2.0}
    assert torch.all(sc == 1) and torch.all(ang == 0)
    _, s, _ = RandomScale(0.9, 1.1).params(500, _g(0))
    assert 0.9 <= float(s.min()) and float(s.max()) <= 1.1 and float(s.std()) > 0.05
    a, _, _ = RandomRotate(10).params(500, _g(0))
    assert float(a.abs().max()) <= math.radians(10) + 1e-12 and float(a.abs().max()) > math.radians(9)
    t = standard_transforms(28)
    x = _x(4, 28, 28).float().requires_grad_(True)
    y1 = t(x, _g(5))
    y2 = t(x, _g(5))
    y3 = t(x, _g(6))
    assert torch.equal(y1, y2) and not torch.equal(y1, y3) and y1.shape == x.shape
    y1.sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_standard_stack_scales_lucids_pixels():
    big = standard_transforms(224)
    assert [repr(t) for t in big.transforms] == ["Jitter(20)", "RandomScale(0.9, 1.1)", "RandomRotate(10.0)",
                                                 "Jitter(4)"]
    assert [t.pixels for t in standard_transforms(8).transforms if isinstance(t, Jitter)] == [1, 1]


def test_l2_and_total_variation_worked_examples():
    x = torch.tensor([[[[0.0, 1.0], [0.0, 0.0]]], [[[0.5, 0.5], [0.5, 0.5]]]])
    torch.testing.assert_close(l2(x), torch.tensor([1.0, 1.0]))
    torch.testing.assert_close(l2(x, center=0.5), torch.tensor([1.0, 0.0]))
    # one 2x2 image -> a single (dy, dx) pair at (0, 0): dy = 0, dx = 1
    torch.testing.assert_close(total_variation(x, beta=2.0), torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(total_variation(x, beta=1.0), torch.tensor([1.0, 0.0]), atol=1e-5, rtol=0)
    r = torch.rand(3, 2, 5, 6, generator=_g(0))
    dy = r[..., 1:, :-1] - r[..., :-1, :-1]
    dx = r[..., :-1, 1:] - r[..., :-1, :-1]
    torch.testing.assert_close(total_variation(r, 1.0), torch.sqrt(dy**2 + dx**2 + 1e-12).sum((1, 2, 3)))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Jitter(-1), "pixels"),
        (lambda: RandomScale(1.2, 1.1), "lo <= hi"),
        (lambda: RandomRotate(-5), "degrees"),
        (lambda: Compose([1]), "transforms"),
        (lambda: l2(torch.zeros(3, 3)), "l2: x"),
        (lambda: total_variation(torch.zeros(1, 1, 1, 4)), "H, W >= 2"),
        (lambda: Jitter(1)(torch.zeros(2, 3)), "Jitter: x"),
        (lambda: standard_transforms(0), "size"),
    ],
)
def test_bad_arguments_are_named(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()
