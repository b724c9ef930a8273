"""Tiny-budget smoke test of the chialvo-rulkov-chain study."""

from __future__ import annotations

from neuroplast.testing import check_study_registered, check_study_rejects, check_study_smoke

KEY = "chialvo-rulkov-chain"
TINY = [
    "n_s=41",
    "n_ics=2",
    "n_iter=2500",
    "n_record=500",
    "sampen_len=300",
    "n_c=20",
    "n_grid=4",
    "grid_iter=1000",
    "grid_record=300",
    "spectrum_iter=600",
]


def test_registered_with_paper_metadata():
    study = check_study_registered(KEY, "2405.05675", "F")
    assert {c.name for c in study.claims} >= {"period-doubling-route", "torus-route", "zero-one-vs-lyapunov"}


def test_smoke(tmp_path):
    figures = ["bifurcation_lyapunov", "phase_portraits", "k_sampen_sync_vs_s", "parameter_map_and_synchrony"]
    s = check_study_smoke(KEY, TINY, tmp_path, quick=True, finite_claims=True, figures=figures)
    assert len(s["s"]) == 41 and len(s["lyapunov_spectrum"]) == 41 and len(s["lyapunov_spectrum"][0]) == 6
    assert s["spectrum_vs_benettin"] < 0.05  # two estimators of the same exponent
    kinds = {c["kind"] for c in s["crossings"]}
    assert kinds <= {"period-doubling", "neimark-sacker", "saddle-node"}


def test_bad_config_is_rejected_before_running(tmp_path):
    check_study_rejects(KEY, [(["s_split=1.0"], "s_split")], tmp_path, validate=True)
