"""Induction-head tools: repeated-sequence data, per-head scores, phase-change location, and a clamp
to another model's activations (e.g. the model at initialisation; a thin name for core ``Patch``).

Singh et al. 2024, "What needs to go right for an induction head?" (arXiv:2404.07129); scores as in
Olsson et al. 2022 (arXiv:2209.11895):

- previous-token score of head h: PT_h = mean_{b, t>=1} A_h[b, t, t-1];
- prefix-matching (induction) score: PM_h = mean over queries t that have an earlier occurrence of
  their token of  sum_{s <= t: tok[s-1] = tok[t]} A_h[b, t, s]  (attention to the token *after* an
  earlier occurrence of the current token);
- copying score of the full OV circuit M = W_E W_V^h W_O^h W_U: C_h = sum_i Re(l_i) / sum_i |l_i|
  over the eigenvalues l_i of M (+1: the head raises the logit of the token it attends to).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from neuroplast.core.intervene import MaskLike, Patch, Schedule
from neuroplast.core.sites import Site

__all__ = [
    "repeated_sequences",
    "icl_mask",
    "previous_token_score",
    "prefix_matching_score",
    "copying_score",
    "steepest_change",
    "ClampToSource",
]


def repeated_sequences(
    batch: int, length: int, vocab: int, min_period: int, max_period: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` sequences of ``length`` tokens, each a random period of distinct tokens repeated.

    Row b: a period p_b ~ U{min_period..max_period} and p_b distinct tokens (a random permutation of
    the vocabulary, truncated), tok[b, t] = tok[b, t mod p_b]. Because the period varies, a head cannot
    find the continuation by position alone: it must match content (an induction head).
    Returns ``(tokens (batch, length) int64, periods (batch,) int64)``.
    """
    for name, v, low in (("batch", batch, 1), ("length", length, 2), ("vocab", vocab, 2),
                         ("min_period", min_period, 1), ("max_period", max_period, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ValueError(f"{name}: expected an int >= {low}, got {v!r}")
    if not min_period <= max_period <= vocab:
        raise ValueError(
            f"max_period: expected min_period={min_period} <= max_period <= vocab={vocab}, got {max_period}"
        )
    if max_period >= length:
        raise ValueError(
            f"max_period: expected < length={length} so that every row repeats, got {max_period}"
        )
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator: expected a torch.Generator, got {type(generator).__name__}")
    perm = torch.rand(batch, vocab, generator=generator).argsort(1)  # (B, V) random permutations
    periods = torch.randint(min_period, max_period + 1, (batch,), generator=generator)
    idx = torch.arange(length).unsqueeze(0) % periods.unsqueeze(1)  # (B, length)
    return perm.gather(1, idx), periods


def icl_mask(periods: torch.Tensor, length: int) -> torch.Tensor:
    """Bool (B, length): input position t is predictable in context (t >= period: the next token is
    the one that followed the previous occurrence of the current token)."""
    return torch.arange(length).unsqueeze(0) >= periods.reshape(-1, 1)


def _check_pattern(pattern: torch.Tensor) -> None:
    if not isinstance(pattern, torch.Tensor) or pattern.dim() != 4 or pattern.shape[-1] != pattern.shape[-2]:
        got = tuple(pattern.shape) if isinstance(pattern, torch.Tensor) else type(pattern).__name__
        raise ValueError(f"pattern: expected attention patterns of shape (B, heads, T, T), got {got}")
    if pattern.shape[-1] < 2:
        raise ValueError(f"pattern: need T >= 2 positions, got T={pattern.shape[-1]}")


def previous_token_score(pattern: torch.Tensor) -> torch.Tensor:
    """PT_h = mean_{b, t >= 1} A[b, h, t, t-1]; ``pattern`` (B, H, T, T) -> (H,)."""
    _check_pattern(pattern)
    sub = torch.diagonal(pattern, offset=-1, dim1=-2, dim2=-1)  # (B, H, T-1): A[t, t-1]
    return sub.mean(dim=(0, 2))


def prefix_matching_score(pattern: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """PM_h: attention from t to positions s <= t with tok[s-1] == tok[t], averaged over the queries
    that have such an s; ``pattern`` (B, H, T, T), ``tokens`` (B, T) -> (H,). NaN if no query has one."""
    _check_pattern(pattern)
    B, _, T, _ = pattern.shape
    if not isinstance(tokens, torch.Tensor) or tuple(tokens.shape) != (B, T):
        got = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
        raise ValueError(f"tokens: expected shape {(B, T)} to match the pattern, got {got}")
    prev = torch.full_like(tokens, -1)
    prev[:, 1:] = tokens[:, :-1]  # tok[s-1]; -1 at s = 0
    match = prev.unsqueeze(1) == tokens.unsqueeze(2)  # (B, T_q, T_k): tok[s-1] == tok[t]
    match &= torch.ones(T, T, dtype=torch.bool).tril()  # s <= t
    has = match.any(-1)  # (B, T_q)
    mass = (pattern * match.unsqueeze(1).to(pattern.dtype)).sum(-1)  # (B, H, T_q)
    n = has.sum()
    if n == 0:
        return torch.full((pattern.shape[1],), float("nan"), dtype=pattern.dtype)
    return (mass * has.unsqueeze(1).to(pattern.dtype)).sum(dim=(0, 2)) / n


def copying_score(model: nn.Module) -> torch.Tensor:
    """C[l, h] = sum Re(eig(M)) / sum |eig(M)| of each head's OV circuit M = W_E W_V W_O W_U."""
    if not hasattr(model, "ov_circuit"):
        raise TypeError(
            f"model: expected an AttentionOnlyTransformer (with ov_circuit), got {type(model).__name__}"
        )
    out = torch.empty(model.n_layers, model.n_heads, dtype=torch.float64)
    with torch.no_grad():
        for layer in range(model.n_layers):
            for head in range(model.n_heads):
                lam = torch.linalg.eigvals(model.ov_circuit(layer, head).double())
                out[layer, head] = lam.real.sum() / lam.abs().sum().clamp_min(1e-30)
    return out


def steepest_change(
    steps: Sequence[float], values: Sequence[float], smooth: float = 2.0, direction: str = "down"
) -> tuple[float, np.ndarray]:
    """Step where a smoothed curve falls (``direction="down"``) or rises (``"up"``) fastest.

    The curve is smoothed with a Gaussian of ``smooth`` samples (edges padded with the end values),
    differentiated by central differences against ``steps``, and the step of the extreme slope is
    returned with the smoothed curve. This locates a loss phase change (steepest drop) or the rise
    of an induction score automatically.
    """
    s = np.asarray(steps, dtype=float)
    v = np.asarray(values, dtype=float)
    if s.ndim != 1 or s.shape != v.shape or s.size < 3:
        raise ValueError(
            f"steps/values: expected equal 1-D sequences of >= 3 points, got {s.shape} and {v.shape}"
        )
    if np.any(np.diff(s) <= 0):
        raise ValueError("steps: expected strictly increasing steps")
    if not np.all(np.isfinite(v)):
        raise ValueError("values: expected finite numbers")
    if direction not in ("down", "up"):
        raise ValueError(f"direction: expected 'down' or 'up', got {direction!r}")
    if not smooth >= 0:
        raise ValueError(f"smooth: expected >= 0 samples, got {smooth}")
    if smooth > 0:
        r = int(np.ceil(3 * smooth))
        kernel = np.exp(-0.5 * (np.arange(-r, r + 1) / smooth) ** 2)
        kernel /= kernel.sum()
        padded = np.concatenate([np.full(r, v[0]), v, np.full(r, v[-1])])
        v = np.convolve(padded, kernel, mode="valid")
    slope = np.gradient(v, s)
    i = int(np.argmin(slope) if direction == "down" else np.argmax(slope))
    return float(s[i]), v


class ClampToSource(Patch):
    """The core :class:`~neuroplast.core.Patch` with a *separate* source model: clamp the masked
    neurons (heads) of a site to the same site's output in ``source`` run on the same input,
    ``out = where(mask, source_out(x), out)``. With ``source`` a frozen copy of the model at
    initialisation this is the paper's clamp "to the values at initialisation" (arXiv:2404.07129).
    Kept as a name for that use; it only adds the check that ``source`` is another nn.Module.
    """

    def __init__(
        self,
        model: nn.Module,
        site: Site | str,
        mask: MaskLike = None,
        source: nn.Module | None = None,
        schedule: Schedule | None = None,
    ) -> None:
        if not isinstance(source, nn.Module):
            raise TypeError(f"ClampToSource: source must be an nn.Module, got {type(source).__name__}")
        if source is model:
            raise ValueError(
                "ClampToSource: source must be another model (e.g. a copy at initialisation); "
                "core Patch accepts the model itself"
            )
        super().__init__(model, site, mask, source=source, schedule=schedule)
