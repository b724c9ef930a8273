"""Smoke, determinism and resume tests of the dormant-neurons study at a tiny budget."""

from __future__ import annotations

import json

import pytest

from neuroplast.runner import Run, RunSpec, config_to_json, execute, make_config, run_study
from neuroplast.studies import ClaimResult, get_study

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
    study = get_study(KEY)
    assert (study.arxiv, study.family) == ("2310.19668", "A")
    assert len(study.claims) == 6
    quick = study.Config.quick()
    assert quick.num_phases >= 3 and quick.steps_per_phase < study.Config().steps_per_phase


def test_smoke_summary_and_claims(tmp_path):
    summary = run_study(KEY, out=tmp_path / "run", seed=0, quick=True, sets=TINY)
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
    for claim in get_study(KEY).claims:
        result = claim.evaluate(summary)
        assert isinstance(result, ClaimResult) and result.error is None
    run_dir = tmp_path / "run"
    assert (run_dir / "figures" / "dormant_ratio_and_plasticity.png").stat().st_size > 0
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3 * 4 and {json.loads(line)["arm"] for line in lines} == {"plain", "drm", "redo"}


def test_tiny_run_is_deterministic(tmp_path):
    a = run_study(KEY, out=tmp_path / "a", seed=3, sets=TINY)
    b = run_study(KEY, out=tmp_path / "b", seed=3, sets=TINY)
    c = run_study(KEY, out=tmp_path / "c", seed=4, sets=TINY)
    assert a == b
    assert a != c


def test_killed_run_resumes_to_the_same_summary(tmp_path, monkeypatch):
    study = get_study(KEY)
    cfg = make_config(study, sets=TINY)

    def spec(path, resume):
        return RunSpec(
            KEY, type(study).__module__, config_to_json(cfg), 1, str(path), resume, checkpoint_every=12
        )  # = steps_per_phase: a checkpoint after every phase

    full = execute(spec(tmp_path / "full", False))
    assert full.status == "done"

    calls = {"n": 0}
    real_log = Run.log

    def dying_log(self, step, **metrics):
        calls["n"] += 1
        if calls["n"] == 8:  # phase 2, second arm: after the checkpoint of phase 1
            raise KeyboardInterrupt
        real_log(self, step, **metrics)

    monkeypatch.setattr(Run, "log", dying_log)
    with pytest.raises(KeyboardInterrupt):
        execute(spec(tmp_path / "killed", False))
    monkeypatch.setattr(Run, "log", real_log)
    assert not (tmp_path / "killed" / "summary.json").exists()
    resumed = execute(spec(tmp_path / "killed", True))
    assert resumed.status == "done"
    assert resumed.summary == full.summary
    assert (tmp_path / "killed" / "metrics.jsonl").read_text() == (
        tmp_path / "full" / "metrics.jsonl"
    ).read_text()


def test_bad_config_is_rejected_before_running(tmp_path):
    from neuroplast.runner import NeuroplastUsageError

    with pytest.raises(NeuroplastUsageError, match="num_phases"):
        run_study(KEY, out=tmp_path / "bad", sets=[*TINY, "num_phases=2"])
    with pytest.raises(NeuroplastUsageError, match="dataset"):
        run_study(KEY, out=tmp_path / "bad2", sets=["dataset=cifar"])
    assert not (tmp_path / "bad").exists()
