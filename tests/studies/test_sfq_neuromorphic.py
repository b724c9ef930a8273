"""Smoke and determinism tests of the sfq-neuromorphic study at a tiny budget."""

from __future__ import annotations

from neuroplast.testing import (
    check_study_determinism,
    check_study_registered,
    check_study_rejects,
    check_study_smoke,
)

KEY = "sfq-neuromorphic"
TINY = ["windows=8,32,64,128", "trials=12", "calibration_trials=4", "restarts=1", "fit_steps=300"]


def test_registered_with_paper_metadata():
    study = check_study_registered(KEY, "2311.10721", "C", n_claims=6)
    assert study.Config.quick().trials < study.Config().trials


def test_smoke_summary_and_claims(tmp_path):
    s = check_study_smoke(
        KEY, TINY, tmp_path, quick=True, finite_claims=True, figures=["margin_vs_window"], out="a"
    )
    assert s["windows"] == [8, 32, 64, 128]
    for name in ("deep", "single"):
        r = s[name]
        for k in ("margin_mean", "margin_std", "margin_p05", "accuracy", "rate_mean"):
            assert len(r[k]) == 4
        assert all(0.0 <= a <= 1.0 for a in r["accuracy"])
        assert all(
            0.0 <= p <= 1.0
            for layer in r["probabilities"]
            for v in layer.values()
            for p in (v if isinstance(v[0], float) else [x for row in v for x in row])
        )
    assert len(s["deep"]["probabilities"]) == 2 and len(s["single"]["probabilities"]) == 1
    # XOR is not linearly separable: the single-layer mean-field margin cannot be positive
    assert s["single"]["mean_field_margin"] <= 1e-6


def test_tiny_run_is_deterministic(tmp_path):
    check_study_determinism(KEY, TINY, tmp_path, quick=True, seed=0, other_seed=1)


def test_bad_config_is_rejected_before_running(tmp_path):
    # also the study's validate hook on Config.quick() with those fields replaced
    bad = [(["windows=64,8"], "windows"), (["windows=8,16,128", "slope_from=64"], "slope_from")]
    check_study_rejects(KEY, bad, tmp_path, quick=True, validate=True)
