"""Dormant neurons: the tau-dormant score, mask and ratio of a layer (ReDo / DrM).

For a layer (site) with H neurons and recorded activations h_i over a batch,

    s_i = E|h_i| / ((1/H) * sum_k E|h_k| + eps)          (normalize="layer")
    s_i = E|h_i|                                           (normalize=None)

and neuron i is tau-dormant when s_i <= tau. The dormant ratio beta is the share of dormant neurons;
over several sites it is pooled over all their neurons (total dormant / total neurons), as both papers
report it.

Two conventions, both supported: they differ only in *where* the neurons are read.

- ReDo (Sokar et al. 2023, arXiv:2302.12902): the outputs of the activation functions
  (post-activation, e.g. a ReLU site), eps = 1e-9 in the denominator, s_i <= tau; tau = 0 or 0.1
  in the paper's experiments (0.025 for some agents).
- DrM (Xu et al. 2023, arXiv:2310.19668): the outputs of the actor's Linear layers (pre-activation,
  a Linear site), tau = 0.025; its reference code tests E|h_i| < tau * mean_k E|h_k| (strict, no eps).
  The strict/non-strict difference only matters for exact ties.

The statistic E|h_i| is the "mean_abs" entry that a ``neuroplast.core.Recorder`` keeps per site; for
convolutional sites it is averaged over batch and space, so a channel is one neuron (as in ReDo).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["dormant_scores", "dormant_mask", "dormant_ratio"]

_NORMALIZE = ("layer", None)


def _check_mean_abs(value: Any, where: str) -> torch.Tensor:
    if not torch.is_tensor(value):
        raise TypeError(f"{where}: expected a Tensor of mean |h| per neuron, got {type(value).__name__}")
    if value.ndim != 1 or value.numel() == 0:
        raise ValueError(
            f"{where}: expected a non-empty 1-D Tensor (neurons,), got shape {tuple(value.shape)}"
        )
    value = value.detach().to(torch.float64)
    if torch.isnan(value).any():
        raise ValueError(f"{where}: mean |h| contains NaN")
    if (value < 0).any():
        raise ValueError(f"{where}: mean |h| must be >= 0, got a minimum of {value.min().item():.4g}")
    return value


def _site_mean_abs(site_stats: Mapping, where: str) -> torch.Tensor:
    if "mean_abs" not in site_stats:
        raise ValueError(
            f"{where}: the statistics have no 'mean_abs' (keys: {sorted(site_stats)}); build the Recorder "
            "with stats including 'mean_abs'"
        )
    count = site_stats.get("count")
    if count is not None and float(torch.as_tensor(count).sum()) == 0:
        raise ValueError(
            f"{where}: no samples were recorded (count == 0); run a forward pass inside the Recorder"
        )
    return _check_mean_abs(site_stats["mean_abs"], where)


def _parse(stats: Any) -> torch.Tensor | dict[str, torch.Tensor]:
    """A 1-D mean |h| tensor (one site) or a dict site -> 1-D tensor (several sites)."""
    if hasattr(stats, "stats") and isinstance(stats.stats, Mapping):  # a Recorder
        stats = stats.stats
    if torch.is_tensor(stats):
        return _check_mean_abs(stats, "stats")
    if not isinstance(stats, Mapping):
        raise TypeError(
            "stats: expected a Recorder's per-site dict (with 'mean_abs'), a dict site -> such dict, or a "
            f"1-D Tensor of mean |h|; got {type(stats).__name__}"
        )
    if len(stats) == 0:
        raise ValueError("stats: got an empty dict; record at least one site")
    if "mean_abs" in stats:
        return _site_mean_abs(stats, "stats")
    out: dict[str, torch.Tensor] = {}
    for name, site_stats in stats.items():
        if isinstance(site_stats, Mapping):
            out[str(name)] = _site_mean_abs(site_stats, f"stats[{name!r}]")
        elif torch.is_tensor(site_stats):
            raise ValueError(
                f"stats: looks like one site's statistics without 'mean_abs' (keys: {sorted(stats)}); build "
                "the Recorder with stats including 'mean_abs', or pass {site: {'mean_abs': tensor}}"
            )
        else:
            raise TypeError(
                f"stats[{name!r}]: expected a per-site dict with 'mean_abs' or a Tensor, got "
                f"{type(site_stats).__name__}"
            )
    return out


def _check_args(tau: float | None, normalize: str | None, eps: float) -> None:
    if normalize not in _NORMALIZE:
        raise ValueError(f"normalize: expected 'layer' or None, got {normalize!r}")
    if tau is not None and (not isinstance(tau, (int, float)) or not tau >= 0 or tau == float("inf")):
        raise ValueError(f"tau: expected a finite number >= 0, got {tau!r}")
    if not isinstance(eps, (int, float)) or not eps >= 0:
        raise ValueError(f"eps: expected a number >= 0, got {eps!r}")


def _scores(mean_abs: torch.Tensor, normalize: str | None, eps: float) -> torch.Tensor:
    if normalize is None:
        return mean_abs
    denom = mean_abs.mean() + eps
    if denom == 0:  # an all-silent layer with eps = 0: every neuron is dormant
        return torch.zeros_like(mean_abs)
    return mean_abs / denom


def dormant_scores(
    stats: Any, normalize: str | None = "layer", eps: float = 1e-9
) -> torch.Tensor | dict[str, torch.Tensor]:
    """Per-neuron score s_i = E|h_i| / (mean_k E|h_k| + eps) (ReDo arXiv:2302.12902, DrM arXiv:2310.19668).

    ``stats``: a Recorder's per-site dict (needs "mean_abs"), a dict site -> such dict, a Recorder, or a
    1-D Tensor of E|h_i|. Returns a float64 Tensor (neurons,), or a dict site -> Tensor for several sites.
    ``normalize=None`` returns E|h_i| itself.
    """
    _check_args(None, normalize, eps)
    parsed = _parse(stats)
    if torch.is_tensor(parsed):
        return _scores(parsed, normalize, eps)
    return {name: _scores(m, normalize, eps) for name, m in parsed.items()}


def dormant_mask(
    stats: Any, tau: float = 0.025, normalize: str | None = "layer", eps: float = 1e-9
) -> torch.Tensor | dict[str, torch.Tensor]:
    """Bool mask of tau-dormant neurons, s_i <= tau (see ``dormant_scores`` for s_i and ``stats``).

    One site -> Tensor[bool] (neurons,); several sites -> dict site -> Tensor[bool]. The mask is what
    ``neuroplast.structure.recycle_dormant`` takes.
    """
    _check_args(tau, normalize, eps)
    scores = dormant_scores(stats, normalize=normalize, eps=eps)
    if torch.is_tensor(scores):
        return scores <= tau
    return {name: s <= tau for name, s in scores.items()}


def dormant_ratio(
    stats: Any,
    tau: float = 0.025,
    normalize: str | None = "layer",
    eps: float = 1e-9,
    per_site: bool = False,
) -> float | dict[str, float]:
    """Dormant ratio beta = (number of neurons with s_i <= tau) / (number of neurons).

    DrM (arXiv:2310.19668) uses tau = 0.025 on Linear outputs (pre-activation); ReDo (arXiv:2302.12902)
    reads post-activation outputs with eps = 1e-9. Scores are normalised within each site; with several
    sites the ratio is pooled over all their neurons, or returned per site (dict site -> ratio) with
    ``per_site=True`` (a single site always gives a float).
    """
    masks = dormant_mask(stats, tau=tau, normalize=normalize, eps=eps)
    if torch.is_tensor(masks):
        return float(masks.double().mean())
    if per_site:
        return {name: float(m.double().mean()) for name, m in masks.items()}
    dormant = sum(int(m.sum()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    return dormant / total
