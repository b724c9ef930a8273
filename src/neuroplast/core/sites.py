"""Sites: named places in a model whose output carries a population of neurons along one axis.

``find_sites(model, "encoder.*")`` resolves glob patterns over ``model.named_modules()`` and infers
the neuron axis of each module's output from its type:

- last axis (-1): Linear, Bilinear, Embedding, LayerNorm, RNN/LSTM/GRU (and cells),
  MultiheadAttention, Transformer layers, Flatten, and any module type it does not know
  (custom neuron layers such as spiking units, time-first ``[T, B, N]``);
- axis 1 (channels): ConvNd / ConvTransposeNd, BatchNormNd, InstanceNormNd, GroupNorm, pooling,
  DropoutNd (1d/2d/3d), Upsample;
- shape-preserving modules (activations, Dropout, Identity) inherit the axis of the last typed
  module registered before them, so the ReLU after a Conv2d is channel-first (axis 1) and the
  ReLU after a Linear is last-axis;
- a container (Sequential, a block) takes the axis of its last leaf that has a known axis.

A module may declare its own axis with an int attribute ``neuron_axis`` (a hook point whose
neurons are attention heads, say); it takes precedence over the type. An explicit ``axis=``
overrides all of this. ``units(tensor, axis)`` flattens any activation to
``(samples, neurons)``: batch, time and space all become samples.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

import torch
from torch import nn

__all__ = ["Site", "find_sites", "units", "resolve_sites", "resolve_site", "neuron_axis"]


@dataclass(frozen=True)
class Site:
    """A module of a model whose output holds neurons along ``axis``.

    ``name`` is the module's name in ``model.named_modules()``; ``axis`` may be negative.
    """

    name: str
    module: nn.Module
    axis: int

    def __repr__(self) -> str:
        return f"Site(name={self.name!r}, module={type(self.module).__name__}, axis={self.axis})"


_LAST = (
    nn.Linear, nn.Bilinear, nn.Embedding, nn.EmbeddingBag, nn.LayerNorm, nn.RMSNorm,
    nn.RNNBase, nn.RNNCellBase, nn.MultiheadAttention, nn.TransformerEncoderLayer,
    nn.TransformerDecoderLayer, nn.TransformerEncoder, nn.TransformerDecoder, nn.Transformer, nn.Flatten,
)
_CHANNEL = (
    nn.modules.conv._ConvNd, nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LocalResponseNorm,
    nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd, nn.modules.pooling._AdaptiveAvgPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd, nn.modules.pooling._LPPoolNd, nn.Dropout1d, nn.Dropout2d,
    nn.Dropout3d, nn.Upsample, nn.PixelShuffle, nn.PixelUnshuffle,
)
# Shape-preserving: the neuron axis is the one of whatever produced their input.
_INHERIT = (nn.Identity, nn.Dropout, nn.AlphaDropout, nn.FeatureAlphaDropout)
_ACTIVATION_MODULE = nn.modules.activation.__name__


def _own_axis(module: nn.Module) -> int | None | str:
    """Axis the module declares (``neuron_axis``) or has by type; ``"inherit"`` for
    shape-preserving modules, None if unknown."""
    declared = getattr(module, "neuron_axis", None)
    if isinstance(declared, int) and not isinstance(declared, bool):
        return declared
    if isinstance(module, _CHANNEL):
        return 1
    if isinstance(module, _LAST):
        return -1
    if isinstance(module, _INHERIT) or type(module).__module__ == _ACTIVATION_MODULE:
        return "inherit"
    return None


def _infer_axes(model: nn.Module) -> dict[str, int]:
    """Neuron axis of every named module of ``model`` (see the module docstring for the rules)."""
    axes: dict[str, int] = {}
    last_leaf_axis: dict[str, int] = {}  # name -> axis of the last known leaf at or below it
    previous = -1  # axis of the last typed leaf seen, in registration order
    for name, module in model.named_modules():
        own = _own_axis(module)
        is_leaf = next(iter(module.children()), None) is None
        if own == "inherit":
            axes[name] = previous
        elif own is not None:
            axes[name] = own
            if is_leaf:
                previous = own
        if is_leaf and name in axes:
            # Propagate up to every enclosing container (names are dotted paths).
            parts = name.split(".")
            for i in range(len(parts) + 1):
                last_leaf_axis[".".join(parts[:i])] = axes[name]
    for name, _module in model.named_modules():
        if name not in axes:
            axes[name] = last_leaf_axis.get(name, -1)
    return axes


def neuron_axis(model: nn.Module, name: str) -> int:
    """The inferred neuron axis of the module called ``name`` in ``model``."""
    axes = _infer_axes(model)
    if name not in axes:
        raise ValueError(_no_match_message(model, name))
    return axes[name]


def _no_match_message(model: nn.Module, pattern: str) -> str:
    types = {n: type(m).__name__ for n, m in model.named_modules() if n}
    close = difflib.get_close_matches(pattern, list(types), n=6, cutoff=0.0)
    shown = ", ".join(f"{n!r} ({types[n]})" for n in close) if close else "(the model has no submodules)"
    return (
        f"find_sites: pattern {pattern!r} matches no module of {type(model).__name__}; "
        f"closest names: {shown}. Patterns are fnmatch globs over model.named_modules() names, "
        f"e.g. 'layer1.*' or '*.relu'."
    )


def find_sites(model: nn.Module, pattern: str | Sequence[str], axis: int | None = None) -> list[Site]:
    """Sites of ``model`` whose names match the glob ``pattern`` (or any of a list of patterns).

    Every pattern must match at least one module, else ValueError listing the closest names.
    The root module (name ``""``) is matched only by the pattern ``""``. ``axis`` overrides the
    inferred neuron axis for every returned site. Order: patterns in order, modules in
    registration order, without duplicates.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"find_sites: model must be an nn.Module, got {type(model).__name__}")
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    if not patterns or not all(isinstance(p, str) for p in patterns):
        raise TypeError(f"find_sites: pattern must be a str or a non-empty list of str, got {pattern!r}")
    if axis is not None and (isinstance(axis, bool) or not isinstance(axis, int)):
        raise TypeError(f"find_sites: axis must be an int or None, got {type(axis).__name__}")
    axes = _infer_axes(model)
    modules = list(model.named_modules())
    sites: list[Site] = []
    seen: set[str] = set()
    for p in patterns:
        matched = [(n, m) for n, m in modules if (n == p if not n or not p else fnmatchcase(n, p))]
        if not matched:
            raise ValueError(_no_match_message(model, p))
        for n, m in matched:
            if n not in seen:
                seen.add(n)
                sites.append(Site(n, m, axes[n] if axis is None else axis))
    return sites


def resolve_sites(
    model: nn.Module, sites: Site | str | Iterable[Site | str], axis: int | None = None
) -> list[Site]:
    """Normalise a Site, a pattern, or a list mixing both, into a list of distinct Sites.

    Sites given as objects must belong to ``model``; patterns are resolved with
    :func:`find_sites` (``axis`` applies to patterns only).
    """
    items = [sites] if isinstance(sites, Site | str) else list(sites)
    if not items:
        raise ValueError("sites: expected at least one Site or pattern, got an empty list")
    owned = {id(m) for m in model.modules()}
    out: list[Site] = []
    names: set[str] = set()
    for item in items:
        if isinstance(item, Site):
            if id(item.module) not in owned:
                raise ValueError(f"sites: {item!r} is not a module of the given {type(model).__name__}")
            found = [item]
        elif isinstance(item, str):
            found = find_sites(model, item, axis=axis)
        else:
            raise TypeError(f"sites: expected Site or str pattern, got {type(item).__name__}")
        for s in found:
            if s.name not in names:
                names.add(s.name)
                out.append(s)
    return out


def resolve_site(model: nn.Module, site: Site | str) -> Site:
    """Exactly one site from a Site or a name/pattern; ValueError if a pattern matches several."""
    if not isinstance(site, Site | str):
        raise TypeError(f"site: expected a Site or a module name, got {type(site).__name__}")
    found = resolve_sites(model, site)
    if len(found) != 1:
        names = ", ".join(repr(s.name) for s in found[:8])
        raise ValueError(
            f"site: pattern {site!r} matches {len(found)} modules ({names}); expected exactly one"
        )
    return found[0]


def units(tensor: torch.Tensor, axis: int) -> torch.Tensor:
    """Reshape an activation to ``(samples, neurons)``: move ``axis`` last, flatten the rest.

    ``units(x[B, C, H, W], 1)`` has shape ``(B*H*W, C)``; ``units(x[T, B, N], -1)`` has ``(T*B, N)``.
    A copy is made only when the moved layout is not contiguous.
    """
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"units: tensor must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dim() == 0 or not -tensor.dim() <= axis < tensor.dim():
        raise ValueError(
            f"units: axis {axis} does not fit a tensor of shape {tuple(tensor.shape)} "
            f"(valid axes: {-tensor.dim()}..{tensor.dim() - 1})"
        )
    n = tensor.shape[axis]
    return tensor.movedim(axis, -1).reshape(-1, n)
