"""The strategy protocol: six hooks that any training loop calls, and their composition.

A continual-learning strategy is a small object (DESIGN "Methods are small objects") with up to
six hooks, each a no-op by default, called by the user's loop in this order::

    strategy.before_task(task)                 # once, before training a task
    for batch in task:                         # Batch(x, y, t)
        batch = strategy.adapt_batch(batch)    # replay: mix stored samples in
        loss = loss_fn(model, batch)
        penalty = strategy.penalty(batch)      # EWC, SI, CLNP's L1 on activations (or None)
        (loss + penalty).backward()
        strategy.transform_gradients(batch)    # A-GEM, GPM, HLOP, CLNP masks: edit .grad in place
        optimizer.step()
        strategy.after_step(batch)             # SI's path integral, HLOP's Hebbian update
    strategy.after_task(task)                  # EWC's Fisher, GPM's SVD, CLNP's pruning, buffers

State lives in the object and round-trips through ``state_dict()`` / ``load_state_dict()``
(tensors and JSON scalars only, so ``neuroplast.core.save_state`` can write it); the model and
the optimizer are never owned. ``Compose(a, b, ...)`` calls the hooks of each strategy in order
(penalties add up, batch adapters chain), so e.g. ``Compose(Replay(...), EWC(...))`` is one line.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "Batch",
    "Strategy",
    "FineTune",
    "Compose",
    "classification_loss",
    "resolve_linears",
    "LinearInputs",
    "layer_input_matrix",
    "project_out",
    "ProjectedInputGrad",
    "weight_grad_matrix",
    "set_weight_grad_matrix",
    "state_bytes",
]


class Batch(NamedTuple):
    """A training batch: inputs ``x`` (B, ...), global labels ``y`` (B,), task ids ``t`` (B,)."""

    x: Tensor
    y: Tensor
    t: Tensor


def state_bytes(state: Any) -> int:
    """Bytes held by the tensors of a nested state (dicts, lists, tuples of tensors and scalars)."""
    if isinstance(state, Tensor):
        return state.numel() * state.element_size()
    if isinstance(state, dict):
        return sum(state_bytes(v) for v in state.values())
    if isinstance(state, (list, tuple)):
        return sum(state_bytes(v) for v in state)
    return 0


class Strategy:
    """Base class: every hook is a no-op; subclasses override what they need.

    ``name`` labels the strategy in tables. ``memory_bytes()`` is the size of the tensors of its
    ``state_dict()`` (what the strategy holds beyond the model).
    """

    name: str = "strategy"

    def before_task(self, task: Any) -> None:
        """Called once before training ``task`` (a ``continual.scenarios.Task``)."""

    def adapt_batch(self, batch: Batch) -> Batch:
        """Return the batch to train on (replay mixes stored samples in)."""
        return batch

    def penalty(self, batch: Batch) -> Tensor | None:
        """A scalar added to the task loss before ``backward`` (or None)."""
        return None

    def transform_gradients(self, batch: Batch) -> None:
        """Edit the parameters' ``.grad`` in place after ``backward``, before the optimizer step."""

    def after_step(self, batch: Batch) -> None:
        """Called after ``optimizer.step()``."""

    def after_task(self, task: Any) -> None:
        """Called once after training ``task`` (before it is evaluated)."""

    def remove(self) -> None:
        """Detach every hook the strategy put on the model (no-op for strategies without hooks)."""

    def check_task(self, task: Any) -> None:
        """ValueError if ``task``'s input shape differs from the first task this strategy saw."""
        shape = tuple(getattr(task, "input_shape", ()))
        seen = getattr(self, "_input_shape", None)
        if seen is None:
            self._input_shape = shape
        elif shape != seen:
            raise ValueError(
                f"task {getattr(task, 'name', task)!r} has inputs of shape {shape}, but "
                f"{type(self).__name__} was used on tasks of shape {seen}; every task of a stream must "
                "share one input shape"
            )

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: this strategy has no state, got keys {sorted(state)}"
            )

    def memory_bytes(self) -> int:
        return state_bytes(self.state_dict())

    def diagnostics(self) -> dict[str, Any]:
        """JSON-ready numbers the strategy wants reported (free neurons, subspace sizes, ...)."""
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class FineTune(Strategy):
    """Plain sequential training, the lower bound (no protection against forgetting)."""

    name = "finetune"


class Compose(Strategy):
    """Several strategies as one: hooks run in the given order; penalties add; adapters chain."""

    def __init__(self, *strategies: Strategy, name: str | None = None) -> None:
        if not strategies:
            raise ValueError("Compose: expected at least one strategy, got none")
        for s in strategies:
            if not isinstance(s, Strategy):
                raise TypeError(f"Compose: expected Strategy objects, got {type(s).__name__}")
        self.strategies = tuple(strategies)
        self.name = name or "+".join(s.name for s in strategies)

    def before_task(self, task: Any) -> None:
        for s in self.strategies:
            s.before_task(task)

    def adapt_batch(self, batch: Batch) -> Batch:
        for s in self.strategies:
            batch = s.adapt_batch(batch)
        return batch

    def penalty(self, batch: Batch) -> Tensor | None:
        total = None
        for s in self.strategies:
            p = s.penalty(batch)
            if p is not None:
                total = p if total is None else total + p
        return total

    def transform_gradients(self, batch: Batch) -> None:
        for s in self.strategies:
            s.transform_gradients(batch)

    def after_step(self, batch: Batch) -> None:
        for s in self.strategies:
            s.after_step(batch)

    def after_task(self, task: Any) -> None:
        for s in self.strategies:
            s.after_task(task)

    def remove(self) -> None:
        for s in self.strategies:
            s.remove()

    def state_dict(self) -> dict[str, Any]:
        return {str(i): s.state_dict() for i, s in enumerate(self.strategies)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        keys = {str(i) for i in range(len(self.strategies))}
        if set(state) != keys:
            raise ValueError(f"Compose.load_state_dict: expected keys {sorted(keys)}, got {sorted(state)}")
        for i, s in enumerate(self.strategies):
            s.load_state_dict(state[str(i)])

    def diagnostics(self) -> dict[str, Any]:
        return {s.name: s.diagnostics() for s in self.strategies if s.diagnostics()}

    def __repr__(self) -> str:
        return f"Compose({', '.join(map(repr, self.strategies))})"


# ----------------------------------------------------------------------------------------------
# helpers shared by the strategies
# ----------------------------------------------------------------------------------------------


def classification_loss(head_mask: Tensor | None = None) -> Callable[[nn.Module, Batch], Tensor]:
    """``loss_fn(model, batch)``: cross-entropy of ``model(batch.x)`` against ``batch.y``.

    ``head_mask`` (T, n_outputs) bool, from ``Scenario.head_mask()``: with it, each sample's
    logits outside its task's head are set to -inf (multi-head / task-incremental learning with
    one output layer, as in GEM, arXiv:1706.08840); None: a single shared head.
    """
    if head_mask is not None and (head_mask.dtype != torch.bool or head_mask.dim() != 2):
        raise ValueError(
            f"head_mask: expected a (T, n_outputs) bool tensor, got {head_mask.dtype} "
            f"{tuple(head_mask.shape)}"
        )

    def loss_fn(model: nn.Module, batch: Batch) -> Tensor:
        logits = model(batch.x)
        if head_mask is not None:
            if batch.t.numel() and not 0 <= int(batch.t.min()) <= int(batch.t.max()) < head_mask.shape[0]:
                raise ValueError(
                    f"batch.t: task ids must lie in 0..{head_mask.shape[0] - 1} (the scenario's "
                    f"tasks), got {int(batch.t.min())}..{int(batch.t.max())}"
                )
            if logits.shape[-1] != head_mask.shape[1]:
                raise ValueError(
                    f"model outputs {logits.shape[-1]} logits but the scenario's heads cover "
                    f"{head_mask.shape[1]} output units"
                )
            logits = logits.masked_fill(~head_mask.to(logits.device)[batch.t], float("-inf"))
        return F.cross_entropy(logits, batch.y)

    return loss_fn


def resolve_linears(model: nn.Module, layers: str | Sequence[str] | None) -> list[tuple[str, nn.Linear]]:
    """``(name, module)`` of the ``nn.Linear`` layers named by glob ``layers`` (None: every Linear)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
    if layers is None:
        found = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
        if not found:
            raise ValueError(f"model: {type(model).__name__} has no nn.Linear layer")
        return found
    from neuroplast.core.sites import find_sites

    out = []
    for site in find_sites(model, layers):
        if not isinstance(site.module, nn.Linear):
            raise TypeError(
                f"layers: {site.name!r} is a {type(site.module).__name__}; this strategy projects "
                "the weight gradients of nn.Linear layers (flatten convolutions into an MLP, or "
                "name the Linear layers)"
            )
        out.append((site.name, site.module))
    return out


def _augment(x: Tensor, bias: bool) -> Tensor:
    return torch.cat([x, x.new_ones(x.shape[0], 1)], dim=1) if bias else x


def layer_input_matrix(x: Tensor, in_features: int, bias: bool, time_dim: int | None = None) -> Tensor:
    """Inputs of a Linear layer as (samples, in_features [+1 for the bias]).

    Leading dimensions (batch, time, space) all become samples; with ``time_dim`` the inputs are
    first averaged over that dimension (firing rates of a time-first spiking layer).
    """
    if x.shape[-1] != in_features:
        raise ValueError(f"layer input has {x.shape[-1]} features on its last axis, expected {in_features}")
    if time_dim is not None and x.dim() > 2:
        x = x.mean(dim=time_dim)
    return _augment(x.reshape(-1, in_features), bias)


class LinearInputs:
    """Forward pre-hooks that keep the latest input of each given Linear layer (detached).

    ``inputs[name]`` holds the tensor as the layer received it; ``enabled`` switches capture
    off without removing the hooks; with ``training_only`` (default) only forwards in training
    mode with autograd on are captured, so evaluation passes leave the inputs alone.
    ``remove()`` detaches every hook.
    """

    def __init__(self, layers: Iterable[tuple[str, nn.Module]], training_only: bool = True) -> None:
        self.inputs: dict[str, Tensor] = {}
        self.enabled = True
        self.training_only = training_only
        self._handles = []
        for name, module in layers:
            self._handles.append(module.register_forward_pre_hook(self._make_hook(name)))

    def _make_hook(self, name: str) -> Callable:
        def hook(module: nn.Module, args: tuple) -> None:
            if self.enabled and (not self.training_only or (torch.is_grad_enabled() and module.training)):
                self.inputs[name] = args[0].detach()

        return hook

    def clear(self) -> None:
        self.inputs.clear()

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self.inputs.clear()


def weight_grad_matrix(layer: nn.Linear) -> tuple[Tensor | None, bool]:
    """The layer's weight gradient as (out, in [+1]) with the bias gradient as last column, and
    whether the bias is part of it."""
    g = layer.weight.grad
    if g is None:
        return None, False
    has_bias = layer.bias is not None and layer.bias.requires_grad
    if has_bias:
        gb = layer.bias.grad if layer.bias.grad is not None else torch.zeros_like(layer.bias)
        return torch.cat([g, gb[:, None]], dim=1), True
    return g, False


def set_weight_grad_matrix(layer: nn.Linear, g: Tensor, has_bias: bool) -> None:
    if has_bias:
        layer.weight.grad.copy_(g[:, :-1])
        if layer.bias.grad is None:
            layer.bias.grad = g[:, -1].clone()
        else:
            layer.bias.grad.copy_(g[:, -1])
    else:
        layer.weight.grad.copy_(g)


def project_out(grad: Tensor, basis: Tensor) -> Tensor:
    """``G - (G M) M^T``: remove from the rows of ``grad`` (out, n) their components in span(M).

    ``basis`` M is (n, k) with orthonormal columns (k may be 0).
    """
    if basis.shape[1] == 0:
        return grad
    return grad - (grad @ basis) @ basis.T


class ProjectedInputGrad:
    """Forward hooks that make a Linear layer's weight gradient use projected inputs.

    For each layer, ``basis_fn(name)`` gives a (n, k) basis B (n = in_features, +1 when the
    layer has a bias, whose input is the constant 1). In training mode with autograd on the
    hook returns an output with the same value, ``x W^T + b``, whose gradients are

        dL/dW = delta^T x_tilde,   dL/db = delta^T c_tilde,   dL/dx = delta W,
        [x_tilde, c_tilde] = [x, 1] - ([x, 1] B) B^T,

    i.e. the weight gradient of the data term projected off span(B), the HLOP / GPM update,
    at a cost of O(samples * n * k) instead of O(out * n * k) for projecting ``W.grad``
    (x: (..., in_features), any leading axes). ``remove()`` detaches the hooks.
    """

    def __init__(
        self, layers: Iterable[tuple[str, nn.Linear]], basis_fn: Callable[[str], Tensor | None]
    ) -> None:
        self.basis_fn = basis_fn
        self._handles = [m.register_forward_hook(self._make_hook(n)) for n, m in layers]

    def _make_hook(self, name: str) -> Callable:
        def hook(module: nn.Linear, args: tuple, output: Tensor) -> Tensor | None:
            if not (module.training and torch.is_grad_enabled()):
                return None
            B = self.basis_fn(name)
            if B is None or B.shape[1] == 0:
                return None
            x = args[0]
            xd = x.detach()
            w, b = module.weight, module.bias
            if b is not None:
                xa = torch.cat([xd, xd.new_ones((*xd.shape[:-1], 1))], dim=-1)
                xt = xa - (xa @ B) @ B.T  # (..., in + 1)
                proj = F.linear(xt[..., :-1], w) + xt[..., -1:] * b
                base = F.linear(x, w.detach(), b.detach())
            else:
                xt = xd - (xd @ B) @ B.T  # (..., in)
                proj = F.linear(xt, w)
                base = F.linear(x, w.detach())
            return base + (proj - proj.detach())

        return hook

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()


def check_finite_scalar(value: float, what: str) -> None:
    if not math.isfinite(value):
        raise FloatingPointError(f"{what} is {value}")
