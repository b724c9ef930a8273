"""Recorder: streaming statistics equal the statistics of all activations at once (torch.cat)."""

from __future__ import annotations

import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from neuroplast.core import STATS, Recorder, Site, find_sites, units
from neuroplast.core.record import _BLOCK

ALL = tuple(s for s in STATS if s != "count")


def oracle(acts: list[torch.Tensor], axis: int, threshold: float = 0.0) -> dict[str, torch.Tensor]:
    """Every statistic from all recorded activations at once, in float64."""
    u = torch.cat([units(a.double(), axis) for a in acts])  # (samples, N)
    return {
        "count": torch.tensor(u.shape[0]),
        "mean": u.mean(0),
        "var": u.var(0, correction=0),
        "mean_abs": u.abs().mean(0),
        "max_abs": u.abs().amax(0),
        "frac_active": (u > threshold).double().mean(0),
        "min": u.amin(0),
        "max": u.amax(0),
    }


def capture(module: nn.Module) -> tuple[list[torch.Tensor], object]:
    acts: list[torch.Tensor] = []

    def hook(m, a, out):
        out = out[0] if isinstance(out, tuple) else out
        acts.append(out.detach().clone())

    return acts, module.register_forward_hook(hook)


def assert_matches(stats, expected, rtol=1e-5, atol=1e-6):
    assert set(stats) == set(expected)
    for k, v in expected.items():
        assert stats[k].dtype == (torch.int64 if k == "count" else torch.float64), k
        torch.testing.assert_close(stats[k], v.to(stats[k].dtype), rtol=rtol, atol=atol, msg=k)


SIZES = [1, 7, 64, 3, 200, 5, 33, 2, 90, 11]  # uneven, including a batch of one


def test_linear_and_relu_sites_match_oracle_over_uneven_batches():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 4))
    acts0, h0 = capture(model[0])
    acts1, h1 = capture(model[1])
    with Recorder(model, ["0", "1"], stats=ALL, threshold=0.1) as rec:
        for b in SIZES * 4:  # 40 batches: crosses the pending-block boundary
            model(torch.randn(b, 10) * 2 + 0.5)
    h0.remove(), h1.remove()
    assert_matches(rec.stats["0"], oracle(acts0, -1, 0.1))
    assert_matches(rec.stats["1"], oracle(acts1, -1, 0.1))  # ReLU: the |a| = a shortcut
    assert rec.stats["0"]["mean"].shape == (16,)


def test_conv_sites_axis1_match_oracle():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.Conv2d(6, 5, 3, padding=1))
    sites = find_sites(model, "*")
    assert {s.axis for s in sites} == {1}
    caps = [capture(m) for m in model]
    with Recorder(model, sites, stats=ALL) as rec:
        for b in SIZES:
            model(torch.randn(b, 3, 9, 8) + 1.0)
    for i, (acts, h) in enumerate(caps):
        h.remove()
        assert_matches(rec.stats[str(i)], oracle(acts, 1))


def test_time_first_rnn_site_matches_oracle():
    torch.manual_seed(2)
    rnn = nn.LSTM(4, 6)  # output tuple: ([T, B, 6], (h, c)); the first element is recorded
    acts, h = capture(rnn)
    with Recorder(rnn, Site("", rnn, -1), stats=ALL) as rec:
        for t, b in [(5, 3), (2, 1), (9, 4), (1, 7)]:
            rnn(torch.randn(t, b, 4))
    h.remove()
    assert_matches(rec.stats[""], oracle(acts, -1))
    assert int(rec.stats[""]["count"]) == 5 * 3 + 2 * 1 + 9 * 4 + 1 * 7


def test_large_offset_variance_stays_accurate():
    # mean 1e4, std 1: the one-pass shortcut would lose everything here; the fallback must not.
    model = nn.Sequential(nn.Identity())
    site = Site("0", model[0], 1)
    torch.manual_seed(3)
    xs = [torch.randn(b, 3, 5, 5) + 1e4 for b in (4, 9, 2)]
    with Recorder(model, site, stats=("mean", "var")) as rec:
        for x in xs:
            model(x)
    expected = oracle(xs, 1)
    torch.testing.assert_close(rec.stats["0"]["var"], expected["var"], rtol=1e-4, atol=0)
    # float32 batch sums: relative error ~ eps32
    torch.testing.assert_close(rec.stats["0"]["mean"], expected["mean"], rtol=1e-6, atol=0)


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 40), min_size=1, max_size=45),
    shift=st.floats(-50, 50),
    scale=st.floats(0.01, 20),
    conv=st.booleans(),
    chunk_bytes=st.sampled_from([None, 16, 100]),
)
def test_property_any_batch_split_gives_the_oracle(sizes, shift, scale, conv, chunk_bytes):
    from neuroplast.core import record

    gen = torch.Generator().manual_seed(len(sizes))
    shape = (3, 2, 2) if conv else (3,)
    xs = [torch.randn(b, *shape, generator=gen) * scale + shift for b in sizes]
    model = nn.Sequential(nn.Identity())
    with pytest.MonkeyPatch.context() as mp:
        if chunk_bytes is not None:  # split batches into sub-batches of a few samples
            mp.setattr(record, "_CHUNK_BYTES", chunk_bytes)
        with Recorder(model, Site("0", model[0], 1), stats=ALL, threshold=shift) as rec:
            for x in xs:
                model(x)
    assert_matches(rec.stats["0"], oracle(xs, 1, shift), rtol=1e-4, atol=1e-5 * (abs(shift) + scale))


def test_half_and_bool_outputs_are_reduced_in_float32():
    class Spikes(nn.Module):
        def forward(self, x):
            return x > 0

    model = nn.Sequential(Spikes())
    xs = [torch.randn(6, 5) for _ in range(3)]
    with Recorder(model, "0", stats=("mean", "frac_active")) as rec:
        for x in xs:
            model(x)
    expected = oracle([(x > 0).float() for x in xs], -1)
    torch.testing.assert_close(rec.stats["0"]["mean"], expected["mean"])
    torch.testing.assert_close(rec.stats["0"]["frac_active"], expected["frac_active"])

    half = nn.Sequential(nn.Identity())
    xh = [torch.randn(100, 4).half() + 3 for _ in range(4)]
    with Recorder(half, Site("0", half[0], -1), stats=("mean", "var")) as rec:
        for x in xh:
            half(x)
    torch.testing.assert_close(rec.stats["0"]["var"], oracle(xh, -1)["var"], rtol=1e-5, atol=1e-6)


def test_only_requested_stats_are_kept():
    model = nn.Sequential(nn.Linear(3, 4))
    with Recorder(model, "0", stats=("max_abs",)) as rec:
        model(torch.randn(2, 3))
    assert set(rec.stats["0"]) == {"count", "max_abs"}
    acc = rec._acc["0"]
    assert acc.mean is None and acc.m2 is None and acc.abs_sum is None and acc.parts == ("max_abs",)


def test_memory_does_not_grow_with_batches():
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU())

    def held(rec):
        return sum(t.numel() for acc in rec._acc.values() for t in vars_tensors(acc))

    with Recorder(model, "*") as rec:
        for _ in range(3):
            model(torch.randn(5, 8))
        small = held(rec)
        for _ in range(10 * _BLOCK):
            model(torch.randn(5, 8))
        assert held(rec) == small


def vars_tensors(acc):
    return [getattr(acc, k) for k in dir(acc) if isinstance(getattr(acc, k, None), torch.Tensor)]


def test_no_autograd_graph_and_gradients_unchanged():
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 1))
    x = torch.randn(6, 3)
    model(x).sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    with Recorder(model, "*") as rec:
        model(x).sum().backward()
    for p, g in zip(model.parameters(), grads, strict=True):
        assert torch.equal(p.grad, g)
    assert all(not t.requires_grad for s in rec.stats.values() for t in s.values())


def test_hooks_removed_on_exit_and_on_exception():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    with pytest.raises(RuntimeError, match="boom"):
        with Recorder(model, "*") as rec:
            assert len(model[0]._forward_hooks) == 1
            model(torch.randn(2, 3))
            raise RuntimeError("boom")
    assert all(len(m._forward_hooks) == 0 for m in model.modules())
    assert not rec.attached and int(rec.stats["0"]["count"]) == 2  # stats survive detach


def test_lifecycle_errors_and_reset():
    model = nn.Sequential(nn.Linear(3, 4))
    rec = Recorder(model, "0").attach()
    with pytest.raises(RuntimeError, match="already attached"):
        rec.attach()
    with pytest.raises(KeyError, match="no samples yet"):
        rec.stats["0"]
    with pytest.raises(KeyError, match="not a recorded site"):
        rec.stats["nope"]
    model(torch.randn(2, 3))
    assert list(rec.stats) == ["0"] and len(rec.stats) == 1
    rec.reset()
    assert len(rec.stats) == 0
    rec.detach()
    rec.detach()  # idempotent
    assert len(model[0]._forward_hooks) == 0


def test_bad_arguments_and_shapes():
    model = nn.Sequential(nn.Linear(3, 4))
    with pytest.raises(ValueError, match="unknown stats"):
        Recorder(model, "0", stats=("mean", "median"))
    with pytest.raises(ValueError, match="besides 'count'"):
        Recorder(model, "0", stats=("count",))
    with pytest.raises(TypeError, match="threshold"):
        Recorder(model, "0", threshold="0")
    with pytest.raises(ValueError, match=r"site '0' has neuron axis 2.*shape \(2, 4\)"):
        with Recorder(model, Site("0", model[0], 2)):
            model(torch.randn(2, 3))
    grows = nn.Sequential(nn.Identity())
    with pytest.raises(ValueError, match="had 4 neurons"):
        with Recorder(grows, Site("0", grows[0], -1)):
            grows(torch.randn(2, 4))
            grows(torch.randn(2, 5))


def test_state_dict_resumes_recording_exactly():
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU())
    xs = [torch.randn(b, 4) for b in (3, 8, 1, 5, 7, 2)]
    with Recorder(model, "*", stats=ALL) as full:
        for x in xs:
            model(x)
    with Recorder(model, "*", stats=ALL) as first:
        for x in xs[:3]:
            model(x)
    state = first.state_dict()
    second = Recorder(model, "*", stats=ALL)
    second.load_state_dict(state)
    with second:
        for x in xs[3:]:
            model(x)
    for name in ("0", "1"):
        assert_matches(second.stats[name], full.stats[name], rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="stats="):
        Recorder(model, "*", stats=("mean",)).load_state_dict(state)


def _record_fused(model, sites, xs, stats, threshold=0.0):
    with Recorder(model, sites, stats=stats, threshold=threshold, fused=True) as rec:
        for x in xs:
            model(x)
    return rec


def test_fused_path_matches_oracle_with_the_uncompiled_kernel(monkeypatch):
    # The fused code path (one kernel per batch, shifted one-pass M2) with torch.compile replaced by
    # the plain function it would compile: same numbers as the oracle, for signed and ReLU sites.
    from neuroplast.core import record

    monkeypatch.setattr(record, "_compiled_partials", record._partials)
    torch.manual_seed(6)
    model = nn.Sequential(nn.Conv2d(2, 5, 3), nn.ReLU(), nn.Flatten(), nn.Linear(5 * 16, 3))
    caps = {i: capture(model[i]) for i in (0, 1, 3)}
    rec = _record_fused(model, ["0", "1", "3"], [torch.randn(b, 2, 6, 6) + 3.0 for b in SIZES], ALL, 0.2)
    for i, axis in ((0, 1), (1, 1), (3, -1)):
        acts, h = caps[i]
        h.remove()
        assert_matches(rec.stats[str(i)], oracle(acts, axis, 0.2))


@pytest.mark.slow
def test_fused_path_compiles_and_matches_oracle():
    torch.manual_seed(7)
    model = nn.Sequential(nn.Linear(6, 9), nn.ReLU())
    acts, h = capture(model[1])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a fallback to eager would fail the test
        rec = _record_fused(model, "*", [torch.randn(b, 6) for b in SIZES], ALL)
    h.remove()
    assert_matches(rec.stats["1"], oracle(acts, -1))


# -- layouts, chunking and the one-pass variance (the fast paths of Recorder.update) -------------


class Permuted(nn.Module):
    """Returns its input as a permuted view (no copy), like an attention head output."""

    def __init__(self, dims):
        super().__init__()
        self.dims = dims

    def forward(self, x):
        return x.permute(*self.dims)


def record_all(model, site, xs, stats=ALL, threshold=0.0):
    with Recorder(model, site, stats=stats, threshold=threshold) as rec:
        for x in xs:
            model(x)
    return rec.stats[site.name]


def test_permuted_outputs_are_reduced_in_memory_order_without_copy_and_match_oracle():
    # (B, H, T, d) memory seen as (B, T, H, d), heads on axis 2: the plan views it as (B, H, T*d)
    torch.manual_seed(8)
    model = nn.Sequential(Permuted((0, 2, 1, 3)))
    site = Site("0", model[0], 2)
    xs = [torch.randn(b, 4, 6, 5) * 3 - 1 for b in (2, 7, 1)]
    outs = [x.permute(0, 2, 1, 3) for x in xs]
    assert not outs[0].is_contiguous()
    assert_matches(record_all(model, site, xs), oracle(outs, 2))
    rec = Recorder(model, site)
    with rec:
        model(xs[0])
    (plan,) = _plans_of(rec)
    assert plan.perm == [0, 2, 1, 3] and plan.shape3 == (2, 4, 6 * 5)  # heads in the middle, no copy
    # heads outermost in memory ((H, B, T, d) storage): a (1, H, B*T*d) view, the neuron-major layout
    model2 = nn.Sequential(Permuted((1, 2, 0, 3)))
    xs2 = [torch.randn(4, b, 3, 70) + 2 for b in (3, 5)]
    expected = oracle([x.permute(1, 2, 0, 3) for x in xs2], 2)
    assert_matches(record_all(model2, Site("0", model2[0], 2), xs2), expected)


def _plans_of(rec):
    """The layout plans the Recorder made, in order."""
    return [plan for plans in rec._plans.values() for plan in plans.values()]


def test_neuron_major_outputs_are_chunked_along_the_inner_axis(monkeypatch):
    # heads outermost in memory (pre = 1): chunks are slices of the contiguous inner axis
    from neuroplast.core import record

    monkeypatch.setattr(record, "_CHUNK_BYTES", 2048)
    torch.manual_seed(17)
    model = nn.Sequential(Permuted((1, 2, 0, 3)))
    site = Site("0", model[0], 2)
    xs = [torch.randn(4, b, 3, 70) * 0.7 + 2 for b in (3, 2, 3)]
    rec = Recorder(model, site, stats=ALL, threshold=2.0)
    with rec:
        for x in xs:
            model(x)
    plans = _plans_of(rec)
    assert {(p.split, len(p.chunks)) for p in plans} == {(2, 3), (2, 2)}
    assert_matches(rec.stats["0"], oracle([x.permute(1, 2, 0, 3) for x in xs], 2, 2.0))


def test_non_dense_outputs_fall_back_to_a_copy():
    class EveryOther(nn.Module):
        def forward(self, x):
            return x[:, ::2]  # strided, not a permutation of a dense tensor

    torch.manual_seed(9)
    model = nn.Sequential(EveryOther())
    xs = [torch.randn(b, 10, 3) for b in (4, 2)]
    assert_matches(record_all(model, Site("0", model[0], 1), xs), oracle([x[:, ::2] for x in xs], 1))


@pytest.mark.parametrize("post", [1, 16, 300])  # rows, outer-first, inner-first reductions
def test_every_reduction_order_matches_oracle(post):
    torch.manual_seed(10)
    model = nn.Sequential(nn.Identity())
    xs = [torch.randn(b, 6, post) * 2 + 0.3 for b in (3, 1, 8)]
    stats = record_all(model, Site("0", model[0], 1), xs, threshold=0.5)
    assert_matches(stats, oracle(xs, 1, 0.5))
    kinds = {1: "rows", 16: "outer", 300: "inner"}
    rec = Recorder(model, Site("0", model[0], 1))
    with rec:
        model(xs[0])
    assert [p.kind for p in _plans_of(rec)] == [kinds[post]]


@pytest.mark.parametrize("offset", [0.0, 3.0, 1e4])
@pytest.mark.parametrize("chunked", [False, True])
def test_large_offsets_keep_variance_accurate(offset, chunked, monkeypatch):
    # Offset 3 std: sum(a^2)/M2 = 10 < 16, so the one-pass M2 is kept; 1e4 std: it is refused and M2
    # is recomputed two-pass. Chunked: every batch is split into 12 sub-batches (merged by Chan et al.).
    # Documented accuracy of var: relative error ~1e-5 while the one-pass test holds; for offsets of
    # 1e4 std it is set by the float32 batch sums (~eps32 * offset / std), not by the number of samples.
    from neuroplast.core import record

    if chunked:
        monkeypatch.setattr(record, "_CHUNK_BYTES", 1024)
    gen = torch.Generator().manual_seed(11)
    model = nn.Sequential(nn.Identity())
    xs = [torch.randn(b, 8, 40, generator=gen) + offset for b in (24, 5, 24)]
    rec = Recorder(model, Site("0", model[0], 1), stats=ALL)
    with rec:
        for x in xs:
            model(x)
    assert max(len(p.chunks) for p in _plans_of(rec)) == (12 if chunked else 1)
    expected, got = oracle(xs, 1), rec.stats["0"]
    torch.testing.assert_close(got["var"], expected["var"], rtol=1e-4 if offset > 100 else 2e-5, atol=0)
    torch.testing.assert_close(got["mean"], expected["mean"], rtol=1e-6, atol=1e-6)
    assert_matches(got, expected, rtol=1e-4, atol=1e-5)


def test_real_size_chunked_output_matches_oracle():
    # 1.3 MB per batch with the default chunk size: 3 chunks of 15 pre-rows each
    gen = torch.Generator().manual_seed(16)
    model = nn.Sequential(nn.ReLU())
    xs = [torch.randn(40, 8, 1030, generator=gen) * 2 + 0.5 for _ in range(2)]
    rec = Recorder(model, Site("0", model[0], 1), stats=ALL, threshold=0.1)
    with rec:
        for x in xs:
            model(x)
    assert [len(p.chunks) for p in _plans_of(rec)] == [3]
    assert_matches(rec.stats["0"], oracle([x.relu() for x in xs], 1, 0.1), rtol=2e-5, atol=1e-5)


def test_one_pass_is_refused_for_large_offsets_and_kept_otherwise():
    from neuroplast.core import record

    gen = torch.Generator().manual_seed(12)
    v = torch.randn(6, 4, 50, generator=gen)
    for offset, kept in ((0.0, True), (3.0, True), (5.0, False), (1e4, False)):
        model = nn.Sequential(nn.Identity())
        rec = Recorder(model, Site("0", model[0], 1), stats=("mean", "var"))
        with rec:
            model(v + offset)
        (plan,) = _plans_of(rec)
        acc = rec._acc["0"]
        acc.counts.clear()  # redo the batch by hand to see whether the shortcut was accepted
        x = (v + offset).reshape(plan.vshape)
        plan.sum(x, acc.rows[0][acc.i_sum])
        plan.sum_sq(x, acc.rows[0][acc.i_m2])
        assert acc._one_pass_m2(0, plan) is kept, offset
    assert record._ONE_PASS_COND == 16.0


def test_chunks_beyond_the_pending_block_grow_it(monkeypatch):
    # a pending block of one row (as for very wide layers) and 6 chunks per batch: the block grows
    from neuroplast.core import record

    monkeypatch.setattr(record, "_BLOCK_ELEMENTS", 1)
    monkeypatch.setattr(record, "_CHUNK_BYTES", 256)
    gen = torch.Generator().manual_seed(13)
    model = nn.Sequential(nn.Identity())
    xs = [torch.randn(b, 5, 20, generator=gen) * 0.5 + 1 for b in (12, 3, 12)]
    rec = Recorder(model, Site("0", model[0], 1), stats=ALL)
    with rec:
        for x in xs:
            model(x)
    acc = rec._acc["0"]
    assert max(len(p.chunks) for p in _plans_of(rec)) == 12 and acc.block == 12
    assert_matches(rec.stats["0"], oracle(xs, 1), rtol=1e-5, atol=1e-5)


def test_counts_above_exact_float32_range_are_counted_in_float64(monkeypatch):
    from neuroplast.core import record

    monkeypatch.setattr(record, "_EXACT_COUNT", 7)  # every batch takes the float64 counting path
    torch.manual_seed(14)
    for shape, axis in (((9, 5), -1), ((4, 3, 6), 1), ((70, 3, 1200), 1)):
        model = nn.Sequential(nn.Identity())
        xs = [torch.randn(*shape) for _ in range(2)]
        stats = record_all(model, Site("0", model[0], axis), xs, stats=("frac_active", "mean"), threshold=0.2)
        expected = oracle(xs, axis, 0.2)["frac_active"]
        torch.testing.assert_close(stats["frac_active"], expected, rtol=0, atol=1e-12)


def test_many_output_shapes_keep_a_bounded_plan_cache():
    from neuroplast.core import record

    torch.manual_seed(18)
    model = nn.Sequential(nn.Identity())
    xs = [torch.randn(2, 3, t) for t in range(1, record._MAX_PLANS + 20)]  # e.g. sequence lengths
    rec = Recorder(model, Site("0", model[0], 1), stats=ALL)
    with rec:
        for x in xs:
            model(x)
    assert len(_plans_of(rec)) <= record._MAX_PLANS
    assert_matches(rec.stats["0"], oracle(xs, 1))


def test_empty_outputs_record_nothing():
    model = nn.Sequential(nn.Identity())
    with Recorder(model, Site("0", model[0], 1)) as rec:
        model(torch.randn(0, 3, 4))
        model(torch.randn(2, 0, 4))
    assert len(rec.stats) == 0


def test_reset_then_a_new_dtype_uses_a_new_plan():
    torch.manual_seed(15)
    model = nn.Sequential(nn.Identity())
    site = Site("0", model[0], 1)
    rec = Recorder(model, site, stats=ALL)
    with rec:
        model(torch.randn(3, 4, 5))
        rec.reset()
        xs = [torch.randn(3, 4, 5, dtype=torch.float64) * 1e3 + 1e8]
        model(xs[0])
    assert rec._acc["0"].dtype == torch.float64
    assert_matches(rec.stats["0"], oracle(xs, 1), rtol=1e-9, atol=1e-9)
