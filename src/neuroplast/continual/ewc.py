"""Elastic weight consolidation (Kirkpatrick et al. 2017, arXiv:1612.00796).

After task k the diagonal empirical Fisher ``F^k_i = mean_n (d log p(y_n | x_n) / d theta_i)^2``
is estimated on ``fisher_samples`` training samples and the weights ``theta*^k`` are stored;
training later tasks adds

    penalty = (lambda / 2) sum_k sum_i F^k_i (theta_i - theta*^k_i)^2.

``online=True`` keeps one running Fisher ``F <- gamma F + F^k`` anchored at the latest weights
(online EWC, Schwarz et al. 2018, arXiv:1805.06370), so the state stays the size of the model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from neuroplast.continual.strategy import Batch, Strategy, classification_loss

__all__ = ["EWC"]


class EWC(Strategy):
    """Quadratic penalty anchoring each parameter with its Fisher information (see module doc).

    ``loss_fn(model, batch)`` is the task loss used for the Fisher (default: cross-entropy with
    one head; pass ``classification_loss(scenario.head_mask())`` for multi-head scenarios).
    """

    name = "ewc"

    def __init__(
        self,
        model: nn.Module,
        lam: float = 100.0,
        fisher_samples: int = 256,
        loss_fn: Callable[[nn.Module, Batch], Tensor] | None = None,
        online: bool = False,
        gamma: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
        if not lam >= 0:
            raise ValueError(f"lam: expected a number >= 0, got {lam!r}")
        if isinstance(fisher_samples, bool) or not isinstance(fisher_samples, int) or fisher_samples < 1:
            raise ValueError(f"fisher_samples: expected a positive int, got {fisher_samples!r}")
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"gamma: expected a number in (0, 1], got {gamma!r}")
        self.model = model
        self.lam = float(lam)
        self.fisher_samples = fisher_samples
        self.loss_fn = loss_fn or classification_loss(None)
        self.online = bool(online)
        self.gamma = float(gamma)
        self.generator = generator
        self._names = [n for n, p in model.named_parameters() if p.requires_grad]
        self.fishers_: list[dict[str, Tensor]] = []  # per task (or one, online)
        self.anchors_: list[dict[str, Tensor]] = []

    def _params(self) -> dict[str, nn.Parameter]:
        params = dict(self.model.named_parameters())
        return {n: params[n] for n in self._names}

    def penalty(self, batch: Batch) -> Tensor | None:
        if not self.fishers_ or self.lam == 0:
            return None
        params = self._params()
        total = None
        for fisher, anchor in zip(self.fishers_, self.anchors_, strict=True):
            for n, p in params.items():
                term = (fisher[n] * (p - anchor[n]) ** 2).sum()
                total = term if total is None else total + term
        return 0.5 * self.lam * total

    def fisher(self, task: Any) -> dict[str, Tensor]:
        """Diagonal empirical Fisher on ``fisher_samples`` training samples of ``task`` (a backward each)."""
        n = min(self.fisher_samples, task.n_train)
        idx = torch.randperm(task.n_train, generator=self.generator)[:n]
        params = self._params()
        out = {k: torch.zeros_like(p) for k, p in params.items()}
        was_training = self.model.training
        self.model.eval()
        try:
            for i in range(n):
                b = task.batch("train", idx[i : i + 1])
                loss = self.loss_fn(self.model, b)
                grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
                for k, g in zip(params, grads, strict=True):
                    if g is not None:
                        out[k] += g.detach() ** 2
        finally:
            self.model.train(was_training)
        return {k: v / n for k, v in out.items()}

    def after_task(self, task: Any) -> None:
        self.check_task(task)
        f = self.fisher(task)
        anchor = {k: p.detach().clone() for k, p in self._params().items()}
        if self.online and self.fishers_:
            f = {k: self.gamma * self.fishers_[0][k] + v for k, v in f.items()}
            self.fishers_, self.anchors_ = [f], [anchor]
        else:
            self.fishers_.append(f)
            self.anchors_.append(anchor)

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "fishers": [dict(f) for f in self.fishers_],
            "anchors": [dict(a) for a in self.anchors_],
        }
        if self.generator is not None:
            state["generator"] = self.generator.get_state()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        fishers, anchors = list(state["fishers"]), list(state["anchors"])
        if len(fishers) != len(anchors):
            raise ValueError("EWC.load_state_dict: fishers and anchors differ in length")
        for d in fishers + anchors:
            if set(d) != set(self._names):
                raise ValueError(
                    f"EWC.load_state_dict: parameter names {sorted(d)} do not match the model's "
                    f"{sorted(self._names)}"
                )
        self.fishers_ = [{k: v.clone() for k, v in f.items()} for f in fishers]
        self.anchors_ = [{k: v.clone() for k, v in a.items()} for a in anchors]
        if self.generator is not None and "generator" in state:
            self.generator.set_state(state["generator"])

    def __repr__(self) -> str:
        return f"EWC(lam={self.lam}, fisher_samples={self.fisher_samples}, online={self.online})"
