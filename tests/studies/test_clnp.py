"""Tiny-budget smoke, claims and kill-and-resume test of the clnp study."""

from __future__ import annotations

import json

from neuroplast.studies import get_study
from neuroplast.testing import (
    check_study_registered,
    check_study_rejects,
    check_study_resume,
    check_study_smoke,
)

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
    study = check_study_registered(KEY, "1903.04476", "D", n_claims=2)
    assert {c.name for c in study.claims} == {"clnp-bwt-zero", "clnp-diagnostics"}
    assert study.Config.quick().train_per_task > 0 and study.Config().train_per_task == 0


def test_smoke_zero_forgetting_and_diagnostics(tmp_path):
    s = check_study_smoke(KEY, TINY, tmp_path, quick=True, figures=("clnp_free_neurons",))
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


def test_killed_run_resumes_to_the_same_summary(tmp_path):
    # killed at the 11th log: inside the CLNP arm of permuted MNIST, after a checkpointed task; the
    # whole summary, byte for byte (also claims.json and metrics.jsonl): wall-clock times are in
    # timings.json, not in the summary
    summary = check_study_resume(KEY, TINY, tmp_path, kill_at=11, quick=True)
    full_dir, killed_dir = tmp_path / "full", tmp_path / "killed"
    full_times = json.loads((full_dir / "timings.json").read_text())["arms"]
    killed_times = json.loads((killed_dir / "timings.json").read_text())["arms"]
    n_tasks = {b: summary["setting"][b]["n_tasks"] for b in ("pmnist", "split")}
    arms = {f"{b}/{a}": n for b, n in n_tasks.items() for a in summary[b]}
    assert set(killed_times) == set(full_times) == set(arms)
    for arm, t in killed_times.items():  # every task timed, also the ones of the killed segment
        assert len(t["seconds_per_task"]) == arms[arm] and t["mean_seconds_per_task"] > 0


def test_bad_config_is_rejected(tmp_path):
    check_study_rejects(KEY, [([*TINY, "clnp_tolerances=-1.0"], "clnp_tolerances")], tmp_path)
