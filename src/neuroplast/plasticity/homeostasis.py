"""Homeostatic regulation of the learning rate (Man, Damasio & Neven 2022, arXiv:2205.08645).

The learning rate eta is a vulnerable internal state: every perceived item of class ``c`` that the
learner "takes" pushes it by its effect on the learner,

    eta <- clip(eta + delta * e[c], min_lr, max_lr),    e[c] = +1 excitatory, -1 inhibitory, 0 neutral

(the paper: digits >= 5 excite, digits < 5 inhibit; delta = eta_0 / 10). The learner decides whether to
take an item from what it *perceives*: it predicts the class c_hat, simulates one optimizer step with
``eta`` ("leave it") and with ``eta + delta * e[c_hat]`` ("take it"), scores both on the recently seen
labelled samples, and takes the item when taking scores strictly better. The state then moves by the
effect of the *true* class c, so a wrong percept moves eta the wrong way. Random regulation (the control)
takes each item with a fixed probability, ignoring what it perceives; everything else is the same.

Both regulators drive any ``torch.optim.Optimizer`` by writing ``param_group["lr"]`` (groups keep the
ratio of their initial learning rates); the simulated steps call the optimizer itself and restore the
parameters and the optimizer state afterwards, so Adam or momentum SGD are simulated exactly (optimizers
whose ``step`` needs a closure, such as LBFGS, are refused).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["HomeostaticRegulator", "RandomRegulator", "threshold_effects"]


def threshold_effects(num_classes: int = 10, threshold: int = 5) -> Tensor:
    """Per-class effects ``e[c] = +1 if c >= threshold else -1`` (the paper's MNIST setting)."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 1:
        raise ValueError(f"num_classes: expected an int >= 1, got {num_classes!r}")
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Integral):
        raise TypeError(f"threshold: expected an int, got {type(threshold).__name__}")
    c = torch.arange(int(num_classes))
    return torch.where(c >= int(threshold), 1.0, -1.0).to(torch.float64)


def _positive(value: Any, name: str, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a positive float, got {type(value).__name__}")
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name}: expected a finite float > 0, got {value!r}")
    return v


def _class_index(value: Any, name: str, num_classes: int) -> int:
    if isinstance(value, Tensor):
        if value.numel() != 1 or value.is_floating_point() or value.is_complex():
            raise ValueError(f"{name}: expected one integer class index, got a tensor {tuple(value.shape)} "
                             f"of {value.dtype}")
        value = int(value.item())
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an int class index, got {type(value).__name__}")
    if not 0 <= int(value) < num_classes:
        raise ValueError(f"{name}: expected a class index in [0, {num_classes}), got {value}")
    return int(value)


class _LRRegulator:
    """Shared state and bookkeeping: eta, its bounds, per-class effects, decision counters."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        effects: Sequence[float] | Tensor,
        step: float | None = None,
        lr: float | None = None,
        min_lr: float = 1e-8,
        max_lr: float | None = None,
    ) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer: expected a torch.optim.Optimizer, got {type(optimizer).__name__}")
        if isinstance(optimizer, torch.optim.LBFGS):
            raise TypeError("optimizer: LBFGS needs a closure in step(); the simulated steps call step() "
                            "without one: use an optimizer whose step() takes no closure (SGD, Adam, ...)")
        groups_lr = [g.get("lr") for g in optimizer.param_groups]
        for i, g_lr in enumerate(groups_lr):
            if isinstance(g_lr, Tensor):
                raise TypeError(f"optimizer.param_groups[{i}]['lr']: expected a float, got a tensor")
            _positive(g_lr, f"optimizer.param_groups[{i}]['lr']")
        eff = torch.as_tensor(effects, dtype=torch.float64) if not isinstance(effects, Tensor) else effects
        if eff.dim() != 1 or eff.numel() < 1:
            raise ValueError(f"effects: expected a 1-D sequence with one effect per class, got shape "
                             f"{tuple(eff.shape)}")
        if not eff.is_floating_point() and eff.dtype not in (torch.int64, torch.int32, torch.int16,
                                                               torch.int8, torch.uint8):
            raise TypeError(f"effects: expected real numbers, got {eff.dtype}")
        eff = eff.detach().to("cpu", torch.float64).clone()
        if not bool(torch.isfinite(eff).all()):
            raise ValueError(f"effects: expected finite numbers, got {eff.tolist()}")
        self.optimizer = optimizer
        self.effects = eff
        self.num_classes = int(eff.numel())
        self.lr0 = _positive(groups_lr[0] if lr is None else lr, "lr")
        self.delta = _positive(self.lr0 / 10 if step is None else step, "step")
        self.min_lr = _positive(min_lr, "min_lr")
        self.max_lr = _positive(max_lr, "max_lr", allow_none=True)
        if self.max_lr is not None and self.max_lr < self.min_lr:
            raise ValueError(f"max_lr: expected >= min_lr={self.min_lr}, got {self.max_lr}")
        if not self.min_lr <= self.lr0 <= (self.max_lr if self.max_lr is not None else math.inf):
            raise ValueError(f"lr: expected within [min_lr, max_lr] = [{self.min_lr}, {self.max_lr}], got "
                             f"{self.lr0}")
        self._ratios = [float(g_lr) / float(groups_lr[0]) for g_lr in groups_lr]
        self.lr_ = self.lr0
        self.decisions_ = 0
        self.taken_ = 0
        self._write_lr()

    # -- eta ----------------------------------------------------------------------------------------
    def _clip(self, lr: float) -> float:
        lr = max(lr, self.min_lr)
        return min(lr, self.max_lr) if self.max_lr is not None else lr

    def _write_lr(self) -> None:
        for g, r in zip(self.optimizer.param_groups, self._ratios, strict=True):
            g["lr"] = self.lr_ * r

    def effect(self, label: int | Tensor) -> float:
        """The effect e[c] of class ``label`` on the learner."""
        return float(self.effects[_class_index(label, "label", self.num_classes)])

    def shifted(self, label: int | Tensor) -> float:
        """``clip(eta + delta * e[label])``: eta after taking an item of class ``label``."""
        return self._clip(self.lr_ + self.delta * self.effect(label))

    def take(self, label: int | Tensor) -> float:
        """Take an item of true class ``label``: eta moves by its effect; returns the new eta."""
        self.lr_ = self.shifted(label)
        self._write_lr()
        return self.lr_

    @property
    def lr(self) -> float:
        return self.lr_

    @property
    def take_rate(self) -> float:
        """Fraction of decisions that took the item (NaN before the first decision)."""
        return self.taken_ / self.decisions_ if self.decisions_ else math.nan

    # -- state ----------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """eta and the decision counters (the optimizer's own state is left to the optimizer)."""
        return {"lr": self.lr_, "decisions": self.decisions_, "taken": self.taken_}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore eta and the counters and write eta into the optimizer's param groups."""
        self._set_state(*self._parse_state(state))

    def _parse_state(self, state: dict[str, Any]) -> tuple[float, int, int]:
        if not isinstance(state, dict) or not {"lr", "decisions", "taken"} <= set(state):
            raise ValueError(f"state: expected a dict from state_dict() with keys lr, decisions, taken, got "
                             f"{sorted(state) if isinstance(state, dict) else type(state).__name__}")
        lr = _positive(state["lr"], "state['lr']")
        decisions, taken = int(state["decisions"]), int(state["taken"])
        if not 0 <= taken <= decisions:
            raise ValueError(f"state: expected 0 <= taken <= decisions, got taken={taken}, "
                             f"decisions={decisions}")
        return lr, decisions, taken

    def _set_state(self, lr: float, decisions: int, taken: int) -> None:
        self.lr_, self.decisions_, self.taken_ = lr, decisions, taken
        self._write_lr()

    def _count(self, took: bool) -> bool:
        self.decisions_ += 1
        self.taken_ += int(took)
        return took

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(lr={self.lr_:.4g}, step={self.delta:.4g}, "
                f"classes={self.num_classes}, decisions={self.decisions_}, taken={self.taken_})")


def _check_memory(x: Tensor, y: Tensor, num_classes: int) -> None:
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise TypeError(f"memory_x, memory_y: expected tensors, got {type(x).__name__}, {type(y).__name__}")
    if y.dim() != 1 or y.is_floating_point() or y.dtype == torch.bool:
        raise ValueError(f"memory_y: expected a 1-D integer tensor of labels, got {tuple(y.shape)} {y.dtype}")
    if x.dim() < 1 or x.shape[0] != y.shape[0] or y.numel() == 0:
        raise ValueError(f"memory_x, memory_y: expected the same number (>= 1) of samples, got "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")
    if int(y.min()) < 0 or int(y.max()) >= num_classes:
        raise ValueError(f"memory_y: expected labels in [0, {num_classes}), got range "
                         f"[{int(y.min())}, {int(y.max())}]")


class HomeostaticRegulator(_LRRegulator):
    """Self-regulated learning rate: take a perceived item when a simulated step says it helps.

    eta' = clip(eta + delta * e[c_hat]);  take  iff  acc_mem(theta - step(eta')) > acc_mem(theta - step(eta));
    on take: eta <- clip(eta + delta * e[c])  (c the true class).  arXiv:2205.08645.

    Args:
        optimizer: any torch optimizer; its param groups' ``lr`` are driven by eta.
        effects: per-class effect e[c] (e.g. :func:`threshold_effects`).
        step: delta (default ``lr / 10``). lr: eta_0 (default: the first param group's lr).
        min_lr, max_lr: bounds of eta (the paper clips at a small positive value).
    Call :meth:`regulate` after ``loss.backward()`` and before ``optimizer.step()``.
    """

    def decide(self, model: nn.Module, predicted: int | Tensor, memory_x: Tensor, memory_y: Tensor) -> bool:
        """Whether taking an item perceived as class ``predicted`` helps on the memory (no state change)."""
        predicted = _class_index(predicted, "predicted", self.num_classes)
        _check_memory(memory_x, memory_y, self.num_classes)
        if not isinstance(model, nn.Module):
            raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
        trial = self.shifted(predicted)
        if trial == self.lr_:
            return False  # neutral percept (or eta at a bound): taking cannot change anything
        leave = self._simulated_accuracy(model, self.lr_, memory_x, memory_y)
        take = self._simulated_accuracy(model, trial, memory_x, memory_y)
        return take > leave

    def regulate(self, model: nn.Module, predicted: int | Tensor, label: int | Tensor, memory_x: Tensor,
                 memory_y: Tensor) -> bool:
        """Decide on the perceived item and, if taken, move eta by its true class; returns taken."""
        label = _class_index(label, "label", self.num_classes)
        took = self.decide(model, predicted, memory_x, memory_y)
        if took:
            self.take(label)
        return self._count(took)

    def _simulated_accuracy(self, model: nn.Module, lr: float, x: Tensor, y: Tensor) -> float:
        """Accuracy on (x, y) after one optimizer step at ``lr``; parameters and optimizer restored."""
        opt = self.optimizer
        params = [p for g in opt.param_groups for p in g["params"]]
        saved_p = [p.detach().clone() for p in params]
        saved_state = {
            p: {k: (v.clone() if isinstance(v, Tensor) else v) for k, v in st.items()}
            for p, st in opt.state.items()
        }
        saved_lr = [g["lr"] for g in opt.param_groups]
        was_training = model.training
        try:
            for g, r in zip(opt.param_groups, self._ratios, strict=True):
                g["lr"] = lr * r
            opt.step()
            model.eval()
            with torch.no_grad():
                pred = model(x).argmax(-1)  # (M,)
            return float((pred == y.to(pred.device)).double().mean())
        finally:
            model.train(was_training)
            with torch.no_grad():
                for p, v in zip(params, saved_p, strict=True):
                    p.copy_(v)
            opt.state.clear()
            opt.state.update(saved_state)
            for g, v in zip(opt.param_groups, saved_lr, strict=True):
                g["lr"] = v


class RandomRegulator(_LRRegulator):
    """Random-regulation control: take each item with probability ``take_prob``, whatever is perceived.

    take ~ Bernoulli(take_prob);  on take: eta <- clip(eta + delta * e[c]).  arXiv:2205.08645.
    Same effects, step and bounds as :class:`HomeostaticRegulator`; the draws come from ``generator``
    (or a generator seeded with ``seed``) and its state is part of :meth:`state_dict`.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        effects: Sequence[float] | Tensor,
        step: float | None = None,
        lr: float | None = None,
        min_lr: float = 1e-8,
        max_lr: float | None = None,
        take_prob: float = 0.5,
        seed: int = 0,
        generator: torch.Generator | None = None,
    ) -> None:
        if isinstance(take_prob, bool) or not isinstance(take_prob, numbers.Real):
            raise TypeError(f"take_prob: expected a float in [0, 1], got {type(take_prob).__name__}")
        if not 0.0 <= float(take_prob) <= 1.0:
            raise ValueError(f"take_prob: expected a probability in [0, 1], got {take_prob}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator: expected a torch.Generator or None, got {type(generator).__name__}")
        if generator is None:
            if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
                raise ValueError(f"seed: expected an int >= 0, got {seed!r}")
            generator = torch.Generator().manual_seed(int(seed))
        super().__init__(optimizer, effects, step=step, lr=lr, min_lr=min_lr, max_lr=max_lr)
        self.take_prob = float(take_prob)
        self.generator = generator

    def decide(self, *args: Any, **kwargs: Any) -> bool:
        """A coin flip with probability ``take_prob`` (arguments are ignored: nothing is perceived)."""
        return bool(torch.rand((), generator=self.generator, dtype=torch.float64) < self.take_prob)

    def regulate(self, model: nn.Module | None, predicted: int | Tensor | None, label: int | Tensor,
                 memory_x: Tensor | None = None, memory_y: Tensor | None = None) -> bool:
        """Same call as :meth:`HomeostaticRegulator.regulate`; only ``label`` is used."""
        label = _class_index(label, "label", self.num_classes)
        took = self.decide()
        if took:
            self.take(label)
        return self._count(took)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict) or "generator" not in state:
            raise ValueError("state: expected a dict from RandomRegulator.state_dict() (a 'generator' key)")
        gen_state = state["generator"]
        if not isinstance(gen_state, Tensor) or gen_state.dtype != torch.uint8:
            raise ValueError(f"state['generator']: expected a uint8 tensor from Generator.get_state(), got "
                             f"{type(gen_state).__name__}")
        parsed = self._parse_state(state)
        self.generator.set_state(gen_state.clone())  # raises on a malformed state, before anything else moves
        self._set_state(*parsed)
