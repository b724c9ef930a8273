"""Seed sweeps: --seeds syntax, the executor seam, --jobs 2 equals --jobs 1."""

from __future__ import annotations

import json
from concurrent.futures import Future

import pytest
import torch

from neuroplast.cli import main
from neuroplast.runner import (
    InlineExecutor,
    LocalExecutor,
    NeuroplastUsageError,
    make_config,
    make_executor,
    parse_seeds,
    run_specs,
)
from neuroplast.runner.run import RunSpec, config_to_json
from neuroplast.runner.sweep import _available_cores
from neuroplast.studies import get_study


@pytest.mark.parametrize(
    "text, seeds",
    [("0-4", [0, 1, 2, 3, 4]), ("0,2,5", [0, 2, 5]), ("3", [3]), ("0-2,7", [0, 1, 2, 7]),
     (" 1 - 2 ", [1, 2])],
)
def test_parse_seeds(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["", "a", "4-2", "1,1", "-1", "0-2,2", "1.5", "0-", "4294967296", "0-20000"])
def test_parse_seeds_rejects(text):
    with pytest.raises(NeuroplastUsageError, match="--seeds"):
        parse_seeds(text)


def test_executor_seam():
    assert isinstance(make_executor("local", 1), InlineExecutor)
    with pytest.raises(NeuroplastUsageError, match="'ray' is not available"):
        make_executor("ray", 2)
    fut = InlineExecutor().submit(divmod, 7, 0)
    assert isinstance(fut, Future) and isinstance(fut.exception(), ZeroDivisionError)
    assert InlineExecutor().submit(divmod, 7, 2).result() == (3, 1)


def test_local_executor_gives_each_worker_its_share_of_threads():
    ex = LocalExecutor(2)
    try:
        threads = ex.submit(torch.get_num_threads).result(timeout=120)
    finally:
        ex.shutdown()
    assert threads == max(1, _available_cores() // 2)


def test_sweep_jobs_2_equals_jobs_1(toy, tmp_path, capsys):
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["run", "toy", "--quick", "--set", "steps=30", "--seeds", "0-2", "--out", str(one)]) == 0
    assert main(["run", "toy", "--quick", "--set", "steps=30", "--seeds", "0-2", "--jobs", "2",
                 "--out", str(two)]) == 0
    sweep = json.loads((two / "sweep.json").read_text())
    assert sweep["seeds"] == [0, 1, 2] and sweep["study"] == "toy" and sweep["config"]["steps"] == 30
    assert sweep["recipe"] == "neuroplast run toy --quick --seeds 0-2 --set steps=30"
    summaries = []
    for s in range(3):
        a = (one / f"seed-{s}" / "summary.json").read_bytes()
        assert a == (two / f"seed-{s}" / "summary.json").read_bytes()
        assert json.loads((two / f"seed-{s}" / "run.json").read_text())["seed"] == s
        summaries.append(a)
    assert len(set(summaries)) == 3  # each seed its own numbers
    assert sorted(p.name for p in two.iterdir()) == ["seed-0", "seed-1", "seed-2", "sweep.json"]


def test_run_specs_stops_at_the_first_invalid_run(toy, tmp_path):
    study = get_study("toy")
    config = config_to_json(make_config(study, quick=True, sets=["site=nowhere"]))
    specs = [RunSpec("toy", "toy_study", config, s, str(tmp_path / f"seed-{s}")) for s in range(3)]
    seen = []
    results = run_specs(specs, jobs=1, on_result=seen.append)
    assert [r.status for r in results] == ["invalid"] and seen == results
    assert "matches no module" in results[0].error
    assert not (tmp_path / "seed-1").exists()
