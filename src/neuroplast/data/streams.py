"""Non-stationary supervised streams: a dataset whose labels are re-mapped every K steps.

Used by the dormant-neuron / loss-of-plasticity studies (Sokar et al. 2023, arXiv:2302.12902;
Lyle et al. 2023, arXiv:2303.01486): phase
``p = step // steps_per_phase`` trains on ``(x, pi_p[y])`` with ``pi_0 = id`` and a fresh random
label permutation ``pi_p`` for every later phase.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["label_permutations", "LabelShiftStream"]


def _check_int(value: object, argname: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{argname} must be an int, got {type(value).__name__}")
    if int(value) < minimum:
        raise ValueError(f"{argname} must be >= {minimum}, got {value}")
    return int(value)


def label_permutations(num_classes: int, num_phases: int, seed: int) -> Tensor:
    """Label maps for each phase, a LongTensor (num_phases, num_classes).

    Row 0 is the identity; row p >= 1 is a fresh ``torch.randperm(num_classes)`` from a
    ``torch.Generator`` seeded with ``seed``, redrawn until it differs from row p - 1 (so every
    phase change really changes the task). Rows are not required to be derangements: a class
    may keep its label. A label y in phase p becomes ``perms[p, y]``.
    """
    num_classes = _check_int(num_classes, "num_classes", 1)
    num_phases = _check_int(num_phases, "num_phases", 1)
    seed = _check_int(seed, "seed", 0)
    if num_classes < 2 and num_phases > 1:
        raise ValueError(f"num_classes must be >= 2 for more than one phase (a permutation of "
                         f"{num_classes} class cannot differ from the previous one), got num_classes="
                         f"{num_classes}, num_phases={num_phases}")
    g = torch.Generator().manual_seed(seed)
    perms = torch.empty(num_phases, num_classes, dtype=torch.int64)
    perms[0] = torch.arange(num_classes)
    for p in range(1, num_phases):
        while True:
            cand = torch.randperm(num_classes, generator=g)
            if not torch.equal(cand, perms[p - 1]):
                break
        perms[p] = cand
    return perms


def _epoch_seed(seed: int, epoch: int) -> int:
    """A well-mixed 63-bit seed for the sample order of one pass over the data."""
    state = np.random.SeedSequence([seed, epoch]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


class LabelShiftStream:
    """Deterministic stream of ``(phase, x, y_remapped)`` batches with label shifts.

    Step ``s`` (0-based) belongs to phase ``p = s // steps_per_phase``; its batch is the
    ``k``-th slice of ``batch_size`` indices of a random order of the whole dataset (a fresh
    order, ``torch.randperm`` from a generator seeded by ``(seed, epoch)``, for every pass;
    the last incomplete slice of a pass is dropped), and its labels are
    ``label_permutations(num_classes, num_phases, seed)[p, y]``. The stream runs for
    ``steps_per_phase * num_phases`` steps. Iterating continues from the current position, so
    after ``load_state_dict(state)`` the stream yields exactly the batches that followed the
    moment ``state_dict()`` was taken (the position advances when a batch is yielded).
    """

    def __init__(self, dataset_x: Tensor, dataset_y: Tensor, batch_size: int, steps_per_phase: int,
                 num_phases: int, seed: int, num_classes: int | None = None) -> None:
        if not isinstance(dataset_x, Tensor) or not isinstance(dataset_y, Tensor):
            raise TypeError(f"dataset_x and dataset_y must be torch tensors, got {type(dataset_x).__name__} "
                            f"and {type(dataset_y).__name__}")
        if dataset_x.dim() < 1 or dataset_y.dim() != 1 or dataset_y.dtype != torch.int64:
            raise ValueError(f"dataset_x must be (n, ...) and dataset_y an int64 tensor (n,), got shapes "
                             f"{tuple(dataset_x.shape)} and {tuple(dataset_y.shape)} ({dataset_y.dtype})")
        if dataset_x.shape[0] != dataset_y.shape[0]:
            raise ValueError(f"dataset_x has {dataset_x.shape[0]} samples but dataset_y has "
                             f"{dataset_y.shape[0]}")
        n = int(dataset_y.shape[0])
        self.batch_size = _check_int(batch_size, "batch_size", 1)
        if self.batch_size > n:
            raise ValueError(f"batch_size must be <= the number of samples ({n}), got {batch_size}")
        self.steps_per_phase = _check_int(steps_per_phase, "steps_per_phase", 1)
        self.num_phases = _check_int(num_phases, "num_phases", 1)
        self.seed = _check_int(seed, "seed", 0)
        if int(dataset_y.min()) < 0:
            raise ValueError(f"dataset_y labels must be >= 0, got {int(dataset_y.min())}")
        seen = int(dataset_y.max()) + 1
        if num_classes is None:
            num_classes = seen
        self.num_classes = _check_int(num_classes, "num_classes", 1)
        if seen > self.num_classes:
            raise ValueError(f"dataset_y has label {seen - 1}, not < num_classes={self.num_classes}")
        self.x = dataset_x
        self.y = dataset_y
        self.num_samples = n
        self.permutations = label_permutations(self.num_classes, self.num_phases, self.seed)
        self._perms_on_y = self.permutations.to(dataset_y.device)
        self.batches_per_epoch = n // self.batch_size
        self.step = 0
        self._order_epoch = -1
        self._order: Tensor | None = None

    @property
    def total_steps(self) -> int:
        return self.steps_per_phase * self.num_phases

    def __len__(self) -> int:
        return self.total_steps

    def phase_of(self, step: int) -> int:
        return step // self.steps_per_phase

    def indices(self, step: int) -> Tensor:
        """Sample indices of the batch at ``step`` (random access; does not move the stream)."""
        step = _check_int(step, "step", 0)
        if step >= self.total_steps:
            raise ValueError(f"step must be < total_steps={self.total_steps}, got {step}")
        epoch, k = divmod(step, self.batches_per_epoch)
        if epoch != self._order_epoch:
            g = torch.Generator().manual_seed(_epoch_seed(self.seed, epoch))
            self._order = torch.randperm(self.num_samples, generator=g)
            self._order_epoch = epoch
        return self._order[k * self.batch_size:(k + 1) * self.batch_size]

    def batch(self, step: int) -> tuple[int, Tensor, Tensor]:
        """The ``(phase, x, y_remapped)`` batch at ``step`` (random access)."""
        idx = self.indices(step)
        phase = self.phase_of(step)
        idx_x = idx.to(self.x.device)
        y = self.y[idx.to(self.y.device)]
        return phase, self.x[idx_x], self._perms_on_y[phase][y]

    def __iter__(self) -> Iterator[tuple[int, Tensor, Tensor]]:
        while self.step < self.total_steps:
            out = self.batch(self.step)
            self.step += 1
            yield out

    def state_dict(self) -> dict[str, Any]:
        """Position and configuration (JSON scalars only; fits ``save_state``)."""
        return {"step": self.step, "seed": self.seed, "batch_size": self.batch_size,
                "steps_per_phase": self.steps_per_phase, "num_phases": self.num_phases,
                "num_classes": self.num_classes, "num_samples": self.num_samples}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume at ``state["step"]``; the configuration must match the one that saved it."""
        if not isinstance(state, dict) or "step" not in state:
            raise ValueError("state must be a dict from LabelShiftStream.state_dict() (with a 'step' key)")
        mine = self.state_dict()
        for key in ("seed", "batch_size", "steps_per_phase", "num_phases", "num_classes", "num_samples"):
            if key in state and int(state[key]) != mine[key]:
                raise ValueError(f"LabelShiftStream.load_state_dict: saved {key}={int(state[key])} but this "
                                 f"stream has {key}={mine[key]}; build the stream with the saved settings")
        step = int(state["step"])
        if not 0 <= step <= self.total_steps:
            raise ValueError(f"saved step {step} is outside 0..{self.total_steps}")
        self.step = step

    def __repr__(self) -> str:
        return (f"LabelShiftStream(num_samples={self.num_samples}, batch_size={self.batch_size}, "
                f"steps_per_phase={self.steps_per_phase}, num_phases={self.num_phases}, seed={self.seed}, "
                f"step={self.step})")
