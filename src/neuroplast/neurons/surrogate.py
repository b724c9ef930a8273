"""Surrogate gradients for the spike function: swappable objects.

A spiking neuron emits ``o = H(x)`` with ``x = u - V_th`` (or ``phi(u) - V_th`` with the
membrane potential rectifier). The Heaviside step ``H`` has zero derivative almost
everywhere, so training replaces ``dH/dx`` by a smooth pseudo-derivative ``g(x)`` in the
backward pass (Neftci, Mostafa & Zenke 2019, arXiv:1901.09948). Each surrogate here is a small
object with

- ``grad(x)``: the pseudo-derivative ``g(x)`` (used by the fused multi-step kernels),
- ``primitive(x)``: a smooth function whose derivative is ``g`` (used by tests and to
  check the backward algebra with ``torch.autograd.gradcheck``),
- ``__call__(x)``: ``H(x)`` forward with ``g(x)`` backward (straight-through).

``H(x) = 1[x > 0]`` (strict, as in snnTorch and Norse).

Available (``get(name)`` or the classes):

======================  =============================================  ======================
name                    g(x)                                           source
======================  =============================================  ======================
``"atan"``              (alpha/2) / (1 + (pi/2 * alpha * x)^2)         Fang et al. 2021,
                                                                       arXiv:2007.05785
``"sigmoid"``           alpha * sig(alpha x) (1 - sig(alpha x))        SpikingJelly default
``"fast_sigmoid"``      1 / (1 + slope |x|)^2                          SuperSpike, Zenke &
                                                                       Ganguli 2018,
                                                                       arXiv:1705.11146
``"triangle"``          max(0, 1 - |x| / width) / width                Esser et al. 2016,
                                                                       arXiv:1603.08270
======================  =============================================  ======================

``atan``, ``sigmoid`` and ``triangle`` have unit area (``g`` integrates to 1, the jump of
``H``); ``fast_sigmoid`` follows the SuperSpike/snnTorch convention (area ``2 / slope``).
"""

from __future__ import annotations

import difflib
import math
from typing import Any

import torch

__all__ = ["Surrogate", "ATan", "Sigmoid", "FastSigmoid", "Triangle", "get", "names"]


class _SpikeFunction(torch.autograd.Function):
    """H(x) forward, surrogate.grad(x) backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return surrogate.heaviside(x)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, None]:
        (x,) = ctx.saved_tensors
        return grad_out * ctx.surrogate.grad(x), None


class Surrogate:
    """Base class: Heaviside forward, ``grad(x)`` backward. Subclasses define ``grad`` and
    ``primitive``; ``name`` is the key used by :func:`get`."""

    name: str = ""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return _SpikeFunction.apply(x, self)

    def heaviside(self, x: torch.Tensor) -> torch.Tensor:
        """Forward value ``1[x > 0]`` in the dtype of ``x``. A subclass may return a smooth
        relaxation instead (e.g. ``primitive``, to check backward algebra with gradcheck)."""
        return (x > 0).to(x.dtype)

    def grad(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def grad_(self, x: torch.Tensor) -> torch.Tensor:
        """In-place ``x <- g(x)`` (used by the fused kernels). Returns ``x``.

        A built-in surrogate computes it without temporaries (``_grad_inplace``), but only for
        its own ``grad``: a user subclass that overrides ``grad`` alone gets ``copy_(grad(x))``,
        never its parent's fast form of a different function."""
        cls = type(self)
        fast = next((k for k in cls.__mro__ if "_grad_inplace" in vars(k)), None)
        exact = next(k for k in cls.__mro__ if "grad" in vars(k))
        if fast is not None and issubclass(fast, exact):
            return self._grad_inplace(x)
        return x.copy_(self.grad(x))

    def primitive(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _params(self) -> dict[str, float]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self._params() == other._params()  # type: ignore[union-attr]

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(self._params().items()))))


def _positive(name: str, value: float) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        raise ValueError(f"{name}: expected a positive number, got {value!r}")
    return float(value)


class ATan(Surrogate):
    """g(x) = (alpha/2) / (1 + (pi/2 alpha x)^2); primitive arctan(pi/2 alpha x)/pi + 1/2
    (Fang et al. 2021, arXiv:2007.05785; snnTorch and SpikingJelly default, alpha = 2)."""

    name = "atan"

    def __init__(self, alpha: float = 2.0) -> None:
        self.alpha = _positive("alpha", alpha)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        a = self.alpha
        return (a / 2) / (1 + (math.pi / 2 * a * x) ** 2)

    def _grad_inplace(self, x: torch.Tensor) -> torch.Tensor:
        a = self.alpha
        return x.mul_(math.pi / 2 * a).square_().add_(1.0).reciprocal_().mul_(a / 2)

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        return torch.atan(math.pi / 2 * self.alpha * x) / math.pi + 0.5


class Sigmoid(Surrogate):
    """g(x) = alpha sig(alpha x)(1 - sig(alpha x)); primitive sig(alpha x) (alpha = 4 as in
    SpikingJelly)."""

    name = "sigmoid"

    def __init__(self, alpha: float = 4.0) -> None:
        self.alpha = _positive("alpha", alpha)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.sigmoid(self.alpha * x)
        return self.alpha * s * (1 - s)

    def _grad_inplace(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mul_(self.alpha).sigmoid_()
        return torch.addcmul(s, s, s, value=-1.0, out=s).mul_(self.alpha)

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.alpha * x)


class FastSigmoid(Surrogate):
    """g(x) = 1 / (1 + slope |x|)^2; primitive x / (1 + slope |x|) (SuperSpike,
    arXiv:1705.11146; snnTorch ``fast_sigmoid``, slope = 25)."""

    name = "fast_sigmoid"

    def __init__(self, slope: float = 25.0) -> None:
        self.slope = _positive("slope", slope)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        return 1.0 / (1 + self.slope * x.abs()) ** 2

    def _grad_inplace(self, x: torch.Tensor) -> torch.Tensor:
        return x.abs_().mul_(self.slope).add_(1.0).square_().reciprocal_()

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        return x / (1 + self.slope * x.abs())


class Triangle(Surrogate):
    """g(x) = max(0, 1 - |x|/width) / width (unit area; Esser et al. 2016,
    arXiv:1603.08270); primitive: the piecewise-quadratic ramp from 0 to 1 on [-width, width]."""

    name = "triangle"

    def __init__(self, width: float = 1.0) -> None:
        self.width = _positive("width", width)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(1 - x.abs() / self.width, min=0) / self.width

    def _grad_inplace(self, x: torch.Tensor) -> torch.Tensor:
        w = self.width
        return x.abs_().mul_(-1.0 / w).add_(1.0).clamp_(min=0.0).div_(w)

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.clamp(x / self.width, -1.0, 1.0)
        return 0.5 + y - 0.5 * y * y.abs()


_REGISTRY: dict[str, type[Surrogate]] = {
    cls.name: cls for cls in (ATan, Sigmoid, FastSigmoid, Triangle)
}


def names() -> list[str]:
    """The names accepted by :func:`get`."""
    return sorted(_REGISTRY)


def get(spec: str | Surrogate, argument: str = "surrogate") -> Surrogate:
    """A surrogate from a name (``"atan"``, ``"sigmoid"``, ``"fast_sigmoid"``,
    ``"triangle"``; default hyperparameters) or an existing :class:`Surrogate` (returned as is).

    Raises ValueError naming ``argument`` and the closest valid name for an unknown name.
    """
    if isinstance(spec, Surrogate):
        return spec
    if isinstance(spec, str):
        key = spec.lower().replace("-", "_")
        if key in _REGISTRY:
            return _REGISTRY[key]()
        close = difflib.get_close_matches(key, list(_REGISTRY), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{argument}: unknown surrogate {spec!r}; expected one of {names()}{hint}")
    raise TypeError(
        f"{argument}: expected a surrogate name ({names()}) or a neuroplast.neurons.surrogate."
        f"Surrogate instance, got {type(spec).__name__}"
    )
