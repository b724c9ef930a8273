"""Smoke, determinism, resume and bad-config tests of the active-dendrites study at a tiny budget."""

from __future__ import annotations

import json

import pytest

from neuroplast.neurons.dendritic import false_match_probability
from neuroplast.testing import (
    check_study_determinism,
    check_study_registered,
    check_study_rejects,
    check_study_resume,
    check_study_smoke,
)

KEY = "active-dendrites"
TINY = ["hits_target=20", "min_trials=2000", "tasks=2", "hidden=16", "epochs_per_task=1", "batch_size=64"]


def test_registered_with_paper_metadata():
    study = check_study_registered(KEY, "1601.00720", "B")
    assert [c.name for c in study.claims] == [
        "mc-matches-formula",
        "oracle-point",
        "sparse-beats-dense",
        "dendrites-beat-plain",
    ]
    quick, full = study.Config.quick(), study.Config()
    assert quick.hits_target < full.hits_target and quick.p_min == full.p_min == 1e-4


def test_smoke_summary_and_claims(tmp_path):
    summary = check_study_smoke(KEY, TINY, tmp_path, quick=True, figures=["false_match", "continual"])
    pts = summary["mc"]
    assert summary["mc_points"] == len(pts) > 20
    for pt in pts:  # every Monte Carlo point is tied to the formula it estimates
        assert pt["p"] == false_match_probability(pt["n"], pt["a"], pt["s"], pt["theta"]) >= 1e-4
        assert pt["trials"] >= 2000 and 0.0 <= pt["mc"] <= 1.0
    assert summary["oracle"]["p"] == pytest.approx(8.38e-13, rel=5e-3)
    assert len(summary["sweeps"]["1024_32_24"]) == 24
    c = summary["continual"]
    assert c["tasks"] == 2 and len(c["dendritic"]["final"]) == len(c["plain"]["final"]) == 2
    assert abs(c["params"]["dendritic"] - c["params"]["plain"]) / c["params"]["plain"] < 0.05  # equal budgets
    assert [len(r) for r in c["dendritic"]["after_task"]] == [1, 2]
    run_dir = tmp_path / "run"
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert sum("task" in line for line in lines) == 2


def test_tiny_run_is_deterministic(tmp_path):
    check_study_determinism(KEY, TINY, tmp_path, seed=3, other_seed=4, differs=lambda s: s["mc"])


@pytest.mark.parametrize(
    ("kill_at", "kill_when"),
    [
        (2, lambda m: m.get("n") == 512),  # in the Monte Carlo theory part
        (1, lambda m: m.get("task") == 1),  # in the continual-learning part
    ],
    ids=["theory", "continual"],
)
def test_killed_run_resumes_to_the_same_summary(tmp_path, kill_at, kill_when):
    check_study_resume(KEY, TINY, tmp_path, kill_at=kill_at, kill_when=kill_when)


def test_bad_config_is_rejected_before_running(tmp_path):
    check_study_rejects(
        KEY,
        [([*TINY, "tasks=1"], "tasks"), (["p_min=0"], "p_min"), (["optimizer=rmsprop"], "optimizer")],
        tmp_path,
    )
