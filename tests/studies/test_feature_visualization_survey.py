"""Smoke, determinism, resume and bad-config tests of the feature-visualization-survey study (tiny budget)."""

from __future__ import annotations

from neuroplast.testing import (
    check_study_determinism,
    check_study_registered,
    check_study_rejects,
    check_study_resume,
    check_study_smoke,
)

KEY = "feature-visualization-survey"
TINY = ["dataset=digits", "epochs=1", "channels=2", "restarts=1", "steps=10", "noise_samples=20"]


def test_registered_with_paper_metadata():
    study = check_study_registered(KEY, "1904.08939", "A", n_claims=3)
    quick, full = study.Config.quick(), study.Config()
    assert quick.steps < full.steps and (quick.l2, quick.tv) == (full.l2, full.tv) == (0.01, 0.05)
    assert [c.threshold for c in study.claims] == [0.9, 0.9, 0.2]


def test_smoke_summary_and_claims(tmp_path):
    summary = check_study_smoke(KEY, TINY, tmp_path, quick=True, figures=["am_grid", "channel_grid"],
                                finite_claims=True)
    assert 0.0 <= summary["train"]["acc_C"] <= 1.0 and 0.0 <= summary["train"]["acc_D"] <= 1.0
    logits, chans = summary["sites"]["fc2"], summary["sites"]["conv2"]
    assert len(logits["refs"]["real_max"]) == 10 and len(chans["refs"]["real_max"]) == 2
    for entry in (logits, chans):
        for method in ("pixel", "regularised"):
            res, refs = entry[method], entry["refs"]
            # the flags are what they say: activation above max(real max, noise max)
            for a, r, n, flag in zip(res["activation"], refs["real_max"], refs["noise_max"], res["above_ref"],
                                     strict=True):
                assert flag == (a > max(r, n))
            assert all(m >= mu for m, mu in zip(refs["real_max"], refs["real_mean"], strict=True))
    for method in ("pixel", "regularised", "pixel_matched"):
        assert 0.0 <= logits[method]["recognised"] <= 1.0 and logits[method]["nn_distance"] > 0
    assert "recognised" not in chans["pixel"]  # the class proxy only makes sense for class logits


def test_tiny_run_is_deterministic(tmp_path):
    check_study_determinism(KEY, TINY, tmp_path, seed=3, other_seed=4,
                            differs=lambda s: s["sites"]["fc2"]["pixel"]["activation"])


def test_killed_run_resumes_to_the_same_summary(tmp_path):
    check_study_resume(KEY, TINY, tmp_path, kill_at=3)  # killed after the pixel-AM phase


def test_bad_config_is_rejected_before_running(tmp_path):
    check_study_rejects(
        KEY,
        [(["dataset=cifar"], "dataset"), (["channels=17"], "channels"), (["am_lr=0"], "am_lr"),
         (["tv=-1"], "tv")],
        tmp_path,
        quick=True,
    )
