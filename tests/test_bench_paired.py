"""benchmarks/_paired.py: interleaving order, what is timed, and the paired-ratio arithmetic, with fake
clocks (no real timing)."""

from __future__ import annotations

import importlib.util
import json
import statistics
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "_paired.py"
_spec = importlib.util.spec_from_file_location("_paired", _PATH)
bp = importlib.util.module_from_spec(_spec)
sys.modules["_paired"] = bp  # dataclasses look their module up there
_spec.loader.exec_module(bp)


class FakeClock:
    """A wall clock and a CPU clock that only move when told to (CPU at half the wall rate)."""

    def __init__(self) -> None:
        self.t = 0.0

    def advance(self, dt: float) -> None:
        self.t += dt

    def clocks(self):
        return (lambda: self.t), (lambda: self.t / 2)


def test_block_order_schemes():
    names = ["a", "b", "c"]
    assert [bp.block_order(names, i, "reverse") for i in range(3)] == [
        ["a", "b", "c"], ["c", "b", "a"], ["a", "b", "c"]]
    assert [bp.block_order(names, i, "rotate") for i in range(4)] == [
        ["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]
    for i in range(4):  # two arms: both schemes alternate
        assert bp.block_order(["p", "v"], i, "reverse") == bp.block_order(["p", "v"], i, "rotate")
    with pytest.raises(ValueError, match="scheme"):
        bp.block_order(names, 0, "shuffle")


def test_interleave_order_and_untimed_setup():
    clock = FakeClock()
    log: list[str] = []

    def step_of(name: str, dt: float):
        def step() -> None:
            log.append(name)
            clock.advance(dt)
        return step

    @contextmanager
    def ctx(name: str):
        clock.advance(100.0)  # attaching is not timed
        log.append(f"enter {name}")
        yield
        log.append(f"exit {name}")
        clock.advance(100.0)

    def restore() -> None:
        log.append("restore")
        clock.advance(1000.0)  # restoring is not timed

    arms = {"plain": bp.Arm(step_of("plain", 1.0)), "v": bp.Arm(step_of("v", 3.0), lambda: ctx("v"))}
    times = bp.interleave(arms, blocks=3, steps=2, scheme="rotate", before_block=restore,
                          clocks=clock.clocks())
    assert log == [
        "restore", "plain", "plain", "restore", "enter v", "v", "v", "exit v",  # round 0: plain first
        "restore", "enter v", "v", "v", "exit v", "restore", "plain", "plain",  # round 1: v first
        "restore", "plain", "plain", "restore", "enter v", "v", "v", "exit v",
    ]
    # per-step seconds: wall = dt, CPU = dt / 2; the contexts and the restores are not counted
    assert times == {"plain": [(1.0, 0.5)] * 3, "v": [(3.0, 1.5)] * 3}
    r = bp.Paired.of(times["plain"], times["v"])
    assert (r.base_wall_ms, r.wall_ms, r.base_cpu_ms, r.cpu_ms) == (1000.0, 3000.0, 500.0, 1500.0)
    assert r.ratio_wall == r.ratio_cpu == 3.0
    assert r.ratio_wall_iqr == r.ratio_cpu_iqr == [3.0, 3.0]


def test_paired_ratio_is_per_block_not_ratio_of_medians():
    # base blocks drift 1, 2, 3, 4 s; the variant costs 2x, 1x, 4x, 3x its neighbour: ratios 2, 1, 4, 3
    base = [(1.0, 1.0), (2.0, 2.0), (3.0, 3.0), (4.0, 4.0)]
    var = [(2.0, 2.0), (2.0, 2.0), (12.0, 12.0), (12.0, 12.0)]
    r = bp.Paired.of(base, var)
    assert r.ratio_wall == 2.5  # median of 1, 2, 3, 4
    # exclusive quartiles of 1, 2, 3, 4: positions 1.25 and 3.75 -> 1.25 and 3.75
    assert r.ratio_wall_iqr == pytest.approx([1.25, 3.75])
    assert r.base_wall_ms == pytest.approx(2500.0) and r.wall_ms == pytest.approx(7000.0)
    # the ratio of the medians would be 2.8: the paired median differs
    assert r.wall_ms / r.base_wall_ms == pytest.approx(2.8)
    assert list(r.row("rec")) == ["base_wall_ms", "rec_wall_ms", "ratio_wall", "ratio_wall_iqr",
                                  "base_cpu_ms", "rec_cpu_ms", "ratio_cpu", "ratio_cpu_iqr"]
    assert "wall_ms" in r.row() and "cpu_ms" in r.row()
    with pytest.raises(ValueError, match="base, variant"):
        bp.Paired.of(base, var[:3])


def test_quartiles_match_statistics_on_uneven_ratios():
    base = [(1.0, 2.0)] * 7
    ratios = [1.3, 0.9, 1.1, 1.7, 1.0, 1.2, 1.05]
    var = [(q, 2.0 * q) for q in ratios]
    r = bp.Paired.of(base, var)
    q = statistics.quantiles(sorted(ratios))
    assert r.ratio_wall == pytest.approx(1.1) and r.ratio_cpu == pytest.approx(1.1)
    assert r.ratio_wall_iqr == pytest.approx([q[0], q[2]])
    assert r.ratio_wall_iqr == pytest.approx([1.0, 1.3])  # n = 7: the 2nd and 6th sorted ratios


def test_rejects_bad_sizes():
    arms = {"a": bp.Arm(lambda: None), "b": bp.Arm(lambda: None)}
    with pytest.raises(ValueError, match="blocks"):
        bp.interleave(arms, blocks=1, steps=1)
    with pytest.raises(ValueError, match="arms"):
        bp.interleave({"a": arms["a"]}, blocks=2, steps=1)
    with pytest.raises(ValueError, match="n: expected"):
        bp.time_block(lambda: None, 0)


def test_cli_helpers(tmp_path):
    p = bp.parser("Title line.\n\nmore")
    args = bp.parse(p, ["--quick", "--out", str(tmp_path / "r.json")])
    assert args.quick and args.threads is None
    assert bp.subset(p, "--models", "mlp,,cnn", {"mlp": 1, "cnn": 2}) == ["mlp", "cnn"]
    with pytest.raises(SystemExit):
        bp.subset(p, "--models", "mlp,rnn", {"mlp": 1})
    bp.write_json(args.out, bp.meta(4, 3, batch=32), [{"ratio_wall": 1.0}])
    data = json.loads(Path(args.out).read_text())
    assert data["results"] == [{"ratio_wall": 1.0}]
    assert (data["meta"]["blocks"], data["meta"]["steps_per_block"], data["meta"]["batch"]) == (4, 3, 32)
