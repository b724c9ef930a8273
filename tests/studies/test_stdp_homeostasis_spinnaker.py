"""Smoke and determinism tests of the stdp-homeostasis-spinnaker study at a tiny budget."""

from __future__ import annotations

import dataclasses
import math

import pytest

from neuroplast.runner import run_study
from neuroplast.studies import get_study

KEY = "stdp-homeostasis-spinnaker"
TINY = ["repeats=4", "single_repeats=6", "n_random=20", "n_patterns=2,3", "jaccard=0.0,0.4,0.8"]


def test_registered_with_paper_metadata():
    study = get_study(KEY)
    assert (study.arxiv, study.family) == ("2312.02659", "C")
    assert len(study.claims) == 5
    quick = study.Config.quick()
    assert quick.repeats < study.Config().repeats


def test_smoke_summary_and_claims(tmp_path):
    s = run_study(KEY, out=tmp_path / "a", seed=0, quick=True, sets=TINY)
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
    for claim in get_study(KEY).claims:
        r = claim.evaluate(s)
        assert r.error is None and math.isfinite(r.value)
    assert (tmp_path / "a" / "figures" / "accuracy_vs_jaccard.png").exists()
    again = run_study(KEY, out=tmp_path / "b", seed=0, quick=True, sets=TINY)
    assert again == s


def test_validate_rejects_bad_config():
    study = get_study(KEY)
    with pytest.raises(ValueError, match="homeostatic_factor"):
        study.validate(dataclasses.replace(study.Config.quick(), homeostatic_factor=1.5))
    with pytest.raises(ValueError, match="size_min"):
        study.validate(dataclasses.replace(study.Config.quick(), size_min=30))
