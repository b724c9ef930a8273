"""Smoke, determinism and resume tests of the dormant-neurons study at a tiny budget."""

from __future__ import annotations

import json

from neuroplast.testing import (
    check_study_determinism,
    check_study_registered,
    check_study_rejects,
    check_study_resume,
    check_study_smoke,
)

KEY = "dormant-neurons"
TINY = [
    "width=16",
    "depth=2",
    "batch_size=16",
    "steps_per_phase=12",
    "num_phases=4",
    "probe_size=64",
    "redo_every=5",
]
ARM_KEYS = {
    "dormant",
    "dormant_pre",
    "plasticity",
    "test_acc",
    "loss",
    "alpha",
    "recycled",
    "early_dormant",
    "late_dormant",
    "early_plasticity",
    "late_plasticity",
    "late_test_acc",
}


def test_registered_with_paper_metadata():
    study = check_study_registered(KEY, "2310.19668", "A", n_claims=6)
    quick = study.Config.quick()
    assert quick.num_phases >= 3 and quick.steps_per_phase < study.Config().steps_per_phase


def test_smoke_summary_and_claims(tmp_path):
    summary = check_study_smoke(KEY, TINY, tmp_path, quick=True, figures=["dormant_ratio_and_plasticity"])
    assert summary["num_phases"] == 4
    assert 0.0 <= summary["init_dormant"] <= 1.0
    for arm in ("plain", "drm", "redo"):
        res = summary[arm]
        assert ARM_KEYS <= set(res)
        assert len(res["dormant"]) == len(res["plasticity"]) == 4
        assert all(0.0 <= v <= 1.0 for v in res["dormant"] + res["plasticity"] + res["test_acc"])
        assert res["late_dormant"] == res["dormant"][-1]  # a third of 4 phases is the last one
    assert summary["plain"]["alpha"] == [1.0] * 4 and summary["plain"]["recycled"] == [0] * 4
    assert all(0.2 <= a <= 0.6 for a in summary["drm"]["alpha"][1:])  # perturbed at each later phase
    run_dir = tmp_path / "run"
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3 * 4 and {json.loads(line)["arm"] for line in lines} == {"plain", "drm", "redo"}


def test_tiny_run_is_deterministic(tmp_path):
    check_study_determinism(KEY, TINY, tmp_path, seed=3, other_seed=4)


def test_killed_run_resumes_to_the_same_summary(tmp_path):
    # a checkpoint after every phase (= steps_per_phase); the 8th log is phase 2 of the second arm
    check_study_resume(KEY, TINY, tmp_path, checkpoint_every=12, kill_at=8)


def test_bad_config_is_rejected_before_running(tmp_path):
    check_study_rejects(
        KEY, [([*TINY, "num_phases=2"], "num_phases"), (["dataset=cifar"], "dataset")], tmp_path
    )
