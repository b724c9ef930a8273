"""Oja's subspace rule: formula, convergence to the SVD principal subspace, frozen rows, state."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from neuroplast.plasticity.hebbian import OjaSubspace, oja_subspace_delta


def _data(n: int = 24, k_signal: int = 5, samples: int = 4000, seed: int = 0) -> torch.Tensor:
    """Samples with a clear spectral gap after the first ``k_signal`` directions."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    scales = torch.cat(
        [
            torch.linspace(3.0, 1.8, k_signal, dtype=torch.float64),
            torch.full((n - k_signal,), 0.3, dtype=torch.float64),
        ]
    )
    return ((torch.randn(samples, n, generator=g, dtype=torch.float64) * scales) @ q.T).float()


def _train(sub: OjaSubspace, x: torch.Tensor, epochs: int, batch: int = 50, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(x.shape[0], generator=g)
        for i in range(0, x.shape[0], batch):
            sub.update(x[order[i : i + batch]])


def _angles_deg(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Principal angles (degrees) between the column spans of a and b (scipy oracle)."""
    return np.degrees(scipy.linalg.subspace_angles(a.double().numpy(), b.double().numpy()))


def test_delta_matches_the_rule_written_out():
    g = torch.Generator().manual_seed(0)
    H = torch.randn(3, 7, generator=g, dtype=torch.float64)
    x = torch.randn(11, 7, generator=g, dtype=torch.float64)
    expected = torch.zeros(3, 7, dtype=torch.float64)
    for s in range(11):  # dH = mean_s y_s (x_s - H^T y_s)^T, y_s = H x_s
        y = H @ x[s]
        expected += torch.outer(y, x[s] - H.T @ y)
    torch.testing.assert_close(oja_subspace_delta(H, x), expected / 11)


def test_fixed_point_is_the_top_eigenspace():
    x = _data().double()
    C = x.T @ x / x.shape[0]
    evals, evecs = torch.linalg.eigh(C)
    top = evecs[:, -5:].T  # orthonormal rows spanning the top-5 eigenspace
    assert oja_subspace_delta(top, x).abs().max() < 1e-10  # dH = H C - H C H^T H = 0
    assert oja_subspace_delta(evecs[:, :5].T, x).abs().max() < 1e-10  # any eigenspace is a fixed point...
    # ...but only the top one is stable: a perturbed bottom basis moves away
    sub = OjaSubspace(24, lr=0.01, momentum=0.9)
    sub.add_neurons(5, generator=torch.Generator().manual_seed(0))
    _train(sub, x.float(), epochs=3)
    assert _angles_deg(sub.weight.T, top.T).max() < 5.0


def test_converges_to_top_k_svd_subspace():
    x = _data()
    sub = OjaSubspace(24, lr=0.01, momentum=0.9, iterations=5)
    sub.add_neurons(5, generator=torch.Generator().manual_seed(3))
    before = _angles_deg(sub.weight.T, torch.linalg.svd(x, full_matrices=False)[2][:5].T).max()
    _train(sub, x, epochs=3)
    _, _, Vh = torch.linalg.svd(x, full_matrices=False)
    angles = _angles_deg(sub.weight.T, Vh[:5].T)
    assert before > 30.0  # the random start is far away
    assert angles.max() < 5.0, angles
    # the rows become orthonormal (the anti-Hebbian term decorrelates the lateral neurons)
    torch.testing.assert_close(sub.weight @ sub.weight.T, torch.eye(5), atol=0.02, rtol=0)


def test_frozen_rows_stay_and_new_rows_learn_the_residual_subspace():
    x = _data(k_signal=6)
    _, _, Vh = torch.linalg.svd(x, full_matrices=False)
    sub = OjaSubspace(24, lr=0.01, momentum=0.9)
    sub.add_neurons(3, generator=torch.Generator().manual_seed(0))
    _train(sub, x, epochs=3)
    sub.freeze()
    frozen = sub.weight.clone()
    sub.add_neurons(3, generator=torch.Generator().manual_seed(1))
    assert sub.n_neurons == 6 and sub.n_free == 3
    _train(sub, x, epochs=3, seed=2)
    torch.testing.assert_close(sub.weight[:3], frozen, rtol=0, atol=0)
    # new neurons: the principal subspace of x - H_f^T H_f x, i.e. the next 3 directions
    residual = x - sub.project(x, frozen_only=True)
    _, _, Vr = torch.linalg.svd(residual, full_matrices=False)
    assert _angles_deg(sub.weight[3:].T, Vr[:3].T).max() < 5.0
    assert _angles_deg(sub.weight.T, Vh[:6].T).max() < 5.0


def test_add_neurons_are_orthonormal_and_orthogonal_to_existing_rows():
    sub = OjaSubspace(10)
    sub.add_neurons(4, generator=torch.Generator().manual_seed(0))
    sub.add_neurons(3, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(sub.weight @ sub.weight.T, torch.eye(7), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="at most in_features"):
        sub.add_neurons(4)


def test_state_dict_round_trip_resizes_buffers():
    a = OjaSubspace(12, lr=0.02)
    a.add_neurons(4, generator=torch.Generator().manual_seed(0))
    a.update(torch.randn(8, 12, generator=torch.Generator().manual_seed(1)))
    a.freeze()
    a.add_neurons(2, generator=torch.Generator().manual_seed(2))
    b = OjaSubspace(12, lr=0.02)
    b.load_state_dict(a.state_dict())
    assert b.n_neurons == 6 and int(b.n_frozen) == 4
    x = torch.randn(8, 12, generator=torch.Generator().manual_seed(3))
    a.update(x)
    b.update(x)
    torch.testing.assert_close(a.weight, b.weight, rtol=0, atol=0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"in_features": 0}, "in_features"),
        ({"in_features": 4, "lr": 0.0}, "lr"),
        ({"in_features": 4, "momentum": 1.0}, "momentum"),
        ({"in_features": 4, "iterations": 0}, "iterations"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        OjaSubspace(**kwargs)


def test_update_rejects_wrong_width():
    sub = OjaSubspace(5)
    sub.add_neurons(2)
    with pytest.raises(ValueError, match=r"\(B, 5\)"):
        sub.update(torch.zeros(3, 6))
