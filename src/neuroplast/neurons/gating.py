"""Per-neuron threshold-and-gain gates on a frozen model (Dopamine / TauGate, arXiv:2602.11726).

Each gated neuron j of a site gets a learned threshold t_j and gain g_j. In training the gate is
smooth, at inference it can be hardened into explicit conditional computation::

    smooth:    h'_j = g_j * h_j * sigmoid((h_j - t_j) / T)        (T > 0: the temperature)
    hardened:  h'_j = g_j * h_j * 1[h_j > t_j]

2 parameters per neuron; the model's own weights are never touched (forward hooks only). The paper
states the mechanism (per-neuron thresholds and gains, a smooth gate hardened at inference) but the
gate's exact form was not retrieved: the sigmoid-with-temperature form above is our choice.

``NeuronScale`` is the IA3-style control (arXiv:2205.05638): h'_j = l_j * h_j with l initialised to
ones, i.e. the gate without its threshold.

Use::

    gate = NeuronGate(model, ["1", "3"], temperature=0.1).attach()   # model frozen by the caller
    opt = torch.optim.Adam(gate.parameters(), lr=1e-2)
    ...                                                               # train as usual
    with gate.hardened(), gate.track_firing():
        acc = evaluate(model, test)
    gate.firing_rates()       # {site: {"open": (N,), "active": (N,)}}: which neurons fire
    gate.save("mode.safetensors"); gate.detach()

Supported site modules (the neuron count comes from the module): Linear, Conv1d/2d/3d,
BatchNorm1d/2d/3d, LayerNorm over one dimension, and elementwise activations (ReLU, GELU, ...),
whose neuron count is that of the nearest Linear/Conv/norm registered before them.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import safetensors
import safetensors.torch
import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from neuroplast.core.record import first_tensor
from neuroplast.core.sites import Site, resolve_sites

__all__ = [
    "gate",
    "hard_gate",
    "NeuronGate",
    "NeuronScale",
    "SUPPORTED_MODULES",
    "load_gate_file",
]

_SIZED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d,
          nn.LayerNorm)
_ELEMENTWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
                nn.Mish, nn.Tanh, nn.Sigmoid, nn.Softplus, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid,
                nn.Identity)
#: Module types a gate can sit on.
SUPPORTED_MODULES: tuple[type[nn.Module], ...] = _SIZED + _ELEMENTWISE
_FORMAT = "neuroplast.neuron_gate"


# -- the math ------------------------------------------------------------------------------------
def gate(h: torch.Tensor, threshold: torch.Tensor, gain: torch.Tensor, temperature: float) -> torch.Tensor:
    """Smooth gate ``g * h * sigmoid((h - t) / T)``; t and g broadcast against h, T is a float.

    Written as one expression of 4 elementwise kernels: the threshold enters as the per-neuron bias
    -t/T of a single scaled add. A hand-written autograd Function (saving only h and the sigmoid) was
    measured slower on CPU and CUDA than autograd of this expression, and ``torch.compile`` was not
    faster on CPU (benchmarks/bench_gating.py).
    """
    inv_t = 1.0 / temperature
    s = torch.sigmoid(torch.add(threshold * -inv_t, h, alpha=inv_t))  # sigmoid((h - t) / T)
    return h * s * gain


def hard_gate(h: torch.Tensor, threshold: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
    """Hardened gate ``g * h * 1[h > t]``: exact zeros where the unit does not fire."""
    return gain * h * (h > threshold).to(h.dtype)


def _check_real(name: str, value: Any, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v) or (positive and v <= 0):
        raise ValueError(f"{name}: expected a finite number{' > 0' if positive else ''}, got {value!r}")
    return v


# -- attaching to sites --------------------------------------------------------------------------
def _neuron_counts(model: nn.Module) -> dict[str, int | None]:
    """Neuron count of every supported module; elementwise modules take the last sized one's count."""
    counts: dict[str, int | None] = {}
    last: int | None = None
    for name, m in model.named_modules():
        n: int | None = None
        if isinstance(m, nn.Linear):
            n = m.out_features
        elif isinstance(m, nn.Conv1d | nn.Conv2d | nn.Conv3d):
            n = m.out_channels
        elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d):
            n = m.num_features
        elif isinstance(m, nn.LayerNorm):
            n = m.normalized_shape[0] if len(m.normalized_shape) == 1 else None
        if n is not None:
            last = n
            counts[name] = n
        elif isinstance(m, _ELEMENTWISE):
            counts[name] = last
    return counts


def _param_dtype(module: nn.Module, model: nn.Module) -> tuple[torch.dtype, torch.device]:
    for p in list(module.parameters()) + list(model.parameters()):
        if p.is_floating_point():
            return p.dtype, p.device
    return torch.get_default_dtype(), torch.device("cpu")


class _SiteParams(nn.Module):
    def __init__(self, n: int, dtype: torch.dtype, device: torch.device, threshold: Any, gain: float,
                 with_threshold: bool) -> None:
        super().__init__()
        kw = {"dtype": dtype, "device": device}
        if with_threshold:
            self.threshold = nn.Parameter(torch.empty(n, **kw).copy_(threshold))
        self.gain = nn.Parameter(torch.full((n,), gain, **kw))


class _SiteAdapter(nn.Module):
    """Shared machinery: resolve and check sites, hold per-site parameters, hook the site outputs.

    Not registered in the user's model: the model is held only through its sites, so this module's
    ``state_dict`` holds the adapter parameters alone. Bad sites or hyperparameters raise at
    construction, before any hook exists; ``attach()`` only registers hooks.
    """

    _with_threshold = False

    def __init__(self, model: nn.Module, sites: Site | str | Iterable[Site | str], gain: float = 1.0,
                 threshold: float | torch.Tensor | Mapping[str, torch.Tensor] = 0.0) -> None:
        super().__init__()
        kind = type(self).__name__
        if not isinstance(model, nn.Module):
            raise TypeError(f"{kind}: model must be an nn.Module, got {type(model).__name__}")
        gain = _check_real(f"{kind}: gain", gain)
        resolved = resolve_sites(model, sites)
        counts = _neuron_counts(model)
        names = {id(m): n for n, m in model.named_modules()}
        ok = ", ".join(t.__name__ for t in SUPPORTED_MODULES)
        for s in resolved:
            if not isinstance(s.module, SUPPORTED_MODULES):
                raise TypeError(
                    f"{kind}: site {s.name!r} is a {type(s.module).__name__}, which is not supported; "
                    f"supported module types: {ok}. Point the site at a layer's output module instead."
                )
            if counts.get(names[id(s.module)]) is None:
                raise ValueError(
                    f"{kind}: cannot tell how many neurons site {s.name!r} ({type(s.module).__name__}) has: "
                    "no Linear/Conv/BatchNorm/1-D LayerNorm is registered before it"
                )
        thresholds = self._thresholds(kind, threshold, resolved, counts, names)
        params = []
        for s, t in zip(resolved, thresholds, strict=True):
            dtype, device = _param_dtype(s.module, model)
            params.append(_SiteParams(counts[names[id(s.module)]], dtype, device, t, gain,
                                      self._with_threshold))
        self.sites: tuple[Site, ...] = tuple(resolved)
        self.site_params = nn.ModuleList(params)
        self._handles: list[RemovableHandle] = []
        self._tracking = False
        self._firing: dict[str, dict[str, torch.Tensor]] = {}

    def _thresholds(self, kind: str, threshold: Any, sites: list[Site], counts: dict, names: dict) -> list:
        if not self._with_threshold:
            return [0.0] * len(sites)
        out = []
        for s in sites:
            n = counts[names[id(s.module)]]
            t = threshold.get(s.name, 0.0) if isinstance(threshold, Mapping) else threshold
            if isinstance(t, torch.Tensor):
                if t.shape not in ((n,), ()):
                    raise ValueError(f"{kind}: threshold for site {s.name!r}: expected shape ({n},) or a "
                                     f"scalar, got {tuple(t.shape)}")
                if not t.is_floating_point() or not bool(torch.isfinite(t).all()):
                    raise ValueError(f"{kind}: threshold for site {s.name!r}: expected finite floating "
                                     "values, got non-finite or non-float entries")
                out.append(t.detach())
            else:
                out.append(_check_real(f"{kind}: threshold for site {s.name!r}", t))
        if isinstance(threshold, Mapping):
            unknown = sorted(set(threshold) - {s.name for s in sites})
            if unknown:
                raise ValueError(f"{kind}: threshold given for sites {unknown}, which are not gated; "
                                 f"gated sites: {[s.name for s in sites]}")
        return out

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def attached(self) -> bool:
        return bool(self._handles)

    def attach(self) -> Self:
        """Register one forward hook per site. Attaching twice is an error."""
        if self._handles:
            raise RuntimeError(f"{type(self).__name__} is already attached; detach() it first")
        try:
            for i, s in enumerate(self.sites):
                self._handles.append(s.module.register_forward_hook(self._make_hook(i)))
        except BaseException:
            self.detach()  # roll back: no hook left behind
            raise
        return self

    def detach(self) -> None:
        """Remove every hook (idempotent): the model is exactly as before ``attach()``."""
        for h in self._handles:
            h.remove()
        self._handles = []

    remove = detach

    def __enter__(self) -> Self:
        return self.attach()

    def __exit__(self, *exc: object) -> None:
        self.detach()

    def forward(self, *args: Any, **kwargs: Any) -> Any:  # not a layer: it acts through hooks
        raise TypeError(f"{type(self).__name__} acts through hooks on the model's sites; call the model")

    def trainable_parameters(self) -> dict[str, int]:
        """Number of trainable parameters per site name."""
        return {s.name: sum(p.numel() for p in sp.parameters())
                for s, sp in zip(self.sites, self.site_params, strict=True)}

    # -- hooks ----------------------------------------------------------------------------------
    def _make_hook(self, i: int) -> Any:
        site = self.sites[i]

        params = self.site_params[i]
        n = params.gain.shape[0]

        def hook(module: nn.Module, args: Any, output: Any) -> Any:
            h = output if type(output) is torch.Tensor else first_tensor(output, site.name)
            dim = h.dim()
            axis = site.axis % dim if dim else 0
            if dim == 0 or h.shape[axis] != n:
                raise ValueError(
                    f"{type(self).__name__}: site {site.name!r} has {n} neurons along axis {site.axis}, "
                    f"got an output of shape {tuple(h.shape)}"
                )
            return self._apply(h, params, site.name, axis)

        return hook

    @staticmethod
    def _per_neuron(p: torch.Tensor, h: torch.Tensor, axis: int) -> torch.Tensor:
        """``p`` (N,) cast to h's dtype and shaped to broadcast along ``axis`` (no-ops on the last axis)."""
        if p.dtype != h.dtype:
            p = p.to(h.dtype)
        if axis != h.dim() - 1:
            shape = [1] * h.dim()
            shape[axis] = p.shape[0]
            p = p.view(shape)
        return p

    def _apply(self, h: torch.Tensor, params: _SiteParams, name: str, axis: int) -> torch.Tensor:
        raise NotImplementedError


class NeuronScale(_SiteAdapter):
    """IA3-style per-neuron scaling h'_j = l_j h_j, l initialised to ``gain`` (ones by default).

    Liu et al. 2022 (arXiv:2205.05638); the threshold-free control for :class:`NeuronGate`.
    """

    def __init__(self, model: nn.Module, sites: Site | str | Iterable[Site | str], gain: float = 1.0) -> None:
        super().__init__(model, sites, gain=gain)

    def _apply(self, h: torch.Tensor, params: _SiteParams, name: str, axis: int) -> torch.Tensor:
        return h * self._per_neuron(params.gain, h, axis)


class NeuronGate(_SiteAdapter):
    """Learned per-neuron threshold t and gain g with a smooth gate, hardenable at inference.

    Smooth: h'_j = g_j h_j sigmoid((h_j - t_j)/T); hardened: h'_j = g_j h_j 1[h_j > t_j]
    (Dopamine / TauGate, arXiv:2602.11726; the gate form is ours, see the module docstring).

    Args:
        model: the (frozen) model; it is not modified, only hooked.
        sites: Site(s) or name patterns; see ``SUPPORTED_MODULES``.
        temperature: T > 0 (finite), in the units of the site's activations.
        threshold: initial t: a finite number, a per-neuron tensor (N,), or ``{site name: value}``.
        gain: initial g (finite), 1 by default.
        hard: start hardened (else smooth; switch with ``hard`` or ``hardened()``).

    ``state_dict`` holds the thresholds, the gains and (as extra state) the temperature; ``save`` and
    ``load`` write and read only these, as safetensors.
    """

    _with_threshold = True

    def __init__(
        self,
        model: nn.Module,
        sites: Site | str | Iterable[Site | str],
        temperature: float = 0.1,
        threshold: float | torch.Tensor | Mapping[str, torch.Tensor | float] = 0.0,
        gain: float = 1.0,
        hard: bool = False,
    ) -> None:
        temperature = _check_real("NeuronGate: temperature", temperature, positive=True)
        if not isinstance(hard, bool):
            raise TypeError(f"NeuronGate: hard must be a bool, got {type(hard).__name__}")
        super().__init__(model, sites, gain=gain, threshold=threshold)
        self.temperature = temperature
        self.hard = hard

    @property
    def temperature(self) -> float:
        """T of the smooth gate; setting it (e.g. to anneal T) checks that it is finite and > 0."""
        return self._temperature

    @temperature.setter
    def temperature(self, value: float) -> None:
        self._temperature = _check_real("NeuronGate: temperature", value, positive=True)

    @contextmanager
    def hardened(self, hard: bool = True) -> Iterator[Self]:
        """Within the block, the gates are hard (``hard=True``) or smooth."""
        old, self.hard = self.hard, hard
        try:
            yield self
        finally:
            self.hard = old

    def get_extra_state(self) -> dict[str, Any]:
        return {"temperature": self.temperature}

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> Any:
        """As ``nn.Module.load_state_dict``; T is checked first, so a bad one changes nothing."""
        extra = state_dict.get("_extra_state") if isinstance(state_dict, Mapping) else None
        if extra is not None:
            self.set_extra_state(extra, check_only=True)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def set_extra_state(self, state: Any, check_only: bool = False) -> None:
        t = state.get("temperature") if isinstance(state, Mapping) else None
        t = _check_real("NeuronGate.load_state_dict: temperature", t, positive=True)
        if not check_only:
            self.temperature = t

    def _apply(self, h: torch.Tensor, params: _SiteParams, name: str, axis: int) -> torch.Tensor:
        t = self._per_neuron(params.threshold, h, axis)
        g = self._per_neuron(params.gain, h, axis)
        if self._tracking:
            self._tally(h.detach(), t.detach(), name, axis)
        if self.hard:
            return hard_gate(h, t, g)
        return gate(h, t, g, self.temperature)

    # -- which neurons fire ---------------------------------------------------------------------
    @contextmanager
    def track_firing(self, reset: bool = True) -> Iterator[Self]:
        """Within the block, count per neuron how often the gate is open (h > t) and how often the
        gated output is non-zero (h > t and h != 0: the neuron fires); read with ``firing_rates()``."""
        if reset:
            self._firing = {}
        self._tracking = True
        try:
            yield self
        finally:
            self._tracking = False

    def _tally(self, h: torch.Tensor, t: torch.Tensor, name: str, axis: int) -> None:
        is_open = h > t
        active = is_open & (h != 0)
        dims = [d for d in range(h.dim()) if d != axis]
        rec = self._firing.setdefault(name, {
            "open": torch.zeros(h.shape[axis], dtype=torch.float64, device=h.device),
            "active": torch.zeros(h.shape[axis], dtype=torch.float64, device=h.device),
            "samples": torch.zeros((), dtype=torch.float64, device=h.device),
        })
        rec["open"] += is_open.sum(dims, dtype=torch.float64) if dims else is_open.double()
        rec["active"] += active.sum(dims, dtype=torch.float64) if dims else active.double()
        rec["samples"] += h.numel() // h.shape[axis]

    def firing_rates(self) -> dict[str, dict[str, torch.Tensor]]:
        """Per site: ``open`` and ``active`` fractions of samples, each (N,), from ``track_firing``."""
        if not self._firing:
            raise RuntimeError("NeuronGate.firing_rates: nothing tracked; run the model in track_firing()")
        return {k: {"open": v["open"] / v["samples"], "active": v["active"] / v["samples"]}
                for k, v in self._firing.items()}

    def fired(self, min_rate: float = 0.0) -> dict[str, list[int]]:
        """Per site, the indices of neurons whose active fraction exceeds ``min_rate``."""
        rate = _check_real("NeuronGate.fired: min_rate", min_rate)
        rates = self.firing_rates()
        return {k: torch.nonzero(v["active"] > rate).flatten().tolist() for k, v in rates.items()}

    # -- files ----------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the gate parameters (and T, the site names) to one safetensors file; return its path."""
        path = Path(os.fspath(path))
        if path.suffix != ".safetensors":
            path = path.with_name(path.name + ".safetensors")
        tensors = {}
        for s, sp in zip(self.sites, self.site_params, strict=True):
            tensors[f"{s.name}/threshold"] = sp.threshold.detach().cpu().contiguous().clone()
            tensors[f"{s.name}/gain"] = sp.gain.detach().cpu().contiguous().clone()
        meta = {"format": _FORMAT, "version": "1", "sites": json.dumps([s.name for s in self.sites]),
                "temperature": repr(self.temperature)}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        safetensors.torch.save_file(tensors, str(tmp), metadata=meta)
        os.replace(tmp, path)
        return path

    def load(self, path: str | os.PathLike[str]) -> None:
        """Load gate parameters written by ``save``; the sites and sizes must match (checked first,
        so a mismatch leaves this gate unchanged)."""
        tensors, meta = load_gate_file(path)
        names = [s.name for s in self.sites]
        if meta["sites"] != names:
            raise ValueError(
                f"NeuronGate.load: file {str(path)!r} gates sites {meta['sites']}, this gate gates {names}"
            )
        for s, sp in zip(self.sites, self.site_params, strict=True):
            for key in ("threshold", "gain"):
                got = tensors[f"{s.name}/{key}"]
                if got.shape != getattr(sp, key).shape:
                    raise ValueError(f"NeuronGate.load: {key} of site {s.name!r}: expected shape "
                                     f"{tuple(getattr(sp, key).shape)}, got {tuple(got.shape)}")
        with torch.no_grad():
            for s, sp in zip(self.sites, self.site_params, strict=True):
                sp.threshold.copy_(tensors[f"{s.name}/threshold"])
                sp.gain.copy_(tensors[f"{s.name}/gain"])
        self.temperature = meta["temperature"]


def load_gate_file(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a ``NeuronGate.save`` file: ``({"<site>/threshold": t, "<site>/gain": g}, metadata)``."""
    path = Path(os.fspath(path))
    if not path.is_file():
        raise FileNotFoundError(f"load_gate_file: no such file {str(path)!r}")
    with safetensors.safe_open(str(path), framework="pt") as f:
        raw = f.metadata() or {}
    if raw.get("format") != _FORMAT:
        raise ValueError(f"load_gate_file: {str(path)!r} is not a neuroplast gate file "
                         f"(format {raw.get('format')!r}, expected {_FORMAT!r})")
    tensors = safetensors.torch.load_file(str(path))
    sites = json.loads(raw["sites"])
    expected = {f"{s}/{k}" for s in sites for k in ("threshold", "gain")}
    if set(tensors) != expected:
        raise ValueError(
            f"load_gate_file: {str(path)!r} holds tensors {sorted(tensors)}, expected {sorted(expected)}"
        )
    temperature = _check_real("load_gate_file: temperature", float(raw["temperature"]), positive=True)
    meta = {"sites": sites, "temperature": temperature}
    return tensors, meta

