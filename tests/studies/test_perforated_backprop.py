"""Smoke, determinism, resume and bad-config tests of the perforated-backprop study at a tiny budget."""

from __future__ import annotations

import json

from neuroplast.testing import (
    check_study_determinism,
    check_study_registered,
    check_study_rejects,
    check_study_resume,
    check_study_smoke,
)

KEY = "perforated-backprop"
# MNIST-5k, few images and epochs; neuron phases of at most 2 epochs so that cycles happen
TINY = ["data=mnist5k", "train_size=300", "val_fraction=0.05", "epochs=5", "batch_size=100", "narrow=4",
        "wide=8", "patience=1", "max_neuron_epochs=2", "dendrite_epochs=1", "max_cycles=2", "min_delta=0.0",
        "lr=0.01"]
ARMS = ("narrow", "wide", "correlation", "gradient")


def test_registered_with_paper_metadata():
    study = check_study_registered(KEY, "2501.18018", "B")
    assert [c.name for c in study.claims] == [
        "dendrites-beat-narrow", "within-margin-of-wide", "fewer-params-than-wide", "correlation-vs-gradient"
    ]
    quick, full = study.Config.quick(), study.Config()
    assert quick.epochs < full.epochs and (quick.narrow, quick.wide) == (full.narrow, full.wide) == (8, 32)


def test_smoke_summary_arms_and_parameter_counts(tmp_path):
    summary = check_study_smoke(KEY, TINY, tmp_path, quick=True, figures=["curves", "accuracy_vs_params"],
                                finite_claims=True)
    assert summary["data"] == "mnist5k" and summary["n_train"] == 300 and summary["n_test"] == 1000
    arms = summary["arms"]
    assert set(arms) == set(ARMS)
    # parameter counts from the architecture: 784-h-10 MLP, plus per cycle and neuron one dendrite
    # (a copy of the neuron's input weights and bias) and one v
    mlp = lambda h: 784 * h + h + 10 * h + 10  # noqa: E731
    assert arms["narrow"]["params"] == mlp(4) and arms["wide"]["params"] == mlp(8)
    for arm in ("correlation", "gradient"):
        r = arms[arm]
        assert r["cycles"] >= 1
        per_cycle = 4 * (784 + 1 + 1) + 10 * (4 + 1 + 1)
        assert r["dendrite_params"] == r["cycles"] * per_cycle
        assert r["params"] == mlp(4) + r["dendrite_params"]
        assert "dendrite" in r["phase"] and len(r["phase"]) == 5
    for r in arms.values():
        assert len(r["val"]) == len(r["test"]) == 5
        assert r["best_val"] == max(r["val"]) and r["test_at_best_val"] == r["test"][r["best_epoch"] - 1]
    # the narrow arm and the dendrite arms share initial weights and batches: identical first epoch
    assert arms["narrow"]["val"][0] == arms["correlation"]["val"][0] == arms["gradient"]["val"][0]
    # correlation candidates are not connected while they train (v = 0, neurons frozen): validation
    # accuracy cannot move during a correlation dendrite phase
    r = arms["correlation"]
    for i, p in enumerate(r["phase"]):
        if p == "dendrite" and i > 0:
            assert r["val"][i] == r["val"][i - 1]
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == list(range(1, 21))


def test_tiny_run_is_deterministic(tmp_path):
    check_study_determinism(KEY, TINY, tmp_path, seed=3, other_seed=4, differs=lambda s: s["arms"])


def test_killed_run_resumes_to_the_same_summary(tmp_path):
    # killed in the correlation arm in its first dendrite phase (restores frozen neurons, candidates)
    check_study_resume(KEY, TINY, tmp_path, kill_at=3, kill_when=lambda m: m.get("arm") == "correlation")


def test_bad_config_is_rejected_before_running(tmp_path):
    check_study_rejects(
        KEY,
        [(["wide=8", "narrow=8"], "wide"), (["data=cifar"], "data"), (["num_dendrites=0"], "num_dendrites"),
         (["val_fraction=1.5"], "val_fraction"), (["max_cycles=-1"], "max_cycles")],
        tmp_path,
    )
