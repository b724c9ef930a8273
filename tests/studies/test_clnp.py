"""Tiny-budget smoke, claims and kill-and-resume test of the clnp study."""

from __future__ import annotations

import pytest

from neuroplast.runner import run_study
from neuroplast.runner.run import Run, RunSpec, config_to_json, execute, make_config
from neuroplast.studies import get_study

KEY = "clnp"
TINY = [
    "source=digits",
    "n_tasks=3",
    "train_per_task=150",
    "test_per_task=60",
    "split_source=digits",
    "split_epochs=1",
    "epochs=1",
    "clnp_val=100",
    "clnp_tolerances=0.0,1.0",
    "hidden=24",
]
TIME_KEYS = ("seconds_per_task", "mean_seconds_per_task", "time_vs_finetune")


def strip_times(obj):
    """The summary without wall-clock times (the only numbers that differ between runs)."""
    if isinstance(obj, dict):
        return {k: strip_times(v) for k, v in obj.items() if k not in TIME_KEYS}
    if isinstance(obj, list):
        return [strip_times(v) for v in obj]
    return obj


def test_registered_with_paper_metadata():
    study = get_study(KEY)
    assert (study.arxiv, study.family) == ("1903.04476", "D")
    assert {c.name for c in study.claims} == {"clnp-bwt-zero", "clnp-diagnostics"}
    assert study.Config.quick().train_per_task > 0 and study.Config().train_per_task == 0


def test_smoke_zero_forgetting_and_diagnostics(tmp_path):
    s = run_study(KEY, out=tmp_path / "run", seed=0, quick=True, sets=TINY)
    assert s["setting"]["source"] == "digits" and s["setting"]["pmnist"]["multi_head"]
    for bench in ("pmnist", "split"):
        assert set(s[bench]) == {"finetune", "ewc", "si", "clnp_m0", "clnp_m1"}
        for arm in ("clnp_m0", "clnp_m1"):
            assert s[bench][arm]["bwt"] == 0.0  # exactly: frozen neurons, cut connections
            assert len(s[bench][arm]["diagnostics"]) == s["setting"][bench]["n_tasks"]
    for claim in get_study(KEY).claims:
        r = claim.evaluate(s)
        assert r.error is None and r.holds, r
    rows = {(r["benchmark"], r["arm"]) for r in s["table"]}
    assert ("pmnist", "clnp_m0") in rows and ("split", "finetune") in rows
    assert (tmp_path / "run" / "figures" / "clnp_free_neurons.png").stat().st_size > 0


def test_killed_run_resumes_to_the_same_summary(tmp_path, monkeypatch):
    study = get_study(KEY)
    cfg = make_config(study, quick=True, sets=TINY)

    def spec(path, resume):
        return RunSpec(
            KEY, type(study).__module__, config_to_json(cfg), 1, str(path), resume, checkpoint_every=1
        )

    full = execute(spec(tmp_path / "full", False))
    assert full.status == "done", full.error
    calls = {"n": 0}
    real_log = Run.log

    def dying_log(self, step, **metrics):
        calls["n"] += 1
        if calls["n"] == 11:  # inside the CLNP arm of permuted MNIST, after a checkpointed task
            raise KeyboardInterrupt
        real_log(self, step, **metrics)

    monkeypatch.setattr(Run, "log", dying_log)
    with pytest.raises(KeyboardInterrupt):
        execute(spec(tmp_path / "killed", False))
    monkeypatch.setattr(Run, "log", real_log)
    resumed = execute(spec(tmp_path / "killed", True))
    assert resumed.status == "done", resumed.error
    assert strip_times(resumed.summary) == strip_times(full.summary)
    assert (tmp_path / "killed" / "metrics.jsonl").read_text() == (
        tmp_path / "full" / "metrics.jsonl"
    ).read_text()


def test_bad_config_is_rejected(tmp_path):
    from neuroplast.runner import NeuroplastUsageError

    with pytest.raises(NeuroplastUsageError, match="clnp_tolerances"):
        run_study(KEY, out=tmp_path / "bad", sets=[*TINY, "clnp_tolerances=-1.0"])
    assert not (tmp_path / "bad").exists()
