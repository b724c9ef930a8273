"""Capturing site outputs for interventions: a streaming mean over chosen dims (:class:`SiteMean`,
the value a ``Clamp(value="mean")`` reads) and one cached activation (:func:`site_output`, the
source a ``Patch`` replays, as TransformerLens' ``run_with_cache``). The per-neuron statistics of
many sites at once are the core ``Recorder``'s job.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Self

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from neuroplast.core.record import first_tensor
from neuroplast.core.sites import Site, resolve_site

__all__ = ["SiteMean", "site_output"]


class SiteMean:
    """Streaming mean of a site's output over chosen dims, for ``Clamp(value="mean", stats=...)``.

    ``mean = sum over calls and dims of a / count``, accumulated in float64. ``dims`` are the output
    dims averaged over: they must include the batch dim 0 and not the neuron axis; ``None`` (the
    default) averages every dim but the neuron axis, giving one number per neuron (the core
    ``Recorder``'s ``"mean"``). The result keeps the per-sample layout (a size-1 dim for an averaged
    dim that has kept dims before it), so it broadcasts against one sample, e.g. for a
    ``(B, T, heads, d_head)`` site with axis 2: ``dims=(0, 1)`` -> ``(heads, d_head)``,
    ``dims=(0,)`` -> ``(T, heads, d_head)``, ``dims=(0, 1, 3)`` or ``None`` -> ``(heads,)``.

    Context manager (detaches on exit, also on error)::

        with SiteMean(model, site, dims=(0, 1)) as sm, torch.no_grad():
            model(x)
        clamp = Clamp(model, site, [2], value="mean", stats=sm.stats)
    """

    def __init__(self, model: nn.Module, site: Site | str, dims: Sequence[int] | None = None) -> None:
        self.model = model
        self.site: Site = resolve_site(model, site)
        if dims is not None and (
            isinstance(dims, str | int)
            or not all(isinstance(d, int) and not isinstance(d, bool) for d in dims)
        ):
            raise TypeError(f"SiteMean: dims must be None or a sequence of ints, got {dims!r}")
        self.dims = None if dims is None else tuple(dims)
        self.sum_: torch.Tensor | None = None
        self.count_ = 0
        self._reduce: tuple[int, ...] | None = None
        self._handle: RemovableHandle | None = None

    def attach(self) -> Self:
        if self._handle is not None:
            raise RuntimeError(f"{self!r} is already attached; detach() it first")
        self._handle = self.site.module.register_forward_hook(self._hook)
        return self

    def detach(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def __enter__(self) -> Self:
        return self.attach()

    def __exit__(self, *exc: object) -> None:
        self.detach()

    def reset(self) -> None:
        self.sum_, self.count_, self._reduce = None, 0, None

    def state_dict(self) -> dict[str, Any]:
        """The running sum (float64), the count and the reduced dims (empty before any forward)."""
        if self.sum_ is None:
            return {"count": 0}
        return {"sum": self.sum_.clone(), "count": self.count_, "reduce": list(self._reduce or ())}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        count = state.get("count") if isinstance(state, Mapping) else None
        if isinstance(count, torch.Tensor):
            count = int(count.item())
        ok = isinstance(count, int) and not isinstance(count, bool) and count >= 0
        if ok and count > 0:
            ok = isinstance(state.get("sum"), torch.Tensor) and isinstance(state.get("reduce"), list | tuple)
        if not ok:
            raise ValueError(
                "SiteMean.load_state_dict: expected {'count': int >= 0} and, if count > 0, "
                f"'sum' (Tensor) and 'reduce' (list of dims), got {state!r}"
            )
        if count == 0:
            self.reset()
            return
        self.sum_ = state["sum"].to(torch.float64).clone()
        self.count_ = count
        self._reduce = tuple(int(d) for d in state["reduce"])

    def __repr__(self) -> str:
        return f"SiteMean(site={self.site.name!r}, dims={self.dims}, count={self.count_})"

    def _dims_for(self, ndim: int) -> tuple[int, ...]:
        where = f"SiteMean at site {self.site.name!r}"
        if ndim < 2:
            raise ValueError(
                f"{where}: expected an output with a batch dim and a neuron axis, got {ndim} dims"
            )
        axis = self.site.axis % ndim
        if axis == 0:
            raise ValueError(f"{where}: the neuron axis is the batch dim 0; pass a Site with another axis")
        if self.dims is None:
            return tuple(d for d in range(ndim) if d != axis)
        bad = [d for d in self.dims if not -ndim <= d < ndim]
        if bad:
            raise ValueError(f"{where}: dims {bad} do not fit an output with {ndim} dims")
        dims = tuple(sorted({d % ndim for d in self.dims}))
        if 0 not in dims or axis in dims:
            raise ValueError(
                f"{where}: dims must include the batch dim 0 and not the neuron axis {axis}, got {self.dims}"
            )
        return dims

    def _hook(self, module: nn.Module, args: Any, output: Any) -> None:
        x = first_tensor(output, self.site.name).detach()
        dims = self._dims_for(x.dim())
        s = x.to(torch.float64).sum(dim=dims, keepdim=True)[0]  # drop the batch dim: one sample's layout
        n = math.prod(x.shape[d] for d in dims)
        if self.sum_ is None:
            self.sum_, self._reduce = s, dims
        else:
            if dims != self._reduce or s.shape != self.sum_.shape:
                raise ValueError(
                    f"SiteMean at site {self.site.name!r}: the kept shape changed from "
                    f"{tuple(self.sum_.shape)} to {tuple(s.shape)}; average over the varying dims too"
                )
            self.sum_ = self.sum_ + s.to(self.sum_.device)
        self.count_ += n

    @property
    def mean(self) -> torch.Tensor:
        """The mean, float64, in the per-sample layout described above (leading averaged dims dropped)."""
        if self.sum_ is None or self.count_ == 0:
            raise RuntimeError(f"{self!r}: no forward pass has reached the site yet")
        m = self.sum_ / self.count_
        ndim = m.dim() + 1
        axis = self.site.axis % ndim
        if len(self._reduce) == ndim - 1:  # every dim but the neuron axis: one number per neuron
            return m.reshape(-1)  # (N,)
        lead = 0  # averaged dims right after the batch dim, before any kept dim: dropped
        while lead + 1 < ndim and lead + 1 in self._reduce and lead + 1 < axis:
            lead += 1
        return m.reshape(m.shape[lead:])

    @property
    def stats(self) -> dict[str, torch.Tensor]:
        """``{"mean": ..., "count": scalar}``: the stats dict ``Clamp(value="mean")`` reads."""
        return {"mean": self.mean, "count": torch.tensor(float(self.count_), dtype=torch.float64)}


def site_output(model: nn.Module, site: Site | str, *args: Any, **kwargs: Any) -> torch.Tensor:
    """Run ``model(*args, **kwargs)`` under ``torch.no_grad()`` and return the site's output (its first
    tensor, detached): the cache of one activation, e.g. a clean run's, for ``Patch(source=...)``.
    The site must be reached exactly once (for a module called several times per forward, patch from
    a source model instead)."""
    resolved = resolve_site(model, site)
    seen: list[torch.Tensor] = []
    handle = resolved.module.register_forward_hook(
        lambda m, a, out: seen.append(first_tensor(out, resolved.name).detach())
    )
    try:
        with torch.no_grad():
            model(*args, **kwargs)
    finally:
        handle.remove()
    if len(seen) != 1:
        raise ValueError(
            f"site_output: site {resolved.name!r} was reached {len(seen)} times in one forward pass, "
            "expected exactly once"
        )
    return seen[0]
