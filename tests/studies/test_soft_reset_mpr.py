"""Smoke, determinism and resume tests of the soft-reset-mpr study at a tiny budget."""

from __future__ import annotations

import json

import torch

from neuroplast.neurons.spiking import IF, LIF
from neuroplast.studies.soft_reset_mpr import Config, SpikingMLP
from neuroplast.testing import (
    check_study_determinism,
    check_study_registered,
    check_study_rejects,
    check_study_resume,
    check_study_smoke,
)

KEY = "soft-reset-mpr"
TINY = ["hidden=16", "epochs=1", "train_limit=128", "test_limit=100", "batch_size=64",
        "arms=hard,soft,soft_mpr"]
ARM_KEYS = {"test_acc", "qe", "qe_layers", "rate_layers", "train_loss", "test_acc_curve", "membrane_sample"}


def test_registered_with_paper_metadata():
    study = check_study_registered(KEY, "2307.04356", "C", n_claims=6)
    quick, full = study.Config.quick(), study.Config()
    assert quick.timesteps == full.timesteps == (2, 4)
    assert quick.epochs < full.epochs and set(quick.arms) >= {"hard", "soft", "soft_mpr"}


def test_neurons_follow_the_authors_code_no_leak_by_default():
    """Re-Loss LIFAct: u <- 1.0 * u + x (no leak), fire at phi(u) > 0.5, u <- u - o."""
    net = SpikingMLP(Config(hidden=8), T=3, reset="subtract", use_mpr=False)
    assert all(isinstance(m, IF) for m in net.spiking_layers())
    leaky = SpikingMLP(Config(hidden=8, beta=0.5), T=3, reset="subtract", use_mpr=False)
    assert all(isinstance(m, LIF) for m in leaky.spiking_layers())
    # worked example, one IF neuron, input 0.4: u = .4, .8 (spike: -> -.2), .2, .6 (spike: -> -.4), 0, .4
    lif = net.lif1
    s = lif(torch.full((6, 1, 8), 0.4))[:, 0, 0]
    assert s.tolist() == [0.0, 1.0, 0.0, 1.0, 0.0, 0.0]
    want = torch.tensor([0.4, 0.8, 0.2, 0.6, 0.0, 0.4])
    assert torch.allclose(lif.membrane_[:, 0, 0], want, atol=1e-6)


def test_smoke_summary_claims_and_figures(tmp_path):
    summary = check_study_smoke(
        KEY, TINY, tmp_path, figures=["accuracy_and_quantisation_error", "test_accuracy_curves"]
    )
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
    run_dir = tmp_path / "run"
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 6 and {(r["T"], r["arm"]) for r in lines} == {
        (T, a) for T in (2, 4) for a in ("hard", "soft", "soft_mpr")
    }


def test_tiny_run_is_deterministic(tmp_path):
    check_study_determinism(KEY, TINY, tmp_path, seed=3, other_seed=4)


def test_killed_run_resumes_to_the_same_summary(tmp_path):
    check_study_resume(KEY, TINY, tmp_path, kill_at=4)  # the fourth unit (T=4, hard), after three checkpoints


def test_bad_config_is_rejected_before_running(tmp_path):
    check_study_rejects(
        KEY,
        [
            ([*TINY, "timesteps=2,8"], "timesteps"),
            (["arms=hard,soft"], "arms"),
            (["surrogate=boxcar"], "surrogate"),
            (["beta=1.5"], "beta"),
        ],
        tmp_path,
    )
