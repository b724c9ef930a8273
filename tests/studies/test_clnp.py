"""Tiny-budget smoke, claims and kill-and-resume test of the clnp study."""

from __future__ import annotations

import json

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
    # the whole summary, byte for byte: wall-clock times are in timings.json, not in the summary
    assert resumed.summary == full.summary
    full_dir, killed_dir = tmp_path / "full", tmp_path / "killed"
    assert (killed_dir / "summary.json").read_bytes() == (full_dir / "summary.json").read_bytes()
    full_times = json.loads((full_dir / "timings.json").read_text())["arms"]
    killed_times = json.loads((killed_dir / "timings.json").read_text())["arms"]
    n_tasks = {b: full.summary["setting"][b]["n_tasks"] for b in ("pmnist", "split")}
    arms = {f"{b}/{a}": n for b, n in n_tasks.items() for a in full.summary[b]}
    assert set(killed_times) == set(full_times) == set(arms)
    for arm, t in killed_times.items():  # every task timed, also the ones of the killed segment
        assert len(t["seconds_per_task"]) == arms[arm] and t["mean_seconds_per_task"] > 0
    assert (tmp_path / "killed" / "metrics.jsonl").read_text() == (
        tmp_path / "full" / "metrics.jsonl"
    ).read_text()


def test_bad_config_is_rejected(tmp_path):
    from neuroplast.runner import NeuroplastUsageError

    with pytest.raises(NeuroplastUsageError, match="clnp_tolerances"):
        run_study(KEY, out=tmp_path / "bad", sets=[*TINY, "clnp_tolerances=-1.0"])
    assert not (tmp_path / "bad").exists()
