"""Smoke, determinism, resume and bad-config tests of the dynamic-connectome study at a tiny budget."""

from __future__ import annotations

import json

import pytest

from neuroplast.testing import (
    check_study_determinism,
    check_study_registered,
    check_study_rejects,
    check_study_resume,
    check_study_smoke,
)

KEY = "dynamic-connectome"
TINY = [
    "n_neurons=12",
    "n_animals=2",
    "epoch_len=200",
    "window=40",
    "stride=40",
    "restarts=1",
    "n_iter_max=100",
    "hidden=8",
    "train_steps=20",
    "batch_size=16",
    "log_every=5",
    "test_trials=32",
    "atlas_trials=4",
    "rnn_rank=2",
]


def test_registered_with_paper_metadata():
    study = check_study_registered(KEY, "2402.14102", "A")
    assert [c.name for c in study.claims] == [
        "communities-recovered",
        "time-windows-recovered",
        "beats-static-correlation",
        "rnn-trained",
    ]
    assert [c.threshold for c in study.claims] == [0.9, 0.9, 0.0, 0.8]
    quick, full = study.Config.quick(), study.Config()
    assert quick.train_steps < full.train_steps and (quick.n_neurons, quick.n_animals, quick.n_epochs) == (
        30,
        5,
        3,
    )


def test_smoke_summary_and_figures(tmp_path):
    summary = check_study_smoke(
        KEY, TINY, tmp_path, figures=["synthetic_atlas", "rnn_atlas"], finite_claims=True
    )
    syn = summary["synthetic"]
    d = syn["differential"]
    assert len(d["nmi"]) == len(syn["static_nmi"]) == 3 and sorted(d["match"]) == [0, 1, 2]
    assert (
        all(0.0 <= v <= 1.0 + 1e-12 for v in d["nmi"] + syn["static_nmi"]) and 0.0 <= d["window_acc"] <= 1.0
    )
    assert syn["nmi_gain"] == pytest.approx(sum(d["nmi"]) / 3 - sum(syn["static_nmi"]) / 3)
    assert len(syn["planted_labels"]) == 3 and len(syn["planted_labels"][0]) == 12
    rnn = summary["rnn"]
    assert len(rnn["factors"]) == 2 and 0.0 <= rnn["accuracy"] <= 1.0
    for f in rnn["factors"]:
        assert sum(f["epoch_mass"]) == pytest.approx(1.0) and f["peak_epoch"] in (
            "fixation",
            "stimulus",
            "delay",
            "response",
        )
    assert rnn["params"] == 3 * (3 * 8 + 8 * 8 + 2 * 8) + 8 * 3 + 3  # GRU(3 -> 8) + Linear(8 -> 3)
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert sum("loss" in m for m in lines) == 4 and sum("window_acc" in m for m in lines) == 1


def test_tiny_run_is_deterministic(tmp_path):
    check_study_determinism(KEY, TINY, tmp_path, seed=3, other_seed=4, differs=lambda s: s["synthetic"])


def test_killed_run_resumes_to_the_same_summary(tmp_path):
    check_study_resume(KEY, TINY, tmp_path, kill_at=2, kill_when=lambda m: "loss" in m)


def test_bad_config_is_rejected_before_running(tmp_path):
    check_study_rejects(
        KEY,
        [
            (["window=700"], "window"),
            (["n_epochs=1"], "n_epochs"),
            (["p_join=1.5"], "p_join"),
            (["train_steps=-1"], "train_steps"),
        ],
        tmp_path,
        validate=True,
    )
