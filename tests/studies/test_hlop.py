"""Tiny-budget smoke test of the hlop study (ANN and spiking arms, claims measurable)."""

from __future__ import annotations

import pytest

from neuroplast.runner import run_study
from neuroplast.studies import get_study

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


def test_registered_with_paper_metadata():
    study = get_study(KEY)
    assert (study.arxiv, study.family) == ("2402.11984", "D")
    assert {c.name for c in study.claims} == {"hlop-bwt", "hlop-acc-vs-gpm", "finetune-forgets"}
    q = study.Config.quick()
    assert q.epochs == 1 and q.train_per_task == 10000 and study.Config().epochs == 5


def test_smoke_summary_table_and_claims(tmp_path):
    s = run_study(KEY, out=tmp_path / "run", seed=0, quick=True, sets=TINY)
    assert s["setting"]["source"] == "digits"
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
        assert row["memory_bytes"] >= 0 and row["seconds_per_task"] > 0
    assert {r["time_vs_finetune"] for r in s["table"] if r["arm"] == "finetune"} == {1.0}
    for claim in get_study(KEY).claims:
        r = claim.evaluate(s)
        assert r.error is None and r.value == r.value  # measurable (holds or not at this budget)
    assert (tmp_path / "run" / "figures" / "pmnist_R_hlop.png").stat().st_size > 0


def test_bad_config_is_rejected(tmp_path):
    from neuroplast.runner import NeuroplastUsageError

    with pytest.raises(NeuroplastUsageError, match="hlop_first"):
        run_study(KEY, out=tmp_path / "bad", sets=[*TINY, "hlop_first=1,2"])
