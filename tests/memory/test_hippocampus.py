"""The CA3-inspired spiking CAM and its IF_curr_exp neuron (neuroplast.memory.hippocampus)."""

from __future__ import annotations

import math

import pytest
import torch

from neuroplast.memory import (
    HippocampalCAM,
    IFCurrExpParams,
    hopfield_recall,
    hopfield_weights,
    if_curr_exp_step,
)

# Golden trajectory: arriving currents (nA) per step and the pinned spikes / membranes (mV above rest)
CURRENT = [6.0, 0.0, 3.0, 3.0, 0.0, 0.0, 2.0, 2.0, 2.0, 2.0, 0.0, 0.0]
SPIKES = [1, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0]
V = [
    0.0,
    0.1950341661,
    2.880268027,
    0.0,
    0.1010047614,
    0.0759763172,
    1.8769428141,
    0.0,
    1.88970563,
    0.0,
    0.067416292,
    0.0507108924,
]


def _hand(current: list[float], p: IFCurrExpParams) -> tuple[list[int], list[float]]:
    """Plain-float IF_curr_exp (module docstring formula), independent of the torch code."""
    ds, beta, r = math.exp(-p.dt / p.tau_syn), math.exp(-p.dt / p.tau_m), p.tau_m / p.cm
    i = v = 0.0
    spikes, vs = [], []
    for c in current:
        i = i * ds + c
        h = beta * v + r * (1 - beta) * i * (p.tau_syn / p.dt) * (1 - ds)
        s = h > p.v_thresh
        v = 0.0 if s else h
        spikes.append(int(s))
        vs.append(v)
    return spikes, vs


def test_if_curr_exp_golden_trajectory():
    state = None
    spikes, vs = [], []
    for c in CURRENT:
        s, state = if_curr_exp_step(torch.tensor([[c]], dtype=torch.float64), state)
        spikes.append(int(s))
        vs.append(float(state.v))
    assert spikes == SPIKES
    assert vs == pytest.approx(V, abs=1e-9)
    hs, hv = _hand(CURRENT, IFCurrExpParams())
    assert hs == SPIKES and hv == pytest.approx(V, abs=1e-9)


def test_one_six_nanoamp_spike_fires_and_three_does_not():
    p = IFCurrExpParams()
    jump = (p.tau_m / p.cm) * (1 - math.exp(-1 / 3)) * p.tau_syn * (1 - math.exp(-1 / 0.3))  # mV per nA
    assert 6 * jump == pytest.approx(5.4671, abs=1e-4) and 3 * jump < p.v_thresh < 6 * jump
    s, _ = if_curr_exp_step(torch.tensor([[6.0, 3.0]]), None)
    assert s.tolist() == [[1.0, 0.0]]


def test_refractory_steps_block_input():
    p = IFCurrExpParams(tau_refrac=2.0)
    state, out = None, []
    for _ in range(6):
        s, state = if_curr_exp_step(torch.tensor([[6.0]]), state, p)
        out.append(int(s))
    assert out == [1, 0, 0, 1, 0, 0]


def _cam() -> HippocampalCAM:
    return HippocampalCAM(4, 10)


A = torch.tensor([1, 1, 0, 0, 0, 0, 0, 0, 0, 1.0])
B = torch.tensor([0, 1, 1, 1, 0, 0, 0, 0, 1, 0.0])  # shares bit 1 with A


def test_worked_example_learn_recall_forget():
    cam = _cam()
    cam.learn(0, A)
    # one presentation saturates the cue->content synapses of the memory, nothing else
    expect = torch.zeros(10, 4)
    expect[:, 0] = 6.0 * A
    torch.testing.assert_close(cam.weight, expect)
    torch.testing.assert_close(cam.recall_cue(torch.tensor([0, 1])), torch.stack([A, torch.zeros(10)]))
    cues, content = cam.recall_content(torch.tensor([[1.0, 0, 0, 0, 0, 0, 0, 0, 0, 0]]))
    assert cues.tolist() == [[1.0, 0, 0, 0]]
    torch.testing.assert_close(content, A.unsqueeze(0))
    # re-learning cue 0 with B forgets A's other bits (depressed to 0) and keeps the shared bit
    cam.learn(0, B)
    torch.testing.assert_close(cam.weight[:, 0], 6.0 * B)
    torch.testing.assert_close(cam.recall_cue(torch.tensor([0])), B.unsqueeze(0))
    assert cam.stored()[0].tolist() == B.bool().tolist()


def test_relearning_arithmetic_of_an_old_bit():
    """An old content bit fires once from the cue, then is depressed by 6 e^{-1/3} and 6 e^{-2/3}."""
    cam = _cam()
    cam.learn(0, A)
    trace = cam.learn(0, B)
    old_bit = 0  # in A, not in B
    assert trace.content[:, 0, old_bit].tolist() == [0, 0, 1, 0, 0]
    new_bit = 3  # in B only: fires at the three steps the cue's spikes arrive
    assert trace.content[:, 0, new_bit].tolist() == [0, 0, 1, 1, 1]
    assert 6 - 6 * math.exp(-1 / 3) - 6 * math.exp(-2 / 3) < 0  # so the clipped weight ends at 0
    assert float(cam.weight[old_bit, 0]) == 0.0


def test_cue_competition_and_sPyMem_union():
    cam = _cam()
    cam.learn(0, A)
    cam.learn(1, B)
    frag = torch.tensor(
        [
            [0, 1, 1, 0, 0, 0, 0, 0, 0, 0.0],  # 1 bit of A, 2 bits of B -> B wins
            [0, 1, 0, 0, 0, 0, 0, 0, 0, 0.0],
        ]
    )  # the shared bit: a tie -> both cues
    cues, content = cam.recall_content(frag)
    assert cues.tolist() == [[0, 1, 0, 0], [1, 1, 0, 0]]
    torch.testing.assert_close(content, torch.stack([B, torch.maximum(A, B)]))
    cam.wta = False  # sPyMem behaviour: every cue sharing an active bit fires
    cues, content = cam.recall_content(frag[:1])
    assert cues.tolist() == [[1, 1, 0, 0]]
    torch.testing.assert_close(content, torch.maximum(A, B).unsqueeze(0))


def test_recall_leaves_the_memory_unchanged_even_when_plastic():
    cam = _cam()
    cam.learn(2, A)
    w = cam.weight.clone()
    cam.recall_cue(torch.tensor([2, 2, 0]))
    cam.recall_content(torch.stack([A, B]))
    torch.testing.assert_close(cam.weight, w)
    cue_in = torch.zeros(3, 1, 4)
    cue_in[0, 0, 2] = 1.0
    cam.run(cue_in, torch.zeros(3, 1, 10), plastic=True)  # a plastic cue recall only re-saturates
    torch.testing.assert_close(cam.weight, w)


def test_orthogonal_memories_fill_the_address_space_exactly():
    cam = HippocampalCAM(8, 32)
    pats = torch.zeros(8, 32)
    for i in range(8):
        pats[i, 4 * i : 4 * i + 4] = 1.0
    for i in range(8):
        cam.learn(i, pats[i])
    torch.testing.assert_close(cam.recall_cue(torch.arange(8)), pats)
    single_bits = torch.zeros(8, 32)
    single_bits[torch.arange(8), 4 * torch.arange(8) + 1] = 1.0  # 25% fragments
    cues, content = cam.recall_content(single_bits)
    torch.testing.assert_close(cues, torch.eye(8))
    torch.testing.assert_close(content, pats)


def test_state_dict_round_trip():
    cam = _cam()
    cam.learn(1, A)
    other = _cam()
    other.load_state_dict(cam.state_dict())
    torch.testing.assert_close(other.recall_cue(torch.tensor([1])), A.unsqueeze(0))


def test_bad_input_is_named():
    cam = _cam()
    with pytest.raises(ValueError, match="content: expected a binary pattern with last axis 10"):
        cam.learn(0, torch.ones(9))
    with pytest.raises(ValueError, match="content: expected a binary"):
        cam.learn(0, torch.full((10,), 0.5))
    with pytest.raises(ValueError, match="cue: expected an int in"):
        cam.learn(4, A)
    with pytest.raises(ValueError, match="cues: expected indices"):
        cam.recall_cue(torch.tensor([5]))
    with pytest.raises(ValueError, match=r"cue_input: expected spikes of shape \[T, B, 4\]"):
        cam.run(torch.zeros(1, 4), torch.zeros(1, 10))  # no time axis
    with pytest.raises(ValueError, match="content_input: expected the same"):
        cam.run(torch.zeros(3, 2, 4), torch.zeros(2, 3, 10))  # [B, T, N] instead of [T, B, N]
    with pytest.raises(ValueError, match="state: expected tensors of shape"):
        _, st = if_curr_exp_step(torch.zeros(2, 3), None)
        if_curr_exp_step(torch.zeros(4, 3), st)
    with pytest.raises(ValueError, match="tau_m"):
        HippocampalCAM(2, 2, neuron=IFCurrExpParams(tau_m=0.0))


def test_hopfield_baseline_weights_and_recall():
    g = torch.Generator().manual_seed(0)
    pats = (torch.rand(3, 64, generator=g) < 0.5).float()
    w = hopfield_weights(pats)
    xi = 2 * pats - 1
    expect = xi.T @ xi / 64
    expect.fill_diagonal_(0)
    torch.testing.assert_close(w, expect)
    probe = pats.clone()
    probe[:, :8] = 1 - probe[:, :8]  # 8 flipped bits
    torch.testing.assert_close(hopfield_recall(w, probe, generator=g), pats)
