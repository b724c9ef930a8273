"""Interventions: optogenetics for networks, as forward hooks on the user's unchanged model.

``Clamp`` replaces the masked neurons' output by a value (a scalar, one value per neuron, or the
recorded mean), ``Ablate`` clamps them to zero, ``Scale`` multiplies them by a factor and ``Noise``
adds Gaussian noise. Unmasked neurons are left bit-identical. A clamp *replaces* values, so no
gradient flows into a clamped unit from downstream (as when a neuron is held by optogenetic
clamping); scaling and noise keep the gradient path (scaled, or unchanged).

Scoped use::

    with Ablate(model, "encoder.1", mask=[3, 7]):
        out = model(x)

Persistent use through training, active only on some steps::

    clamp = Clamp(model, site, mask=[0], value="mean", stats=recorder.stats[site.name],
                  schedule=Schedule(start=100, stop=200)).attach()
    for x, y in data:
        ...; optimizer.step(); clamp.step()
    clamp.detach()

The mask is an index list, a boolean tensor of shape (N,), or a callable ``mask(stats) -> bool
Tensor(N,) | indices`` evaluated at ``attach()`` on the ``stats`` given to the constructor
(e.g. ``stats=recorder.stats["fc1"]``). Sizes are checked against the site's output at the first
forward pass: a mismatch is a ValueError naming the site, the expected and the observed sizes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from neuroplast.core.record import first_tensor
from neuroplast.core.sites import Site, resolve_site

__all__ = ["Schedule", "Intervention", "Clamp", "Ablate", "Scale", "Noise"]

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
    mask) and may override :meth:`_prepare` to validate per-neuron tensors at the first forward.
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
        self._mask_index: torch.Tensor | None = None  # resolved at attach: bool (N,) or int64 indices
        self._cache: dict[tuple[int, torch.device, torch.dtype], tuple[torch.Tensor, ...]] = {}

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
        self._handle = self.site.module.register_forward_hook(self._hook)
        return self

    def detach(self) -> None:
        """Remove the hook (idempotent); the model is left exactly as before attach()."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        self._cache.clear()

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
                if mask.dim() != 1:
                    raise ValueError(f"{name}: a boolean mask must have shape (N,), got {tuple(mask.shape)}")
                return mask.detach()
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

    def _per_neuron(self, value: torch.Tensor | float, size: int, what: str) -> torch.Tensor:
        """A scalar or (N,) tensor argument as a 1-D tensor, checked against N."""
        t = torch.as_tensor(value)
        if t.dim() == 0:
            return t
        if t.dim() != 1 or t.numel() != size:
            raise ValueError(
                f"{type(self).__name__} at site {self.site.name!r}: {what} must be a scalar or have "
                f"shape ({size},) (one per neuron), got shape {tuple(t.shape)}"
            )
        return t

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
        key = (ndim, x.device, x.dtype)
        prepared = self._cache.get(key)
        if prepared is None:
            size = x.shape[axis]
            bshape = [1] * ndim
            bshape[axis] = size
            neuron_mask = self._neuron_mask(size)
            tensors = self._prepare(size, x.dtype, x.device)
            prepared = self._cache[key] = tuple(
                t.detach()
                .to(device=x.device, dtype=t.dtype if t.dtype == torch.bool else x.dtype)
                .reshape(bshape if t.dim() == 1 else ())
                for t in (neuron_mask, *tensors)
            )
        elif x.shape[axis] != prepared[0].numel():
            raise ValueError(
                f"{type(self).__name__} at site {self.site.name!r}: output has {x.shape[axis]} neurons on "
                f"axis {axis}, earlier {prepared[0].numel()}"
            )
        y = self._apply(x, *prepared)
        if isinstance(output, torch.Tensor):
            return y
        rest = tuple(output[1:])
        if hasattr(output, "_fields"):  # a namedtuple
            return type(output)(y, *rest)
        return type(output)((y, *rest))

    def _prepare(self, size: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, ...]:
        """Per-neuron tensors for :meth:`_apply` (scalars or (N,)); validated against ``size``."""
        return ()

    def _apply(self, x: torch.Tensor, mask: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class Clamp(Intervention):
    """Hold the masked neurons at ``value``: a scalar, a Tensor (N,), or ``"mean"`` (needs stats).

    ``out = where(mask, value, out)``: values are replaced, so the clamped units pass no gradient
    back to their inputs (the upstream gradient through them is zero), as in optogenetic clamping.
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
            raise ValueError(f"Clamp: value must be a number, a Tensor (N,) or 'mean', got {value!r}")
        if not isinstance(value, str | int | float | torch.Tensor) or isinstance(value, bool):
            raise TypeError(
                f"Clamp: value must be a number, a Tensor (N,) or 'mean', got {type(value).__name__}"
            )
        self.value = value

    def _prepare(self, size: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, ...]:
        value = self.value
        if isinstance(value, str):  # "mean"
            if self.stats is None or "mean" not in self.stats:
                raise ValueError(
                    f"Clamp at site {self.site.name!r}: value='mean' needs stats with a 'mean' entry, e.g. "
                    f"stats=recorder.stats[{self.site.name!r}]"
                )
            value = self.stats["mean"]
        return (self._per_neuron(value, size, "value"),)

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
    """Multiply the masked neurons' output by ``factor`` (a scalar or a Tensor (N,))."""

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
            raise TypeError(f"Scale: factor must be a number or a Tensor (N,), got {type(factor).__name__}")
        self.factor = factor

    def _prepare(self, size: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, ...]:
        return (self._per_neuron(self.factor, size, "factor"),)

    def _apply(self, x: torch.Tensor, mask: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
        return torch.where(mask, x * factor, x)


class Noise(Intervention):
    """Add Gaussian noise ``std * N(0, 1)`` to the masked neurons (``std``: scalar or Tensor (N,)).

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
            raise TypeError(f"Noise: std must be a number or a Tensor (N,), got {type(std).__name__}")
        if isinstance(std, int | float) and std < 0:
            raise ValueError(f"Noise: std must be >= 0, got {std}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(
                f"Noise: generator must be a torch.Generator or None, got {type(generator).__name__}"
            )
        self.std = std
        self.generator = generator

    def _prepare(self, size: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, ...]:
        return (self._per_neuron(self.std, size, "std"),)

    def _apply(self, x: torch.Tensor, mask: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        gen = self.generator
        gen_device = gen.device if gen is not None else x.device
        eps = torch.randn(x.shape, generator=gen, dtype=x.dtype, device=gen_device).to(x.device)
        return torch.where(mask, x + std * eps, x)
