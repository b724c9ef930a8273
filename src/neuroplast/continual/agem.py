"""Averaged gradient episodic memory, A-GEM (Chaudhry et al. 2019, arXiv:1812.00420).

With ``g`` the gradient on the current batch and ``g_ref`` the gradient of the loss on a random
batch from the episodic memory of earlier tasks,

    if g . g_ref < 0:   g <- g - (g . g_ref / ||g_ref||^2) g_ref

so the step never increases the (average) memory loss to first order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from neuroplast.continual.replay import EpisodicMemory
from neuroplast.continual.strategy import Batch, Strategy, classification_loss

__all__ = ["AGEM"]


class AGEM(Strategy):
    """A-GEM with an episodic memory of ``memory_size`` samples shared equally by past tasks.

    ``ref_batch_size``: memory samples per reference gradient. ``loss_fn(model, batch)``:
    as in training (pass ``classification_loss(scenario.head_mask())`` for several heads).
    """

    name = "agem"

    def __init__(
        self,
        model: nn.Module,
        memory_size: int = 1000,
        ref_batch_size: int = 256,
        loss_fn: Callable[[nn.Module, Batch], Tensor] | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
        if isinstance(ref_batch_size, bool) or not isinstance(ref_batch_size, int) or ref_batch_size < 1:
            raise ValueError(f"ref_batch_size: expected a positive int, got {ref_batch_size!r}")
        self.model = model
        self.memory = EpisodicMemory(memory_size, generator)
        self.ref_batch_size = ref_batch_size
        self.loss_fn = loss_fn or classification_loss(None)
        self.generator = generator
        self.n_projected_ = 0
        self.n_steps_ = 0

    def transform_gradients(self, batch: Batch) -> None:
        if self.memory.size_ == 0:
            return
        params = [p for p in self.model.parameters() if p.requires_grad and p.grad is not None]
        ref = self.memory.sample(min(self.ref_batch_size, self.memory.size_), self.generator)
        g_ref = torch.autograd.grad(self.loss_fn(self.model, ref), params, allow_unused=True)
        g_ref = torch.cat(
            [
                (r if r is not None else torch.zeros_like(p)).reshape(-1)
                for r, p in zip(g_ref, params, strict=True)
            ]
        )
        g = torch.cat([p.grad.reshape(-1) for p in params])
        dot = torch.dot(g, g_ref)
        self.n_steps_ += 1
        if dot < 0:
            g = g - (dot / torch.dot(g_ref, g_ref).clamp_min(1e-12)) * g_ref
            offset = 0
            for p in params:
                n = p.numel()
                p.grad.copy_(g[offset : offset + n].view_as(p))
                offset += n
            self.n_projected_ += 1

    def after_task(self, task: Any) -> None:
        self.check_task(task)
        self.memory.add_task(task)

    def state_dict(self) -> dict[str, Any]:
        state = {
            "memory": self.memory.state_dict(),
            "n_projected": self.n_projected_,
            "n_steps": self.n_steps_,
        }
        if self.generator is not None:
            state["generator"] = self.generator.get_state()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.memory.load_state_dict(state["memory"])
        self.n_projected_ = int(state["n_projected"])
        self.n_steps_ = int(state["n_steps"])
        if self.generator is not None and "generator" in state:
            self.generator.set_state(state["generator"])

    def memory_bytes(self) -> int:
        return self.memory.nbytes()

    def diagnostics(self) -> dict[str, Any]:
        return {"projected_fraction": self.n_projected_ / self.n_steps_ if self.n_steps_ else 0.0}

    def __repr__(self) -> str:
        return f"AGEM(memory_size={self.memory.capacity}, ref_batch_size={self.ref_batch_size})"
