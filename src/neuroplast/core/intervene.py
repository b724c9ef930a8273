"""Interventions: optogenetics for networks, as forward hooks on the user's unchanged model.

``Clamp`` replaces the masked neurons' output by a value (a scalar, one value per neuron, a value with
the per-neuron trailing shape, or a recorded mean), ``Ablate`` clamps them to zero, ``Scale``
multiplies them by a factor, ``Noise`` adds Gaussian noise and ``Patch`` replaces them by the same
site's activations in a ``source`` (another model run on the same input, a cached tensor or a
callable): activation patching, and the "clamp to the values at initialisation" of arXiv:2404.07129.
Unmasked neurons are left bit-identical. A clamp or patch *replaces* values, so no gradient flows into
a clamped unit from downstream (as when a neuron is held by optogenetic clamping); scaling and noise
keep the gradient path (scaled, or unchanged).

Scoped use::

    with Ablate(model, "encoder.1", mask=[3, 7]):
        out = model(x)

Persistent use through training, active only on some steps::

    clamp = Clamp(model, site, mask=[0], value="mean", stats=recorder.stats[site.name],
                  schedule=Schedule(start=100, stop=200)).attach()
    for x, y in data:
        ...; optimizer.step(); clamp.step()
    clamp.detach()

Activation patching (TransformerLens' ``run_with_cache`` + ``run_with_hooks`` with a patching hook,
nnsight's ``.output[...] = ...``), head 2 of a clean run patched into a corrupted run
(``site_output`` and ``SiteMean`` live in :mod:`neuroplast.core.capture`)::

    clean = site_output(model, "blocks.0.hook_z", clean_tokens)     # (B, T, heads, d_head)
    with Patch(model, Site("blocks.0.hook_z", model.blocks[0].hook_z, 2), [2], source=clean):
        logits = model(corrupted_tokens)

The mask is an index list, a boolean tensor of shape (N,), or a callable ``mask(stats) -> bool
Tensor(N,) | indices`` evaluated at ``attach()`` on the ``stats`` given to the constructor
(e.g. ``stats=recorder.stats["fc1"]``). A boolean mask of 2 or more dims is read with the value
shapes below, so it can also select positions: ``(T, heads, 1)`` for a ``(B, T, heads, d_head)``
site edits chosen heads at chosen positions only (position-wise activation patching). Sizes are
checked against the site's output at the first forward pass: a mismatch is a ValueError naming the
site, the expected and the observed sizes.

Value shapes (``Clamp.value``, ``Scale.factor``, ``Noise.std``), for a site output of shape
``(B, *sample)`` with N neurons on ``axis``: a scalar; shape ``(N,)``, one number per neuron, placed on
the neuron axis; or any shape that broadcasts against one sample ``sample`` (right-aligned, numpy
rules) and reaches the neuron axis, e.g. for a ``(B, T, heads, d_head)`` site with axis 2: ``(heads,
d_head)`` (one vector per head), ``(heads, 1)`` or ``(T, heads, d_head)``. A 1-D value of length N is
always read as per-neuron.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from neuroplast.core.record import first_tensor
from neuroplast.core.sites import Site, resolve_site

__all__ = [
    "Schedule", "Intervention", "Clamp", "Ablate", "Scale", "Noise", "Patch",
]

MaskLike = Sequence[int] | torch.Tensor | Callable[[Mapping[str, torch.Tensor]], Any] | None


@dataclass(frozen=True)
class Schedule:
    """Steps on which an intervention acts: ``start <= step < stop`` (``stop=None``: no end)."""

    start: int = 0
    stop: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.start, bool) or not isinstance(self.start, int) or self.start < 0:
            raise ValueError(f"Schedule: start must be an int >= 0, got {self.start!r}")
        if self.stop is not None and (
            isinstance(self.stop, bool) or not isinstance(self.stop, int) or self.stop < self.start
        ):
            raise ValueError(
                f"Schedule: stop must be None or an int >= start={self.start}, got {self.stop!r}"
            )

    def active(self, step: int) -> bool:
        return self.start <= step and (self.stop is None or step < self.stop)


class Intervention:
    """Base class: a forward hook that edits the masked neurons of one site.

    Subclasses implement :meth:`_apply` (``out`` -> edited ``out`` given a broadcastable boolean
    mask) and may override :meth:`_prepare` to validate and place per-neuron or per-sample-shaped
    tensors (with :meth:`_place`) at the first forward of each sample shape.
    Constructors only store arguments; the site is resolved at construction (so a bad name fails
    early) and the mask at :meth:`attach`.
    """

    def __init__(
        self,
        model: nn.Module,
        site: Site | str,
        mask: MaskLike = None,
        schedule: Schedule | None = None,
        stats: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        if schedule is not None and not isinstance(schedule, Schedule):
            raise TypeError(f"{type(self).__name__}: schedule must be a Schedule or None, got {schedule!r}")
        self.model = model
        self.site: Site = resolve_site(model, site)
        self.mask = mask
        self.schedule = schedule
        self.stats = stats
        self.step_count = 0  # advanced by step(); saved by state_dict()
        self._handle: RemovableHandle | None = None
        self._mask_index: torch.Tensor | None = None  # at attach: bool (N,) / per-sample, or int64 indices
        self._cache: dict[tuple[tuple[int, ...], torch.device, torch.dtype], tuple[torch.Tensor, ...]] = {}
        self._size: int | None = None  # neurons seen at the first active forward after attach()

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def attached(self) -> bool:
        return self._handle is not None

    @property
    def active(self) -> bool:
        """Whether the intervention acts at the current step (its schedule, if any)."""
        return self.schedule is None or self.schedule.active(self.step_count)

    def attach(self) -> Self:
        """Resolve the mask and register the forward hook. Attaching twice is an error."""
        if self._handle is not None:
            raise RuntimeError(f"{self!r} is already attached; detach() it first")
        self._mask_index = self._resolve_mask()
        self._cache.clear()
        self._size = None
        self._handle = self.site.module.register_forward_hook(self._hook)
        return self

    def detach(self) -> None:
        """Remove the hook (idempotent); the model is left exactly as before attach()."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        self._cache.clear()
        self._size = None

    def __enter__(self) -> Self:
        return self.attach()

    def __exit__(self, *exc: object) -> None:
        self.detach()

    def step(self) -> None:
        """Advance the schedule counter by one (call once per training step)."""
        self.step_count += 1

    def state_dict(self) -> dict[str, Any]:
        """The step counter (the only state that changes; masks/values are constructor arguments)."""
        return {"step": self.step_count}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        step = state.get("step") if isinstance(state, Mapping) else None
        if isinstance(step, torch.Tensor):
            step = int(step.item())
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: expected {{'step': int >= 0}}, got {state!r}"
            )
        self.step_count = step

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(site={self.site.name!r}, step={self.step_count}, attached={self.attached})"

    # -- mask --------------------------------------------------------------------------------
    def _resolve_mask(self) -> torch.Tensor | None:
        mask = self.mask
        name = type(self).__name__
        if callable(mask) and not isinstance(mask, torch.Tensor):
            if self.stats is None:
                raise ValueError(
                    f"{name}: mask is a callable on recorder statistics but stats=None; pass "
                    f"stats=recorder.stats[{self.site.name!r}] to the constructor"
                )
            mask = mask(self.stats)
        if mask is None:
            return None
        if isinstance(mask, torch.Tensor):
            if mask.dtype == torch.bool:
                if mask.dim() == 0:
                    raise ValueError(
                        f"{name}: a boolean mask must have shape (N,) or a per-sample shape, got a scalar"
                    )
                return mask.detach()  # (N,), or per-sample shaped: placed at the first forward
            if not mask.dtype.is_floating_point and not mask.dtype.is_complex and mask.dim() <= 1:
                return mask.detach().reshape(-1).long()
            raise TypeError(f"{name}: mask tensor must be bool (N,) or integer indices, got {mask.dtype}")
        if isinstance(mask, Sequence) and not isinstance(mask, str):
            if not all(isinstance(i, int) and not isinstance(i, bool) for i in mask):
                raise TypeError(f"{name}: mask list must hold int neuron indices, got {list(mask)[:8]!r}")
            return torch.tensor(list(mask), dtype=torch.long)
        raise TypeError(
            f"{name}: mask must be indices, a bool Tensor(N,), a callable(stats) or None, "
            f"got {type(mask).__name__}"
        )

    def _neuron_mask(self, size: int) -> torch.Tensor:
        """The resolved mask as bool (N,), checked against the observed number of neurons."""
        m = self._mask_index
        where = f"{type(self).__name__} at site {self.site.name!r} (axis {self.site.axis})"
        if m is None:
            return torch.ones(size, dtype=torch.bool)
        if m.dtype == torch.bool:
            if m.numel() != size:
                raise ValueError(f"{where}: mask has length {m.numel()}, but the output has {size} neurons")
            return m
        if m.numel() and (int(m.max()) >= size or int(m.min()) < -size):
            raise ValueError(
                f"{where}: mask indices must lie in [-{size}, {size}), the output has {size} neurons; "
                f"got indices from {int(m.min())} to {int(m.max())}"
            )
        out = torch.zeros(size, dtype=torch.bool, device=m.device)
        out[m] = True
        return out

    def _place(self, value: torch.Tensor | float, shape: tuple[int, ...], what: str) -> torch.Tensor:
        """``value`` as a tensor that broadcasts against an output of ``shape`` (see the module doc):
        a scalar, (N,) placed on the neuron axis, or a shape broadcastable against one sample
        ``shape[1:]`` that reaches the neuron axis."""
        t = torch.as_tensor(value)
        ndim = len(shape)
        axis = self.site.axis % ndim
        size = shape[axis]
        if t.dim() == 0:
            return t
        if t.dim() == 1 and t.shape[0] == size:
            bshape = [1] * ndim
            bshape[axis] = size
            return t.reshape(bshape)
        sample = tuple(shape[1:])
        k = t.dim()
        if ndim - axis <= k <= ndim - 1 and all(
            v in (1, s) for v, s in zip(t.shape, sample[len(sample) - k:], strict=True)
        ):
            return t
        if axis == 0:
            options = f"a scalar or have shape ({size},) (one per neuron on axis 0)"
        else:
            options = (
                f"a scalar, have shape ({size},) (one per neuron), or a shape that broadcasts against one "
                f"sample {sample} and reaches the neuron axis (at least its last {ndim - axis} dims, e.g. "
                f"{tuple(shape[axis:])})"
            )
        raise ValueError(
            f"{type(self).__name__} at site {self.site.name!r}: {what} must be {options}; the output has "
            f"shape {tuple(shape)} with {size} neurons on axis {self.site.axis}; got shape {tuple(t.shape)}"
        )

    # -- hook --------------------------------------------------------------------------------
    def _hook(self, module: nn.Module, args: Any, output: Any) -> Any:
        if not self.active:
            return None
        x = first_tensor(output, self.site.name)
        ndim, axis = x.dim(), self.site.axis
        if ndim == 0 or not -ndim <= axis < ndim:
            raise ValueError(
                f"{type(self).__name__} at site {self.site.name!r}: neuron axis {axis} does not fit the "
                f"output of shape {tuple(x.shape)}; pass a Site with the right axis"
            )
        size = x.shape[axis]
        if self._size is not None and size != self._size:
            raise ValueError(
                f"{type(self).__name__} at site {self.site.name!r}: output has {size} neurons on "
                f"axis {axis}, earlier {self._size}"
            )
        key = (tuple(x.shape[1:]), x.device, x.dtype)
        prepared = self._cache.get(key)
        if prepared is None:
            bshape = [1] * ndim
            bshape[axis] = size
            m = self._mask_index
            if m is not None and m.dtype == torch.bool and m.dim() > 1:  # per-sample shaped (positions too)
                neuron_mask = self._place(m, tuple(x.shape), "a per-sample boolean mask").to(x.device)
            else:
                neuron_mask = self._neuron_mask(size).to(x.device).reshape(bshape)
            tensors = self._prepare(tuple(x.shape), x.dtype, x.device)
            if len(self._cache) >= 32:  # many distinct sample shapes (e.g. sequence lengths): start over
                self._cache.clear()
            prepared = self._cache[key] = (
                neuron_mask,
                *(t.detach().to(device=x.device, dtype=x.dtype) for t in tensors),
            )
            self._size = size
        y = self._apply(x, *prepared)
        if isinstance(output, torch.Tensor):
            return y
        rest = tuple(output[1:])
        if hasattr(output, "_fields"):  # a namedtuple
            return type(output)(y, *rest)
        return type(output)((y, *rest))

    def _prepare(
        self, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device
    ) -> tuple[torch.Tensor, ...]:
        """Tensors for :meth:`_apply`, shaped to broadcast against an output of ``shape`` (use
        :meth:`_place` to validate and place a scalar / per-neuron / per-sample-shaped argument)."""
        return ()

    def _apply(self, x: torch.Tensor, mask: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class Clamp(Intervention):
    """Hold the masked neurons at ``value``: ``out = where(mask, value, out)``.

    ``value``: a scalar; a Tensor (N,), one number per neuron; a Tensor with the per-neuron trailing
    shape, broadcastable against one sample (e.g. ``(heads, d_head)``, one vector per head, for a
    ``(B, T, heads, d_head)`` site with the head axis; see the module doc); or ``"mean"``, read from
    ``stats["mean"]`` with the same shape rules. By default that is ``recorder.stats[site]`` of a core
    :class:`~neuroplast.core.Recorder`: one number per neuron, averaged over every other dim (batch,
    time, space, d_head). To clamp to the mean per neuron *and* per position or feature, record it
    with :class:`SiteMean` (``dims`` chooses the dims averaged over) and pass ``stats=site_mean.stats``.

    Values are replaced, so the clamped units pass no gradient back to their inputs (the upstream
    gradient through them is zero), as in optogenetic clamping.
    """

    def __init__(
        self,
        model: nn.Module,
        site: Site | str,
        mask: MaskLike = None,
        value: float | torch.Tensor | str = 0.0,
        schedule: Schedule | None = None,
        stats: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        super().__init__(model, site, mask, schedule, stats)
        if isinstance(value, str) and value != "mean":
            raise ValueError(
                "Clamp: value must be a number, a Tensor ((N,) or per-sample shaped) or 'mean', "
                f"got {value!r}"
            )
        if not isinstance(value, str | int | float | torch.Tensor) or isinstance(value, bool):
            raise TypeError(
                "Clamp: value must be a number, a Tensor ((N,) or per-sample shaped) or 'mean', "
                f"got {type(value).__name__}"
            )
        self.value = value

    def _prepare(
        self, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device
    ) -> tuple[torch.Tensor, ...]:
        value = self.value
        if isinstance(value, str):  # "mean"
            if self.stats is None or "mean" not in self.stats:
                raise ValueError(
                    f"Clamp at site {self.site.name!r}: value='mean' needs stats with a 'mean' entry, e.g. "
                    f"stats=recorder.stats[{self.site.name!r}] or stats=SiteMean(...).stats"
                )
            value = self.stats["mean"]
            if not isinstance(value, torch.Tensor):
                raise TypeError(
                    f"Clamp at site {self.site.name!r}: stats['mean'] must be a Tensor, "
                    f"got {type(value).__name__}"
                )
        return (self._place(value, shape, "value"),)

    def _apply(self, x: torch.Tensor, mask: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        return torch.where(mask, value, x)


class Ablate(Clamp):
    """Silence the masked neurons: a :class:`Clamp` to zero."""

    def __init__(
        self,
        model: nn.Module,
        site: Site | str,
        mask: MaskLike = None,
        schedule: Schedule | None = None,
        stats: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        super().__init__(model, site, mask, 0.0, schedule, stats)


class Scale(Intervention):
    """Multiply the masked neurons' output by ``factor``: a scalar, a Tensor (N,) or a per-sample-shaped
    Tensor (the value shapes of the module doc)."""

    def __init__(
        self,
        model: nn.Module,
        site: Site | str,
        mask: MaskLike = None,
        factor: float | torch.Tensor = 1.0,
        schedule: Schedule | None = None,
        stats: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        super().__init__(model, site, mask, schedule, stats)
        if isinstance(factor, bool) or not isinstance(factor, int | float | torch.Tensor):
            raise TypeError(
                "Scale: factor must be a number or a Tensor ((N,) or per-sample shaped), "
                f"got {type(factor).__name__}"
            )
        self.factor = factor

    def _prepare(
        self, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device
    ) -> tuple[torch.Tensor, ...]:
        return (self._place(self.factor, shape, "factor"),)

    def _apply(self, x: torch.Tensor, mask: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
        return torch.where(mask, x * factor, x)


class Noise(Intervention):
    """Add Gaussian noise ``std * N(0, 1)`` to the masked neurons (``std``: a scalar, a Tensor (N,)
    or a per-sample-shaped Tensor, as ``Clamp.value``).

    Draws come from ``generator`` (a torch.Generator on the output's device, or a CPU generator
    whose draws are moved there); with ``generator=None`` the global torch RNG is used.
    """

    def __init__(
        self,
        model: nn.Module,
        site: Site | str,
        mask: MaskLike = None,
        std: float | torch.Tensor = 1.0,
        generator: torch.Generator | None = None,
        schedule: Schedule | None = None,
        stats: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        super().__init__(model, site, mask, schedule, stats)
        if isinstance(std, bool) or not isinstance(std, int | float | torch.Tensor):
            raise TypeError(
                "Noise: std must be a number or a Tensor ((N,) or per-sample shaped), "
                f"got {type(std).__name__}"
            )
        if isinstance(std, int | float) and std < 0:
            raise ValueError(f"Noise: std must be >= 0, got {std}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(
                f"Noise: generator must be a torch.Generator or None, got {type(generator).__name__}"
            )
        self.std = std
        self.generator = generator

    def _prepare(
        self, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device
    ) -> tuple[torch.Tensor, ...]:
        return (self._place(self.std, shape, "std"),)

    def _apply(self, x: torch.Tensor, mask: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        gen = self.generator
        gen_device = gen.device if gen is not None else x.device
        eps = torch.randn(x.shape, generator=gen, dtype=x.dtype, device=gen_device).to(x.device)
        return torch.where(mask, x + std * eps, x)


class Patch(Intervention):
    """Activation patching: replace the masked neurons by the same site's activations in ``source``.

    ``out = where(mask, a_source, out)`` with ``a_source`` (detached, cast to the output's dtype and
    device) taken from ``source``, which is one of:

    - an ``nn.Module`` with a module of the site's name (e.g. a frozen copy of the model at
      initialisation, or another checkpoint of it): it is run on the *same input*
      as ``model``, under ``torch.no_grad()``, in a forward pre-hook of ``model`` (one extra forward
      pass per call while active, none while the schedule is off), and its site outputs must have the
      model's shape. With a copy of the model at step 0 this is the clamp "to the values at
      initialisation" of Singh et al. 2024 (arXiv:2404.07129): the patched heads compute what they
      computed at step 0, input by input. ``source`` may be ``model`` itself: the site's values then
      come from a clean pass of the model (with no patch), so patching is the identity when nothing
      else is attached; other hooks on the model see that pass too. A site module called several times
      per forward (a shared cell in a loop) is patched call by call, in order.
    - a Tensor: a cached activation of the site (e.g. ``site_output(model, site, clean_input)``, for
      patching a clean run into a corrupted one), with the output's number of
      dims and each dim equal to the output's or 1 (a cache of one input broadcasts over the batch).
    - a callable ``source(out) -> Tensor`` called on the site's own output at every active forward
      (e.g. ``lambda a: a.mean(0, keepdim=True)``, a batch-mean ablation); same shape rule.

    ``source`` may be reassigned between forward passes (a new cache per batch). Patched units pass
    no gradient back, as with :class:`Clamp`.
    """

    def __init__(
        self,
        model: nn.Module,
        site: Site | str,
        mask: MaskLike = None,
        source: nn.Module | torch.Tensor | Callable[[torch.Tensor], torch.Tensor] | None = None,
        schedule: Schedule | None = None,
        stats: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        super().__init__(model, site, mask, schedule, stats)
        self._source_module: nn.Module | None = None
        if isinstance(source, nn.Module):
            modules = dict(source.named_modules())
            if self.site.name not in modules:
                close = difflib.get_close_matches(self.site.name, list(modules), n=3)
                raise ValueError(
                    f"{type(self).__name__}: source {type(source).__name__} has no module "
                    f"{self.site.name!r} to patch from (closest: {close}); the source must have the "
                    "model's module names"
                )
            self._source_module = modules[self.site.name]
        elif isinstance(source, torch.Tensor):
            if source.dim() == 0:
                raise ValueError(
                    f"{type(self).__name__}: a Tensor source must be a cached activation of the site "
                    "(the output's number of dims), got a scalar; use Clamp for a constant"
                )
        elif not callable(source):
            raise TypeError(
                f"{type(self).__name__}: source must be an nn.Module, a cached activation Tensor or a "
                f"callable(out) -> Tensor, got {type(source).__name__}"
            )
        self.source = source
        self._outs: list[torch.Tensor] = []  # the source's site outputs for the current forward pass
        self._next = 0
        self._in_source = False
        self._extra: list[RemovableHandle] = []

    def attach(self) -> Self:
        super().attach()
        if self._source_module is not None:
            try:
                self._extra = [
                    self.model.register_forward_pre_hook(self._run_source, with_kwargs=True),
                    self._source_module.register_forward_hook(self._capture),
                ]
            except Exception:
                self.detach()
                raise
        return self

    def detach(self) -> None:
        for h in self._extra:
            h.remove()
        self._extra = []
        self._outs, self._next, self._in_source = [], 0, False
        super().detach()

    def _run_source(self, module: nn.Module, args: Any, kwargs: Any) -> None:
        if self._in_source:  # source is model: its own pre-hook during the source pass
            return
        self._outs, self._next = [], 0
        if not self.active or not isinstance(self.source, nn.Module):
            return
        self._in_source = True
        try:
            with torch.no_grad():
                self.source(*args, **kwargs)
        finally:
            self._in_source = False

    def _capture(self, module: nn.Module, args: Any, output: Any) -> None:
        if self._in_source:
            self._outs.append(first_tensor(output, self.site.name).detach())

    def _hook(self, module: nn.Module, args: Any, output: Any) -> Any:
        if self._in_source:  # source is model: leave the source pass unpatched
            return None
        return super()._hook(module, args, output)

    def _source_value(self, x: torch.Tensor) -> torch.Tensor:
        name = f"{type(self).__name__} at site {self.site.name!r}"
        source = self.source
        if isinstance(source, nn.Module):
            if self._next >= len(self._outs):
                raise RuntimeError(
                    f"{name}: no source output for this call (the source gave {len(self._outs)} for this "
                    "forward pass); the site must be reached through model(...) so that the source runs "
                    "on the same input"
                )
            v = self._outs[self._next]
            self._next += 1
            if v.shape != x.shape:
                raise ValueError(
                    f"{name}: source output has shape {tuple(v.shape)}, the model's has {tuple(x.shape)}"
                )
            return v
        if isinstance(source, torch.Tensor):
            v, what = source, "the cached source"
        elif isinstance(source, nn.Module) or not callable(source):
            raise TypeError(f"{name}: source must be an nn.Module, a Tensor or a callable, got {source!r}")
        else:
            v, what = source(x), "source(out)"
            if not isinstance(v, torch.Tensor):
                raise TypeError(f"{name}: {what} must return a Tensor, got {type(v).__name__}")
        if v.dim() != x.dim() or any(a not in (1, b) for a, b in zip(v.shape, x.shape, strict=True)):
            raise ValueError(
                f"{name}: {what} has shape {tuple(v.shape)}; expected the output's shape {tuple(x.shape)} "
                "(or 1 in some dims, to broadcast)"
            )
        return v.detach()

    def _apply(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        v = self._source_value(x)
        return torch.where(mask, v.to(dtype=x.dtype, device=x.device), x)
