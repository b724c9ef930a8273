"""Smoke and determinism tests of the hippocampal-cam study at a tiny budget."""

from __future__ import annotations

import dataclasses
import math

import pytest

from neuroplast.runner import run_study
from neuroplast.studies import get_study

KEY = "hippocampal-cam"
TINY = ["n_cues=4", "n_content=16", "n_memories=2,4,8", "repeats=2", "hopfield_sweeps=5"]


def test_registered_with_paper_metadata():
    study = get_study(KEY)
    assert (study.arxiv, study.family) == ("2310.05868", "C")
    assert len(study.claims) == 7
    assert study.Config.quick().repeats < study.Config().repeats


def test_smoke_summary_and_claims(tmp_path):
    s = run_study(KEY, out=tmp_path / "a", seed=0, quick=True, sets=TINY)
    assert s["n_memories"] == [2, 4, 8]
    for table in (s["cam_random"], s["hopfield"]):
        for k in ("0.25", "0.5", "0.75"):
            assert len(table[k]) == 3
            assert all(0.0 <= c <= m for c, m in zip(table[k], s["n_memories"], strict=True))
    # beyond the 4 cues at most 4 memories can be held
    assert s["cam_random"]["cue"][-1] <= 4.0
    assert s["orthogonal_fragment_exact"]["cue"] == 1.0
    assert set(s["relearn"]) == {"orthogonal", "random"}
    for claim in get_study(KEY).claims:
        r = claim.evaluate(s)
        assert r.error is None and math.isfinite(r.value)
    assert (tmp_path / "a" / "figures" / "recall.png").exists()
    assert run_study(KEY, out=tmp_path / "b", seed=0, quick=True, sets=TINY) == s


def test_validate_rejects_bad_config():
    study = get_study(KEY)
    with pytest.raises(ValueError, match="n_content"):
        study.validate(dataclasses.replace(study.Config.quick(), n_content=30))
    with pytest.raises(ValueError, match="n_memories"):
        study.validate(dataclasses.replace(study.Config.quick(), n_memories=(2, 4)))
