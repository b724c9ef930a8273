"""Hebbian learning based orthogonal projection, HLOP (Xiao et al. 2024, arXiv:2402.11984).

Each protected Linear layer gets a population of lateral neurons ``y = H x`` on its inputs x,
trained by Oja's subspace rule (``neuroplast.plasticity.hebbian.OjaSubspace``) while the task is
learned; after the task the lateral neurons are frozen and new ones are added for the next task,
so the frozen rows ``H_f`` span the principal input subspace of all earlier tasks. Weight
updates use the inputs minus their projection on that subspace,

    x_tilde = x - H_f^T H_f x,     dW = delta x_tilde^T   =>   G <- G - (G H_f^T) H_f

(for a Linear layer the two are the same, with any loss and any number of samples: batch, time,
space), so old tasks' responses are untouched to the extent their inputs lie in span(H_f).

Spiking layers: the projection is exact for inputs of any leading shape (e.g. time-first
``[T, B, N]`` spikes); with ``time_dim`` the Hebbian rule sees firing rates (the mean over that
axis), as HLOP-SNN updates its lateral neurons from (weighted) firing rates. A bias is handled as
an extra input fixed at 1. Defaults follow the reference code (pkuxmq/HLOP-SNN, modules/hlop_module.py:
momentum 0.9, clamp +-10, 5 rule iterations per batch, Oja lr 0.01); its permuted-MNIST MLP uses
lr 0.001 on the 784-pixel input layer, whose pixels are standardized ((x - 0.1307) / 0.3081,
||x||^2 ~ 784). Oja's step scales with lr * ||x||^2: on raw [0, 1] pixels (||x||^2 ~ 90) the
matching rate is 0.01 (at 0.001 the first layer keeps 14 % of task 0's input energy outside its
80-neuron subspace after 1,000 batches, against 8 % at 0.01), so give ``lr`` per layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from neuroplast.continual.strategy import (
    Batch,
    LinearInputs,
    ProjectedInputGrad,
    Strategy,
    layer_input_matrix,
    project_out,
    resolve_linears,
    set_weight_grad_matrix,
    weight_grad_matrix,
)
from neuroplast.plasticity.hebbian import OjaSubspace

__all__ = ["HLOP", "hlop_schedule"]


def hlop_schedule(
    first: Sequence[int],
    increment: Sequence[int],
    n_tasks: int,
    decrement: Sequence[int] | int = 0,
    every: int = 3,
) -> list[list[int]]:
    """Lateral neurons added per layer for each task: ``first`` for task 0, then ``increment``
    reduced by ``decrement`` at every task whose index is a multiple of ``every``.

    HLOP on permuted MNIST (800-unit layers): first [80, 200, 100], increment [70, 70, 70],
    decrement 20 every 3 tasks.
    """
    L = len(first)
    dec = [decrement] * L if isinstance(decrement, int) else list(decrement)
    if len(increment) != L or len(dec) != L:
        raise ValueError(
            f"first, increment and decrement must have one entry per layer ({L}), got "
            f"{len(first)}, {len(increment)}, {len(dec)}"
        )
    inc = list(increment)
    out = [list(first)]
    for t in range(1, n_tasks):
        if t % every == 0:
            inc = [max(i - d, 0) for i, d in zip(inc, dec, strict=True)]
        out.append(list(inc))
    return out


class HLOP(Strategy):
    """Hebbian orthogonal projection of the weight gradients of the given Linear layers.

    ``sizes``: lateral neurons added per layer at each task, a list (one entry per task) of
    lists (one per layer), e.g. from :func:`hlop_schedule`; a single list is reused for every
    task. ``lr``: Oja learning rate, one value or one per layer. ``time_dim``: the time axis of
    the layers' inputs for spiking networks (None: every leading axis is a sample). ``mode``:
    "input" (default) uses x_tilde inside the backward pass, as the reference does;
    "gradient" projects ``W.grad`` after ``backward`` (penalty gradients on W included).
    """

    name = "hlop"

    def __init__(
        self,
        model: nn.Module,
        sizes: Sequence[Sequence[int]] | Sequence[int],
        layers: str | Sequence[str] | None = None,
        lr: float | Sequence[float] = 0.01,
        momentum: float = 0.9,
        clamp: float | None = 10.0,
        iterations: int = 5,
        time_dim: int | None = None,
        generator: torch.Generator | None = None,
        mode: str = "input",
    ) -> None:
        if mode not in ("input", "gradient"):
            raise ValueError(f"mode: expected 'input' or 'gradient', got {mode!r}")
        self.model = model
        self.mode = mode
        self.layers = resolve_linears(model, layers)
        L = len(self.layers)
        sizes = list(sizes)
        if sizes and isinstance(sizes[0], int):
            sizes = [sizes]
        self.sizes = [[int(k) for k in row] for row in sizes]
        for row in self.sizes:
            if len(row) != L or any(k < 0 for k in row):
                raise ValueError(
                    f"sizes: every task needs {L} non-negative neuron counts (layers "
                    f"{[n for n, _ in self.layers]}), got {row}"
                )
        lrs = [float(lr)] * L if isinstance(lr, (int, float)) else [float(v) for v in lr]
        if len(lrs) != L:
            raise ValueError(f"lr: expected one value or {L}, got {len(lrs)}")
        self.time_dim = time_dim
        self.generator = generator
        self.subspaces = nn.ModuleDict()
        self._keys = {}
        for (name, m), rate in zip(self.layers, lrs, strict=True):
            key = name.replace(".", "_") or "root"
            self._keys[name] = key
            self.subspaces[key] = OjaSubspace(
                m.in_features + (m.bias is not None),
                lr=rate,
                momentum=momentum,
                clamp=clamp,
                iterations=iterations,
            ).to(m.weight.device)
        self.tasks_seen_ = 0
        self._capture = LinearInputs(self.layers)
        self._hooks = ProjectedInputGrad(self.layers, self._frozen_basis) if mode == "input" else None

    def _frozen_basis(self, layer: str) -> Tensor | None:
        """(n, k) matrix H_f^T of the frozen lateral neurons of ``layer`` (None before task 0 ends)."""
        if self.tasks_seen_ == 0:
            return None
        return self.subspace(layer).basis(frozen_only=True).T

    def subspace(self, layer: str) -> OjaSubspace:
        """The lateral neurons of ``layer`` (by name)."""
        return self.subspaces[self._keys[layer]]

    def before_task(self, task: Any) -> None:
        self.check_task(task)
        row = self.sizes[min(self.tasks_seen_, len(self.sizes) - 1)]
        for (name, _), k in zip(self.layers, row, strict=True):
            sub = self.subspace(name)
            k = min(k, sub.in_features - sub.n_neurons)  # a subspace cannot outgrow its inputs
            sub.add_neurons(k, generator=self.generator)
        self._capture.clear()

    def transform_gradients(self, batch: Batch) -> None:
        if self.tasks_seen_ == 0 or self.mode != "gradient":
            return
        for name, layer in self.layers:
            H = self.subspace(name).basis(frozen_only=True)  # (k, n)
            if H.shape[0] == 0:
                continue
            g, has_bias = weight_grad_matrix(layer)
            if g is None:
                continue
            set_weight_grad_matrix(layer, project_out(g, H.T), has_bias)

    def after_step(self, batch: Batch) -> None:
        for name, layer in self.layers:
            x = self._capture.inputs.get(name)
            if x is None:
                continue
            xin = layer_input_matrix(x, layer.in_features, layer.bias is not None, self.time_dim)
            self.subspace(name).update(xin)
        self._capture.clear()

    def after_task(self, task: Any) -> None:
        for name, _ in self.layers:
            self.subspace(name).freeze()
        self.tasks_seen_ += 1

    def remove(self) -> None:
        """Detach the input and projection hooks from the model."""
        self._capture.remove()
        if self._hooks is not None:
            self._hooks.remove()

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "subspaces": dict(self.subspaces.state_dict()),
            "tasks_seen": self.tasks_seen_,
        }
        if self.generator is not None:
            state["generator"] = self.generator.get_state()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.subspaces.load_state_dict(state["subspaces"])
        self.tasks_seen_ = int(state["tasks_seen"])
        if self.generator is not None and "generator" in state:
            self.generator.set_state(state["generator"])

    def diagnostics(self) -> dict[str, Any]:
        """Lateral neurons per layer, and how far the frozen rows are from orthonormal,
        ``||H_f H_f^T - I||_F / sqrt(k)`` (0 for an exact projector ``I - H_f^T H_f``)."""
        orth = {}
        for n, _ in self.layers:
            H = self.subspace(n).basis(frozen_only=True).double()
            k = H.shape[0]
            gram = H @ H.T - torch.eye(k, dtype=H.dtype)
            orth[n] = float(torch.linalg.matrix_norm(gram) / k**0.5) if k else 0.0
        neurons = {n: self.subspace(n).n_neurons for n, _ in self.layers}
        return {"lateral_neurons": neurons, "orth_error": orth}

    def __repr__(self) -> str:
        return f"HLOP(layers={[n for n, _ in self.layers]}, sizes={self.sizes[:2]}...)"
