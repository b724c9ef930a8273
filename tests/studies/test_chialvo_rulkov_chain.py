"""Tiny-budget smoke test of the chialvo-rulkov-chain study."""

from __future__ import annotations

import math

import pytest

from neuroplast.runner import run_study
from neuroplast.studies import get_study

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
    study = get_study(KEY)
    assert (study.arxiv, study.family) == ("2405.05675", "F")
    assert {c.name for c in study.claims} >= {"period-doubling-route", "torus-route", "zero-one-vs-lyapunov"}


def test_smoke(tmp_path):
    s = run_study(KEY, out=tmp_path / "run", seed=0, quick=True, sets=TINY)
    assert len(s["s"]) == 41 and len(s["lyapunov_spectrum"]) == 41 and len(s["lyapunov_spectrum"][0]) == 6
    assert s["spectrum_vs_benettin"] < 0.05  # two estimators of the same exponent
    kinds = {c["kind"] for c in s["crossings"]}
    assert kinds <= {"period-doubling", "neimark-sacker", "saddle-node"}
    for name in (
        "bifurcation_lyapunov",
        "phase_portraits",
        "k_sampen_sync_vs_s",
        "parameter_map_and_synchrony",
    ):
        assert (tmp_path / "run" / "figures" / f"{name}.png").exists()
    for claim in get_study(KEY).claims:
        assert math.isfinite(claim.evaluate(s).value)


def test_bad_config_is_rejected():
    study = get_study(KEY)
    with pytest.raises(ValueError, match="s_split"):
        study.validate(study.Config(s_split=1.0))
