"""Smoke, determinism, resume and bad-config tests of the neuromfa study at a tiny budget."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from neuroplast.metrics.multifractal import emergence_degree
from neuroplast.studies.neuromfa import checkpoint_steps, corpus
from neuroplast.testing import (
    check_study_determinism,
    check_study_registered,
    check_study_rejects,
    check_study_resume,
    check_study_smoke,
)

KEY = "neuromfa"
TINY = [
    "steps=32", "first_checkpoint=8", "batch_size=32", "hidden=24", "embed=4", "val_windows=256",
    "samples=3", "per_layer=12", "centres=6", "q_points=9", "lattice_side=16", "ring_nodes=64",
    "oracle_centres=10", "one_hop_min_edges=2",
]


def test_registered_with_paper_metadata():
    study = check_study_registered(KEY, "2402.09099", "A")
    assert [c.name for c in study.claims] == [
        "lattice-dimension",
        "chain-dimension",
        "alpha0-shifts",
        "width-changes",
        "alpha0-tracks-loss",
        "emergence-tracks-loss-drop",
        "beats-shuffled",
    ]
    quick, full = study.Config.quick(), study.Config()
    assert quick.steps < full.steps and (quick.q_min, quick.q_max) == (full.q_min, full.q_max) == (-3.0, 3.0)


def test_corpus_is_python_text_with_provenance():
    text, info = corpus()
    assert info["chars"] == len(text) > 100_000 and len(info["sha256"]) == 64
    assert "assert" in text and info["python"].count(".") == 2


def test_smoke_summary_and_claims(tmp_path):
    summary = check_study_smoke(KEY, TINY, tmp_path, quick=True, figures=["spectra", "trajectory"])
    assert summary["checkpoints"] == checkpoint_steps_tiny() == [0, 8, 16, 32]
    assert len(summary["val_loss"]) == 4 and summary["val_loss"][0] == pytest.approx(
        math.log(summary["vocab"]), abs=0.3
    )  # an untrained model predicts near-uniformly
    assert summary["nin_layers"] == [8 * 4, 24, 24, summary["vocab"]]
    for kind in ("trained", "shuffled"):
        t = summary[kind]
        assert len(t["alpha0"]) == len(t["width"]) == len(t["spectra"]) == 4
        assert np.allclose(t["emergence"], emergence_degree(t["alpha0"], t["width"]))
        assert t["alpha0_shift"] == pytest.approx(t["alpha0"][-1] - t["alpha0"][0])
        assert len(t["spectra"][0]["alpha"]) == 9
        h = t["one_hop"]
        assert len(h["alpha0"]) == 4
        assert np.allclose(h["emergence"], emergence_degree(h["alpha0"], h["width"]))
        assert t["alpha0_peak_step"] in summary["checkpoints"] and t["alpha0_after_peak"] <= 0
    assert summary["oracle"]["lattice"]["side"] == 16
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [line["train_step"] for line in lines] == [0, 8, 16, 32]


def checkpoint_steps_tiny() -> list[int]:
    from neuroplast.studies.neuromfa import Config

    return checkpoint_steps(Config(steps=32, first_checkpoint=8))


def test_tiny_run_is_deterministic(tmp_path):
    check_study_determinism(KEY, TINY, tmp_path, seed=3, other_seed=4, differs=lambda s: s["val_loss"])


def test_killed_run_resumes_to_the_same_summary(tmp_path):
    check_study_resume(KEY, TINY, tmp_path, kill_at=1, kill_when=lambda m: m.get("train_step") == 16)


def test_bad_config_is_rejected_before_running(tmp_path):
    check_study_rejects(
        KEY,
        [(["samples=1"], "samples"), (["q_min=0.5"], "q_min"), (["steps=2", "first_checkpoint=4"], "steps")],
        tmp_path,
    )
