"""Tiny-budget smoke and kill-and-resume test of the hlop study (ANN and spiking arms, claims measurable)."""

from __future__ import annotations

import json

from neuroplast.testing import (
    check_study_registered,
    check_study_rejects,
    check_study_resume,
    check_study_smoke,
)

KEY = "hlop"
TINY = [
    "source=digits",
    "n_tasks=3",
    "train_per_task=150",
    "test_per_task=60",
    "split_source=digits",
    "split_epochs=1",
    "epochs=1",
    "hidden=24",
    "hlop_first=20,8,6",
    "hlop_increment=10,4,3",
    "hlop_decrement=0,0,0",
    "spiking_T=2",
    "ewc_samples=16",
    "gpm_samples=100",
]


def _keys(obj):
    """Every dict key anywhere in ``obj``."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from _keys(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _keys(v)


def test_registered_with_paper_metadata():
    study = check_study_registered(KEY, "2402.11984", "D", n_claims=3)
    assert {c.name for c in study.claims} == {"hlop-bwt", "hlop-acc-vs-gpm", "finetune-forgets"}
    q = study.Config.quick()
    assert q.epochs == 1 and q.train_per_task == 10000 and study.Config().epochs == 5


def test_smoke_summary_table_and_claims(tmp_path):
    # every claim measurable (finite: holds or not at this budget), the R heatmap drawn
    s = check_study_smoke(KEY, TINY, tmp_path, quick=True, figures=("pmnist_R_hlop",), finite_claims=True)
    assert s["setting"]["source"] == "digits"
    # pixels in [0, 1] by default (normalize=true standardizes them as the GPM / HLOP loaders do)
    assert s["setting"]["pmnist"]["normalize"] is None and s["setting"]["split"]["normalize"] is None
    assert set(s["pmnist"]["hlop"]["diagnostics"][-1]["orth_error"]) == {"1", "3", "5"}
    assert set(s["pmnist"]) == {"finetune", "joint", "ewc", "gpm", "hlop"}
    assert set(s["spiking_split"]) == {"finetune", "hlop"}
    hv = s["pmnist"]["hlop"]["hebbian_vs_svd"]
    assert (
        hv["k"] == 20
        and 0.0 <= hv["angle_median_deg"] <= 90.0
        and 0.0 < hv["energy_captured_vs_svd"] <= 1.0 + 1e-6
    )
    assert s["pmnist"]["hlop"]["diagnostics"][-1]["lateral_neurons"] == {"1": 40, "3": 16, "5": 12}
    assert s["split"]["hlop"]["diagnostics"][-1]["lateral_neurons"] == {"1": 20 + 10 * 4, "3": 8 + 4 * 4}
    for row in s["table"]:
        assert row["memory_bytes"] >= 0 and "seconds_per_task" not in row and "time_vs_finetune" not in row
    # wall-clock times live in timings.json, outside the summary
    assert not any("seconds" in key or "time_vs" in key for key in _keys(s))
    times = json.loads((tmp_path / "run" / "timings.json").read_text())["arms"]
    assert set(times) == {f"{r['benchmark']}/{r['arm']}" for r in s["table"]}
    for t in times.values():
        assert t["mean_seconds_per_task"] > 0 and all(x > 0 for x in t["seconds_per_task"])
    assert {t["time_vs_finetune"] for k, t in times.items() if k.endswith("/finetune")} == {1.0}


def test_bad_config_is_rejected(tmp_path):
    check_study_rejects(
        KEY,
        [
            ([*TINY, "hlop_first=1,2"], "hlop_first"),
            ([*TINY, "hlop_lr=0.01,0.01"], "hlop_lr"),
            ([*TINY, "hlop_lr=0.001,0.01,0"], "hlop_lr"),
        ],
        tmp_path,
    )


def test_killed_run_resumes_to_the_same_summary(tmp_path):
    """The whole summary.json (nothing removed) equals an uninterrupted run's; times are in timings.json."""
    # killed at the 12th log: inside the HLOP arm of permuted MNIST, after a checkpointed task; the
    # check compares the summaries and summary.json, claims.json and metrics.jsonl byte for byte
    check_study_resume(KEY, TINY, tmp_path, kill_at=12, quick=True)
    full_dir, killed_dir = tmp_path / "full", tmp_path / "killed"
    times = json.loads((killed_dir / "timings.json").read_text())["arms"]
    assert set(times) == set(json.loads((full_dir / "timings.json").read_text())["arms"])
    assert all(t["mean_seconds_per_task"] > 0 for t in times.values())
