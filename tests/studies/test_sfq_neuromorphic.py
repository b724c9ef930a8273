"""Smoke and determinism tests of the sfq-neuromorphic study at a tiny budget."""

from __future__ import annotations

import dataclasses
import math

import pytest

from neuroplast.runner import run_study
from neuroplast.studies import get_study

KEY = "sfq-neuromorphic"
TINY = ["windows=8,32,64,128", "trials=12", "calibration_trials=4", "restarts=1", "fit_steps=300"]


def test_registered_with_paper_metadata():
    study = get_study(KEY)
    assert (study.arxiv, study.family) == ("2311.10721", "C")
    assert len(study.claims) == 6
    assert study.Config.quick().trials < study.Config().trials


def test_smoke_summary_and_claims(tmp_path):
    s = run_study(KEY, out=tmp_path / "a", seed=0, quick=True, sets=TINY)
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
    for claim in get_study(KEY).claims:
        r = claim.evaluate(s)
        assert r.error is None and math.isfinite(r.value)
    assert (tmp_path / "a" / "figures" / "margin_vs_window.png").exists()
    assert run_study(KEY, out=tmp_path / "b", seed=0, quick=True, sets=TINY) == s


def test_validate_rejects_bad_config():
    study = get_study(KEY)
    with pytest.raises(ValueError, match="windows"):
        study.validate(dataclasses.replace(study.Config.quick(), windows=(64, 8)))
    with pytest.raises(ValueError, match="slope_from"):
        study.validate(dataclasses.replace(study.Config.quick(), windows=(8, 16, 128), slope_from=64))
