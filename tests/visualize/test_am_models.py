"""The generator prior (autoencoder, code statistics) and the classifiers and measures of the AM studies."""

from __future__ import annotations

import pytest
import torch

from neuroplast.core import find_sites
from neuroplast.visualize import (
    Autoencoder,
    Decoder,
    OtherCNN,
    SmallCNN,
    accuracy,
    code_stats,
    fit_autoencoder,
    fit_classifier,
    nearest_neighbour_distance,
    recognition_rate,
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


def _blobs(n=200, seed=0):
    """Two classes of 8x8 images: a bright left half or a bright right half, plus noise."""
    g = _g(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.zeros(n, 1, 8, 8)
    x[y == 0, :, :, :4] = 0.8
    x[y == 1, :, :, 4:] = 0.8
    return (x + 0.2 * torch.rand(x.shape, generator=g)).clamp(0, 1), y


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 8, 8)])
def test_classifier_shapes_and_sites(shape):
    torch.manual_seed(0)
    x = torch.rand(3, *shape)
    assert SmallCNN(shape)(x).shape == (3, 10) and OtherCNN(shape)(x).shape == (3, 10)
    c = SmallCNN(shape)
    assert find_sites(c, "conv2")[0].axis == 1 and find_sites(c, "fc2")[0].axis == -1


def test_fit_classifier_learns_and_recognition_rate_counts_argmax_hits():
    x, y = _blobs()
    torch.manual_seed(0)
    m = OtherCNN((1, 8, 8), classes=2)
    losses = fit_classifier(m, x, y, epochs=5, batch_size=32, lr=1e-2, generator=_g(0))
    assert losses[-1] < losses[0] and accuracy(m, x, y) > 0.95
    with torch.no_grad():
        pred = m(x[:10]).argmax(1)
    wrong = 1 - pred
    assert recognition_rate(m, x[:10], pred) == 1.0 and recognition_rate(m, x[:10], wrong) == 0.0
    mix = torch.cat([pred[:4], wrong[4:]])
    assert recognition_rate(m, x[:10], mix) == pytest.approx(0.4)


def test_nearest_neighbour_distance_is_the_brute_force_minimum():
    g = _g(0)
    a, d = torch.rand(7, 1, 3, 3, generator=g), torch.rand(20, 1, 3, 3, generator=g)
    ref = torch.tensor([min(float((a[i] - d[j]).norm()) for j in range(20)) for i in range(7)])
    torch.testing.assert_close(nearest_neighbour_distance(a, d, batch_size=3), ref)
    assert float(nearest_neighbour_distance(d[:5], d).abs().max()) == 0.0
    with pytest.raises(ValueError, match="same sample shape"):
        nearest_neighbour_distance(a, torch.rand(2, 1, 4, 4))


def test_autoencoder_learns_and_code_stats_are_per_dimension():
    x, _ = _blobs(300)
    torch.manual_seed(0)
    ae = Autoencoder((1, 8, 8), code_dim=4, hidden=32)
    with torch.no_grad():
        err0 = float(((ae(x) - x) ** 2).mean())
    losses = fit_autoencoder(ae, x, epochs=15, batch_size=32, lr=1e-2, generator=_g(0))
    with torch.no_grad():
        err = float(((ae(x) - x) ** 2).mean())
        h = ae.encoder(x)
    assert losses[-1] < losses[0] and err < 0.25 * err0
    st = code_stats(ae.encoder, x, batch_size=64)
    torch.testing.assert_close(st.lo, h.min(0).values)
    torch.testing.assert_close(st.hi, h.max(0).values)
    torch.testing.assert_close(st.mean, h.mean(0))
    torch.testing.assert_close(st.std, h.std(0, correction=0))
    out = ae.decoder(torch.randn(5, 4) * 10)
    assert out.shape == (5, 1, 8, 8) and float(out.detach().min()) >= 0 and float(out.detach().max()) <= 1


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="x: expected images"):
        fit_autoencoder(Autoencoder((1, 8, 8)), torch.rand(4, 1, 8, 8) * 2)
    with pytest.raises(ValueError, match=r"h: expected shape \(B, 16\)"):
        Decoder((1, 8, 8))(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="epochs"):
        fit_classifier(SmallCNN((1, 8, 8)), torch.rand(4, 1, 8, 8), torch.zeros(4, dtype=torch.long),
                       epochs=0)
    with pytest.raises(ValueError, match="targets"):
        recognition_rate(SmallCNN((1, 8, 8)), torch.rand(4, 1, 8, 8), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="shape"):
        SmallCNN((8, 8))
