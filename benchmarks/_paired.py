"""Paired side-by-side timing shared by the overhead benchmarks (bench_recorder, bench_dendrites, ...).

A benchmark names its *arms* (a step function, and a context entered around each block, outside the
timing): one baseline and one or more variants. ``interleave`` runs the arms in blocks of
``steps`` steps, all arms once per round, with the order changing every round (``"reverse"``: the
names in order on even rounds and reversed on odd rounds; ``"rotate"``: rotated by one every round),
so that drifts in machine load hit every arm alike. A block's time is its wall-clock and process CPU
time per step. ``Paired.of`` compares a variant with the baseline: each variant block is divided by
the baseline block of the same round, and the median and the quartiles of these paired ratios are
reported (with the medians of the block times in ms):

    ratio = median_i (t_variant[i] / t_base[i]),  IQR = (Q1, Q3) of the same ratios
    (``statistics.quantiles``, exclusive method).

The CLI helpers give every script the same ``--quick/--threads/--out/--system-malloc`` flags, the run
metadata and the JSON layout ``{"meta": {...}, "results": [...]}``. By default glibc malloc keeps freed
memory in the process (:func:`steady_allocator`): with its default thresholds a step can spend a
quarter of its time page-faulting its activations back in, and whether a variant's extra allocations
stop the heap being trimmed moved ratios by up to 0.4 between runs.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch

Clock = Callable[[], float]
Times = list[tuple[float, float]]  # (wall s/step, cpu s/step) per block


@dataclass(frozen=True)
class Arm:
    """One side of a comparison: ``step()`` is timed; ``context()`` is entered around each block
    (attaching hooks, a Recorder, ...) and is not timed."""

    step: Callable[[], None]
    context: Callable[[], AbstractContextManager[Any]] = nullcontext


def time_block(
    step: Callable[[], None],
    n: int,
    device: torch.device | None = None,
    clocks: tuple[Clock, Clock] = (time.perf_counter, time.process_time),
) -> tuple[float, float]:
    """Run ``step`` n times; return the (wall, CPU) seconds per step. On CUDA the device is
    synchronised before and after so that queued kernels are counted."""
    if n < 1:
        raise ValueError(f"n: expected a positive number of steps, got {n}")
    wall, cpu = clocks
    cuda = device is not None and device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
    w0, c0 = wall(), cpu()
    for _ in range(n):
        step()
    if cuda:
        torch.cuda.synchronize(device)
    return (wall() - w0) / n, (cpu() - c0) / n


def block_order(names: Sequence[str], i: int, scheme: str = "reverse") -> list[str]:
    """The order of the arms in round i: ``"reverse"`` (forward on even rounds, reversed on odd
    ones) or ``"rotate"`` (``names[i % n:] + names[:i % n]``). For two arms both alternate."""
    names = list(names)
    if scheme == "reverse":
        return names if i % 2 == 0 else names[::-1]
    if scheme == "rotate":
        k = i % len(names)
        return names[k:] + names[:k]
    raise ValueError(f"scheme: expected 'reverse' or 'rotate', got {scheme!r}")


def warm_up(
    arms: Mapping[str, Arm], rounds: int, steps: int = 1, device: torch.device | None = None
) -> None:
    """Run every arm (in its context) ``steps`` steps, ``rounds`` times, arms in the given order."""
    for _ in range(rounds):
        for arm in arms.values():
            with arm.context():
                time_block(arm.step, steps, device)


def interleave(
    arms: Mapping[str, Arm],
    blocks: int,
    steps: int,
    *,
    scheme: str = "reverse",
    before_block: Callable[[], None] | None = None,
    device: torch.device | None = None,
    clocks: tuple[Clock, Clock] = (time.perf_counter, time.process_time),
) -> dict[str, Times]:
    """Time the arms in ``blocks`` rounds of one block each (order from ``block_order``). Before
    each block ``before_block()`` runs (e.g. restoring weights), then the arm's context is entered;
    neither is timed. Returns the per-step (wall, CPU) seconds of every block, per arm."""
    if blocks < 2:
        raise ValueError(f"blocks: expected at least 2 (for the quartiles), got {blocks}")
    if len(arms) < 2:
        raise ValueError(f"arms: expected a baseline and at least one variant, got {list(arms)}")
    times: dict[str, Times] = {k: [] for k in arms}
    for i in range(blocks):
        for k in block_order(list(arms), i, scheme):
            if before_block is not None:
                before_block()
            with arms[k].context():
                times[k].append(time_block(arms[k].step, steps, device, clocks))
    return times


def _iqr(sorted_ratios: list[float]) -> list[float]:
    q = statistics.quantiles(sorted_ratios)
    return [q[0], q[2]]


@dataclass(frozen=True)
class Paired:
    """A variant against the baseline: block-time medians (ms) and paired ratios (median, IQR)."""

    base_wall_ms: float
    wall_ms: float
    ratio_wall: float
    ratio_wall_iqr: list[float]
    base_cpu_ms: float
    cpu_ms: float
    ratio_cpu: float
    ratio_cpu_iqr: list[float]

    @classmethod
    def of(cls, base: Times, variant: Times) -> Paired:
        if len(base) != len(variant) or len(base) < 2:
            raise ValueError(
                "base, variant: expected the same number (>= 2) of blocks, "
                f"got {len(base)} and {len(variant)}"
            )
        pw = sorted(v[0] / b[0] for v, b in zip(variant, base, strict=True))
        pc = sorted(v[1] / b[1] for v, b in zip(variant, base, strict=True))
        return cls(
            base_wall_ms=1e3 * statistics.median(b[0] for b in base),
            wall_ms=1e3 * statistics.median(v[0] for v in variant),
            ratio_wall=statistics.median(pw), ratio_wall_iqr=_iqr(pw),
            base_cpu_ms=1e3 * statistics.median(b[1] for b in base),
            cpu_ms=1e3 * statistics.median(v[1] for v in variant),
            ratio_cpu=statistics.median(pc), ratio_cpu_iqr=_iqr(pc),
        )

    def row(self, name: str = "") -> dict[str, Any]:
        """The JSON keys: base_wall_ms, <name>_wall_ms, ratio_wall, ratio_wall_iqr, base_cpu_ms,
        <name>_cpu_ms, ratio_cpu, ratio_cpu_iqr (no prefix when name is empty)."""
        p = f"{name}_" if name else ""
        return {
            "base_wall_ms": self.base_wall_ms, f"{p}wall_ms": self.wall_ms,
            "ratio_wall": self.ratio_wall, "ratio_wall_iqr": self.ratio_wall_iqr,
            "base_cpu_ms": self.base_cpu_ms, f"{p}cpu_ms": self.cpu_ms,
            "ratio_cpu": self.ratio_cpu, "ratio_cpu_iqr": self.ratio_cpu_iqr,
        }


@contextmanager
def entered(objs: Iterable[AbstractContextManager[Any]]):
    """Enter several context managers (e.g. a Recorder and some Clamps) together."""
    with ExitStack() as stack:
        for o in objs:
            stack.enter_context(o)
        yield


# --- command line and output -------------------------------------------------------------------


def steady_allocator() -> bool:
    """Keep freed memory in the process (glibc: no mmap for large blocks, no heap trimming), so steps
    do not page-fault their activations back in. False where there is no glibc ``mallopt``."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, 2**30)) and bool(mallopt(m_trim_threshold, 2**31 - 1))


def parser(doc: str | None) -> argparse.ArgumentParser:
    """An ArgumentParser (description: the docstring's first line) with --quick, --threads, --out and
    --system-malloc."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    p.add_argument("--quick", action="store_true", help="fewer blocks (a smoke run)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--out", default=None, help="write the results as JSON to this path")
    p.add_argument("--system-malloc", action="store_true", help="leave glibc malloc's thresholds as they are")
    return p


def parse(p: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line, apply --threads and (unless --system-malloc) :func:`steady_allocator`;
    ``args.steady_allocator`` says whether the allocator was steadied."""
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.steady_allocator = False if args.system_malloc else steady_allocator()
    return args


def subset(p: argparse.ArgumentParser, flag: str, value: str, choices: Iterable[str]) -> list[str]:
    """A comma-separated subset of ``choices``; an unknown name is a command-line error."""
    choices = list(choices)
    picked = [s for s in value.split(",") if s]
    unknown = set(picked) - set(choices)
    if unknown:
        p.error(f"{flag}: unknown {sorted(unknown)}; choose from {choices}")
    return picked


def banner(blocks: int, steps: int, device: str | None = None, extra: str = "") -> str:
    """``torch V[, device], threads N, B blocks x S steps[extra]``."""
    dev = f", {device}" if device is not None else ""
    return (f"torch {torch.__version__}{dev}, threads {torch.get_num_threads()}, "
            f"{blocks} blocks x {steps} steps{extra}")


def print_table(title: str, header: str, lines: Iterable[str]) -> None:
    print(title)
    print(header)
    print("-" * len(header))
    for line in lines:
        print(line)


def meta(blocks: int, steps: int, **extra: Any) -> dict[str, Any]:
    """Run metadata for the JSON: torch version, threads, machine, processor, blocks, steps (pass
    ``steady_allocator=args.steady_allocator``)."""
    return {"torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.machine(),
            "processor": platform.processor(), "blocks": blocks, "steps_per_block": steps, **extra}


def write_json(path: str | None, info: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """Write ``{"meta": info, "results": rows}`` to path (nothing when path is None)."""
    if path:
        with open(path, "w") as f:
            json.dump({"meta": info, "results": rows}, f, indent=1)
