"""Gradient projection memory, GPM (Saha, Garg & Roy 2021, arXiv:2103.09762).

After each task, for every layer l, the representation matrix ``R_l`` (n_in x n_samples: the
layer's inputs on ``n_samples`` training samples of the task) gives the basis ``M_l`` of the
input subspace to protect:

- first task: SVD ``R = U S V^T``; keep the smallest k with
  ``sum_{i<=k} s_i^2 >= threshold * sum_i s_i^2`` (Eq. 5);
- later tasks: remove the part already covered, ``R_hat = R - M M^T R``, SVD ``R_hat``, and
  add the top directions of ``R_hat`` until the energy captured by ``[M, U_hat]`` reaches
  ``threshold`` of ``||R||_F^2`` (Eq. 8-9).

Training later tasks projects each weight gradient off the protected inputs,
``G <- G - (G M) M^T`` (G: out x in), so the layer's response to every input in span(M) does not
change (exactly, for plain SGD). A bias is handled as an extra input fixed at 1.
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

__all__ = ["GPM", "gpm_basis_update"]


def gpm_basis_update(basis: Tensor, activations: Tensor, threshold: float) -> Tensor:
    """New basis ``[M, U_hat[:, :r]]`` from the representation matrix ``activations`` (n, samples).

    ``basis`` M: (n, k) orthonormal columns (k = 0 on the first task). Implements Eq. 5 (k = 0)
    and Eq. 8-9 of arXiv:2103.09762 with ``threshold`` in (0, 1].
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold: expected a number in (0, 1], got {threshold!r}")
    R = activations.double()
    M = basis.double()
    total = float((R**2).sum())
    if total == 0.0:
        return basis
    if M.shape[1] == 0:
        U, S, _ = torch.linalg.svd(R, full_matrices=False)
        if threshold >= 1.0:  # keep every direction with non-zero energy
            r = int((S > total**0.5 * 1e-6).sum())
        else:  # as the reference code: the number of energy prefixes still below the threshold
            r = int((torch.cumsum(S**2, 0) / total < threshold).sum())
        return U[:, :r].to(basis.dtype)
    R_hat = R - M @ (M.T @ R)
    U, S, _ = torch.linalg.svd(R_hat, full_matrices=False)
    accumulated = (total - float((R_hat**2).sum())) / total
    r = 0
    ratios = (S**2 / total).tolist()
    if threshold >= 1.0:
        r = int((S > total**0.5 * 1e-6).sum())
    else:  # add directions until the captured energy reaches the threshold (Eq. 9)
        for v in ratios:
            if accumulated < threshold:
                accumulated += v
                r += 1
            else:
                break
    if r == 0:
        return basis
    new = torch.cat([M, U[:, :r]], dim=1)
    return new[:, : new.shape[0]].to(basis.dtype)


class GPM(Strategy):
    """Orthogonal gradient steps to the input subspaces of earlier tasks, per Linear layer.

    ``layers``: glob names of the nn.Linear layers to protect (None: all). ``threshold``: one
    energy threshold or one per layer (GPM on permuted MNIST: 0.95 for the first layer, 0.99 for
    the others). ``n_samples``: training samples per task for the representation matrix (300).
    ``mode``: "input" (default) projects the layer inputs inside the backward pass
    (``ProjectedInputGrad``: the data gradient, cheap); "gradient" projects ``W.grad`` after
    ``backward`` (also the gradients of penalties on W; cost O(out * in * k) per step).
    """

    name = "gpm"

    def __init__(
        self,
        model: nn.Module,
        layers: str | Sequence[str] | None = None,
        threshold: float | Sequence[float] = 0.97,
        n_samples: int = 300,
        generator: torch.Generator | None = None,
        mode: str = "input",
    ) -> None:
        if mode not in ("input", "gradient"):
            raise ValueError(f"mode: expected 'input' or 'gradient', got {mode!r}")
        self.model = model
        self.mode = mode
        self.layers = resolve_linears(model, layers)
        thr = (
            [float(threshold)] * len(self.layers)
            if isinstance(threshold, (int, float))
            else [float(t) for t in threshold]
        )
        if len(thr) != len(self.layers):
            raise ValueError(
                f"threshold: expected one value or {len(self.layers)} (one per layer "
                f"{[n for n, _ in self.layers]}), got {len(thr)}"
            )
        for t in thr:
            if not 0.0 < t <= 1.0:
                raise ValueError(f"threshold: every value must be in (0, 1], got {t}")
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
            raise ValueError(f"n_samples: expected a positive int, got {n_samples!r}")
        self.threshold = thr
        self.n_samples = n_samples
        self.generator = generator
        self.bases_: dict[str, Tensor] = {
            name: torch.zeros(
                m.in_features + (m.bias is not None), 0, dtype=m.weight.dtype, device=m.weight.device
            )
            for name, m in self.layers
        }
        self._hooks = ProjectedInputGrad(self.layers, self.bases_.get) if mode == "input" else None

    def remove(self) -> None:
        """Detach the projection hooks from the model."""
        if self._hooks is not None:
            self._hooks.remove()

    def transform_gradients(self, batch: Batch) -> None:
        if self.mode != "gradient":
            return
        for name, layer in self.layers:
            M = self.bases_[name]
            if M.shape[1] == 0:
                continue
            g, has_bias = weight_grad_matrix(layer)
            if g is None:
                continue
            set_weight_grad_matrix(layer, project_out(g, M), has_bias)

    @torch.no_grad()
    def representation(self, task: Any) -> dict[str, Tensor]:
        """Representation matrices (n_in [+1], samples) of every layer on ``n_samples`` training samples."""
        idx = torch.randperm(task.n_train, generator=self.generator)[: self.n_samples]
        x = task.inputs("train", idx)
        capture = LinearInputs(self.layers, training_only=False)
        was_training = self.model.training
        self.model.eval()
        try:
            self.model(x)
        finally:
            self.model.train(was_training)
            inputs = dict(capture.inputs)
            capture.remove()
        out = {}
        for name, layer in self.layers:
            if name not in inputs:
                raise RuntimeError(f"GPM: layer {name!r} was not called in the model's forward pass")
            out[name] = layer_input_matrix(inputs[name], layer.in_features, layer.bias is not None).T
        return out

    def after_task(self, task: Any) -> None:
        self.check_task(task)
        reps = self.representation(task)
        for (name, _), thr in zip(self.layers, self.threshold, strict=True):
            self.bases_[name] = gpm_basis_update(self.bases_[name], reps[name], thr)

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"bases": {k: v.clone() for k, v in self.bases_.items()}}
        if self.generator is not None:
            state["generator"] = self.generator.get_state()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        bases = state["bases"]
        if set(bases) != set(self.bases_):
            raise ValueError(
                f"GPM.load_state_dict: layers {sorted(bases)} do not match {sorted(self.bases_)}"
            )
        for k, v in bases.items():
            if v.shape[0] != self.bases_[k].shape[0]:
                raise ValueError(
                    f"GPM.load_state_dict: basis of {k!r} has {v.shape[0]} rows, expected "
                    f"{self.bases_[k].shape[0]}"
                )
            self.bases_[k] = v.clone()
        if self.generator is not None and "generator" in state:
            self.generator.set_state(state["generator"])

    def diagnostics(self) -> dict[str, Any]:
        return {"basis_dims": {k: int(v.shape[1]) for k, v in self.bases_.items()}}

    def __repr__(self) -> str:
        return (
            f"GPM(layers={[n for n, _ in self.layers]}, threshold={self.threshold}, "
            f"n_samples={self.n_samples}, "
            f"mode={self.mode!r})"
        )
