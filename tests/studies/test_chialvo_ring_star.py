"""Tiny-budget smoke test of the chialvo-ring-star study."""

from __future__ import annotations

from neuroplast.testing import check_study_registered, check_study_rejects, check_study_smoke

KEY = "chialvo-ring-star"
TINY = [
    "n_k=31",
    "n_ics=2",
    "n_iter=2500",
    "n_record=500",
    "sampen_len=300",
    "n_c=20",
    "n_sync=3",
    "sync_iter=1200",
    "sync_record=400",
]


def test_registered_with_paper_metadata():
    study = check_study_registered(KEY, "2405.06000", "F")
    assert {c.name for c in study.claims} >= {
        "route-to-chaos",
        "zero-one-vs-lyapunov",
        "bifurcations-match-eigenvalues",
    }
    assert study.Config.quick().n_iter < study.Config().n_iter


def test_smoke(tmp_path):
    figures = ["bifurcation_lyapunov", "phase_portraits", "k_and_sampen_vs_k", "synchrony_vs_coupling"]
    s = check_study_smoke(KEY, TINY, tmp_path, quick=True, finite_claims=True, figures=figures)
    assert len(s["k"]) == 31 and len(s["orbit_class"]) == 31
    assert 0.0 <= s["k_lyap_agreement"] <= 1.0
    assert s["pairwise_equivalence_max_diff"] < 1e-12  # linear 2-simplex coupling on K4 = pairwise x 2
    # the synchronous fixed point at the top of the sweep and its period-doubling crossing below it
    assert s["orbit_class"][0] == "fixed point"
    assert any(c["kind"] == "period-doubling" and c["multiplicity"] == 3 for c in s["crossings"])
    assert all(c["param"] < 0.02 for c in s["crossings"])


def test_bad_config_is_rejected_before_running(tmp_path):
    check_study_rejects(KEY, [(["n_k=1"], "n_k")], tmp_path, validate=True)
