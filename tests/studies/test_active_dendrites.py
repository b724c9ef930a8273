"""Smoke, determinism, resume and bad-config tests of the active-dendrites study at a tiny budget."""

from __future__ import annotations

import json

import pytest

from neuroplast.neurons.dendritic import false_match_probability
from neuroplast.runner import Run, RunSpec, config_to_json, execute, make_config, run_study
from neuroplast.studies import ClaimResult, get_study

KEY = "active-dendrites"
TINY = ["hits_target=20", "min_trials=2000", "tasks=2", "hidden=16", "epochs_per_task=1", "batch_size=64"]


def test_registered_with_paper_metadata():
    study = get_study(KEY)
    assert (study.arxiv, study.family) == ("1601.00720", "B")
    assert [c.name for c in study.claims] == [
        "mc-matches-formula",
        "oracle-point",
        "sparse-beats-dense",
        "dendrites-beat-plain",
    ]
    quick, full = study.Config.quick(), study.Config()
    assert quick.hits_target < full.hits_target and quick.p_min == full.p_min == 1e-4


def test_smoke_summary_and_claims(tmp_path):
    summary = run_study(KEY, out=tmp_path / "run", seed=0, quick=True, sets=TINY)
    pts = summary["mc"]
    assert summary["mc_points"] == len(pts) > 20
    for pt in pts:  # every Monte Carlo point is tied to the formula it estimates
        assert pt["p"] == false_match_probability(pt["n"], pt["a"], pt["s"], pt["theta"]) >= 1e-4
        assert pt["trials"] >= 2000 and 0.0 <= pt["mc"] <= 1.0
    assert summary["oracle"]["p"] == pytest.approx(8.38e-13, rel=5e-3)
    assert len(summary["sweeps"]["1024_32_24"]) == 24
    c = summary["continual"]
    assert c["tasks"] == 2 and len(c["dendritic"]["final"]) == len(c["plain"]["final"]) == 2
    assert abs(c["params"]["dendritic"] - c["params"]["plain"]) / c["params"]["plain"] < 0.05  # equal budgets
    assert [len(r) for r in c["dendritic"]["after_task"]] == [1, 2]
    for claim in get_study(KEY).claims:
        result = claim.evaluate(summary)
        assert isinstance(result, ClaimResult) and result.error is None
    run_dir = tmp_path / "run"
    for fig in ("false_match", "continual"):
        assert (run_dir / "figures" / f"{fig}.png").stat().st_size > 0
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert sum("task" in line for line in lines) == 2


def test_tiny_run_is_deterministic(tmp_path):
    a = run_study(KEY, out=tmp_path / "a", seed=3, sets=TINY)
    b = run_study(KEY, out=tmp_path / "b", seed=3, sets=TINY)
    c = run_study(KEY, out=tmp_path / "c", seed=4, sets=TINY)
    assert a == b
    assert a["mc"] != c["mc"]


@pytest.mark.parametrize("die_when", ["theory", "continual"])
def test_killed_run_resumes_to_the_same_summary(tmp_path, monkeypatch, die_when):
    study = get_study(KEY)
    cfg = make_config(study, sets=TINY)

    def spec(path, resume):
        return RunSpec(
            KEY, type(study).__module__, config_to_json(cfg), 1, str(path), resume, checkpoint_every=1
        )

    full = execute(spec(tmp_path / "full", False))
    assert full.status == "done"

    real_log = Run.log
    seen = {"n": 0}

    def dying_log(self, step, **metrics):
        hit = metrics.get("task") == 1 if die_when == "continual" else metrics.get("n") == 512
        if hit:
            seen["n"] += 1
            if seen["n"] == 1 and die_when == "continual" or seen["n"] == 2:
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

    with pytest.raises(NeuroplastUsageError, match="tasks"):
        run_study(KEY, out=tmp_path / "bad", sets=[*TINY, "tasks=1"])
    with pytest.raises(NeuroplastUsageError, match="p_min"):
        run_study(KEY, out=tmp_path / "bad2", sets=["p_min=0"])
    with pytest.raises(NeuroplastUsageError, match="optimizer"):
        run_study(KEY, out=tmp_path / "bad3", sets=["optimizer=rmsprop"])
    assert not (tmp_path / "bad").exists()
