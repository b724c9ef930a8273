"""Experience replay with buffers kept as preallocated tensors.

``ReservoirBuffer``: reservoir sampling (Vitter 1985, algorithm R) over the whole stream, vectorised
per batch: the n-th sample seen (0-based) goes to slot n while the buffer fills, later to a
uniform slot in [0, n] that is kept only if it is < capacity; every stream sample ends up in the
buffer with probability capacity / n_seen. ``Replay`` (ER with a reservoir, "ER_Res" in
Chaudhry et al. 2019, arXiv:1902.10486) concatenates ``replay_size`` buffer samples to each
batch, then offers the batch to the buffer.

``EpisodicMemory``: a fixed budget split equally among the tasks seen so far, filled at the end
of each task (used by A-GEM).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from neuroplast.continual.strategy import Batch, Strategy

__all__ = ["ReservoirBuffer", "EpisodicMemory", "Replay"]


def _check_capacity(capacity: Any, argname: str) -> int:
    if isinstance(capacity, bool) or not isinstance(capacity, int):
        raise TypeError(f"{argname}: expected an int, got {type(capacity).__name__}")
    if capacity < 1:
        raise ValueError(f"{argname}: a replay buffer needs room for at least one sample, got {capacity}")
    return capacity


class _TensorStore:
    """Lazily allocated (capacity, ...) tensors for x, y, t; shapes fixed by the first batch."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.x_: Tensor | None = None
        self.y_ = torch.zeros(0, dtype=torch.int64)
        self.t_ = torch.zeros(0, dtype=torch.int64)
        self.size_ = 0

    def _ensure(self, batch: Batch) -> None:
        if self.x_ is None:
            self.x_ = torch.zeros(
                (self.capacity, *batch.x.shape[1:]), dtype=batch.x.dtype, device=batch.x.device
            )
            self.y_ = torch.zeros(self.capacity, dtype=torch.int64, device=batch.x.device)
            self.t_ = torch.zeros(self.capacity, dtype=torch.int64, device=batch.x.device)
        elif tuple(batch.x.shape[1:]) != tuple(self.x_.shape[1:]):
            raise ValueError(
                f"batch.x: samples of shape {tuple(batch.x.shape[1:])} do not match the buffer's "
                f"{tuple(self.x_.shape[1:])}; every task of a stream must share one input shape"
            )

    def _write(self, slots: Tensor, batch: Batch, rows: Tensor) -> None:
        self.x_[slots] = batch.x[rows].detach()
        self.y_[slots] = batch.y[rows]
        self.t_[slots] = batch.t[rows]

    def sample(self, k: int, generator: torch.Generator | None = None) -> Batch:
        """``k`` stored samples drawn uniformly with replacement when k > size, else without."""
        if self.size_ == 0:
            raise ValueError("the buffer is empty: nothing to sample")
        if k > self.size_:
            idx = torch.randint(0, self.size_, (k,), generator=generator)
        else:
            idx = torch.randperm(self.size_, generator=generator)[:k]
        return Batch(self.x_[idx], self.y_[idx], self.t_[idx])

    def state_dict(self) -> dict[str, Any]:
        x = self.x_[: self.size_] if self.x_ is not None else torch.zeros(0)
        return {
            "x": x.clone(),
            "y": self.y_[: self.size_].clone(),
            "t": self.t_[: self.size_].clone(),
            "size": self.size_,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        size = int(state["size"])
        if size > self.capacity:
            raise ValueError(f"buffer state holds {size} samples, more than the capacity {self.capacity}")
        self.x_, self.size_ = None, 0
        if size:
            self._ensure(Batch(state["x"], state["y"], state["t"]))
            self.x_[:size] = state["x"]
            self.y_[:size] = state["y"]
            self.t_[:size] = state["t"]
        self.size_ = size

    def nbytes(self) -> int:
        if self.x_ is None:
            return 0
        return sum(t.numel() * t.element_size() for t in (self.x_, self.y_, self.t_))


class ReservoirBuffer(_TensorStore):
    """A uniform sample of everything offered so far, at most ``capacity`` samples (see module doc)."""

    def __init__(self, capacity: int, generator: torch.Generator | None = None) -> None:
        super().__init__(_check_capacity(capacity, "capacity"))
        self.generator = generator
        self.n_seen_ = 0

    def add(self, batch: Batch) -> None:
        """Offer every sample of ``batch`` to the reservoir (vectorised algorithm R)."""
        self._ensure(batch)
        b = batch.x.shape[0]
        if b == 0:
            return
        n, cap = self.n_seen_, self.capacity
        if n + b <= cap:  # still filling: the batch goes to the next slots
            self.x_[n : n + b] = batch.x.detach()
            self.y_[n : n + b] = batch.y
            self.t_[n : n + b] = batch.t
        else:
            pos = torch.arange(n, n + b)  # stream position of each sample
            # uniform integer in [0, pos] for each sample
            draw = (torch.rand(b, generator=self.generator, dtype=torch.float64) * (pos + 1)).long()
            slots = torch.where(pos < cap, pos, draw)
            rows = torch.nonzero(slots < cap).reshape(-1)
            slots = slots[rows]
            if rows.numel() > 1 and torch.unique(slots).numel() < slots.numel():
                # the later of two samples drawn to the same slot wins, as in the sequential algorithm
                last = {int(s): int(r) for s, r in zip(slots.tolist(), rows.tolist(), strict=True)}
                slots = torch.tensor(list(last.keys()), dtype=torch.int64)
                rows = torch.tensor(list(last.values()), dtype=torch.int64)
            if rows.numel():
                self._write(slots.to(self.x_.device), batch, rows.to(batch.x.device))
        self.n_seen_ = n + b
        self.size_ = min(cap, self.n_seen_)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "n_seen": self.n_seen_}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.n_seen_ = int(state["n_seen"])


class EpisodicMemory(_TensorStore):
    """``capacity`` samples shared equally by the tasks seen so far (``capacity // n_tasks`` each)."""

    def __init__(self, capacity: int, generator: torch.Generator | None = None) -> None:
        super().__init__(_check_capacity(capacity, "memory_size"))
        self.generator = generator
        self.n_tasks_ = 0

    def add_task(self, task: Any) -> None:
        """Shrink every stored task to ``capacity // (n_tasks + 1)`` samples and store as many of ``task``."""
        share = self.capacity // (self.n_tasks_ + 1)
        if share == 0:
            raise ValueError(
                f"memory_size={self.capacity} leaves no room for task {self.n_tasks_ + 1}: use at "
                "least one sample per task"
            )
        idx = torch.randperm(task.n_train, generator=self.generator)[: min(share, task.n_train)]
        new = task.batch("train", idx)
        self._ensure(new)
        if self.size_:
            keep = []
            t = self.t_[: self.size_]
            for tid in torch.unique(t).tolist():
                keep.append(torch.nonzero(t == tid).reshape(-1)[:share])
            keep = torch.cat(keep)
            n = keep.numel()
            self.x_[:n], self.y_[:n], self.t_[:n] = (
                self.x_[keep].clone(),
                self.y_[keep].clone(),
                self.t_[keep].clone(),
            )
            self.size_ = n
        m = new.x.shape[0]
        slots = torch.arange(self.size_, self.size_ + m)
        self._write(slots, new, torch.arange(m))
        self.size_ += m
        self.n_tasks_ += 1

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "n_tasks": self.n_tasks_}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.n_tasks_ = int(state["n_tasks"])


class Replay(Strategy):
    """Experience replay with a reservoir buffer: each batch gets ``replay_size`` stored samples.

    ``replay_size=None`` replays as many samples as the incoming batch has. The generator
    draws both the reservoir slots and the replayed samples.
    """

    name = "replay"

    def __init__(
        self, capacity: int, replay_size: int | None = None, generator: torch.Generator | None = None
    ) -> None:
        if replay_size is not None and (
            isinstance(replay_size, bool) or not isinstance(replay_size, int) or replay_size < 1
        ):
            raise ValueError(f"replay_size: expected a positive int or None, got {replay_size!r}")
        self.buffer = ReservoirBuffer(capacity, generator)
        self.replay_size = replay_size
        self.generator = generator

    def adapt_batch(self, batch: Batch) -> Batch:
        out = batch
        if self.buffer.size_:
            k = self.replay_size or batch.x.shape[0]
            old = self.buffer.sample(k, self.generator)
            out = Batch(torch.cat([batch.x, old.x]), torch.cat([batch.y, old.y]), torch.cat([batch.t, old.t]))
        self.buffer.add(batch)
        return out

    def state_dict(self) -> dict[str, Any]:
        state = {"buffer": self.buffer.state_dict()}
        if self.generator is not None:
            state["generator"] = self.generator.get_state()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.buffer.load_state_dict(state["buffer"])
        if self.generator is not None and "generator" in state:
            self.generator.set_state(state["generator"])

    def memory_bytes(self) -> int:
        return self.buffer.nbytes()

    def __repr__(self) -> str:
        return f"Replay(capacity={self.buffer.capacity}, replay_size={self.replay_size})"
