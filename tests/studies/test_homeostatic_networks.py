"""Smoke, determinism, resume and bad-config tests of the homeostatic-networks study at a tiny budget,
plus oracles for its concept-shift schedule and its paired design."""

from __future__ import annotations

import json

import pytest
import torch

from neuroplast.studies.homeostatic_networks import _swap_schedule, _swapped
from neuroplast.testing import (
    check_study_determinism,
    check_study_registered,
    check_study_rejects,
    check_study_resume,
    check_study_smoke,
)

KEY = "homeostatic-networks"
TINY = ["dataset=digits", "train_limit=200", "shifts=0,3", "epochs=2", "hidden=12", "tuned_lrs=0.3"]


def test_registered_with_paper_metadata():
    study = check_study_registered(KEY, "2205.08645", "B")
    assert [c.name for c in study.claims] == [
        "beats-fixed-at-highest-shift",
        "beats-random-at-highest-shift",
        "no-loss-without-shift",
        "advantage-grows-with-shift",
    ]
    quick, full = study.Config.quick(), study.Config()
    assert 0 in quick.shifts and max(quick.shifts) >= 20 and quick.epochs < full.epochs
    assert quick.lr_step == pytest.approx(quick.lr0 / 10) and quick.random_take_prob == 0.5  # the reference's


def test_swap_worked_example_and_schedule():
    m = torch.arange(10)
    m = _swapped(m, 2, 7)  # classes 2 and 7 now carry each other's labels
    assert m.tolist() == [0, 1, 7, 3, 4, 5, 6, 2, 8, 9]
    m = _swapped(m, 7, 0)  # swaps act on current labels: original class 2 (label 7) becomes 0
    assert m.tolist() == [7, 1, 0, 3, 4, 5, 6, 2, 8, 9]
    assert sorted(m.tolist()) == list(range(10))
    assert _swap_schedule(400, 0) == []
    assert _swap_schedule(400, 1) == []  # the single swap falls on the epoch boundary
    assert _swap_schedule(400, 5) == [80, 160, 240, 320]  # + the boundary: 5 evenly spaced swaps
    assert len(_swap_schedule(30, 20)) == 19


def test_smoke_summary_and_claims(tmp_path):
    summary = check_study_smoke(KEY, TINY, tmp_path, quick=True, figures=["accuracy_vs_shift"])
    assert summary["shifts"] == [0, 3] and summary["k_max"] == 3 and summary["n_train"] == 200
    for k in ("0", "3"):
        cell = summary["results"][k]
        assert set(cell) == {"homeostatic", "fixed", "random", "fixed_tuned"}
        for arm in ("homeostatic", "fixed", "random"):
            r = cell[arm]
            assert len(r["online"]) == len(r["test"]) == 2 and 0 <= r["mean_online"] <= 1
            assert r["mean_online"] == pytest.approx(sum(r["online"]) / 2)
        assert cell["fixed"]["lr_end"] == [0.1, 0.1]
        # one decision per batch once the 20-sample memory is full
        assert cell["homeostatic"]["decisions"] == 2 * 20 - 2
        assert set(cell["fixed_tuned"]["grid"]) == {"0.1", "0.3"}
        assert cell["fixed_tuned"]["mean_online"] == max(cell["fixed_tuned"]["grid"].values())
        adv = summary["advantage"][k]
        hom, fixed = cell["homeostatic"]["mean_online"], cell["fixed"]["mean_online"]
        assert adv["fixed"] == pytest.approx(hom - fixed)
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 2 * 4 * 2  # shifts x learners x epochs


def test_paired_design_random_control_that_never_takes_equals_fixed(tmp_path):
    """With take probability 0 the random control is the fixed learner: same init, order and swaps."""
    from neuroplast.runner import run_study

    s = run_study(KEY, out=tmp_path / "r", quick=True, sets=[*TINY, "random_take_prob=0", "tuned_lrs="])
    for k in ("0", "3"):
        assert s["results"][k]["random"]["online"] == s["results"][k]["fixed"]["online"]
        assert s["results"][k]["random"]["test"] == s["results"][k]["fixed"]["test"]
    assert s["results"]["3"]["fixed"]["online"] != s["results"]["0"]["fixed"]["online"]  # the shift acts


def test_tiny_run_is_deterministic(tmp_path):
    check_study_determinism(KEY, TINY, tmp_path, seed=3, other_seed=4, differs=lambda s: s["results"])


def test_killed_run_resumes_to_the_same_summary(tmp_path):
    # killed in the middle of the homeostatic learner at k = 3 (after its first epoch's checkpoint)
    check_study_resume(KEY, TINY, tmp_path, kill_at=2,
                       kill_when=lambda m: m.get("k") == 3 and m.get("learner") == "homeostatic")


def test_bad_config_is_rejected_before_running(tmp_path):
    check_study_rejects(
        KEY,
        [
            (["shifts=1,5"], "shifts"),
            (["dataset=cifar"], "dataset"),
            (["lr0=0"], "lr0"),
            (["random_take_prob=1.5"], "random_take_prob"),
            (["dataset=digits", "train_limit=100", "shifts=0,11"], "shifts"),
            (["memory=0"], "memory"),
        ],
        tmp_path,
        quick=True,
    )
