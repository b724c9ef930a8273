"""Continual learning via neural pruning, CLNP (Golkar, Kagan & Cho 2019, arXiv:1903.04476).

For an MLP chain ``Linear_0 -> act_0 -> Linear_1 -> act_1 -> ... -> Linear_L`` (the last Linear is
the output layer, one head per task):

1. While task t trains, an L1 penalty ``l1 * sum_l mean_batch sum_i |a_{l,i}|`` makes the hidden
   activity sparse, and only *free* neurons learn (their incoming weights and biases).
2. After the task, each neuron that was free is scored by its mean activity ``mean |a|`` on
   ``n_val`` training samples; the neurons below a threshold theta are pruned (their outputs
   no longer reach the task's neurons), with theta the largest value whose pruned network keeps
   the task's accuracy within ``tolerance`` points of the unpruned one (graceful forgetting).
3. The surviving neurons and the task's head become the task's own: their incoming weights are
   frozen, and the connections into them from every neuron that is still free are cut (set to
   zero), so neurons trained later can never change an old task's output (zero forgetting).
   Later tasks train the free neurons and may read the old ones (reuse).

Diagnostics after each task: free neurons per layer, neurons taken by the task, and old neurons
reused by it (non-zero outgoing weight into the task's neurons).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from neuroplast.continual.strategy import Batch, Strategy

__all__ = ["CLNP"]


class CLNP(Strategy):
    """Activation-sparse training, graceful pruning and per-task freezing of neurons (see module doc).

    ``layers``: names of the Linear layers in order (the last one is the output layer);
    ``activations``: names of the modules whose outputs are the hidden neurons, one per hidden
    layer (e.g. the ReLUs). ``l1``: activation-sparsity coefficient. ``tolerance``: accuracy
    (points) the task may lose to pruning. ``n_val``: training samples used for activities and
    the accuracy check. Needs a multi-head scenario (each task its own output units).
    """

    name = "clnp"

    def __init__(
        self,
        model: nn.Module,
        layers: Sequence[str],
        activations: Sequence[str],
        l1: float = 1e-4,
        tolerance: float = 0.0,
        n_val: int = 1000,
        generator: torch.Generator | None = None,
    ) -> None:
        from neuroplast.core.sites import find_sites

        if not isinstance(model, nn.Module):
            raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
        if isinstance(layers, str) or isinstance(activations, str):
            raise TypeError("layers and activations: expected lists of module names, got a single string")
        modules = dict(model.named_modules())
        self.layer_names = list(layers)
        self.act_names = list(activations)
        if len(self.layer_names) < 2:
            raise ValueError(
                f"layers: expected at least 2 Linear layers (hidden + output), got {self.layer_names}"
            )
        if len(self.act_names) != len(self.layer_names) - 1:
            raise ValueError(
                f"activations: expected {len(self.layer_names) - 1} names (one per hidden layer), got "
                f"{len(self.act_names)}"
            )
        for n in self.layer_names + self.act_names:
            if n not in modules:
                find_sites(model, n)  # raises ValueError listing the closest names
        self.layers: list[nn.Linear] = []
        for n in self.layer_names:
            if not isinstance(modules[n], nn.Linear):
                raise TypeError(f"layers: {n!r} is a {type(modules[n]).__name__}, expected nn.Linear")
            self.layers.append(modules[n])
        for a, b in zip(self.layers[:-1], self.layers[1:], strict=True):
            if a.out_features != b.in_features:
                raise ValueError(
                    f"layers: {a.out_features} outputs feed {b.in_features} inputs; CLNP needs a chain "
                    "of Linear layers, each feeding the next"
                )
        if not l1 >= 0:
            raise ValueError(f"l1: expected a number >= 0, got {l1!r}")
        if not tolerance >= 0:
            raise ValueError(f"tolerance: expected accuracy points >= 0, got {tolerance!r}")
        if isinstance(n_val, bool) or not isinstance(n_val, int) or n_val < 1:
            raise ValueError(f"n_val: expected a positive int, got {n_val!r}")
        self.model = model
        self.l1 = float(l1)
        self.tolerance = float(tolerance)
        self.n_val = n_val
        self.generator = generator
        # owner_[l][i]: task owning output i of layer l (-1: free); the last entry is the output layer
        self.owner_ = [torch.full((m.out_features,), -1, dtype=torch.int64) for m in self.layers]
        self.snapshot_ = [self._params(m) for m in self.layers]
        self.tasks_seen_ = 0
        self.history_: list[dict[str, Any]] = []
        self._acts: dict[int, Tensor] = {}
        self._handles = [
            modules[n].register_forward_hook(self._make_hook(i)) for i, n in enumerate(self.act_names)
        ]
        self._update_rows()

    @staticmethod
    def _params(m: nn.Linear) -> dict[str, Tensor]:
        out = {"weight": m.weight.detach().clone()}
        if m.bias is not None:
            out["bias"] = m.bias.detach().clone()
        return out

    def _make_hook(self, i: int):  # noqa: ANN202 - torch hook
        def hook(module: nn.Module, args: Any, output: Tensor) -> None:
            if module.training and torch.is_grad_enabled():
                self._acts[i] = output

        return hook

    def remove(self) -> None:
        """Detach the activation hooks from the model."""
        for h in self._handles:
            h.remove()
        self._handles.clear()

    # -- training hooks --------------------------------------------------------------------------
    def before_task(self, task: Any) -> None:
        self.check_task(task)
        classes = task.classes
        out = self.owner_[-1]
        if int(classes.max()) >= out.numel():
            raise ValueError(
                f"task {task.name!r} uses output unit {int(classes.max())}, the output layer has "
                f"{out.numel()}"
            )
        taken = out[classes]
        if bool((taken >= 0).any()):
            unit = int(classes[taken >= 0][0])
            raise ValueError(
                f"CLNP needs a multi-head (task-incremental) scenario: output unit {unit} of task "
                f"{task.name!r} already belongs to task {int(out[unit])}; use "
                "scenarios.permuted(multi_head=True) or split(incremental='task')"
            )
        self._acts.clear()

    def penalty(self, batch: Batch) -> Tensor | None:
        if self.l1 == 0 or not self._acts:
            return None
        total = None
        for a in self._acts.values():
            term = a.abs().reshape(-1, a.shape[-1]).sum(-1).mean()
            total = term if total is None else total + term
        self._acts.clear()
        return self.l1 * total

    def transform_gradients(self, batch: Batch) -> None:
        for m, (rows, _, _) in zip(self.layers, self._frozen, strict=True):
            if rows.numel():
                if m.weight.grad is not None:
                    m.weight.grad.index_fill_(0, rows, 0.0)
                if m.bias is not None and m.bias.grad is not None:
                    m.bias.grad.index_fill_(0, rows, 0.0)

    @torch.no_grad()
    def after_step(self, batch: Batch) -> None:
        self._restore()

    def _restore(self) -> None:
        """Put back the frozen rows (owned neurons) exactly, whatever the optimizer did."""
        for m, (rows, w, b) in zip(self.layers, self._frozen, strict=True):
            if rows.numel():
                m.weight.index_copy_(0, rows, w)
                if b is not None:
                    m.bias.index_copy_(0, rows, b)

    def _update_rows(self) -> None:
        """Per layer: the owned (frozen) rows and their snapshot values, gathered once per task
        (the per-step restore is then one ``index_copy_`` per tensor)."""
        self._frozen = []
        for o, m, snap in zip(self.owner_, self.layers, self.snapshot_, strict=True):
            rows = torch.nonzero(o >= 0).reshape(-1).to(m.weight.device)
            b = snap["bias"][rows].clone() if m.bias is not None else None
            self._frozen.append((rows, snap["weight"][rows].clone(), b))

    # -- pruning ---------------------------------------------------------------------------------
    @torch.no_grad()
    def _accuracy(self, x: Tensor, y: Tensor, head: Tensor, pruned: list[Tensor]) -> float:
        """Accuracy (points) with the outputs of the ``pruned`` hidden neurons cut from the next layer."""
        saved = []
        for l, p in enumerate(pruned):
            if p.numel():
                w = self.layers[l + 1].weight
                saved.append((w, p, w[:, p].clone()))
                w[:, p] = 0
        try:
            logits = self.model(x)
            logits = logits.masked_fill(~head, float("-inf"))
            return 100.0 * float((logits.argmax(-1) == y).double().mean())
        finally:
            for w, p, cols in saved:
                w[:, p] = cols

    @torch.no_grad()
    def after_task(self, task: Any) -> None:
        from neuroplast.core.record import Recorder

        t = self.tasks_seen_
        idx = torch.randperm(task.n_train, generator=self.generator)[: self.n_val]
        b = task.batch("train", idx)
        head = torch.zeros(self.layers[-1].out_features, dtype=torch.bool)
        head[task.classes] = True
        was_training = self.model.training
        self.model.eval()
        try:
            with Recorder(self.model, self.act_names, stats=("mean_abs",), axis=-1) as rec:
                self.model(b.x)
            activity = [rec.stats[n]["mean_abs"].float() for n in self.act_names]
            cand = [o < 0 for o in self.owner_[:-1]]  # neurons trained on this task
            scores = torch.cat([a[c] for a, c in zip(activity, cand, strict=True)])
            levels = torch.unique(scores)  # sorted ascending

            def pruned_at(k: int) -> list[Tensor]:  # prune candidates with activity <= levels[k]
                if k < 0:
                    return [torch.zeros(0, dtype=torch.int64) for _ in cand]
                th = levels[k]
                return [torch.nonzero(c & (a <= th)).reshape(-1) for a, c in zip(activity, cand, strict=True)]

            base = self._accuracy(b.x, b.y, head, pruned_at(-1))
            lo, hi = -1, levels.numel() - 1  # invariant: lo is acceptable
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if self._accuracy(b.x, b.y, head, pruned_at(mid)) >= base - self.tolerance - 1e-9:
                    lo = mid
                else:
                    hi = mid - 1
            pruned = pruned_at(lo)
            after = self._accuracy(b.x, b.y, head, pruned)
        finally:
            self.model.train(was_training)
        # commit: survivors and the head belong to task t; cut every free neuron's connection into them
        for l, (c, p) in enumerate(zip(cand, pruned, strict=True)):
            keep = c.clone()
            keep[p] = False
            self.owner_[l][keep] = t
        self.owner_[-1][task.classes] = t
        for l in range(1, len(self.layers)):
            rows = torch.nonzero(self.owner_[l] == t).reshape(-1)
            cols = torch.nonzero(self.owner_[l - 1] < 0).reshape(-1)
            if rows.numel() and cols.numel():
                w = self.layers[l].weight
                w[rows.unsqueeze(1), cols.unsqueeze(0)] = 0
        self.snapshot_ = [self._params(m) for m in self.layers]
        self._update_rows()
        self.tasks_seen_ += 1
        self.history_.append(self._report(t, base, after, float(levels[lo]) if lo >= 0 else None))

    def _report(self, t: int, base: float, after: float, threshold: float | None) -> dict[str, Any]:
        layers = []
        for l, name in enumerate(self.layer_names[:-1]):
            owner = self.owner_[l]
            into = self.layers[l + 1].weight[self.owner_[l + 1] == t]  # rows of the task's next-layer neurons
            used = (into != 0).any(0) if into.numel() else torch.zeros_like(owner, dtype=torch.bool)
            layers.append(
                {
                    "layer": name,
                    "neurons": int(owner.numel()),
                    "free": int((owner < 0).sum()),
                    "taken": int((owner == t).sum()),
                    "reused": int(((owner >= 0) & (owner < t) & used).sum()),
                }
            )
        return {
            "task": t,
            "val_acc_before_pruning": base,
            "val_acc_after_pruning": after,
            "threshold": threshold,
            "layers": layers,
        }

    # -- state -----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = {
            "owner": [o.clone() for o in self.owner_],
            "snapshot": [dict(s) for s in self.snapshot_],
            "tasks_seen": self.tasks_seen_,
            "history": list(self.history_),
        }
        if self.generator is not None:
            state["generator"] = self.generator.get_state()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        owner = list(state["owner"])
        if [o.shape for o in owner] != [o.shape for o in self.owner_]:
            raise ValueError(
                f"CLNP.load_state_dict: owner shapes {[tuple(o.shape) for o in owner]} do not match "
                f"the layers {[tuple(o.shape) for o in self.owner_]}"
            )
        self.owner_ = [o.clone().to(torch.int64) for o in owner]
        self.snapshot_ = [{k: v.clone() for k, v in s.items()} for s in state["snapshot"]]
        self.tasks_seen_ = int(state["tasks_seen"])
        self.history_ = list(state["history"])
        self._update_rows()
        if self.generator is not None and "generator" in state:
            self.generator.set_state(state["generator"])

    def diagnostics(self) -> dict[str, Any]:
        return dict(self.history_[-1]) if self.history_ else {}

    def __repr__(self) -> str:
        return f"CLNP(layers={self.layer_names}, l1={self.l1}, tolerance={self.tolerance})"
