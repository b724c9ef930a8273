"""Speed race: Linear -> LIF, forward + backward, side by side in one process.

The Open Neuromorphic SNN library benchmark (open-neuromorphic.github.io, "SNN library
benchmarks", 2023: one Linear(n, n) and one LIF layer, batch 16, 500 steps, loss = sum of the
output spikes, backward), scaled to a small CPU: T in {100, 500}, n in {1024, 4096}.

Contestants (each written the way its library's own benchmark entry writes it):

- ``neuroplast``: ``nn.Sequential(nn.Linear, LIF(beta=0.95))`` on ``[T, B, n]``, fused kernel.
- ``snntorch``: ``Leaky(beta=0.95)`` with the Linear inside the Python time loop (the ON entry).
- ``snntorch-seq``: ``Linear`` on the whole ``[T, B, n]`` first, then the ``Leaky`` time loop
  (what a careful snnTorch user would write; reported for fairness).
- ``spikingjelly``: ``layer.Linear`` + ``neuron.LIFNode(tau=2, ATan, step_mode="m")``, CPU path
  of the installed version (``functional.reset_net`` before each forward).
- ``norse``: ``SequentialState(nn.Linear, LIF())`` (current-based LIF, norse defaults).

Timing: every library is built once per size, warmed up once, then the libraries are timed in
interleaved rounds (so load on a shared machine hits all of them alike) and the median per
library is reported, with ratios ``time(peer) / time(neuroplast)`` from the same process. A
contestant more than 8x slower than neuroplast in the first round is timed in that round only.
Peak memory: extra resident memory above the pre-call baseline during a forward+backward, max over
rounds (Linux ``VmHWM`` after resetting it via ``/proc/self/clear_refs``; large allocations are
forced to ``mmap`` so freed memory returns to the OS between measurements).

Usage: ``python benchmarks/bench_spiking.py [--quick] [--sizes 100x1024,500x4096] [--repeats 3]
[--json out.json]``. Peers are optional: a library that cannot be imported is skipped and said so.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

BATCH = 16
BETA = 0.95


def _malloc_setup() -> None:
    """Large blocks via mmap (returned to the OS on free), so RSS peaks are per measurement."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        libc.mallopt(M_MMAP_THRESHOLD, 1 << 16)
        libc.mallopt(M_TRIM_THRESHOLD, 1 << 16)
    except OSError:
        pass


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# ----------------------------------------------------------------------------- contestants


def make_neuroplast(n: int) -> tuple[nn.Module, Callable[[nn.Module, torch.Tensor], torch.Tensor]]:
    from neuroplast.neurons.spiking import LIF

    model = nn.Sequential(nn.Linear(n, n), LIF(beta=BETA, threshold=1.0, reset="subtract"))
    return model, lambda m, x: m(x)


def make_neuroplast_ops(n: int) -> tuple[nn.Module, Callable[[nn.Module, torch.Tensor], torch.Tensor]]:
    """The same layer through the op-by-op fused path (``backend="torch"``): on CUDA, what the
    Triton kernels replace."""
    from neuroplast.neurons.spiking import LIFParams, lif_multistep

    params = LIFParams(beta=BETA, threshold=1.0, reset="subtract")
    model = nn.Linear(n, n)
    return model, lambda m, x: lif_multistep(m(x), None, params, backend="torch")[0]


def make_snntorch(n: int) -> tuple[nn.Module, Callable[[nn.Module, torch.Tensor], torch.Tensor]]:
    import snntorch

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(n, n)
            self.lif = snntorch.Leaky(beta=BETA)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            mem = self.lif.init_leaky()
            out = []
            for inp in x:
                spk, mem = self.lif(self.fc(inp), mem)
                out.append(spk)
            return torch.stack(out)

    return Model(), lambda m, x: m(x)


def make_snntorch_seq(n: int) -> tuple[nn.Module, Callable[[nn.Module, torch.Tensor], torch.Tensor]]:
    import snntorch

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(n, n)
            self.lif = snntorch.Leaky(beta=BETA)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            cur = self.fc(x)
            mem = self.lif.init_leaky()
            out = []
            for c in cur:
                spk, mem = self.lif(c, mem)
                out.append(spk)
            return torch.stack(out)

    return Model(), lambda m, x: m(x)


def make_spikingjelly(n: int) -> tuple[nn.Module, Callable[[nn.Module, torch.Tensor], torch.Tensor]]:
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    model = nn.Sequential(
        layer.Linear(n, n, step_mode="m"),
        neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan(), step_mode="m"),
    )

    def fwd(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        functional.reset_net(m)
        return m(x)

    return model, fwd


def make_norse(n: int) -> tuple[nn.Module, Callable[[nn.Module, torch.Tensor], torch.Tensor]]:
    from norse.torch import LIF, SequentialState

    model = SequentialState(nn.Linear(n, n), LIF())
    return model, lambda m, x: m(x)[0]


CONTESTANTS: dict[str, Callable[[int], Any]] = {
    "neuroplast": make_neuroplast,
    "snntorch": make_snntorch,
    "snntorch-seq": make_snntorch_seq,
    "spikingjelly": make_spikingjelly,
    "norse": make_norse,
}
# CUDA only (``--device cuda`` adds it): our op-by-op path, for the gain of the Triton kernels.
# (SpikingJelly 2 picks its own CUDA/Triton kernels by device.)
CUDA_CONTESTANTS: dict[str, Callable[[int], Any]] = {"neuroplast-ops": make_neuroplast_ops}


def _version(lib: str) -> str:
    mod = {"neuroplast": "neuroplast", "neuroplast-ops": "neuroplast", "snntorch": "snntorch",
           "snntorch-seq": "snntorch", "spikingjelly": "spikingjelly",
           "norse": "norse"}[lib]
    try:
        m = __import__(mod)
        v = getattr(m, "__version__", None)
        if v is None:
            from importlib.metadata import version

            v = version(mod)
        return str(v)
    except Exception:  # pragma: no cover - informational only
        return "?"


# ----------------------------------------------------------------------------- measurement


Forward = Callable[[nn.Module, torch.Tensor], torch.Tensor]


def _one_pass(model: nn.Module, fwd: Forward, x: torch.Tensor) -> tuple[float, float]:
    """One forward + backward: (seconds, peak extra memory in MB above the pre-call baseline;
    resident memory on CPU, allocated device memory on CUDA)."""
    for p in model.parameters():
        p.grad = None
    gc.collect()
    cuda = x.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        have_peak = True
    else:
        base = _rss_kb("VmRSS")
        have_peak = _reset_peak()
    t0 = time.perf_counter()
    out = fwd(model, x)
    out.sum().backward()
    if cuda:
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    if cuda:
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak = (_rss_kb("VmHWM") - base) / 1024.0 if have_peak else float("nan")
    del out
    return dt, peak


def run_size(
    T: int, n: int, libs: list[str], repeats: int, slow_factor: float = 8.0, device: str = "cpu"
) -> dict[str, dict[str, float]]:
    """Time ``libs`` on ``[T, 16, n]`` inputs in interleaved rounds after one warm-up pass each.
    A contestant more than ``slow_factor`` times slower than neuroplast in the first round is
    not timed again (its ratio is not in doubt and its passes would take most of the budget)."""
    torch.manual_seed(0)
    x = torch.randn(T, BATCH, n, device=device)
    built: dict[str, Any] = {}
    for lib in libs:
        torch.manual_seed(0)
        model, fwd = CONTESTANTS[lib](n)
        model = model.to(device)
        _one_pass(model, fwd, x)  # warm-up (allocations, lazy init, kernel compilation)
        built[lib] = (model, fwd)
    times: dict[str, list[float]] = {lib: [] for lib in libs}
    peaks: dict[str, list[float]] = {lib: [] for lib in libs}
    for k in range(repeats):
        for lib in libs:
            if k > 0 and times[lib][0] > slow_factor * times["neuroplast"][0]:
                continue
            model, fwd = built[lib]
            dt, peak = _one_pass(model, fwd, x)
            times[lib].append(dt)
            peaks[lib].append(peak)
    res = {}
    for lib in libs:
        res[lib] = {"time_s": statistics.median(times[lib]), "min_s": min(times[lib]),
                    "rounds": len(times[lib]), "peak_mb": max(peaks[lib])}
    del built
    gc.collect()
    return res


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="100x1024,100x4096,500x1024,500x4096",
                    help="comma-separated TxN list")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="T=100, n=1024, 2 repeats")
    ap.add_argument("--libs", default=",".join(CONTESTANTS))
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--device", default="cpu", help="cpu (the race) or cuda (for information)")
    args = ap.parse_args(argv)
    if args.device == "cuda":
        CONTESTANTS.update(CUDA_CONTESTANTS)
        if args.libs == ap.get_default("libs"):
            args.libs = ",".join(CONTESTANTS)
    if args.quick:
        args.sizes, args.repeats = "100x1024", 2
    _malloc_setup()
    libs = []
    for lib in args.libs.split(","):
        try:
            model, fwd = CONTESTANTS[lib](8)
            if args.device == "cuda":  # a kernel that cannot build is found here, not mid-race
                fwd(model.to(args.device), torch.randn(2, BATCH, 8, device=args.device)).sum().backward()
            libs.append(lib)
        except Exception as e:  # a missing peer is reported, not fatal
            print(f"skipping {lib}: {type(e).__name__}: {e}", file=sys.stderr)
    if "neuroplast" not in libs:
        raise SystemExit("neuroplast must be importable")
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    info = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": platform.processor()
            or platform.machine(), "batch": BATCH, "device": args.device,
            "versions": {lib: _version(lib) for lib in libs}}
    print(f"# torch {info['torch']}, {info['threads']} threads, device {args.device}, batch {BATCH}; " +
          ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
    results: dict[str, Any] = {"info": info, "sizes": {}}
    header = "| T | n | library | time (s) | time / neuroplast | peak extra memory (MB) |"
    print(header)
    print("|---|---|---|---|---|---|")
    for T, n in sizes:
        res = run_size(T, n, libs, args.repeats, device=args.device)
        base = res["neuroplast"]["time_s"]
        for lib in libs:
            r = res[lib]
            r["ratio"] = r["time_s"] / base
            print(f"| {T} | {n} | {lib} | {r['time_s']:.3f} | {r['ratio']:.2f} | {r['peak_mb']:.0f} |",
                  flush=True)
        results["sizes"][f"{T}x{n}"] = res
    # targets: >= 2x faster than snnTorch, at least as fast as the faster of SpikingJelly and norse
    print("\nTargets:")
    for key, res in results["sizes"].items():
        msgs = []
        if "snntorch" in res:
            r = res["snntorch"]["ratio"]
            msgs.append(f"snnTorch x{r:.2f} ({'ok' if r >= 2 else 'MISS'})")
        peers = [res[p]["ratio"] for p in ("spikingjelly", "norse") if p in res]
        if peers:
            msgs.append(f"fastest of SJ/norse x{min(peers):.2f} ({'ok' if min(peers) >= 1 else 'MISS'})")
        print(f"  {key}: " + ", ".join(msgs))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    os.environ.setdefault("CI", "true")
    main()
