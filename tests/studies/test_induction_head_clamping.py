"""Smoke, determinism, resume and bad-config tests of the induction-head-clamping study at a tiny budget."""

from __future__ import annotations

import json

import pytest

from neuroplast.models import steepest_change
from neuroplast.testing import (
    check_study_determinism,
    check_study_registered,
    check_study_rejects,
    check_study_resume,
    check_study_smoke,
)

KEY = "induction-head-clamping"
TINY = [
    "vocab=16", "seq_len=12", "min_period=3", "max_period=6", "d_model=16", "n_heads=2", "batch_size=8",
    "steps=30", "eval_every=10", "eval_batch=8", "lr=0.01",
]
ARMS = ["baseline", "pth_zero", "pth_init", "pth_mean", "l0_zero", "unrelated_zero", "l0_zero_release"]


def test_registered_with_paper_metadata():
    study = check_study_registered(KEY, "2404.07129", "A")
    assert [c.name for c in study.claims] == [
        "phase-change-visible",
        "phase-change-with-induction",
        "pth-zero-clamp-delays",
        "pth-clamp-any-value-delays",
        "pth-layer-clamp-delays",
        "unrelated-clamp-harmless",
        "several-induction-heads",
        "each-ih-contributes",
    ]
    quick, full = study.Config.quick(), study.Config()
    assert quick.steps < full.steps and quick.ih_threshold == full.ih_threshold == 0.3


def test_smoke_summary_and_claims(tmp_path):
    # thresholds this low make every layer-0 head a PTH and every layer-1 head an IH: this exercises
    # the fallback choice of the unrelated head (layer 1) and the ablation of several IHs
    sets = [*TINY, "pth_threshold=0.01", "ih_threshold=0.01"]
    summary = check_study_smoke(KEY, sets, tmp_path, figures=["phase_change", "clamping", "ablation"])
    assert list(summary["arms"]) == ARMS
    assert summary["chosen"] == {"pths": [0, 1], "unrelated": [1, summary["chosen"]["unrelated"][1]]}
    for arm, res in summary["arms"].items():
        h = res["history"]
        assert h["step"] == [0, 10, 20, 30], arm
        assert len(h["pt"][0]) == 2 and len(h["pm"][0][1]) == 2 and len(h["copy"][0][0]) == 2
        pm1 = [max(pm[1]) for pm in h["pm"]]
        first = next((s for s, v in zip(h["step"], pm1, strict=True) if s > 0 and v >= 0.01), 30)
        assert res["t_form"] == first
        assert res["formed"] == any(s > 0 and v >= 0.01 for s, v in zip(h["step"], pm1, strict=True))
        assert res["final_icl_acc"] == h["icl_acc"][-1]
        for layer in h["copy"][-1]:
            assert all(-1.0 <= c <= 1.0 for c in layer)
    base = summary["arms"]["baseline"]
    t_pc, _ = steepest_change(base["history"]["step"], base["history"]["icl_loss"], 2.0, "down")
    assert summary["phase"]["t_phase"] == t_pc  # located from the curve, not chosen
    assert summary["t_form_ratio"]["pth_zero"] == summary["arms"]["pth_zero"]["t_form"] / base["t_form"]
    ab = summary["ablation"]
    assert ab["ihs"] == [0, 1] and len(ab["single_drop"]) == 2
    assert ab["full_acc"] == pytest.approx(base["final_icl_acc"])
    assert summary["params"] == 16 * 16 * 2 + 12 * 16 + 2 * 2 * (3 * 16 * 8 + 8 * 16)
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [line["arm"] for line in lines] == [a for a in ARMS for _ in range(4)]


def test_clamps_act_where_they_should(tmp_path):
    """Same initial weights in every arm; at step 0 (evaluated with the clamp on): clamping layer-0
    outputs leaves layer-0 patterns as they are and changes layer-1 patterns and the loss; clamping
    to the initial model's outputs changes nothing yet; a layer-1 clamp leaves every pattern alone.
    Training then differs from the baseline in every arm."""
    summary = check_study_smoke(KEY, [*TINY, "pth_threshold=0.01"], tmp_path)
    assert summary["chosen"]["unrelated"][0] == 1  # every layer-0 head was a PTH
    base = summary["arms"]["baseline"]["history"]
    for arm in ARMS[1:]:
        h = summary["arms"][arm]["history"]
        assert h["pt"][0][0] == base["pt"][0][0], arm
        if arm == "pth_init":
            assert h["icl_loss"][0] == base["icl_loss"][0] and h["pm"][0] == base["pm"][0]
        elif arm == "unrelated_zero":
            assert h["pm"][0] == base["pm"][0] and h["icl_loss"][0] != base["icl_loss"][0]
        else:
            assert h["pm"][0][1] != base["pm"][0][1] and h["icl_loss"][0] != base["icl_loss"][0], arm
        assert h["icl_loss"][-1] != base["icl_loss"][-1], arm


def test_tiny_run_is_deterministic(tmp_path):
    check_study_determinism(
        KEY, TINY, tmp_path, seed=3, other_seed=4, differs=lambda s: s["arms"]["baseline"]["history"]
    )


@pytest.mark.parametrize(
    ("kill_at", "kill_when"),
    [
        (1, lambda m: m.get("arm") == "pth_init" and m.get("train_step") == 20),  # inside a clamped arm
        (1, lambda m: m.get("arm") == "pth_mean" and m.get("train_step") == 0),  # at an arm boundary
    ],
    ids=["inside-an-arm", "arm-boundary"],
)
def test_killed_run_resumes_to_the_same_summary(tmp_path, kill_at, kill_when):
    check_study_resume(KEY, TINY, tmp_path, kill_at=kill_at, kill_when=kill_when)


def test_bad_config_is_rejected_before_running(tmp_path):
    check_study_rejects(
        KEY,
        [
            ([*TINY, "max_period=12"], "max_period"),
            ([*TINY, "n_layers=3"], "n_layers"),
            ([*TINY, "arms=pth_zero,bogus"], "arms"),
            ([*TINY, "ih_threshold=1.5"], "ih_threshold"),
            ([*TINY, "steps=10"], "steps"),
        ],
        tmp_path,
    )
