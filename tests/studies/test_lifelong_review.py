"""Tiny-budget smoke and kill-and-resume test of the lifelong-review study (every baseline family)."""

from __future__ import annotations

import json

from neuroplast.testing import check_study_registered, check_study_resume, check_study_smoke

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
    study = check_study_registered(KEY, "1802.07569", "D", n_claims=1)
    assert [c.name for c in study.claims] == ["finetune-forgets"]


def test_smoke_every_family_runs(tmp_path):
    # the claim evaluates without error, the ACC-vs-BWT figure is drawn
    s = check_study_smoke(KEY, TINY, tmp_path, quick=True, figures=("pmnist_acc_vs_bwt",))
    assert set(s["pmnist"]) == {"finetune", "joint", "ewc", "si", "replay", "agem", "gpm"}
    assert set(s["split"]) == set(s["pmnist"]) | {"clnp"}  # CLNP needs one head per task
    assert s["pmnist"]["joint"]["bwt"] is None and s["pmnist"]["joint"]["acc"] is not None
    assert s["split"]["clnp"]["bwt"] == 0.0
    mem = {r["arm"]: r["memory_bytes"] for r in s["table"] if r["benchmark"] == "pmnist"}
    assert mem["finetune"] == 0 and mem["replay"] == 60 * (64 * 4 + 16) and mem["agem"] == mem["replay"]
    assert set(s["families"]) >= set(s["split"])


def test_killed_run_resumes_to_the_same_summary(tmp_path):
    """The whole summary.json (nothing removed) equals an uninterrupted run's; times are in timings.json."""
    # killed at the 12th log: inside the replay arm of permuted MNIST, after a checkpointed task; the
    # check compares the summaries and summary.json, claims.json and metrics.jsonl byte for byte
    check_study_resume(KEY, TINY, tmp_path, kill_at=12, quick=True)
    full_dir, killed_dir = tmp_path / "full", tmp_path / "killed"
    times = json.loads((killed_dir / "timings.json").read_text())["arms"]
    assert set(times) == set(json.loads((full_dir / "timings.json").read_text())["arms"])
    assert all(t["mean_seconds_per_task"] > 0 for t in times.values())
