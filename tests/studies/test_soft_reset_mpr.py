"""Smoke, determinism and resume tests of the soft-reset-mpr study at a tiny budget."""

from __future__ import annotations

import json

import pytest

from neuroplast.runner import run_study
from neuroplast.runner.run import Run, RunSpec, config_to_json, execute, make_config
from neuroplast.studies import ClaimResult, get_study

KEY = "soft-reset-mpr"
TINY = ["hidden=16", "epochs=1", "train_limit=128", "test_limit=100", "batch_size=64",
        "arms=hard,soft,soft_mpr"]
ARM_KEYS = {"test_acc", "qe", "qe_layers", "rate_layers", "train_loss", "test_acc_curve", "membrane_sample"}


def test_registered_with_paper_metadata():
    study = get_study(KEY)
    assert (study.arxiv, study.family) == ("2307.04356", "C")
    assert len(study.claims) == 6
    quick, full = study.Config.quick(), study.Config()
    assert quick.timesteps == full.timesteps == (2, 4)
    assert quick.epochs < full.epochs and set(quick.arms) >= {"hard", "soft", "soft_mpr"}


def test_smoke_summary_claims_and_figures(tmp_path):
    summary = run_study(KEY, out=tmp_path / "run", seed=0, sets=TINY)
    assert summary["timesteps"] == [2, 4] and summary["arms"] == ["hard", "soft", "soft_mpr"]
    for T in (2, 4):
        for arm in ("hard", "soft", "soft_mpr"):
            res = summary[f"T{T}"][arm]
            assert ARM_KEYS <= set(res)
            assert 0.0 <= res["test_acc"] <= 1.0 and res["qe"] >= 0.0
            assert len(res["qe_layers"]) == len(res["rate_layers"]) == 2
            assert len(res["train_loss"]) == len(res["test_acc_curve"]) == 1
        # the MPR pulls the membrane towards the spike values: lower quantisation error even untrained
        assert summary[f"T{T}"]["soft_mpr"]["qe"] < summary[f"T{T}"]["soft"]["qe"]
    for claim in get_study(KEY).claims:
        result = claim.evaluate(summary)
        assert isinstance(result, ClaimResult) and result.error is None
    run_dir = tmp_path / "run"
    for name in ("accuracy_and_quantisation_error", "test_accuracy_curves"):
        assert (run_dir / "figures" / f"{name}.png").stat().st_size > 0
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 6 and {(r["T"], r["arm"]) for r in lines} == {
        (T, a) for T in (2, 4) for a in ("hard", "soft", "soft_mpr")
    }


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
        return RunSpec(KEY, type(study).__module__, config_to_json(cfg), 1, str(path), resume,
                       checkpoint_every=1)

    full = execute(spec(tmp_path / "full", False))
    assert full.status == "done"
    calls = {"n": 0}
    real_log = Run.log

    def dying_log(self, step, **metrics):
        calls["n"] += 1
        if calls["n"] == 4:  # the fourth unit (T=4, hard), after three checkpoints
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
    killed, full_metrics = (tmp_path / d / "metrics.jsonl" for d in ("killed", "full"))
    assert killed.read_text() == full_metrics.read_text()


def test_bad_config_is_rejected_before_running(tmp_path):
    from neuroplast.runner import NeuroplastUsageError

    with pytest.raises(NeuroplastUsageError, match="timesteps"):
        run_study(KEY, out=tmp_path / "bad", sets=[*TINY, "timesteps=2,8"])
    with pytest.raises(NeuroplastUsageError, match="arms"):
        run_study(KEY, out=tmp_path / "bad2", sets=["arms=hard,soft"])
    with pytest.raises(NeuroplastUsageError, match="surrogate"):
        run_study(KEY, out=tmp_path / "bad3", sets=["surrogate=boxcar"])
    assert not (tmp_path / "bad").exists()
