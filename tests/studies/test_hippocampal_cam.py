"""Smoke and determinism tests of the hippocampal-cam study at a tiny budget."""

from __future__ import annotations

from neuroplast.testing import (
    check_study_determinism,
    check_study_registered,
    check_study_rejects,
    check_study_smoke,
)

KEY = "hippocampal-cam"
TINY = ["n_cues=4", "n_content=16", "n_memories=2,4,8", "repeats=2", "hopfield_sweeps=5"]


def test_registered_with_paper_metadata():
    study = check_study_registered(KEY, "2310.05868", "C", n_claims=7)
    assert study.Config.quick().repeats < study.Config().repeats


def test_smoke_summary_and_claims(tmp_path):
    s = check_study_smoke(KEY, TINY, tmp_path, quick=True, finite_claims=True, figures=["recall"], out="a")
    assert s["n_memories"] == [2, 4, 8]
    for table in (s["cam_random"], s["hopfield"]):
        for k in ("0.25", "0.5", "0.75"):
            assert len(table[k]) == 3
            assert all(0.0 <= c <= m for c, m in zip(table[k], s["n_memories"], strict=True))
    # beyond the 4 cues at most 4 memories can be held
    assert s["cam_random"]["cue"][-1] <= 4.0
    assert s["orthogonal_fragment_exact"]["cue"] == 1.0
    assert set(s["relearn"]) == {"orthogonal", "random"}


def test_tiny_run_is_deterministic(tmp_path):
    check_study_determinism(KEY, TINY, tmp_path, quick=True, seed=0, other_seed=1)


def test_bad_config_is_rejected_before_running(tmp_path):
    # also the study's validate hook on Config.quick() with those fields replaced
    bad = [(["n_content=30"], "n_content"), (["n_memories=2,4"], "n_memories")]
    check_study_rejects(KEY, bad, tmp_path, quick=True, validate=True)
