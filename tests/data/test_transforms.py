"""permute / rotate: bijection, inverse, determinism; rotation against rot90 and scipy.ndimage."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuroplast.data import Permute, permute, rotate

# ---------------------------------------------------------------------------------------------
# permute
# ---------------------------------------------------------------------------------------------


def test_permute_is_a_fixed_bijection_on_flat_inputs():
    p = permute(seed=7, num_pixels=64)
    assert p.perm.dtype == torch.int64
    assert torch.equal(torch.sort(p.perm).values, torch.arange(64))  # a bijection of 0..63
    assert not torch.equal(p.perm, torch.arange(64))
    x = torch.randn(5, 64)
    out = p(x)
    assert torch.equal(out, x[:, p.perm])
    assert torch.equal(p(x), out)  # same permutation on every call
    assert torch.equal(out[:, torch.argsort(p.perm)], x)  # invertible with argsort
    assert torch.equal(p.inverse()(out), x)
    # a permutation only moves values: the sorted rows are unchanged
    assert torch.equal(torch.sort(out, dim=1).values, torch.sort(x, dim=1).values)


def test_permute_moves_whole_pixels_on_images():
    p = permute(seed=3)
    x = torch.rand(2, 3, 4, 5)
    out = p(x)  # num_pixels taken from the first input: H * W = 20
    assert p.num_pixels == 20 and out.shape == x.shape
    for c in range(3):  # the same spatial permutation in every channel
        assert torch.equal(out[:, c].reshape(2, 20), x[:, c].reshape(2, 20)[:, p.perm])
    assert torch.equal(p.inverse()(out), x)
    assert torch.equal(permute(seed=3, num_pixels=20).perm, p.perm)  # lazy == explicit size


def test_permute_seeding_and_errors():
    assert torch.equal(permute(1, 100).perm, permute(1, 100).perm)
    assert not torch.equal(permute(1, 100).perm, permute(2, 100).perm)
    ref = torch.randperm(100, generator=torch.Generator().manual_seed(5))
    assert torch.equal(permute(5, 100).perm, ref)
    p = permute(0, 16)
    with pytest.raises(ValueError, match="16 pixels"):
        p(torch.zeros(2, 1, 5, 5))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\) or \(B, D\)"):
        p(torch.zeros(16))
    with pytest.raises(TypeError, match="seed"):
        permute(1.5)
    with pytest.raises(ValueError, match="num_pixels"):
        permute(0, 0)
    with pytest.raises(RuntimeError, match="num_pixels"):
        _ = permute(0).perm
    with pytest.raises(ValueError, match="permutation"):
        Permute.from_perm(torch.tensor([0, 0, 2]))


# ---------------------------------------------------------------------------------------------
# rotate
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("degrees,k", [(90, 1), (180, 2), (270, 3), (-90, -1), (450, 1)])
def test_rotate_quarter_turns_equal_rot90(degrees, k):
    x = torch.rand(3, 2, 9, 9)  # odd size: the centre is a pixel, quarter turns map pixels to pixels
    out = rotate(degrees)(x)
    expected = torch.rot90(x, k, dims=(-2, -1))
    torch.testing.assert_close(out[..., 1:-1, 1:-1], expected[..., 1:-1, 1:-1], atol=1e-5, rtol=0)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)  # in fact exact up to rounding


def test_rotate_zero_is_identity_and_centre_is_fixed():
    x = torch.rand(2, 1, 7, 7)
    assert torch.equal(rotate(0)(x), x)
    assert torch.equal(rotate(360)(x), x)
    out = rotate(33.0)(x)
    torch.testing.assert_close(out[..., 3, 3], x[..., 3, 3], atol=1e-6, rtol=0)
    # a constant image stays constant wherever the sampled point lies inside the image
    const = torch.full((1, 1, 15, 15), 0.7)
    torch.testing.assert_close(rotate(45)(const)[..., 5:10, 5:10], const[..., 5:10, 5:10], atol=1e-6, rtol=0)
    assert float(rotate(45)(const)[0, 0, 0, 0]) < 0.7  # corners rotate out: zero padding


def test_rotate_non_square_has_no_shear():
    # content in the central 9x9 square of a 9x15 image rotates within that square
    block = torch.rand(9, 9)
    x = torch.zeros(1, 1, 9, 15)
    x[0, 0, :, 3:12] = block
    expected = torch.zeros_like(x)
    expected[0, 0, :, 3:12] = torch.rot90(block, 1, dims=(0, 1))
    torch.testing.assert_close(rotate(90)(x), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("degrees", [30.0, -45.0, 17.5])
@pytest.mark.parametrize("shape", [(11, 11), (9, 15)])
def test_rotate_matches_scipy_ndimage(degrees, shape):
    ndimage = pytest.importorskip("scipy.ndimage")
    img = np.random.default_rng(0).random(shape)
    ref = ndimage.rotate(img, degrees, reshape=False, order=1, mode="grid-constant", cval=0.0)
    out = rotate(degrees)(torch.from_numpy(img)[None, None])[0, 0].numpy()  # float64 path
    np.testing.assert_allclose(out, ref, atol=1e-10)


def test_rotate_errors():
    r = rotate(10)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        r(torch.zeros(1, 5, 5))
    with pytest.raises(TypeError, match="floating"):
        r(torch.zeros(1, 1, 5, 5, dtype=torch.uint8))
    with pytest.raises(ValueError, match="finite"):
        rotate(float("nan"))
    with pytest.raises(TypeError, match="degrees"):
        rotate("90")
