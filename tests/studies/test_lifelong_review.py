"""Tiny-budget smoke and kill-and-resume test of the lifelong-review study (every baseline family)."""

from __future__ import annotations

import json

import pytest

from neuroplast.runner import run_study
from neuroplast.runner.run import Run, RunSpec, config_to_json, execute, make_config
from neuroplast.studies import get_study

KEY = "lifelong-review"
TINY = [
    "source=digits",
    "n_tasks=3",
    "train_per_task=150",
    "test_per_task=60",
    "split_source=digits",
    "split_epochs=1",
    "epochs=1",
    "hidden=24",
    "memory=60",
    "agem_ref_batch=16",
]


def test_registered_with_paper_metadata():
    study = get_study(KEY)
    assert (study.arxiv, study.family) == ("1802.07569", "D")
    assert [c.name for c in study.claims] == ["finetune-forgets"]


def test_smoke_every_family_runs(tmp_path):
    s = run_study(KEY, out=tmp_path / "run", seed=0, quick=True, sets=TINY)
    assert set(s["pmnist"]) == {"finetune", "joint", "ewc", "si", "replay", "agem", "gpm"}
    assert set(s["split"]) == set(s["pmnist"]) | {"clnp"}  # CLNP needs one head per task
    assert s["pmnist"]["joint"]["bwt"] is None and s["pmnist"]["joint"]["acc"] is not None
    assert s["split"]["clnp"]["bwt"] == 0.0
    mem = {r["arm"]: r["memory_bytes"] for r in s["table"] if r["benchmark"] == "pmnist"}
    assert mem["finetune"] == 0 and mem["replay"] == 60 * (64 * 4 + 16) and mem["agem"] == mem["replay"]
    assert set(s["families"]) >= set(s["split"])
    r = get_study(KEY).claims[0].evaluate(s)
    assert r.error is None
    assert (tmp_path / "run" / "figures" / "pmnist_acc_vs_bwt.png").stat().st_size > 0


def test_killed_run_resumes_to_the_same_summary(tmp_path, monkeypatch):
    """The whole summary.json (nothing removed) equals an uninterrupted run's; times are in timings.json."""
    study = get_study(KEY)
    cfg = make_config(study, quick=True, sets=TINY)

    def spec(path, resume):
        return RunSpec(
            KEY, type(study).__module__, config_to_json(cfg), 1, str(path), resume, checkpoint_every=1
        )

    full = execute(spec(tmp_path / "full", False))
    assert full.status == "done", full.error
    calls = {"n": 0}
    real_log = Run.log

    def dying_log(self, step, **metrics):
        calls["n"] += 1
        if calls["n"] == 12:  # inside the replay arm of permuted MNIST, after a checkpointed task
            raise KeyboardInterrupt
        real_log(self, step, **metrics)

    monkeypatch.setattr(Run, "log", dying_log)
    with pytest.raises(KeyboardInterrupt):
        execute(spec(tmp_path / "killed", False))
    monkeypatch.setattr(Run, "log", real_log)
    resumed = execute(spec(tmp_path / "killed", True))
    assert resumed.status == "done", resumed.error
    assert resumed.summary == full.summary
    full_dir, killed_dir = tmp_path / "full", tmp_path / "killed"
    assert (killed_dir / "summary.json").read_bytes() == (full_dir / "summary.json").read_bytes()
    assert (killed_dir / "metrics.jsonl").read_bytes() == (full_dir / "metrics.jsonl").read_bytes()
    times = json.loads((killed_dir / "timings.json").read_text())["arms"]
    assert set(times) == set(json.loads((full_dir / "timings.json").read_text())["arms"])
    assert all(t["mean_seconds_per_task"] > 0 for t in times.values())
