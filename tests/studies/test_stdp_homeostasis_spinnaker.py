"""Smoke and determinism tests of the stdp-homeostasis-spinnaker study at a tiny budget."""

from __future__ import annotations

from neuroplast.testing import (
    check_study_determinism,
    check_study_registered,
    check_study_rejects,
    check_study_smoke,
)

KEY = "stdp-homeostasis-spinnaker"
TINY = ["repeats=4", "single_repeats=6", "n_random=20", "n_patterns=2,3", "jaccard=0.0,0.4,0.8"]


def test_registered_with_paper_metadata():
    study = check_study_registered(KEY, "2312.02659", "C", n_claims=5)
    quick = study.Config.quick()
    assert quick.repeats < study.Config().repeats


def test_smoke_summary_and_claims(tmp_path):
    s = check_study_smoke(
        KEY, TINY, tmp_path, quick=True, finite_claims=True, figures=["accuracy_vs_jaccard"], out="a"
    )
    for arm in ("homeostasis", "plain"):
        single = s[arm]["single"]
        assert set(single) == {"accuracy", "detect", "partial_detect", "fp_rate"}
        assert all(0.0 <= v <= 1.0 for v in single.values())
        assert [c["n_patterns"] for c in s[arm]["multi"]] == [2, 3]
        for cell in s[arm]["multi"]:
            assert len(cell["accuracy"]) == len(cell["jaccard"]) == 3
            assert cell["jaccard"][0] == 0.0 and cell["jaccard"][-1] > 0.5
    # one-shot learning of a single pattern is perfect with homeostasis, by construction of W* = theta / h
    assert s["homeostasis"]["single"]["detect"] == 1.0
    assert 0.0 < s["expected_fp_rate"] < 1e-4


def test_tiny_run_is_deterministic(tmp_path):
    check_study_determinism(KEY, TINY, tmp_path, quick=True, seed=0, other_seed=1)


def test_bad_config_is_rejected_before_running(tmp_path):
    # also the study's validate hook on Config.quick() with those fields replaced
    bad = [(["homeostatic_factor=1.5"], "homeostatic_factor"), (["size_min=30"], "size_min")]
    check_study_rejects(KEY, bad, tmp_path, quick=True, validate=True)
