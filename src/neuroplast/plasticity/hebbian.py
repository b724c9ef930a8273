"""Hebbian / anti-Hebbian learning of a principal subspace: Oja's subspace rule.

Lateral neurons ``y = H x`` (``H``: (k, n)) learn the top-k principal subspace of their inputs
``x`` (uncentred second moment ``C = E[x x^T]``) by Oja's subspace rule (Oja 1989)

    dH = eta * y (x - H^T y)^T        (batch mean over samples)

``y x^T`` is the Hebbian term, ``- y y^T H`` the anti-Hebbian (lateral) one. At the fixed point
the rows of ``H`` are an orthonormal basis of the top-k eigenvectors' span of ``C``. Rows can be
*frozen*: frozen rows take part in ``y`` and in the reconstruction ``H^T y`` but are not updated,
so free rows learn the principal subspace of the residual ``x - H_f^T H_f x`` (new lateral
neurons per task in HLOP, Xiao et al. 2024, arXiv:2402.11984). Following the HLOP reference the
update is clamped element-wise to ``[-clamp, clamp]`` and smoothed by momentum
``m <- beta m + (1 - beta) dH``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["oja_subspace_delta", "OjaSubspace"]


def oja_subspace_delta(weight: Tensor, x: Tensor) -> Tensor:
    """Oja's subspace rule ``dH = y (x - H^T y)^T / B`` with ``y = H x``, batch-averaged.

    ``weight``: (k, n) lateral weights ``H``; ``x``: (B, n) inputs. Returns (k, n).
    """
    if weight.dim() != 2 or x.dim() != 2 or x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"oja_subspace_delta: expected weight (k, n) and x (B, n) with the same n, got "
            f"weight {tuple(weight.shape)} and x {tuple(x.shape)}"
        )
    y = x @ weight.T  # (B, k)
    residual = x - y @ weight  # (B, n)
    return y.T @ residual / x.shape[0]


class OjaSubspace(nn.Module):
    """A population of lateral neurons ``y = H x`` trained by Oja's subspace rule.

    ``in_features``: n. ``lr``: eta. ``momentum``: beta of the update's moving average (0: none).
    ``clamp``: element-wise bound on ``dH`` (None: none). ``iterations``: rule steps per call of
    :meth:`update` on the same batch (HLOP uses 5).

    ``add_neurons(k)`` appends k free neurons (orthonormal random rows, orthogonal to the
    existing ones); ``freeze()`` fixes every current row. State (``weight``, ``momentum_buf``,
    ``n_frozen``) lives in buffers, so ``state_dict`` round-trips it (a differently sized saved
    state is accepted: the buffers are resized on load).
    """

    def __init__(
        self,
        in_features: int,
        lr: float = 0.01,
        momentum: float = 0.9,
        clamp: float | None = 10.0,
        iterations: int = 5,
    ) -> None:
        super().__init__()
        if isinstance(in_features, bool) or not isinstance(in_features, int) or in_features < 1:
            raise ValueError(f"in_features must be a positive int, got {in_features!r}")
        if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
            raise ValueError(f"lr must be a positive finite number, got {lr!r}")
        if not (isinstance(momentum, (int, float)) and 0.0 <= momentum < 1.0):
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        if clamp is not None and not (isinstance(clamp, (int, float)) and clamp > 0):
            raise ValueError(f"clamp must be a positive number or None, got {clamp!r}")
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
            raise ValueError(f"iterations must be a positive int, got {iterations!r}")
        self.in_features = in_features
        self.lr = float(lr)
        self.momentum = float(momentum)
        self.clamp = None if clamp is None else float(clamp)
        self.iterations = iterations
        self.register_buffer("weight", torch.zeros(0, in_features))
        self.register_buffer("momentum_buf", torch.zeros(0, in_features))
        self.register_buffer("n_frozen", torch.zeros((), dtype=torch.int64))

    # -- structure ---------------------------------------------------------------------------
    @property
    def n_neurons(self) -> int:
        return int(self.weight.shape[0])

    @property
    def n_free(self) -> int:
        return self.n_neurons - int(self.n_frozen)

    def add_neurons(self, k: int, generator: torch.Generator | None = None) -> None:
        """Append ``k`` free lateral neurons, initialised orthonormal and orthogonal to existing rows."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ValueError(f"k must be a non-negative int, got {k!r}")
        if k == 0:
            return
        if self.n_neurons + k > self.in_features:
            raise ValueError(
                f"cannot hold {self.n_neurons + k} lateral neurons on {self.in_features} inputs: a "
                f"subspace has at most in_features={self.in_features} dimensions"
            )
        w = self.weight
        g = torch.randn(self.in_features, k, generator=generator, dtype=torch.float64)
        if w.shape[0]:
            q_old, _ = torch.linalg.qr(w.double().T)  # (n, m): orthonormal basis of existing rows
            g = g - q_old @ (q_old.T @ g)
        q, _ = torch.linalg.qr(g)  # (n, k)
        new = q.T.to(w.dtype).to(w.device)
        self.weight = torch.cat([w, new], dim=0)
        self.momentum_buf = torch.cat([self.momentum_buf, torch.zeros_like(new)], dim=0)

    def freeze(self) -> None:
        """Fix every current lateral neuron (its row no longer learns) and clear its momentum."""
        self.n_frozen = torch.tensor(self.n_neurons, dtype=torch.int64)
        self.momentum_buf.zero_()

    # -- dynamics -----------------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        """Lateral activity ``y = H x`` for x of shape (..., n) -> (..., k)."""
        return x @ self.weight.T

    @torch.no_grad()
    def update(self, x: Tensor) -> None:
        """``iterations`` steps of Oja's subspace rule on the free rows, on the batch x (B, n)."""
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"OjaSubspace.update: expected x of shape (B, {self.in_features}), got {tuple(x.shape)}"
            )
        f = int(self.n_frozen)
        if self.n_free == 0:
            return
        x = x.to(self.weight.dtype)
        # H^T y = H_f^T y_f + H_n^T y_n; the frozen part is fixed during the iterations
        h_f = self.weight[:f]
        x_res = x - (x @ h_f.T) @ h_f if f else x  # (B, n)
        for _ in range(self.iterations):
            h_n = self.weight[f:]
            y = x @ h_n.T  # (B, k_free)
            delta = y.T @ (x_res - y @ h_n) / x.shape[0]  # rows f: of oja_subspace_delta
            if self.clamp is not None:
                delta.clamp_(-self.clamp, self.clamp)
            if self.momentum > 0:
                m = self.momentum_buf[f:]
                m.mul_(self.momentum).add_(delta, alpha=1.0 - self.momentum)
                delta = m
            self.weight[f:] += self.lr * delta

    def basis(self, frozen_only: bool = False) -> Tensor:
        """The rows of H (all, or the frozen ones) as a (k, n) tensor (a view, not a copy)."""
        return self.weight[: int(self.n_frozen)] if frozen_only else self.weight

    def project(self, x: Tensor, frozen_only: bool = False) -> Tensor:
        """Reconstruction ``H^T H x`` of x (..., n) from the lateral neurons (all, or the frozen ones)."""
        h = self.basis(frozen_only)
        return (x @ h.T) @ h

    # -- state ---------------------------------------------------------------------------------
    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):  # noqa: D401 - torch hook
        for name in ("weight", "momentum_buf"):
            key = prefix + name
            if key in state_dict and state_dict[key].shape != getattr(self, name).shape:
                setattr(self, name, torch.empty_like(state_dict[key], device=getattr(self, name).device))
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, neurons={self.n_neurons}, frozen={int(self.n_frozen)}, "
            f"lr={self.lr}, momentum={self.momentum}"
        )
