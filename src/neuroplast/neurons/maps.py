"""Map-based (discrete-time) neuron models as pure step functions, plus thin modules.

Every step function is elementwise in its tensors: a state and a parameter set broadcast
against each other, so one call advances a whole batch of parameter sets and initial
conditions at once (use float64 for dynamics). The models:

Chialvo map (Chialvo 1995; used in arXiv:2405.06000 and arXiv:2405.05675)::

    x' = x^2 exp(y - x) + k          (fast, activation-like variable)
    y' = a y - b x + c               (slow recovery variable)

    a = 0.89, c = 0.28, k = 0.03 in the papers; b = 0.6 oscillates, b = 0.18 bursts aperiodically.

Chaotic Rulkov map (Rulkov 2001; the form of arXiv:2405.05675)::

    x' = alpha / (1 + x^2) + y
    y' = y - mu (x - sigma)           alpha in [4.1, 4.5] bursts chaotically; mu = 0.001, sigma = -1

Non-chaotic Rulkov map (Rulkov 2002), with the previous x kept in the state::

    x' = alpha / (1 - x) + u          if x <= 0
       = alpha + u                    if 0 < x < alpha + u and x_prev <= 0
       = -1                           otherwise                      (u = y + beta)
    y' = y - mu (x + 1) + mu sigma

Classic maps kept for oracles: the logistic map x' = r x (1 - x) and the Henon map
x' = 1 - a x^2 + y, y' = b x.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

__all__ = [
    "MapState",
    "ChialvoParams",
    "RulkovParams",
    "RulkovNCState",
    "RulkovNCParams",
    "chialvo_step",
    "chialvo_jacobian",
    "rulkov_step",
    "rulkov_jacobian",
    "rulkov_nonchaotic_step",
    "logistic_step",
    "henon_step",
    "check_batch",
    "ChialvoNeuron",
    "RulkovNeuron",
]


class MapState(NamedTuple):
    """State of a two-variable map neuron: fast variable x and slow variable y (same shape)."""

    x: Tensor
    y: Tensor


class ChialvoParams(NamedTuple):
    """Chialvo map parameters; each a float or a tensor broadcastable to the state."""

    a: float | Tensor = 0.89
    b: float | Tensor = 0.6
    c: float | Tensor = 0.28
    k: float | Tensor = 0.03


class RulkovParams(NamedTuple):
    """Chaotic Rulkov map parameters (x' = alpha/(1+x^2) + y, y' = y - mu (x - sigma))."""

    alpha: float | Tensor = 4.1
    mu: float | Tensor = 0.001
    sigma: float | Tensor = -1.0


class RulkovNCState(NamedTuple):
    """Non-chaotic Rulkov state: x, y and the previous x (the spike condition looks one step back)."""

    x: Tensor
    y: Tensor
    x_prev: Tensor


class RulkovNCParams(NamedTuple):
    """Non-chaotic Rulkov parameters; beta is an additive input to the fast map."""

    alpha: float | Tensor = 4.5
    mu: float | Tensor = 0.001
    sigma: float | Tensor = 0.1
    beta: float | Tensor = 0.0


def check_batch(
    state: Sequence[Tensor], params: Sequence[float | Tensor], names: Sequence[str], where: str
) -> None:
    """Raise a ValueError naming the parameter whose shape does not broadcast with the state.

    A parameter may be a Python float, a 0-d tensor, or a tensor broadcastable to the state
    shape (for a batch of B parameter sets and a state (B, ...), give shape (B, 1, ...) or (B,) when
    the state is (B,)).
    """
    shape = torch.broadcast_shapes(*(s.shape for s in state))
    for name, p in zip(names, params, strict=True):
        if isinstance(p, Tensor):
            try:
                out = torch.broadcast_shapes(shape, p.shape)
            except RuntimeError:
                out = None
            if out != shape:
                raise ValueError(
                    f"{where}: parameter {name!r} has shape {tuple(p.shape)}, which does not broadcast to "
                    f"the "
                    f"state shape {tuple(shape)}; give one value per batch row, e.g. shape "
                    f"{(shape[0],) + (1,) * (len(shape) - 1) if shape else ()} (add trailing singleton dims)"
                )
        elif not isinstance(p, (int, float)):
            raise TypeError(
                f"{where}: parameter {name!r} must be a float or a Tensor, got {type(p).__name__}"
            )


def chialvo_step(state: MapState, params: ChialvoParams | None = None, validate: bool = True) -> MapState:
    """One Chialvo step: x' = x^2 exp(y - x) + k, y' = a y - b x + c (arXiv:2405.06000, eq. 1)."""
    x, y = state
    params = ChialvoParams() if params is None else params
    a, b, c, k = params
    if validate:
        check_batch(state, params, ChialvoParams._fields, "chialvo_step")
    return MapState(x * x * torch.exp(y - x) + k, a * y - b * x + c)


def chialvo_jacobian(state: MapState, params: ChialvoParams | None = None) -> Tensor:
    """Jacobian of the Chialvo map, shape (..., 2, 2): [[(2x - x^2)e^{y-x}, x^2 e^{y-x}], [-b, a]]."""
    x, y = state
    a, b, _, _ = ChialvoParams() if params is None else params
    e = torch.exp(y - x)
    fx = (2 * x - x * x) * e
    fy = x * x * e
    gx = torch.zeros_like(x) - b
    gy = torch.zeros_like(x) + a
    return torch.stack([torch.stack([fx, fy], -1), torch.stack([gx, gy], -1)], -2)


def rulkov_step(state: MapState, params: RulkovParams | None = None, validate: bool = True) -> MapState:
    """One chaotic Rulkov step: x' = alpha/(1+x^2) + y, y' = y - mu (x - sigma) (arXiv:2405.05675)."""
    x, y = state
    params = RulkovParams() if params is None else params
    alpha, mu, sigma = params
    if validate:
        check_batch(state, params, RulkovParams._fields, "rulkov_step")
    return MapState(alpha / (1 + x * x) + y, y - mu * (x - sigma))


def rulkov_jacobian(state: MapState, params: RulkovParams | None = None) -> Tensor:
    """Jacobian of the chaotic Rulkov map, shape (..., 2, 2): [[-2 alpha x/(1+x^2)^2, 1], [-mu, 1]]."""
    x, _ = state
    alpha, mu, _ = RulkovParams() if params is None else params
    d = 1 + x * x
    fx = -2 * alpha * x / (d * d)
    one = torch.ones_like(x)
    return torch.stack([torch.stack([fx, one], -1), torch.stack([torch.zeros_like(x) - mu, one], -1)], -2)


def rulkov_nonchaotic_step(
    state: RulkovNCState, params: RulkovNCParams | None = None, validate: bool = True
) -> RulkovNCState:
    """One non-chaotic (piecewise) Rulkov step (Rulkov 2002, Phys. Rev. E 65, 041922).

    x' = alpha/(1-x) + u (x <= 0); alpha + u (0 < x < alpha + u and x_prev <= 0); -1 otherwise;
    y' = y - mu (x + 1) + mu sigma, with u = y + beta.
    """
    x, y, x_prev = state
    params = RulkovNCParams() if params is None else params
    alpha, mu, sigma, beta = params
    if validate:
        check_batch(state, params, RulkovNCParams._fields, "rulkov_nonchaotic_step")
    u = y + beta
    neg = alpha / (1 - torch.clamp(x, max=0.0)) + u
    mid = torch.zeros_like(x) + alpha + u
    spike_top = (x > 0) & (x < alpha + u) & (x_prev <= 0)
    x_new = torch.where(x <= 0, neg, torch.where(spike_top, mid, torch.full_like(x, -1.0)))
    y_new = y - mu * (x + 1) + mu * sigma
    return RulkovNCState(x_new, y_new, x)


def logistic_step(x: Tensor, r: float | Tensor) -> Tensor:
    """Logistic map x' = r x (1 - x)."""
    return r * x * (1 - x)


def henon_step(state: MapState, a: float | Tensor = 1.4, b: float | Tensor = 0.3) -> MapState:
    """Henon map x' = 1 - a x^2 + y, y' = b x (largest Lyapunov exponent about 0.419 at a=1.4, b=0.3)."""
    x, y = state
    return MapState(1 - a * x * x + y, b * x)


def _as_param(value: float | Tensor | Sequence[float], dtype: torch.dtype) -> Tensor:
    return torch.as_tensor(value, dtype=dtype)


class _MapNeuron(nn.Module):
    """Thin module over a two-variable map: loops over time, input added to the fast variable."""

    _fields: tuple[str, ...] = ()

    def __init__(self, size: int, dtype: torch.dtype = torch.float64, **params: float | Tensor) -> None:
        super().__init__()
        if size < 1:
            raise ValueError(f"size must be a positive number of neurons, got {size}")
        self.size = size
        for name in self._fields:
            value = _as_param(params[name], dtype)
            if value.dim() > 1 or (value.dim() == 1 and value.shape[0] not in (1, size)):
                raise ValueError(
                    f"parameter {name!r} must be a scalar or have shape ({size},), got {tuple(value.shape)}"
                )
            self.register_buffer(name, value.expand(size).clone())

    def initial_state(self, batch: int, generator: torch.Generator | None = None) -> MapState:
        dtype = getattr(self, self._fields[0]).dtype
        x = torch.rand(batch, self.size, generator=generator, dtype=dtype)
        y = torch.rand(batch, self.size, generator=generator, dtype=dtype)
        return MapState(x, y)

    def _step(self, state: MapState) -> MapState:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, inputs: Tensor, state: MapState | None = None) -> tuple[Tensor, MapState]:
        """inputs: (T, B, size) added to x at each step; returns (x trajectory (T, B, size), last state)."""
        if inputs.dim() != 3 or inputs.shape[-1] != self.size:
            raise ValueError(f"inputs must have shape (T, B, {self.size}), got {tuple(inputs.shape)}")
        if state is None:
            state = MapState(torch.zeros_like(inputs[0]), torch.zeros_like(inputs[0]))
        out = []
        for t in range(inputs.shape[0]):
            nxt = self._step(state)
            state = MapState(nxt.x + inputs[t], nxt.y)
            out.append(state.x)
        return torch.stack(out), state


class ChialvoNeuron(_MapNeuron):
    """A population of Chialvo map neurons (per-neuron a, b, c, k buffers); see :func:`chialvo_step`."""

    _fields = ChialvoParams._fields

    def __init__(
        self,
        size: int,
        a: float | Tensor = 0.89,
        b: float | Tensor = 0.6,
        c: float | Tensor = 0.28,
        k: float | Tensor = 0.03,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        super().__init__(size, dtype, a=a, b=b, c=c, k=k)

    def _step(self, state: MapState) -> MapState:
        return chialvo_step(state, ChialvoParams(self.a, self.b, self.c, self.k), validate=False)


class RulkovNeuron(_MapNeuron):
    """A population of chaotic Rulkov map neurons; see :func:`rulkov_step`."""

    _fields = RulkovParams._fields

    def __init__(
        self,
        size: int,
        alpha: float | Tensor = 4.1,
        mu: float | Tensor = 0.001,
        sigma: float | Tensor = -1.0,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        super().__init__(size, dtype, alpha=alpha, mu=mu, sigma=sigma)

    def _step(self, state: MapState) -> MapState:
        return rulkov_step(state, RulkovParams(self.alpha, self.mu, self.sigma), validate=False)
