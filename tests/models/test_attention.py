"""neuroplast.models: the attention-only transformer (against torch's scaled_dot_product_attention),
head sites with the core Recorder/Clamp/Ablate, the induction scores on worked examples, the
phase-change locator, repeated-sequence data, ClampToSource, and the core Patch / full-shape Clamp /
SiteMean on head sites against a hand-built SDPA forward."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from neuroplast.core import Ablate, Clamp, Patch, Recorder, Schedule, SiteMean, find_sites, site_output
from neuroplast.models import (
    AttentionOnlyTransformer,
    ClampToSource,
    copying_score,
    icl_mask,
    prefix_matching_score,
    previous_token_score,
    repeated_sequences,
    steepest_change,
)


def _model(seed: int = 0, dtype: torch.dtype = torch.float64, **kw) -> AttentionOnlyTransformer:
    args = {"vocab": 11, "d_model": 12, "n_layers": 2, "n_heads": 3, "max_len": 9} | kw
    return AttentionOnlyTransformer(**args, generator=torch.Generator().manual_seed(seed)).to(dtype)


def _tokens(b: int = 4, t: int = 9, vocab: int = 11, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, vocab, (b, t), generator=torch.Generator().manual_seed(seed))


def _reference(model: AttentionOnlyTransformer, tokens: torch.Tensor,
               drop: dict | None = None) -> torch.Tensor:
    """Forward pass written with F.scaled_dot_product_attention, one head at a time; ``drop``:
    {layer: [heads]} whose outputs are left out."""
    drop = drop or {}
    x = model.W_E[tokens] + model.W_pos[: tokens.shape[1]]
    for layer, blk in enumerate(model.blocks):
        out = torch.zeros_like(x)
        for h in range(model.n_heads):
            q, k, v = x @ blk.W_Q[h], x @ blk.W_K[h], x @ blk.W_V[h]
            z = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            if h not in drop.get(layer, []):
                out = out + z @ blk.W_O[h]
        x = x + out
    return x @ model.W_U


def _reference_z(model: AttentionOnlyTransformer, tokens: torch.Tensor, zfix: dict) -> torch.Tensor:
    """The SDPA reference with head outputs z edited: ``zfix`` {layer: fn(head, z (B, T, e)) -> z}."""
    x = model.W_E[tokens] + model.W_pos[: tokens.shape[1]]
    for layer, blk in enumerate(model.blocks):
        out = torch.zeros_like(x)
        for h in range(model.n_heads):
            z = F.scaled_dot_product_attention(x @ blk.W_Q[h], x @ blk.W_K[h], x @ blk.W_V[h], is_causal=True)
            if layer in zfix:
                z = zfix[layer](h, z)
            out = out + z @ blk.W_O[h]
        x = x + out
    return x @ model.W_U


def _z(model: AttentionOnlyTransformer, tokens: torch.Tensor, layer: int) -> torch.Tensor:
    got = {}
    h = model.blocks[layer].hook_z.register_forward_hook(lambda m, a, out: got.__setitem__("z", out.detach()))
    model(tokens)
    h.remove()
    return got["z"]  # (B, T, heads, d_head)


def test_forward_matches_scaled_dot_product_attention():
    model, tokens = _model(), _tokens()
    torch.testing.assert_close(model(tokens), _reference(model, tokens), rtol=1e-10, atol=1e-10)


def test_causal_future_tokens_do_not_change_the_past():
    model, tokens = _model(), _tokens()
    other = tokens.clone()
    other[:, 5:] = (other[:, 5:] + 3) % 11
    a, b = model(tokens), model(other)
    torch.testing.assert_close(a[:, :5], b[:, :5], rtol=0, atol=0)
    assert not torch.allclose(a[:, 5:], b[:, 5:])


def test_hook_points_shapes_patterns_and_head_sum():
    model, tokens = _model(), _tokens()
    seen = {}
    hooks = [
        m.register_forward_hook(lambda mod, a, out, n=n: seen.__setitem__(n, out))
        for n, m in model.named_modules()
        if n.startswith("blocks.0.hook_")
    ]
    model(tokens)
    for h in hooks:
        h.remove()
    B, T, H, e, d = 4, 9, 3, 4, 12
    assert seen["blocks.0.hook_pattern"].shape == (B, H, T, T)
    assert seen["blocks.0.hook_z"].shape == (B, T, H, e)
    assert seen["blocks.0.hook_result"].shape == (B, T, H, d)
    pat = seen["blocks.0.hook_pattern"]
    torch.testing.assert_close(pat.sum(-1), torch.ones(B, H, T, dtype=pat.dtype))
    assert (pat.triu(1) == 0).all()  # causal
    # the layer writes the sum of its heads' outputs into the residual stream
    x0 = model.W_E[tokens] + model.W_pos[:T]
    torch.testing.assert_close(model.blocks[0](x0), seen["blocks.0.hook_result"].sum(2))
    _, patterns = model.run_with_patterns(tokens)
    torch.testing.assert_close(patterns[0], pat)
    sites = model.head_sites("pattern")
    assert [(s.name, s.axis) for s in sites] == [("blocks.0.hook_pattern", 1), ("blocks.1.hook_pattern", 1)]


def test_core_ablate_on_a_head_site_removes_exactly_that_head():
    model, tokens = _model(), _tokens()
    site = model.head_sites("result", [0])[0]
    with Ablate(model, site, [1]):
        out = model(tokens)
    torch.testing.assert_close(out, _reference(model, tokens, {0: [1]}), rtol=1e-10, atol=1e-10)
    # same through find_sites with an explicit head axis, on the z site (z = 0 -> output 0)
    (zsite,) = find_sites(model, "blocks.1.hook_z", axis=2)
    with Ablate(model, zsite, [0, 2]):
        out = model(tokens)
    torch.testing.assert_close(out, _reference(model, tokens, {1: [0, 2]}), rtol=1e-10, atol=1e-10)


def test_clamped_head_gets_no_gradient():
    model, tokens = _model(), _tokens()
    with Ablate(model, model.head_sites("result", [0])[0], [2]):
        model(tokens).pow(2).sum().backward()
    blk = model.blocks[0]
    for w in (blk.W_Q, blk.W_K, blk.W_V, blk.W_O):
        assert (w.grad[2] == 0).all() and (w.grad[0] != 0).any()


def test_recorder_and_mean_clamp_per_head():
    model, tokens = _model(), _tokens()
    site = model.head_sites("result", [1])[0]
    got = {}
    handle = site.module.register_forward_hook(lambda m, a, out: got.__setitem__("r", out))
    with Recorder(model, [site], stats=("count", "mean")) as rec:
        model(tokens)
    handle.remove()
    mean = rec.stats[site.name]["mean"]
    torch.testing.assert_close(mean, got["r"].mean(dim=(0, 1, 3)).to(mean.dtype))  # one number per head
    with Clamp(model, site, [0], value="mean", stats=rec.stats[site.name]):
        model(tokens)
        seen = {}
        h = site.module.register_forward_hook(lambda m, a, out: seen.__setitem__("r", out))
        model(tokens)
        h.remove()
    assert (seen["r"][:, :, 0] == mean[0].to(seen["r"].dtype)).all()
    torch.testing.assert_close(seen["r"][:, :, 1:], got["r"][:, :, 1:])


def test_previous_token_score_worked_examples():
    T = 5
    prev = torch.zeros(1, 2, T, T)
    prev[0, :, 0, 0] = 1.0
    for t in range(1, T):
        prev[0, 0, t, t - 1] = 1.0  # head 0: a perfect previous-token head
        prev[0, 1, t, : t + 1] = 1.0 / (t + 1)  # head 1: uniform over the causal window
    score = previous_token_score(prev)
    expected_uniform = sum(1.0 / (t + 1) for t in range(1, T)) / (T - 1)
    torch.testing.assert_close(score, torch.tensor([1.0, expected_uniform]))
    with pytest.raises(ValueError, match="pattern"):
        previous_token_score(torch.zeros(2, 3, 4))


def test_prefix_matching_score_worked_example():
    tokens = torch.tensor([[5, 6, 7, 5, 6, 7]])  # period 3
    T = 6
    pat = torch.zeros(1, 2, T, T)
    for t in range(T):
        pat[0, 1, t, t] = 1.0  # head 1 attends to itself: never the right place
        pat[0, 0, t, t - 2 if t >= 3 else t] = 1.0  # head 0: t -> t-3+1 for the repeat (induction)
    # queries with an earlier occurrence: t = 3, 4, 5 (token after the earlier copy at s = t-2)
    score = prefix_matching_score(pat, tokens)
    torch.testing.assert_close(score, torch.tensor([1.0, 0.0]))
    half = pat.clone()
    half[0, 0, 5] = 0.0
    half[0, 0, 5, 3] = 0.5
    half[0, 0, 5, 0] = 0.5
    torch.testing.assert_close(prefix_matching_score(half, tokens)[0], torch.tensor((1 + 1 + 0.5) / 3))
    assert torch.isnan(prefix_matching_score(pat, torch.tensor([[0, 1, 2, 3, 4, 5]]))).all()
    with pytest.raises(ValueError, match="tokens"):
        prefix_matching_score(pat, tokens[:, :4])


def test_copying_score_of_known_ov_circuits():
    model = _model(vocab=6, d_model=6, n_heads=2, d_head=3, max_len=4, n_layers=1)
    with torch.no_grad():
        model.W_E.copy_(torch.eye(6, dtype=torch.float64))
        model.W_U.copy_(torch.eye(6, dtype=torch.float64))
        blk = model.blocks[0]
        blk.W_V.copy_(torch.eye(6, dtype=torch.float64)[:, :3].expand(2, 6, 3))
        blk.W_O[0].copy_(torch.eye(6, dtype=torch.float64)[:3])  # OV = projection: copies
        blk.W_O[1].copy_(-torch.eye(6, dtype=torch.float64)[:3])  # OV = -projection: anti-copies
    score = copying_score(model)
    torch.testing.assert_close(score, torch.tensor([[1.0, -1.0]], dtype=torch.float64))
    # a random model: the score is a ratio of eigenvalue sums, so it lies in [-1, 1]
    s = copying_score(_model())
    assert s.shape == (2, 3) and (s.abs() <= 1).all()
    with pytest.raises(TypeError, match="model"):
        copying_score(torch.nn.Linear(2, 2))


def test_steepest_change_finds_the_middle_of_a_sigmoid():
    steps = np.arange(0, 2001, 50)
    loss = 4.0 - 3.5 / (1 + np.exp(-(steps - 1200) / 60.0))
    t, smoothed = steepest_change(steps, loss, smooth=2.0)
    assert t == 1200 and smoothed.shape == loss.shape
    t_up, _ = steepest_change(steps, -loss, smooth=0.0, direction="up")
    assert t_up == 1200
    noisy = loss + np.random.default_rng(0).normal(0, 0.05, loss.shape)
    assert abs(steepest_change(steps, noisy, smooth=2.0)[0] - 1200) <= 100
    with pytest.raises(ValueError, match="increasing"):
        steepest_change([0, 2, 1], [1, 2, 3])
    with pytest.raises(ValueError, match="direction"):
        steepest_change([0, 1, 2], [1, 2, 3], direction="left")


def test_repeated_sequences_are_periodic_distinct_and_seeded():
    g = torch.Generator().manual_seed(0)
    tokens, periods = repeated_sequences(64, 20, 16, 3, 12, g)
    assert tokens.shape == (64, 20) and tokens.dtype == torch.long and periods.shape == (64,)
    assert int(periods.min()) >= 3 and int(periods.max()) <= 12 and len(set(periods.tolist())) > 3
    for row, p in zip(tokens, periods.tolist(), strict=True):
        assert len(set(row[:p].tolist())) == p  # distinct within a period
        assert torch.equal(row[p:], row[: 20 - p])  # tok[t] = tok[t - p]
    again, _ = repeated_sequences(64, 20, 16, 3, 12, torch.Generator().manual_seed(0))
    assert torch.equal(tokens, again)
    mask = icl_mask(periods, 19)
    assert mask.shape == (64, 19) and mask[0].sum() == 19 - periods[0]
    with pytest.raises(ValueError, match="max_period"):
        repeated_sequences(2, 10, 8, 3, 9, g)
    with pytest.raises(ValueError, match="max_period"):
        repeated_sequences(2, 30, 8, 3, 12, g)
    with pytest.raises(TypeError, match="generator"):
        repeated_sequences(2, 10, 8, 3, 5, None)


def test_clamp_to_source_replays_the_source_heads():
    model, source, tokens = _model(0), _model(1), _tokens()
    site = model.head_sites("result", [0])[0]
    res = {}

    def grab(key):
        return lambda m, a, out: res.__setitem__(key, out.clone())

    h = source.blocks[0].hook_result.register_forward_hook(grab("src"))
    source(tokens)
    h.remove()
    before = model(tokens)
    with ClampToSource(model, site, [0, 2], source=source) as c:
        h = site.module.register_forward_hook(grab("clamped"))
        model(tokens)
        h.remove()
        assert c.attached
    torch.testing.assert_close(res["clamped"][:, :, [0, 2]], res["src"][:, :, [0, 2]], rtol=0, atol=0)
    # head 1 is the model's own: the whole output equals a reference with heads 0, 2 swapped in
    h = model.blocks[0].hook_result.register_forward_hook(grab("own"))
    torch.testing.assert_close(model(tokens), before, rtol=0, atol=0)  # detached: unchanged
    h.remove()
    torch.testing.assert_close(res["clamped"][:, :, 1], res["own"][:, :, 1], rtol=0, atol=0)
    # inactive schedule: no change, the source is not even run
    late = ClampToSource(model, site, [0], source=source, schedule=Schedule(start=5)).attach()
    torch.testing.assert_close(model(tokens), before, rtol=0, atol=0)
    late.detach()
    with pytest.raises(ValueError, match="another model"):
        ClampToSource(model, site, [0], source=model)
    with pytest.raises(TypeError, match="source"):
        ClampToSource(model, site, [0], source=None)


def test_model_rejects_bad_input_and_arguments():
    model = _model()
    with pytest.raises(ValueError, match="int64"):
        model(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="max_len"):
        model(torch.zeros(1, 10, dtype=torch.long))
    with pytest.raises(ValueError, match="vocab"):
        model(torch.full((1, 3), 11, dtype=torch.long))
    with pytest.raises(ValueError, match="d_head"):
        AttentionOnlyTransformer(10, d_model=10, n_heads=3)
    with pytest.raises(ValueError, match="n_layers"):
        AttentionOnlyTransformer(10, n_layers=0)
    with pytest.raises(ValueError, match="hook"):
        model.head_sites("q")
    with pytest.raises(ValueError, match="layers"):
        model.head_sites("z", [2])


def test_same_generator_seed_same_model():
    a, b, c = _model(3), _model(3), _model(4)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.W_E, c.W_E)
    n = sum(p.numel() for p in _model(vocab=64, d_model=64, n_heads=4, max_len=32).parameters())
    assert n == 64 * 64 * 2 + 32 * 64 + 2 * 4 * (3 * 64 * 16 + 16 * 64)
    assert math.isfinite(float(_model()(_tokens()).detach().sum()))


def test_core_patch_of_z_heads_from_another_model_matches_the_reference():
    model, source, tokens = _model(0), _model(1), _tokens()
    src_z = _z(source, tokens, 0)  # (B, T, H, e)
    site = model.head_sites("z", [0])[0]
    with Patch(model, site, [1], source=source):
        out = model(tokens)
    ref = _reference_z(model, tokens, {0: lambda h, z: src_z[:, :, h] if h == 1 else z})
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    with Patch(model, site, [1], source=src_z):  # the same from a cached activation
        torch.testing.assert_close(model(tokens), out, rtol=0, atol=0)
    with Patch(model, site, None, source=model):  # the model itself: identity, bit for bit
        patched_self = model(tokens)
    assert torch.equal(patched_self, model(tokens))
    assert isinstance(ClampToSource(model, site, [1], source=source), Patch)


def test_full_shape_clamp_and_site_mean_on_z_heads_match_the_reference():
    model, tokens = _model(), _tokens()
    site = model.head_sites("z", [1])[0]
    vec = torch.linspace(-1, 1, model.n_heads * model.d_head, dtype=torch.float64).reshape(
        model.n_heads, model.d_head
    )  # (heads, d_head): one vector per head
    with Clamp(model, site, [0, 2], value=vec):
        out = model(tokens)
    ref = _reference_z(model, tokens, {1: lambda h, z: vec[h].expand_as(z) if h in (0, 2) else z})
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    # the mean of each head's z over batch and position, recorded by SiteMean: a (heads, d_head) value
    with SiteMean(model, site, dims=(0, 1)) as sm, torch.no_grad():
        model(tokens)
    z1 = _z(model, tokens, 1)
    torch.testing.assert_close(sm.mean, z1.mean((0, 1)), rtol=1e-12, atol=1e-12)
    with Clamp(model, site, [1], value="mean", stats=sm.stats):
        out = model(tokens)
    ref = _reference_z(model, tokens, {1: lambda h, z: z1.mean((0, 1))[h].expand_as(z) if h == 1 else z})
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match=r"one sample \(9, 3, 4\).*e\.g\. \(3, 4\).*got shape \(4, 3\)"):
        with Clamp(model, site, [0], value=vec.T):
            model(tokens)


def test_clean_run_patched_into_a_corrupted_run_matches_the_reference():
    """TransformerLens-style activation patching: cache head 2's z on clean tokens (site_output),
    patch it into a run on corrupted tokens, only at the last position (a per-sample mask)."""
    model = _model()
    clean, corrupt = _tokens(seed=1), _tokens(seed=2)
    site = model.head_sites("z", [1])[0]
    cache = site_output(model, site, clean)  # (B, T, H, e)
    assert torch.equal(cache, _z(model, clean, 1))
    last = torch.zeros(9, model.n_heads, 1, dtype=torch.bool)  # (T, heads, 1)
    last[-1, 2] = True
    with Patch(model, site, last, source=cache):
        out = model(corrupt)

    def fix(h, z):
        if h != 2:
            return z
        z = z.clone()
        z[:, -1] = cache[:, -1, 2]
        return z

    torch.testing.assert_close(out, _reference_z(model, corrupt, {1: fix}), rtol=1e-10, atol=1e-10)
    # causal: the patched last position cannot change earlier logits
    torch.testing.assert_close(out[:, :-1], model(corrupt)[:, :-1], rtol=0, atol=0)
