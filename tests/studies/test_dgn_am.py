"""Smoke, determinism, resume and bad-config tests of the dgn-am study (tiny budget)."""

from __future__ import annotations

from neuroplast.testing import (
    check_study_determinism,
    check_study_registered,
    check_study_rejects,
    check_study_resume,
    check_study_smoke,
)

KEY = "dgn-am"
TINY = ["dataset=digits", "epochs=1", "restarts=1", "steps=10", "noise_samples=20", "ae_epochs=2",
        "ae_hidden=32", "code_dim=4"]


def test_registered_with_paper_metadata():
    study = check_study_registered(KEY, "1605.09304", "A", n_claims=3)
    quick = study.Config.quick()
    assert quick.channels == 0 and quick.code_dim == 16
    assert [(c.op, c.threshold) for c in study.claims] == [(">", 0.0), ("<", 1.0), ("<", 1.0)]


def test_smoke_summary_and_claims(tmp_path):
    s = check_study_smoke(KEY, TINY, tmp_path, quick=True, figures=["dgn_grid"], finite_claims=True)
    assert s["code_in_range"] == 1.0  # h stays within the range of the training codes
    assert len(s["dgn"]["activation"]) == 10
    pm = s["pixel_matched"]
    # pixel images are taken where they first reach the DGN image's activation (or at the end)
    if pm["reached"] == 1.0:
        assert all(p >= d - 1e-4 for p, d in zip(pm["activation"], s["dgn"]["activation"], strict=True))
    assert 0 <= pm["mean_step"] <= 10
    for k in ("dgn", "pixel", "pixel_matched", "regularised", "real_test"):
        assert 0.0 <= s[k]["recognised"] <= 1.0 and s[k]["nn_distance"] > 0


def test_tiny_run_is_deterministic(tmp_path):
    check_study_determinism(KEY, TINY, tmp_path, seed=3, other_seed=4,
                            differs=lambda s: s["dgn"]["activation"])


def test_killed_run_resumes_to_the_same_summary(tmp_path):
    check_study_resume(KEY, TINY, tmp_path, kill_at=3)  # killed after the autoencoder phase


def test_bad_config_is_rejected_before_running(tmp_path):
    check_study_rejects(KEY, [(["code_dim=0"], "code_dim"), (["code_l2=-1"], "code_l2"),
                              (["dataset=x"], "dataset")], tmp_path, quick=True)
