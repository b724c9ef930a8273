"""A small training loop with named events, a progress bar and a NaN/inf guard.

Studies use :func:`fit`; users need not. Methods plug in as callbacks: any object with some of
the methods below, each called with the mutable :class:`FitState`::

    on_batch_start(state)   before the forward pass (state.batch holds the batch)
    after_backward(state)   gradients are in .grad (project, clip, mask them here)
    after_step(state)       after optimizer.step() (prune, grow, advance schedules here)
    on_epoch_end(state)     after each full pass over the data

A callback may set ``state.stop = True`` to end training after the current step.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = ["FitState", "fit", "evaluate", "EVENTS", "progress_enabled"]

EVENTS = ("on_batch_start", "after_backward", "after_step", "on_epoch_end")


@dataclass
class FitState:
    """What callbacks see. ``step`` is the 0-based index of the current optimizer step during the
    batch events and the number of completed steps afterwards; ``loss`` is the detached loss."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    step: int = 0
    epoch: int = 0
    batch_index: int = 0
    batch: Any = None
    output: Any = None
    loss: torch.Tensor | None = None
    stop: bool = False
    losses: list[float] = field(default_factory=list)


def progress_enabled(progress: bool = True) -> bool:
    """Progress bars show unless ``progress=False`` or the environment variable CI is true."""
    return progress and os.environ.get("CI", "").strip().lower() not in {"1", "true", "yes"}


def _device_of(model: nn.Module) -> torch.device | None:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return None


def _to(obj: Any, device: torch.device | None) -> Any:
    if device is None:
        return obj
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, tuple | list):
        return type(obj)(_to(o, device) for o in obj)
    if isinstance(obj, dict):
        return {k: _to(v, device) for k, v in obj.items()}
    return obj


def _unpack(batch: Any, where: str) -> tuple[Any, Any]:
    if not isinstance(batch, Sequence) or isinstance(batch, str | torch.Tensor) or len(batch) != 2:
        raise TypeError(f"{where}: each batch must be an (x, y) pair, got {type(batch).__name__}")
    return batch[0], batch[1]


def _check_callbacks(callbacks: Iterable[Any]) -> list[Any]:
    cbs = list(callbacks)
    for cb in cbs:
        if not any(callable(getattr(cb, e, None)) for e in EVENTS):
            raise TypeError(f"fit: callback {cb!r} has none of the event methods {EVENTS}")
    return cbs


def fit(
    model: nn.Module,
    data: Iterable[Any],
    loss_fn: Callable[[Any, Any], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    epochs: int | None = None,
    steps: int | None = None,
    callbacks: Iterable[Any] = (),
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``model`` on ``data`` (an iterable of ``(x, y)`` batches) for ``epochs`` passes or
    ``steps`` optimizer steps (exactly one; ``steps`` cycles through the data as needed).

    Each step: ``zero_grad``, forward, ``loss_fn(model(x), y)``, backward, ``optimizer.step()``,
    with the events of the module docstring around it. Batches are moved to the model's device.
    Raises FloatingPointError naming the step when the loss is NaN or infinite.

    Returns ``{"steps", "epochs", "loss", "losses"}``: steps taken, full passes completed, the
    last loss and every step's loss.
    """
    if (epochs is None) == (steps is None):
        raise ValueError(f"fit: give exactly one of epochs or steps, got epochs={epochs!r}, steps={steps!r}")
    for name, value in (("epochs", epochs), ("steps", steps)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValueError(f"fit: {name} must be an int >= 0, got {value!r}")
    cbs = _check_callbacks(callbacks)
    device = _device_of(model)
    try:
        per_epoch: int | None = len(data)  # type: ignore[arg-type]
    except TypeError:
        per_epoch = None
    total = steps if steps is not None else (epochs * per_epoch if per_epoch is not None else None)
    state = FitState(model=model, optimizer=optimizer)

    def emit(event: str) -> None:
        for cb in cbs:
            fn = getattr(cb, event, None)
            if fn is not None:
                fn(state)

    from tqdm.auto import tqdm  # a light import, but only fit() needs it

    model.train()
    bar = tqdm(total=total, disable=not progress_enabled(progress), desc="fit", leave=False)
    try:
        while state.step < steps if steps is not None else state.epoch < epochs:
            batches, exhausted = 0, True
            for i, batch in enumerate(data):
                if steps is not None and state.step >= steps:
                    exhausted = False
                    break
                x, y = _unpack(batch, "fit")
                state.batch_index, state.batch = i, (x, y)
                emit("on_batch_start")
                x, y = _to(state.batch, device)
                optimizer.zero_grad(set_to_none=True)
                state.output = model(x)
                loss = loss_fn(state.output, y)
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise FloatingPointError(
                        f"fit: loss became {value} at step {state.step} (epoch {state.epoch}, batch {i}); "
                        "lower the learning rate, or check the data and loss_fn"
                    )
                state.loss = loss.detach()
                loss.backward()
                emit("after_backward")
                optimizer.step()
                emit("after_step")
                state.losses.append(value)
                state.step += 1
                batches += 1
                bar.update(1)
                if state.step % 10 == 1:
                    bar.set_postfix(loss=f"{value:.4g}", refresh=False)
                if state.stop:
                    exhausted = False
                    break
            if batches == 0 and exhausted:
                hint = " (a one-shot iterator cannot be cycled: pass a list or a DataLoader)"
                hint = hint if state.step else ""
                raise ValueError(f"fit: data yielded no batches on pass {state.epoch + 1}{hint}")
            if exhausted:  # a full pass over the data
                state.epoch += 1
                emit("on_epoch_end")
            if state.stop:
                break
    finally:
        bar.close()
        state.batch = state.output = None
    return {
        "steps": state.step,
        "epochs": state.epoch,
        "loss": state.losses[-1] if state.losses else math.nan,
        "losses": state.losses,
    }


def evaluate(
    model: nn.Module,
    data: Iterable[Any],
    metric: str | Callable[[Any, Any], torch.Tensor | float] = "accuracy",
) -> float:
    """Average ``metric`` over ``data`` in eval mode without gradients (the model's mode is restored).

    ``"accuracy"``: fraction of samples whose argmax over the last axis equals the label. A
    callable ``metric(output, y)`` returns a batch mean; batches are weighted by their size.
    """
    if isinstance(metric, str) and metric != "accuracy":
        raise ValueError(f"evaluate: metric must be 'accuracy' or a callable(output, y), got {metric!r}")
    device = _device_of(model)
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        with torch.no_grad():
            for batch in data:
                x, y = _to(_unpack(batch, "evaluate"), device)
                out = model(x)
                n = len(y) if hasattr(y, "__len__") else 1
                if metric == "accuracy":
                    total += float((out.argmax(-1) == y).sum())
                else:
                    total += float(metric(out, y)) * n
                count += n
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("evaluate: data yielded no samples")
    return total / count
