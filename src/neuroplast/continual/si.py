"""Synaptic intelligence (Zenke, Poole & Ganguli 2017, arXiv:1703.04200).

During a task each parameter accumulates its contribution to the loss decrease along the
training path, ``omega_i += -g_i * delta_theta_i`` per step (``g``: the gradient that was
applied). At the end of task k the importance grows by

    Omega_i += omega_i / ((theta_i(end of k) - theta_i(start of k))^2 + xi),

the anchor becomes the current weights and omega is reset. Later tasks add the penalty
``c * sum_i Omega_i (theta_i - theta*_i)^2``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from neuroplast.continual.strategy import Batch, Strategy

__all__ = ["SI"]


class SI(Strategy):
    """Path-integral importance per parameter, quadratic penalty towards the last task's weights."""

    name = "si"

    def __init__(self, model: nn.Module, c: float = 0.1, xi: float = 0.1) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
        if not c >= 0:
            raise ValueError(f"c: expected a number >= 0, got {c!r}")
        if not xi > 0:
            raise ValueError(f"xi: expected a number > 0, got {xi!r}")
        self.model = model
        self.c = float(c)
        self.xi = float(xi)
        self._names = [n for n, p in model.named_parameters() if p.requires_grad]
        params = self._params()
        self.omega_ = {n: torch.zeros_like(p) for n, p in params.items()}  # running path integral
        self.importance_ = {n: torch.zeros_like(p) for n, p in params.items()}  # Omega
        self.anchor_ = {n: p.detach().clone() for n, p in params.items()}  # theta* (= start of task)
        self._grad: dict[str, Tensor] = {}
        self._prev: dict[str, Tensor] = {}
        self.tasks_seen_ = 0

    def _params(self) -> dict[str, nn.Parameter]:
        params = dict(self.model.named_parameters())
        return {n: params[n] for n in self._names}

    def before_task(self, task: Any) -> None:
        for n, p in self._params().items():
            self.anchor_[n] = p.detach().clone() if self.tasks_seen_ == 0 else self.anchor_[n]
            self.omega_[n].zero_()

    def penalty(self, batch: Batch) -> Tensor | None:
        if self.tasks_seen_ == 0 or self.c == 0:
            return None
        total = None
        for n, p in self._params().items():
            term = (self.importance_[n] * (p - self.anchor_[n]) ** 2).sum()
            total = term if total is None else total + term
        return self.c * total

    def transform_gradients(self, batch: Batch) -> None:
        for n, p in self._params().items():
            if p.grad is not None:
                self._grad[n] = p.grad.detach().clone()
                self._prev[n] = p.detach().clone()

    def after_step(self, batch: Batch) -> None:
        for n, p in self._params().items():
            if n in self._grad:
                self.omega_[n] -= self._grad[n] * (p.detach() - self._prev[n])
        self._grad.clear()
        self._prev.clear()

    def after_task(self, task: Any) -> None:
        for n, p in self._params().items():
            delta = p.detach() - self.anchor_[n]
            self.importance_[n] += self.omega_[n] / (delta**2 + self.xi)
            self.anchor_[n] = p.detach().clone()
            self.omega_[n].zero_()
        self.tasks_seen_ += 1

    def state_dict(self) -> dict[str, Any]:
        return {
            "omega": dict(self.omega_),
            "importance": dict(self.importance_),
            "anchor": dict(self.anchor_),
            "tasks_seen": self.tasks_seen_,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("omega", "importance", "anchor"):
            if set(state[key]) != set(self._names):
                raise ValueError(
                    f"SI.load_state_dict: {key} has parameters {sorted(state[key])}, the model has "
                    f"{sorted(self._names)}"
                )
        self.omega_ = {k: v.clone() for k, v in state["omega"].items()}
        self.importance_ = {k: v.clone() for k, v in state["importance"].items()}
        self.anchor_ = {k: v.clone() for k, v in state["anchor"].items()}
        self.tasks_seen_ = int(state["tasks_seen"])

    def __repr__(self) -> str:
        return f"SI(c={self.c}, xi={self.xi})"
