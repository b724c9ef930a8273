"""Parameterisations of activation maximisation: pixel, Fourier (vs numpy's irfft2), generator code."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from neuroplast.visualize import CodeImage, FourierImage, PixelImage, fourier_scale


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one thread avoids contention on a shared machine (the numbers do not change)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_pixel_image_is_sigmoid_of_its_logits_and_seeded():
    a = PixelImage(3, (1, 5, 4), sd=0.5, generator=torch.Generator().manual_seed(1))
    b = PixelImage(3, (1, 5, 4), sd=0.5, generator=torch.Generator().manual_seed(1))
    c = PixelImage(3, (1, 5, 4), sd=0.5, generator=torch.Generator().manual_seed(2))
    x = a()
    assert x.shape == (3, 1, 5, 4)
    torch.testing.assert_close(x, 1 / (1 + torch.exp(-a.logits.detach())))
    assert torch.equal(a.logits, b.logits) and not torch.equal(a.logits, c.logits)
    assert 0.3 < float(a.logits.detach().std()) < 0.7  # sd respected
    assert torch.equal(a.penalty(), torch.zeros(3))


def test_fourier_scale_worked_values():
    s = fourier_scale(4, 6, decay=1.0)
    assert s.shape == (4, 4)  # rfft2 grid: H x (W // 2 + 1)
    assert s[0, 0] == pytest.approx(6.0)  # DC: 1 / (1 / max(H, W))
    assert s[0, 1] == pytest.approx(6.0)  # fx = 1/6 -> 1 / (1/6)
    assert s[1, 0] == pytest.approx(4.0)  # fy = 1/4
    assert s[2, 3] == pytest.approx(1 / np.hypot(0.5, 0.5))
    assert fourier_scale(4, 6, decay=2.0)[1, 0] == pytest.approx(16.0)


def test_fourier_image_matches_numpy_irfft2():
    p = FourierImage(2, (1, 6, 5), sd=1.0, decay=1.0, generator=torch.Generator().manual_seed(0))
    z = p.spectrum.detach().numpy()
    spec = (z[..., 0] + 1j * z[..., 1]) * fourier_scale(6, 5).numpy()
    ref = 1 / (1 + np.exp(-np.fft.irfft2(spec, s=(6, 5), norm="ortho") / 4))
    np.testing.assert_allclose(p().detach().numpy(), ref, rtol=1e-5, atol=1e-6)


def test_fourier_dc_coefficient_gives_a_flat_image():
    p = FourierImage(1, (1, 4, 4), sd=0.0)
    with torch.no_grad():
        p.spectrum[0, 0, 0, 0, 0] = 1.0
    # ortho irfft2 of DC c gives c / sqrt(H W) everywhere; scale at DC is max(H, W) = 4
    expected = torch.sigmoid(torch.tensor(1.0 * 4 / 4 / 4))
    torch.testing.assert_close(p(), expected.expand(1, 1, 4, 4))


class _Dec(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 4)

    def forward(self, h):
        return torch.sigmoid(self.lin(h)).reshape(-1, 1, 2, 2)


def test_code_image_projects_penalises_and_hides_the_decoder():
    dec = _Dec()
    lo, hi = torch.tensor([-1.0, 0.0]), torch.tensor([1.0, 0.5])
    p = CodeImage(dec, torch.tensor([[3.0, -2.0], [0.5, 0.25]]), 2, lo, hi)
    assert torch.equal(p.code.detach(), torch.tensor([[1.0, 0.0], [0.5, 0.25]]))  # clipped at construction
    assert [n for n, _ in p.named_parameters()] == ["code"]  # the decoder is not optimised
    torch.testing.assert_close(p.penalty(), torch.tensor([1.0, 0.3125]))
    torch.testing.assert_close(p(), dec(p.code))
    with torch.no_grad():
        p.code.add_(10.0)
    p.project()
    assert torch.equal(p.code.detach(), hi.expand(2, 2))
    q = CodeImage(dec, torch.zeros(2), 3, sd=1.0, generator=torch.Generator().manual_seed(0))
    assert q.code.shape == (3, 2) and float(q.code.detach().abs().sum()) > 0


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: PixelImage(0, (1, 2, 2)), "batch"),
        (lambda: PixelImage(1, (2, 2)), "shape"),
        (lambda: PixelImage(1, (1, 2, 2), sd=-1.0), "sd"),
        (lambda: FourierImage(1, (1, 2, 2), decay=float("nan")), "decay"),
        (lambda: CodeImage(_Dec(), torch.zeros(3, 2), 2), "init"),
        (lambda: CodeImage(_Dec(), torch.zeros(2), 2, torch.ones(3)), "lo"),
        (lambda: CodeImage(_Dec(), torch.zeros(2), 2, torch.ones(2), torch.zeros(2)), "lo <= hi"),
        (lambda: CodeImage("dec", torch.zeros(2), 2), "decoder"),
    ],
)
def test_bad_arguments_are_named(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()
