"""Tiny-budget smoke test of the lifelong-review study (every baseline family, claims measurable)."""

from __future__ import annotations

from neuroplast.runner import run_study
from neuroplast.studies import get_study

KEY = "lifelong-review"
TINY = [
    "source=digits",
    "n_tasks=3",
    "train_per_task=150",
    "test_per_task=60",
    "split_source=digits",
    "split_epochs=1",
    "epochs=1",
    "hidden=24",
    "memory=60",
    "agem_ref_batch=16",
]


def test_registered_with_paper_metadata():
    study = get_study(KEY)
    assert (study.arxiv, study.family) == ("1802.07569", "D")
    assert [c.name for c in study.claims] == ["finetune-forgets"]


def test_smoke_every_family_runs(tmp_path):
    s = run_study(KEY, out=tmp_path / "run", seed=0, quick=True, sets=TINY)
    assert set(s["pmnist"]) == {"finetune", "joint", "ewc", "si", "replay", "agem", "gpm"}
    assert set(s["split"]) == set(s["pmnist"]) | {"clnp"}  # CLNP needs one head per task
    assert s["pmnist"]["joint"]["bwt"] is None and s["pmnist"]["joint"]["acc"] is not None
    assert s["split"]["clnp"]["bwt"] == 0.0
    mem = {r["arm"]: r["memory_bytes"] for r in s["table"] if r["benchmark"] == "pmnist"}
    assert mem["finetune"] == 0 and mem["replay"] == 60 * (64 * 4 + 16) and mem["agem"] == mem["replay"]
    assert set(s["families"]) >= set(s["split"])
    r = get_study(KEY).claims[0].evaluate(s)
    assert r.error is None
    assert (tmp_path / "run" / "figures" / "pmnist_acc_vs_bwt.png").stat().st_size > 0
