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
    "n_p=5",
    "p_ics=2",
    "p_iter=1500",
    "p_record=300",
]


def test_registered_with_paper_metadata():
    study = check_study_registered(KEY, "2405.05675", "F")
    assert {c.name for c in study.claims} >= {"period-doubling-route", "torus-route", "zero-one-vs-lyapunov"}


def test_smoke(tmp_path):
    figures = [
        "bifurcation_lyapunov",
        "phase_portraits",
        "k_sampen_sync_vs_s",
        "parameter_map_and_synchrony",
        "catalog_alpha_bifurcation",
    ]
    s = check_study_smoke(KEY, TINY, tmp_path, quick=True, finite_claims=True, figures=figures)
    assert len(s["s"]) == 41 and len(s["lyapunov_spectrum"]) == 41 and len(s["lyapunov_spectrum"][0]) == 6
    assert s["spectrum_vs_benettin"] < 0.05  # two estimators of the same exponent
    kinds = {c["kind"] for c in s["crossings"]}
    assert kinds <= {"period-doubling", "neimark-sacker", "saddle-node"}
    # catalog-alpha sweep: one class count per coupling, p_ics orbits each; the dominant class is one of them
    assert len(s["paper_s"]) == 5 and s["paper_alpha"] == 4.1
    assert all(sum(c.values()) == 2 for c in s["paper_class_counts_per_s"])
    assert all(
        d in c or set(c) == {"divergent"}
        for d, c in zip(s["paper_dominant_class"], s["paper_class_counts_per_s"], strict=True)
    )
    assert s["paper_coexist_points"] == len(s["paper_coexist_s"])
    assert 0.0 <= s["outer_complete_sync_fraction"] <= 1.0


def test_bad_config_is_rejected_before_running(tmp_path):
    bad = [(["s_split=1.0"], "s_split"), (["p_min=0.4"], "p_min")]
    check_study_rejects(KEY, bad, tmp_path, validate=True)
