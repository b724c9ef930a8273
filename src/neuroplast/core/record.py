"""Recorder: streaming per-neuron statistics of site outputs, in O(neurons) memory.

Each forward pass through a recorded site reduces its batch to per-neuron partial results in the
activation's dtype (sum, centred sum of squares, sum |a|, max |a|, active count, min, max),
written into a small block of pending rows. Every ``block`` batches, and whenever statistics are
read, the block is merged into float64 totals. Mean and variance use the parallel update of
Chan, Golub & LeVeque (1979), stable for any number and size of batches::

    n = n_a + n_b,   d = mean_b - mean_a
    mean = mean_a + d * n_b / n
    M2   = M2_a + M2_b + d^2 * n_a * n_b / n,      var = M2 / n   (population variance)

A batch's own M2_b is computed two-pass (sum of squared deviations from the batch mean), or, for
CPU outputs with a contiguous inner sample axis, in one read pass (sum of squares) where that is
provably accurate (see ``_Accumulator._one_pass_m2``); a block of K batches (or chunks) merges at
once as M2 = sum_k M2_k + sum_k n_k (mean_k - mean)^2. Accuracy of var: relative error ~1e-5
(float32 partials, float64 merge); for inputs offset by >> 1e3 standard deviations it is set by the
float32 batch sums (~eps32 * offset / std, e.g. ~1e-4 at 1e4 std), independent of the sample count.

Cost: the output is reduced in its memory order (no copy for permuted views such as attention head
outputs), each statistic is one or two passes (a shared scratch tensor avoids fresh allocations),
only requested statistics are computed, short inner axes are reduced after the outer one, and large
CPU outputs are reduced in cache-sized chunks (see ``_Plan``). ``fused=True`` compiles all of a
batch's reductions into one kernel with ``torch.compile`` (one read of the activation), which pays
off on large feature maps; see ``benchmarks/bench_recorder.py``.

Every entry of a site's output other than the neuron axis is a sample: batch, time and space
(``units`` semantics). Tuple outputs (RNN/LSTM/GRU, attention) are recorded from their first
element. Hooks read ``output.detach()`` and never build autograd graphs.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Self

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from neuroplast.core.sites import Site, resolve_sites

__all__ = ["Recorder", "STATS", "first_tensor"]

#: Statistics a Recorder can keep. "count" (samples per neuron) is always kept.
STATS = ("count", "mean", "mean_abs", "max_abs", "frac_active", "var", "min", "max")
_DEFAULT_STATS = ("count", "mean", "mean_abs", "max_abs", "frac_active", "var")
# Dtypes reduced as they are; others (half types, integer/bool spikes) are reduced in float32.
_REDUCE_DTYPES = (torch.float32, torch.float64)
# Modules whose output is never negative, so |a| = a: mean_abs and max_abs need no abs pass.
_NONNEGATIVE = (nn.ReLU, nn.ReLU6, nn.Sigmoid, nn.Softplus, nn.Hardsigmoid)
# Pending rows per site: at most _BLOCK batches and about _BLOCK_ELEMENTS numbers in all.
_BLOCK = 32
_BLOCK_ELEMENTS = 2**20
# Largest sum(a^2) / M2 for which the one-pass batch variance is trusted (see _one_pass_m2).
_ONE_PASS_COND = 16.0
# Float32 0/1 sums count exactly up to 2**24 samples per batch.
_EXACT_COUNT = 2**24
# CPU outputs above 2 * _CHUNK_BYTES that take several passes are reduced in chunks of about this size
# (at most _MAX_CHUNKS).
_CHUNK_BYTES = 2**19
_MAX_CHUNKS = 16
# Inner (contiguous) sample axes up to this length are reduced after the outer axis.
_OUTER_FIRST = 256
# Layout plans kept per site (one per output shape, strides and dtype).
_MAX_PLANS = 64


def first_tensor(output: Any, where: str) -> torch.Tensor:
    """The tensor a site's output carries: the output itself or the first element of a tuple."""
    if isinstance(output, tuple | list) and output:
        output = output[0]
    if not isinstance(output, torch.Tensor):
        raise TypeError(
            f"site {where!r}: expected the module to return a tensor or a tuple starting with one, "
            f"got {type(output).__name__}"
        )
    return output


class _Plan:
    """How one output layout of a site is reduced (made once per shape and strides, then reused).

    The output is viewed, in its memory order and without a copy, as (pre, N, post) with the
    neurons on the middle axis; every other entry is a sample, so the order in which samples are
    visited does not change any statistic (an output whose neuron axis is not outermost in memory,
    e.g. a transposed attention head output, is not copied into the logical order). On CPU,
    outputs larger than ``2 * _CHUNK_BYTES`` that take several passes are reduced in chunks of
    whole pre-rows (of the inner axis when the neurons are outermost in memory, pre < 4), each a
    sub-batch with a pending row of its own (merged later by Chan et al.), so the passes after the
    first read the chunk from cache. Sums and extremes reduce the contiguous inner axis first when
    it is long (``post > _OUTER_FIRST``) and the outer axis first otherwise (vectorised across the
    inner axis: several times faster for short inner axes such as heads or small feature maps).
    """

    __slots__ = ("perm", "shape3", "vshape", "bshape", "n", "chunks", "split", "kind", "one_pass", "rows",
                 "tmp_nq", "tmp_pn", "counts", "ncol")

    def __init__(self, x: torch.Tensor, axis: int, name: str, chunked: bool = True) -> None:
        shape, ndim = x.shape, x.dim()
        if ndim == 0 or not -ndim <= axis < ndim:
            raise ValueError(
                f"Recorder: site {name!r} has neuron axis {axis}, which does not fit its output of shape "
                f"{tuple(shape)}; pass axis= to find_sites/Recorder"
            )
        a = axis % ndim
        # memory order: dims by decreasing stride (size-1 dims last); used when it needs no copy
        perm = sorted(range(ndim), key=lambda d: (shape[d] == 1, -x.stride(d), d))
        if perm == list(range(ndim)) or not x.permute(perm).is_contiguous():
            perm = list(range(ndim))
        p = perm.index(a)
        pre, n = math.prod(shape[d] for d in perm[:p]), shape[a]
        post = math.prod(shape[d] for d in perm[p + 1 :])
        self.perm = None if perm == list(range(ndim)) else perm
        self.shape3, self.n = (pre, n, post), n
        device, dtype, itemsize = x.device, x.dtype, x.element_size()
        cpu = device.type == "cpu"
        row_bytes = max(n * post * itemsize, 1)
        rows, self.split = pre, 0  # chunks are slices of dim `split` of the view
        big = chunked and cpu and pre * row_bytes > 2 * _CHUNK_BYTES
        if big and pre >= 4:  # slices of pre-rows
            rows = max(1, _CHUNK_BYTES // row_bytes, -(-pre // _MAX_CHUNKS))
            self.chunks = [(s, min(s + rows, pre)) for s in range(0, pre, rows)]
            self.counts = [(e - s) * post for s, e in self.chunks]
        elif big and post > _OUTER_FIRST:  # neurons outermost in memory: slices of the inner axis
            cols = max(_OUTER_FIRST, _CHUNK_BYTES // (pre * n * itemsize), -(-post // _MAX_CHUNKS))
            self.split = 2
            self.chunks = [(s, min(s + cols, post)) for s in range(0, post, cols)]
            self.counts = [pre * (e - s) for s, e in self.chunks]
        else:
            self.chunks = [(0, pre)]
            self.counts = [pre * post]
        self.rows = rows
        # "rows": (S, N), reduce dim 0; "inner": reduce post first; "outer": reduce pre first
        if post == 1:
            self.kind = "rows"
        elif rows == 1 or post > _OUTER_FIRST:
            self.kind = "inner"
        else:
            self.kind = "outer"
        # one-pass batch M2 (sum of squares along the contiguous inner axis), CPU only
        self.one_pass = cpu and post > 1
        # rows: a 2-D (S, N) view; otherwise 3-D (pre, N, post)
        self.vshape, self.bshape = ((pre, n), (n,)) if post == 1 else ((pre, n, post), (1, n, 1))
        self.tmp_nq = torch.empty(n, post, dtype=dtype, device=device) if self.kind == "outer" else None
        self.tmp_pn = torch.empty(rows, n, dtype=dtype, device=device) if post > 1 else None
        self.ncol = torch.tensor(self.counts, dtype=dtype, device=device).unsqueeze(1)

    def view(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` as (S, N) or (pre, N, post): a view when its layout allows, else a contiguous copy."""
        if self.perm is not None:
            x = x.permute(self.perm)
        return x.reshape(self.vshape)

    def chunk(self, v: torch.Tensor, j: int) -> torch.Tensor:
        """Chunk ``j`` of the viewed batch ``v``."""
        if len(self.chunks) == 1:
            return v
        s, e = self.chunks[j]
        return v[s:e] if self.split == 0 else v[:, :, s:e]

    def sum(self, c: torch.Tensor, out: torch.Tensor) -> None:
        """Per-neuron sum of the chunk ``c`` (r, N) or (r, N, post) into ``out`` (N,)."""
        if self.kind == "rows":
            torch.sum(c, 0, out=out)
        elif self.kind == "outer":
            torch.sum(torch.sum(c, 0, out=self.tmp_nq), 1, out=out)
        else:
            torch.sum(c, (0, 2), out=out)

    def extreme(self, c: torch.Tensor, out: torch.Tensor, largest: bool) -> None:
        """Per-neuron max (``largest``) or min of ``c`` into ``out``."""
        op = torch.amax if largest else torch.amin
        if self.kind == "rows":
            op(c, 0, out=out)
        elif self.kind == "outer":
            op(op(c, 0, out=self.tmp_nq), 1, out=out)
        else:
            op(op(c, 2, out=self.tmp_pn[: c.shape[0]]), 0, out=out)

    def sum_sq(self, c: torch.Tensor, out: torch.Tensor) -> None:
        """Per-neuron sum of squares in one read (2-norm along the contiguous inner axis)."""
        t = torch.linalg.vector_norm(c, 2, 2, out=self.tmp_pn[: c.shape[0]])
        torch.sum(t.square_(), 0, out=out)


class _Scratch:
    """A reusable scratch tensor. On CPU, where PyTorch does not cache allocations, a fresh
    activation-sized temporary per batch costs page faults that can exceed the arithmetic, so the
    Recorder keeps one flat buffer (the size of its largest chunk) that all its hooks share; on
    accelerators the caching allocator already makes ``empty_like`` cheap."""

    def __init__(self) -> None:
        self.flat: torch.Tensor | None = None
        self.views: dict[tuple[torch.Size, torch.dtype], torch.Tensor] = {}

    def like(self, v: torch.Tensor) -> torch.Tensor:
        if v.device.type != "cpu":
            return torch.empty_like(v, memory_format=torch.contiguous_format)
        view = self.views.get((v.shape, v.dtype))
        if view is None:
            flat = self.flat
            if flat is None or flat.dtype != v.dtype or flat.numel() < v.numel():
                flat = self.flat = torch.empty(v.numel(), dtype=v.dtype)
                self.views.clear()
            view = self.views[(v.shape, v.dtype)] = flat[: v.numel()].view(v.shape)
        return view

    def clear(self) -> None:
        self.flat = None
        self.views.clear()


# Per-batch partial results, in this order: sum a, M2 (centred sum of squares), sum |a|, max |a|,
# count a > threshold, min a, max a.
_PARTS = ("sum", "m2", "abs", "max_abs", "active", "min", "max")


def _partials(v: torch.Tensor, threshold: torch.Tensor, parts: tuple[str, ...], nonneg: bool) -> torch.Tensor:
    """All partial results of one batch in one pass, for ``torch.compile`` to fuse (``fused=True``).

    ``v`` is (pre, N, post); returns (len(parts), N) in v.dtype. M2 uses the shifted-data formula
    with the batch's first sample c of each neuron as the shift, d = a - c:
    M2 = sum d^2 - (sum d)^2 / n, accurate when c is within a few standard deviations of the mean.
    """
    n = v.shape[0] * v.shape[2]
    out = []
    if "sum" in parts or "m2" in parts:
        c = v[:1, :, :1]  # (1, N, 1)
        d = v - c
        sd = d.sum((0, 2))
        if "sum" in parts:
            out.append(sd + n * c.reshape(-1))
        if "m2" in parts:
            out.append((d * d).sum((0, 2)) - sd * sd / n)
    a = v if nonneg else v.abs()
    if "abs" in parts:
        out.append(a.sum((0, 2)))
    if "max_abs" in parts:
        out.append(a.amax((0, 2)))
    if "active" in parts:
        out.append((v > threshold).to(v.dtype).sum((0, 2)))
    if "min" in parts:
        out.append(v.amin((0, 2)))
    if "max" in parts:
        out.append(v.amax((0, 2)))
    return torch.stack(out)


_compiled_partials: Callable[..., torch.Tensor] | None = None


def _fused_partials() -> Callable[..., torch.Tensor]:
    global _compiled_partials
    if _compiled_partials is None:
        _compiled_partials = torch.compile(_partials, dynamic=True)
    return _compiled_partials


class _Accumulator:
    """Per-neuron totals of one site (float64) and a block of pending per-batch partial results."""

    _TOTALS = ("mean", "m2", "sum", "abs_sum", "max_abs", "active", "min", "max")

    def __init__(
        self, size: int, device: torch.device, dtype: torch.dtype, stats: frozenset[str], nonneg: bool
    ) -> None:
        def full(value: float, wanted: bool) -> torch.Tensor | None:
            return torch.full((size,), value, dtype=torch.float64, device=device) if wanted else None

        self.size, self.dtype, self.nonneg = size, dtype, nonneg
        self.n = 0  # samples per neuron merged into the totals
        self.var = "var" in stats
        self.mean = full(0.0, self.var)
        self.m2 = full(0.0, self.var)
        self.sum = full(0.0, "mean" in stats and not self.var)
        self.abs_sum = full(0.0, "mean_abs" in stats)
        self.max_abs = full(0.0, "max_abs" in stats)
        self.active = full(0.0, "frac_active" in stats)  # integer counts, exact up to 2**53
        self.min = full(math.inf, "min" in stats)
        self.max = full(-math.inf, "max" in stats)

        need = {
            "sum": self.mean is not None or self.sum is not None or (nonneg and self.abs_sum is not None),
            "m2": self.var,
            "abs": self.abs_sum is not None and not nonneg,  # sum |a| = sum a when a >= 0
            "max_abs": self.max_abs is not None,
            "active": self.active is not None,
            "min": self.min is not None,
            "max": self.max is not None,
        }
        self.parts = tuple(p for p in _PARTS if need[p])
        self.slot = {p: i for i, p in enumerate(self.parts)}
        slot = self.slot.get
        self.i_sum, self.i_m2, self.i_abs, self.i_max_abs, self.i_active, self.i_min, self.i_max = (
            slot(p, -1) for p in _PARTS
        )
        self.abs_pass = not nonneg and (self.i_abs >= 0 or self.i_max_abs >= 0)
        self.threshold: torch.Tensor | None = None  # 0-d, for the fused path
        self.counts: list[int] = []  # samples of each pending row
        self._allocate(max(1, min(_BLOCK, _BLOCK_ELEMENTS // max(size * len(self.parts), 1))), device)

    def _allocate(self, block: int, device: torch.device) -> None:
        self.block = block
        self.pending = torch.empty(block, len(self.parts), self.size, dtype=self.dtype, device=device)
        self.rows = [self.pending[i].unbind(0) for i in range(block)]  # views of each row's parts

    def update(self, v: torch.Tensor, plan: _Plan, threshold: float, scratch: _Scratch) -> None:
        """Reduce one batch ``v`` (see ``_Plan.view``), in its own dtype, into pending rows (one a chunk)."""
        m = len(plan.chunks)
        if m == 1 and plan.kind == "rows":
            self._update_rows(v, plan.counts[0], threshold, scratch)
            return
        if len(self.counts) + m > self.block:
            self.flush()
            if m > self.block:
                self._allocate(m, v.device)
        k = len(self.counts)
        one_pass = self.var and plan.one_pass
        i_sum, i_m2, i_active = self.i_sum, self.i_m2, self.i_active
        for j in range(m):
            c = plan.chunk(v, j)
            r = self.rows[k + j]
            nc = plan.counts[j]
            if i_sum >= 0:
                plan.sum(c, r[i_sum])
                if one_pass:  # the sum of squares, turned into M2 (or redone two-pass) below
                    plan.sum_sq(c, r[i_m2])
                elif self.var:
                    self._two_pass(c, plan, r, nc, scratch)
            if self.abs_pass:
                a = torch.abs(c, out=scratch.like(c))
                if self.i_abs >= 0:
                    plan.sum(a, r[self.i_abs])
                if self.i_max_abs >= 0:
                    plan.extreme(a, r[self.i_max_abs], largest=True)
            elif self.i_max_abs >= 0:  # non-negative outputs: max |a| = max a
                plan.extreme(c, r[self.i_max_abs], largest=True)
            if i_active >= 0:
                # A comparison into the float scratch is several times faster than into a bool tensor.
                hits = torch.gt(c, threshold, out=scratch.like(c))
                if nc <= _EXACT_COUNT:
                    plan.sum(hits, r[i_active])
                else:  # too many samples for exact float32 counting: count in float64, now
                    r[i_active].zero_()
                    self.active.add_(hits.sum(0 if plan.kind == "rows" else (0, 2), dtype=torch.float64))
            if self.i_min >= 0:
                plan.extreme(c, r[self.i_min], largest=False)
            if self.i_max >= 0:
                plan.extreme(c, r[self.i_max], largest=True)
        if one_pass and not self._one_pass_m2(k, plan):
            for j in range(m):
                self._two_pass(plan.chunk(v, j), plan, self.rows[k + j], plan.counts[j], scratch)
        self.counts.extend(plan.counts)
        if len(self.counts) == self.block:
            self.flush()

    def _update_rows(self, v: torch.Tensor, nb: int, threshold: float, scratch: _Scratch) -> None:
        """``update`` for one (S, N) batch reduced over dim 0 (Linear outputs): the same ops, inlined."""
        r = self.rows[len(self.counts)]
        buf = scratch.like(v)
        if self.i_sum >= 0:
            s1 = torch.sum(v, 0, out=r[self.i_sum])
            if self.var:  # two-pass, see _two_pass
                torch.sum(torch.sub(v, s1 / nb, out=buf).square_(), 0, out=r[self.i_m2])
        if self.abs_pass:
            a = torch.abs(v, out=buf)
            if self.i_abs >= 0:
                torch.sum(a, 0, out=r[self.i_abs])
            if self.i_max_abs >= 0:
                torch.amax(a, 0, out=r[self.i_max_abs])
        elif self.i_max_abs >= 0:
            torch.amax(v, 0, out=r[self.i_max_abs])
        if self.i_active >= 0:
            hits = torch.gt(v, threshold, out=buf)
            if nb <= _EXACT_COUNT:
                torch.sum(hits, 0, out=r[self.i_active])
            else:
                r[self.i_active].zero_()
                self.active.add_(hits.sum(0, dtype=torch.float64))
        if self.i_min >= 0:
            torch.amin(v, 0, out=r[self.i_min])
        if self.i_max >= 0:
            torch.amax(v, 0, out=r[self.i_max])
        self.counts.append(nb)
        if len(self.counts) == self.block:
            self.flush()

    def _one_pass_m2(self, k: int, plan: _Plan) -> bool:
        """Turn the sums of squares of rows k.. into M2 = sum(a^2) - (sum a)^2 / n, when accurate.

        The shortcut loses about eps * sum(a^2) / M2 in relative accuracy, so it is kept only when
        sum(a^2) <= 16 * M2 for every neuron and chunk (relative error below ~1e-5 in float32);
        otherwise the caller recomputes M2 two-pass (constant non-zero neurons fail the test, so they
        keep exactly zero variance; all-zero neurons pass it with M2 = 0).
        """
        m = len(plan.chunks)
        if m == 1:
            s1, s2, n = self.rows[k][self.i_sum], self.rows[k][self.i_m2], plan.counts[0]
        else:
            s1, s2 = self.pending[k : k + m, self.i_sum], self.pending[k : k + m, self.i_m2]
            n = plan.ncol  # (chunks, 1) samples per chunk
        m2 = s2 - s1 * s1 / n
        if not bool((s2 <= _ONE_PASS_COND * m2).all()):
            return False
        s2.copy_(m2)
        return True

    @staticmethod
    def _two_pass(
        c: torch.Tensor, plan: _Plan, r: Sequence[torch.Tensor], nc: int, scratch: _Scratch
    ) -> None:
        """M2 of chunk ``c`` as the sum of squared deviations from its mean (s1 / nc, not s1 * (1 / nc):
        the division keeps constant neurons exactly at zero variance)."""
        i_sum, i_m2 = r[0], r[1]  # "sum" and "m2" are the first two parts whenever var is kept
        dev = torch.sub(c, (i_sum / nc).view(plan.bshape), out=scratch.like(c))
        plan.sum(dev.square_(), i_m2)

    def update_fused(self, v3: torch.Tensor, nb: int, threshold: float) -> None:
        """The same partial results from one compiled kernel; ``v3`` is (pre, N, post)."""
        if self.threshold is None:
            self.threshold = torch.tensor(threshold, dtype=v3.dtype, device=v3.device)
        self.pending[len(self.counts)].copy_(_fused_partials()(v3, self.threshold, self.parts, self.nonneg))
        self._advance(nb)

    def _advance(self, nb: int) -> None:
        self.counts.append(nb)
        if len(self.counts) == self.block:
            self.flush()

    def flush(self) -> None:
        """Merge the pending rows into the float64 totals (Chan et al. for mean/M2)."""
        k = len(self.counts)
        if k == 0:
            return
        n_b = sum(self.counts)
        block = self.pending[:k].to(torch.float64)  # (k, parts, N)

        def part(name: str) -> torch.Tensor:
            return block[:, self.slot[name]]

        if "sum" in self.slot:
            s = part("sum")
            total = s.sum(0)
            if self.var:
                nk = torch.tensor(self.counts, dtype=torch.float64, device=s.device).unsqueeze(1)
                mean_b = total / n_b
                m2_b = part("m2").sum(0) + (nk * (s / nk - mean_b).square()).sum(0)
                n = self.n + n_b
                delta = mean_b - self.mean
                self.mean.add_(delta, alpha=n_b / n)
                self.m2.add_(m2_b).addcmul_(delta, delta, value=self.n * n_b / n)
            elif self.sum is not None:
                self.sum.add_(total)
        if self.abs_sum is not None:
            self.abs_sum.add_(part("sum" if self.nonneg else "abs").sum(0))
        if self.max_abs is not None:
            torch.maximum(self.max_abs, part("max_abs").amax(0), out=self.max_abs)
        if self.active is not None:
            self.active.add_(part("active").sum(0))
        if self.min is not None:
            torch.minimum(self.min, part("min").amin(0), out=self.min)
        if self.max is not None:
            torch.maximum(self.max, part("max").amax(0), out=self.max)
        self.n += n_b
        self.counts.clear()

    def totals(self) -> dict[str, torch.Tensor]:
        self.flush()
        return {k: getattr(self, k) for k in self._TOTALS if getattr(self, k) is not None}


class _StatsView(Mapping[str, dict[str, torch.Tensor]]):
    """Read-only ``{site name: {stat: Tensor(N,)}}``, computed from the accumulators on access."""

    def __init__(self, recorder: Recorder) -> None:
        self._rec = recorder

    def __getitem__(self, name: str) -> dict[str, torch.Tensor]:
        acc = self._rec._acc.get(name)
        if acc is None:
            if name in self._rec._site_names:
                raise KeyError(
                    f"site {name!r} has recorded no samples yet: run forward passes while the Recorder "
                    "is attached (inside `with recorder:`)"
                )
            raise KeyError(f"{name!r} is not a recorded site; recorded sites: {self._rec._site_names}")
        return self._rec._finalize(acc)

    def __iter__(self) -> Iterator[str]:
        return (n for n in self._rec._site_names if n in self._rec._acc)

    def __len__(self) -> int:
        return len(self._rec._acc)


class Recorder:
    """Streaming per-neuron statistics of the outputs of ``sites`` (forward hooks).

    Args:
        model: the network; it is not modified (hooks only, removed on exit, also on error).
        sites: a Site, a glob pattern, or a list of them (see :func:`find_sites`).
        stats: which statistics to keep, from ``STATS``: "count", "mean", "mean_abs"
            (mean of |a|), "max_abs", "frac_active" (fraction of samples with a > threshold),
            "var" (population variance, Chan et al. merge), "min", "max". Only these are computed.
        threshold: the activity threshold of "frac_active".
        axis: neuron axis for sites given as patterns (default: inferred per module type).
        fused: compute each batch's partial results in one ``torch.compile``-d kernel (one read of
            the activation instead of several passes; several times faster on large feature maps).
            Needs a working compiler (a C++ toolchain on CPU, Triton on GPU); the first batch of a
            new dtype or set of stats compiles for seconds. Falls back to eager with a warning.

    Use as ``with Recorder(model, "encoder.*") as rec: model(x)`` then ``rec.stats[name]``: a dict
    of float64 tensors of shape (N,), plus ``"count"``, a 0-d int64 tensor (samples per neuron).
    ``attach()``/``detach()`` do the same without a ``with`` block. Hooks fire in registration
    order: a Recorder attached after an intervention on the same site sees the intervened output.
    """

    def __init__(
        self,
        model: nn.Module,
        sites: Site | str | Iterable[Site | str],
        stats: Sequence[str] = _DEFAULT_STATS,
        threshold: float = 0.0,
        axis: int | None = None,
        fused: bool = False,
    ) -> None:
        if isinstance(stats, str):
            stats = (stats,)
        unknown = [s for s in stats if s not in STATS]
        if unknown:
            raise ValueError(f"Recorder: unknown stats {unknown}; expected a subset of {STATS}")
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise TypeError(f"Recorder: threshold must be a number, got {type(threshold).__name__}")
        self.model = model
        self.sites: list[Site] = resolve_sites(model, sites, axis=axis)
        self.stat_names: tuple[str, ...] = tuple(dict.fromkeys(("count", *stats)))
        if self.stat_names == ("count",):
            raise ValueError("Recorder: stats must name at least one statistic besides 'count'")
        self.threshold = float(threshold)
        self._stats = frozenset(self.stat_names)
        self._site_names = [s.name for s in self.sites]
        self._acc: dict[str, _Accumulator] = {}
        self._scratch = _Scratch()
        self._fused = bool(fused)
        self._handles: list[RemovableHandle] = []
        self._plans: dict[str, dict[tuple[Any, ...], _Plan]] = {}

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def attached(self) -> bool:
        return bool(self._handles)

    def attach(self) -> Self:
        """Register one forward hook per site. Attaching an attached Recorder is an error."""
        if self._handles:
            raise RuntimeError("Recorder is already attached; detach() it first")
        try:
            for site in self.sites:
                self._handles.append(site.module.register_forward_hook(self._make_hook(site)))
        except Exception:
            self.detach()
            raise
        return self

    def detach(self) -> None:
        """Remove every hook (idempotent). Recorded statistics are kept; scratch memory is freed."""
        while self._handles:
            self._handles.pop().remove()
        self._scratch.clear()

    def __enter__(self) -> Self:
        return self.attach()

    def __exit__(self, *exc: object) -> None:
        self.detach()

    def reset(self) -> None:
        """Forget all recorded statistics (hooks stay as they are)."""
        self._acc.clear()

    # -- recording ---------------------------------------------------------------------------
    def _make_hook(self, site: Site):  # noqa: ANN202 - torch hook signature
        name, axis, threshold, want = site.name, site.axis, self.threshold, self._stats
        nonneg = type(site.module) in _NONNEGATIVE
        scratch = self._scratch
        plans = self._plans.setdefault(name, {})  # (shape, strides, dtype, device) -> _Plan
        # full passes over the output per batch: chunking pays off only when there are several
        signed_abs = not nonneg and bool(want & {"mean_abs", "max_abs"})
        passes = (bool(want & {"mean", "var", "mean_abs"}) + ("var" in want) + 3 * signed_abs
                  + (nonneg and "max_abs" in want) + 2 * ("frac_active" in want) + ("min" in want)
                  + ("max" in want))
        chunked = passes >= 3

        def hook(module: nn.Module, args: Any, output: Any) -> None:
            x = first_tensor(output, name).detach()
            acc = self._acc.get(name)
            dtype = x.dtype if acc is None else acc.dtype
            if dtype not in _REDUCE_DTYPES:
                dtype = torch.float32
            if x.dtype != dtype:
                x = x.to(dtype)
            key = (x.shape, x.stride(), dtype, x.device)
            plan = plans.get(key)
            if plan is None:
                if len(plans) >= _MAX_PLANS:  # many distinct shapes (e.g. sequence lengths): start over
                    plans.clear()
                plan = plans[key] = _Plan(x, axis, name, chunked)
            pre, size, post = plan.shape3
            nb = pre * post
            if nb == 0 or size == 0:
                return
            if acc is None:
                acc = self._acc[name] = _Accumulator(size, x.device, dtype, want, nonneg)
            elif acc.size != size:
                raise ValueError(
                    f"Recorder: site {name!r} had {acc.size} neurons along axis {axis}, now {size} "
                    f"(output shape {tuple(x.shape)})"
                )
            v = plan.view(x)
            if self._fused and nb <= _EXACT_COUNT:
                try:
                    acc.update_fused(v.view(plan.shape3), nb, threshold)
                    return
                except Exception as e:  # no compiler, unsupported backend...: fall back, once, loudly
                    self._fused = False
                    warnings.warn(
                        f"Recorder(fused=True): torch.compile failed ({type(e).__name__}: {e}); "
                        "using the eager reductions",
                        RuntimeWarning,
                        stacklevel=2,
                    )
            acc.update(v, plan, threshold, scratch)

        return hook

    # -- results -----------------------------------------------------------------------------
    @property
    def stats(self) -> Mapping[str, dict[str, torch.Tensor]]:
        """``{site name: {stat: Tensor(N,)}}`` for every site that has seen samples."""
        return _StatsView(self)

    def _finalize(self, acc: _Accumulator) -> dict[str, torch.Tensor]:
        t = acc.totals()
        n = acc.n
        out: dict[str, torch.Tensor] = {}
        for s in self.stat_names:
            if s == "count":
                out[s] = torch.tensor(n, dtype=torch.int64)
            elif s == "mean":
                out[s] = t["mean"].clone() if acc.var else t["sum"] / n
            elif s == "var":
                out[s] = (t["m2"] / n).clamp_min_(0.0)  # rounding can leave -eps for constant neurons
            elif s == "mean_abs":
                out[s] = t["abs_sum"] / n
            elif s == "frac_active":
                out[s] = t["active"] / n
            else:  # max_abs, min, max
                out[s] = t[s].clone()
        return out

    # -- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The float64 totals, so recording can resume after a checkpoint (see ``save_state``)."""
        sites = {}
        for name, acc in self._acc.items():
            totals = {k: v.clone() for k, v in acc.totals().items()}  # flushes pending rows into n
            dtype = str(acc.dtype).removeprefix("torch.")
            sites[name] = {"n": acc.n, "size": acc.size, "dtype": dtype, **totals}
        return {"stats": list(self.stat_names), "threshold": self.threshold, "sites": sites}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore totals saved by :meth:`state_dict` (same sites, stats and threshold)."""
        if list(state.get("stats", ())) != list(self.stat_names) or state.get("threshold") != self.threshold:
            raise ValueError(
                f"Recorder.load_state_dict: state has stats={state.get('stats')} "
                f"threshold={state.get('threshold')}, this Recorder has stats={list(self.stat_names)} "
                f"threshold={self.threshold}"
            )
        unknown = set(state["sites"]) - set(self._site_names)
        if unknown:
            raise ValueError(
                f"Recorder.load_state_dict: unknown sites {sorted(unknown)}; have {self._site_names}"
            )
        nonneg = {s.name: type(s.module) in _NONNEGATIVE for s in self.sites}
        restored: dict[str, _Accumulator] = {}
        for name, entry in state["sites"].items():
            device = next(v.device for v in entry.values() if isinstance(v, torch.Tensor))
            acc = _Accumulator(int(entry["size"]), device, getattr(torch, entry["dtype"]), self._stats,
                               nonneg[name])
            acc.n = int(entry["n"])
            for k, v in acc.totals().items():
                if k not in entry or tuple(entry[k].shape) != tuple(v.shape):
                    raise ValueError(f"Recorder.load_state_dict: site {name!r}: missing or misshapen {k!r}")
                v.copy_(entry[k])
            restored[name] = acc
        self._acc = restored

    def __repr__(self) -> str:
        return (
            f"Recorder(sites={self._site_names}, stats={list(self.stat_names)}, "
            f"threshold={self.threshold}, attached={self.attached})"
        )
