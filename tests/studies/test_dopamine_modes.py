"""Smoke, determinism, resume and bad-config tests of the dopamine-modes study at a tiny budget."""

from __future__ import annotations

import json

from neuroplast.neurons.gating import load_gate_file
from neuroplast.testing import (
    check_study_determinism,
    check_study_registered,
    check_study_rejects,
    check_study_resume,
    check_study_smoke,
)

KEY = "dopamine-modes"
TINY = ["hidden=16", "pretrain_epochs=1", "adapt_epochs=1", "batch_size=500", "lora_rank=2"]
NO_FIGURES = [*TINY, "figures=false"]  # drawing is most of a tiny run's time; the smoke test draws


def test_registered_with_paper_metadata():
    study = check_study_registered(KEY, "2602.11726", "B")
    assert [c.name for c in study.claims] == [
        "gate-beats-frozen",
        "hardening-costs-little",
        "minority-active",
    ]
    hardening = study.claims[1]
    assert hardening.op == "<=" and hardening.threshold == 0.01  # the 1-point bound, fixed in advance
    quick, full = study.Config.quick(), study.Config()
    assert quick.adapt_epochs < full.adapt_epochs and quick.hidden == full.hidden == 256


def test_smoke_summary_table_and_gate_file(tmp_path):
    summary = check_study_smoke(KEY, TINY, tmp_path, quick=True, figures=["accuracy_vs_params", "firing"])
    arms = summary["arms"]
    assert list(arms) == ["frozen", "gate", "ia3", "bias", "lora", "full"]
    h = 16
    # trainable parameter counts follow from the architecture 784-16-16-10
    assert arms["gate"]["params"] == 2 * (2 * h)
    assert summary["gate"]["params_per_layer"] == {"1": 2 * h, "3": 2 * h}
    assert arms["ia3"]["params"] == 2 * h
    assert arms["bias"]["params"] == h + h + 10
    assert arms["lora"]["params"] == 2 * ((784 + h) + (h + h) + (h + 10))
    assert arms["full"]["params"] == summary["base_params"] == 784 * h + h + h * h + h + h * 10 + 10
    assert [r["arm"] for r in summary["table"]] == list(arms)
    for r in arms.values():
        assert 0.0 <= r["rotated"] <= 1.0 and 0.0 <= r["upright"] <= 1.0
    # detaching an activation adapter gives the frozen base back exactly
    for arm in ("gate", "ia3"):
        assert arms[arm]["upright_after_detach"] == arms["frozen"]["upright"]
    g = summary["gate"]
    assert g["reload_matches"] and g["reloaded_rotated"] == arms["gate"]["rotated"]
    assert 0.0 <= g["active_fraction"] <= g["open_fraction"] <= 1.0
    assert sorted(g["active_rates"]) == ["1", "3"] and all(len(v) == h for v in g["active_rates"].values())
    tensors, meta = load_gate_file(tmp_path / "run" / "gate_rotated.safetensors")
    assert meta["sites"] == ["1", "3"] and tensors["3/threshold"].shape == (h,)
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [x["stage"] for x in lines] == ["pretrain", "gate", "ia3", "bias", "lora", "full"]


def test_tiny_run_is_deterministic(tmp_path):
    check_study_determinism(KEY, NO_FIGURES, tmp_path, seed=3, other_seed=4, differs=lambda s: s["arms"])


def test_killed_run_resumes_to_the_same_summary(tmp_path):
    check_study_resume(KEY, NO_FIGURES, tmp_path, kill_at=1, kill_when=lambda m: m.get("stage") == "bias")


def test_bad_config_is_rejected_before_running(tmp_path):
    check_study_rejects(
        KEY,
        [
            (["temperature=0"], "temperature"),
            (["lora_rank=-1"], "lora_rank"),
            (["adapt_epochs=0"], "adapt_epochs"),
        ],
        tmp_path,
    )
