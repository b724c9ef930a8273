"""Coupled-map networks: two-variable map neurons with diffusive pairwise and higher-order coupling.

A :class:`MapNetwork` holds N nodes, each a two-variable map (``"chialvo"`` or ``"rulkov"``, see
:mod:`neuroplast.neurons.maps`), and a batch of B parameter sets. Its state is one float64 tensor
``z`` of shape (B, 2N) laid out as ``[x_1..x_N, y_1..y_N]``. Coupling acts on the fast variable::

    x_i' = f(x_i, y_i) + sum_j W_ij (x_j - x_i)                       (pairwise, diffusive)
                       + sum_{(i,j,k) in T} s_T (x_j + x_k - 2 x_i)   (2-simplex hyperedges, diffusive)
    y_i' = g(x_i, y_i)

W_ij is the strength with which node j drives node i (directed; a symmetric edge sets both).
Each coupling term has a strength that is a float or a (B,) tensor, so one network sweeps a
coupling strength across the batch. Linear diffusive terms of both orders fold into one matrix C
with zero row sums (x_coupling = C x); on a complete graph the 2-simplex term equals the pairwise
Laplacian term with twice the strength, a property the tests check.

Named constructors: :func:`ring_star_network` (arXiv:2405.06000) and
:func:`chialvo_rulkov_chain` (arXiv:2405.05675).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["NodeModel", "NODE_MODELS", "MapNetwork", "RunResult", "ring_star_network", "chialvo_rulkov_chain"]

Pair = tuple[Tensor, Tensor]


def _chialvo_f(x: Tensor, y: Tensor, p: dict[str, Tensor]) -> Pair:
    return x * x * torch.exp(y - x) + p["k"], p["a"] * y - p["b"] * x + p["c"]


def _chialvo_jac(x: Tensor, y: Tensor, p: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    e = torch.exp(y - x)
    return (2 * x - x * x) * e, x * x * e, -p["b"] + 0 * x, p["a"] + 0 * x


def _rulkov_f(x: Tensor, y: Tensor, p: dict[str, Tensor]) -> Pair:
    return p["alpha"] / (1 + x * x) + y, y - p["mu"] * (x - p["sigma"])


def _rulkov_jac(x: Tensor, y: Tensor, p: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    d = 1 + x * x
    return -2 * p["alpha"] * x / (d * d), torch.ones_like(x), -p["mu"] + 0 * x, torch.ones_like(x)


@dataclass(frozen=True)
class NodeModel:
    """A two-variable map: ``f(x, y, params) -> (x', y')`` and its Jacobian entries (fx, fy, gx, gy)."""

    name: str
    defaults: dict[str, float]
    f: Callable[[Tensor, Tensor, dict[str, Tensor]], Pair]
    jac: Callable[[Tensor, Tensor, dict[str, Tensor]], tuple[Tensor, Tensor, Tensor, Tensor]]
    x_range: tuple[float, float]
    y_range: tuple[float, float]


NODE_MODELS: dict[str, NodeModel] = {
    "chialvo": NodeModel(
        "chialvo",
        {"a": 0.89, "b": 0.6, "c": 0.28, "k": 0.03},
        _chialvo_f,
        _chialvo_jac,
        (0.0, 1.0),
        (0.0, 1.0),
    ),
    "rulkov": NodeModel(
        "rulkov",
        {"alpha": 4.1, "mu": 0.001, "sigma": -1.0},
        _rulkov_f,
        _rulkov_jac,
        (-1.0, 1.0),
        (-3.5, -2.5),
    ),
}


@dataclass
class RunResult:
    """Output of :meth:`MapNetwork.run`.

    ``records``: (n_record, B, len(observe)) samples of the observed coordinates after the transient
    (NaN for diverged rows); ``state``: final state (B, 2N); ``diverged``: (B,) bool, True where the
    orbit left ``bound`` or became non-finite (such rows are reported as divergent, never as chaos).
    """

    records: Tensor
    state: Tensor
    diverged: Tensor


class MapNetwork:
    """A batch of coupled two-variable map networks (see the module docstring for the equations).

    Build with ``MapNetwork(n_nodes)``, then :meth:`set_nodes`, :meth:`add_pairwise`,
    :meth:`add_hyperedges`; or use a named constructor. ``step(z)`` is a pure function of the
    state (B, 2N) -> (B, 2N), usable by every routine of :mod:`neuroplast.dynamics.analysis`.
    """

    def __init__(self, n_nodes: int, dtype: torch.dtype = torch.float64) -> None:
        if not isinstance(n_nodes, int) or n_nodes < 1:
            raise ValueError(f"n_nodes must be a positive int, got {n_nodes!r}")
        self.n_nodes = n_nodes
        self.dtype = dtype
        self.batch = 1
        self.groups: list[tuple[NodeModel, Tensor, dict[str, Tensor]]] = []
        self.terms: list[tuple[Tensor, Tensor, str]] = []  # (strength (B|1, 1), matrix (N, N), label)
        self._node_model: list[str | None] = [None] * n_nodes
        self._cache: dict[str, object] = {}

    # ------------------------------------------------------------------ building
    @property
    def dim(self) -> int:
        """Phase-space dimension 2N."""
        return 2 * self.n_nodes

    def _batched(self, name: str, value: float | Tensor, per_node: int | None = None) -> Tensor:
        """Turn a float or a (B,) / (B, n) tensor into shape (B|1, n|1); check the batch size."""
        t = torch.as_tensor(value, dtype=self.dtype)
        if not torch.is_floating_point(t) and t.dtype != torch.bool:
            t = t.to(self.dtype)
        if t.dim() == 0:
            return t.reshape(1, 1)
        if t.dim() > 2 or (t.dim() == 2 and per_node is not None and t.shape[1] not in (1, per_node)):
            raise ValueError(
                f"parameter {name!r}: expected a float, a (B,) tensor or a (B, {per_node}) tensor, "
                f"got shape {tuple(t.shape)}"
            )
        if t.shape[0] == 0:
            raise ValueError(f"parameter {name!r}: a sweep with no points (shape {tuple(t.shape)})")
        b = t.shape[0]
        if self.batch != 1 and b not in (1, self.batch):
            raise ValueError(
                f"parameter {name!r} has batch size {b}, but the network already has batch size "
                f"{self.batch}; every batched parameter must have the same length"
            )
        self.batch = max(self.batch, b)
        return t.reshape(b, -1)

    def set_nodes(
        self, model: str, nodes: Sequence[int] | None = None, **params: float | Tensor
    ) -> MapNetwork:
        """Make ``nodes`` (default: all) instances of ``model``; parameters default to the model's."""
        if model not in NODE_MODELS:
            raise ValueError(f"model must be one of {sorted(NODE_MODELS)}, got {model!r}")
        spec = NODE_MODELS[model]
        unknown = set(params) - set(spec.defaults)
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {sorted(unknown)} for {model!r}; expected {sorted(spec.defaults)}"
            )
        idx = list(range(self.n_nodes)) if nodes is None else [int(i) for i in nodes]
        if not idx or any(i < 0 or i >= self.n_nodes for i in idx) or len(set(idx)) != len(idx):
            raise ValueError(f"nodes must be distinct indices in [0, {self.n_nodes}), got {nodes!r}")
        if any(self._node_model[i] is not None for i in idx):
            raise ValueError(
                f"nodes {[i for i in idx if self._node_model[i] is not None]} already have a model"
            )
        p = {k: self._batched(k, params.get(k, v), len(idx)) for k, v in spec.defaults.items()}
        self.groups.append((spec, torch.tensor(idx), p))
        for i in idx:
            self._node_model[i] = model
        self._cache.clear()
        return self

    def add_pairwise(
        self,
        edges: Sequence[tuple[int, int]] | Tensor,
        strength: float | Tensor,
        symmetric: bool = True,
        label: str = "pairwise",
    ) -> MapNetwork:
        """Add diffusive terms W_ij (x_j - x_i) for each edge (i, j) (j drives i; both if symmetric).

        ``edges``: a list of (i, j) pairs or an (N, N) weight pattern (entry [i, j]: j drives i).
        ``strength``: float or (B,) tensor multiplying the pattern.
        """
        n = self.n_nodes
        if isinstance(edges, Tensor) and edges.dim() == 2:
            if tuple(edges.shape) != (n, n):
                raise ValueError(f"edges as a matrix must have shape ({n}, {n}), got {tuple(edges.shape)}")
            w = edges.to(self.dtype).clone()
            w.fill_diagonal_(0.0)
        else:
            w = torch.zeros(n, n, dtype=self.dtype)
            for e in edges:
                i, j = int(e[0]), int(e[1])
                if not (0 <= i < n and 0 <= j < n) or i == j:
                    raise ValueError(f"edge {tuple(e)} must join two distinct nodes in [0, {n})")
                w[i, j] += 1.0
                if symmetric:
                    w[j, i] += 1.0
        lap = w - torch.diag(w.sum(1))  # row i: sum_j w_ij (x_j - x_i)
        self.terms.append((self._batched(label, strength), lap, label))
        self._cache.clear()
        return self

    def add_hyperedges(
        self, triangles: Sequence[tuple[int, int, int]], strength: float | Tensor, label: str = "higher-order"
    ) -> MapNetwork:
        """Add 2-simplex diffusive terms: for each triangle {i, j, k}, node i gets s (x_j + x_k - 2 x_i)."""
        n = self.n_nodes
        m = torch.zeros(n, n, dtype=self.dtype)
        for tri in triangles:
            t = [int(v) for v in tri]
            if len(t) != 3 or len(set(t)) != 3 or any(not 0 <= v < n for v in t):
                raise ValueError(f"hyperedge {tuple(tri)} must be three distinct nodes in [0, {n})")
            for i in t:
                for j in t:
                    if j != i:
                        m[i, j] += 1.0
        lap = m - torch.diag(m.sum(1))
        self.terms.append((self._batched(label, strength), lap, label))
        self._cache.clear()
        return self

    def _check_complete(self) -> None:
        missing = [i for i, m in enumerate(self._node_model) if m is None]
        if missing:
            raise ValueError(f"nodes {missing} have no model: call set_nodes(model, nodes) first")

    def coupling_matrix(self) -> Tensor:
        """The combined coupling matrix C, shape (B|1, N, N): x_coupling = C x (zero row sums)."""
        c = torch.zeros(1, self.n_nodes, self.n_nodes, dtype=self.dtype)
        for s, m, _ in self.terms:
            c = c + s.reshape(-1, 1, 1) * m
        return c

    def repeat(self, m: int) -> MapNetwork:
        """A copy whose batch is B*m: each parameter set repeated m times (for m initial conditions)."""
        if m < 1:
            raise ValueError(f"m must be >= 1, got {m}")
        out = MapNetwork(self.n_nodes, self.dtype)
        out.batch = self.batch * m

        def rep(t: Tensor) -> Tensor:
            return t.repeat_interleave(m, 0) if t.shape[0] == self.batch and self.batch > 1 else t

        out.groups = [(spec, idx, {k: rep(v) for k, v in p.items()}) for spec, idx, p in self.groups]
        out.terms = [(rep(s), mat, lab) for s, mat, lab in self.terms]
        out._node_model = list(self._node_model)
        if self.batch == 1 and m > 1:
            out.batch = m
        return out

    # ------------------------------------------------------------------ dynamics
    def _split(self, z: Tensor) -> Pair:
        if z.dim() != 2 or z.shape[1] != self.dim:
            raise ValueError(
                f"state must have shape (B, {self.dim}) = (batch, 2 * n_nodes), got {tuple(z.shape)}"
            )
        if z.shape[0] != self.batch and self.batch != 1:
            raise ValueError(
                f"state batch {z.shape[0]} does not match the network's parameter batch {self.batch}"
            )
        return z[:, : self.n_nodes], z[:, self.n_nodes :]

    def _coupling_parts(self) -> tuple[Tensor | None, list[tuple[Tensor, Tensor]]]:
        """Shared matrix (transposed) for unbatched terms, and (strength, M^T) for batched ones."""
        key = "coupling"
        if key not in self._cache:
            shared = None
            batched = []
            for s, m, _ in self.terms:
                if s.shape[0] == 1:
                    shared = (s[0, 0] * m) if shared is None else shared + s[0, 0] * m
                else:
                    batched.append((s.reshape(-1, 1), m.t().contiguous()))
            self._cache[key] = (None if shared is None else shared.t().contiguous(), batched)
        return self._cache[key]  # type: ignore[return-value]

    def _couple(self, x: Tensor) -> Tensor:
        shared_t, batched = self._coupling_parts()
        out = x @ shared_t if shared_t is not None else torch.zeros_like(x)
        for s, mt in batched:
            out = out + s * (x @ mt)
        return out

    def step(self, z: Tensor) -> Tensor:
        """One network step, (B, 2N) -> (B, 2N)."""
        self._check_complete()
        x, y = self._split(z)
        if len(self.groups) == 1:
            spec, _, p = self.groups[0]
            xn, yn = spec.f(x, y, p)
        else:
            xn = torch.empty_like(x)
            yn = torch.empty_like(y)
            for spec, idx, p in self.groups:
                a, b = spec.f(x[:, idx], y[:, idx], p)
                xn[:, idx] = a
                yn[:, idx] = b
        return torch.cat([xn + self._couple(x), yn], 1)

    def _node_jac(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        if len(self.groups) == 1:
            spec, _, p = self.groups[0]
            return tuple(t.expand_as(x) for t in spec.jac(x, y, p))  # type: ignore[return-value]
        outs = [torch.empty_like(x) for _ in range(4)]
        for spec, idx, p in self.groups:
            for o, v in zip(outs, spec.jac(x[:, idx], y[:, idx], p), strict=True):
                o[:, idx] = v.expand(x.shape[0], len(idx))
        return tuple(outs)  # type: ignore[return-value]

    def tangent(self, z: Tensor, v: Tensor) -> Tensor:
        """Tangent map J(z) v, analytic: dx' = fx dx + fy dy + C dx, dy' = gx dx + gy dy. v: (B, 2N)."""
        x, y = self._split(z)
        fx, fy, gx, gy = self._node_jac(x, y)
        dx, dy = v[:, : self.n_nodes], v[:, self.n_nodes :]
        return torch.cat([fx * dx + fy * dy + self._couple(dx), gx * dx + gy * dy], 1)

    def jacobian(self, z: Tensor) -> Tensor:
        """Analytic Jacobian (B, 2N, 2N) of :meth:`step` at z."""
        x, y = self._split(z)
        n = self.n_nodes
        fx, fy, gx, gy = self._node_jac(x, y)
        b = z.shape[0]
        j = torch.zeros(b, 2 * n, 2 * n, dtype=z.dtype)
        j[:, :n, :n] = self.coupling_matrix().expand(b, n, n)
        ar = torch.arange(n)
        j[:, ar, ar] += fx
        j[:, ar, ar + n] = fy
        j[:, ar + n, ar] = gx
        j[:, ar + n, ar + n] = gy
        return j

    def initial_state(self, batch: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Uniform random initial conditions in each node model's default box, shape (batch, 2N)."""
        self._check_complete()
        b = self.batch if batch is None else batch
        u = torch.rand(b, self.dim, generator=generator, dtype=self.dtype)
        lo = torch.empty(self.dim, dtype=self.dtype)
        hi = torch.empty(self.dim, dtype=self.dtype)
        for spec, idx, _ in self.groups:
            lo[idx], hi[idx] = spec.x_range
            lo[idx + self.n_nodes], hi[idx + self.n_nodes] = spec.y_range
        return lo + (hi - lo) * u

    # ------------------------------------------------------------------ fast iteration
    def _fast_chialvo(self) -> tuple[Tensor, ...] | None:
        """Parameters as (B|1, N|1) tensors when every node is Chialvo (the fused in-place path)."""
        if len(self.groups) != 1 or self.groups[0][0].name != "chialvo":
            return None
        p = self.groups[0][2]
        return p["a"], p["b"], p["c"], p["k"]

    def _columns(self, z: Tensor) -> tuple[list[Tensor], list[Tensor], list[dict[str, Tensor]], list[list]]:
        """Per-node (B,) columns of the state, per-node parameters and coupling entries (compiled path)."""
        n = self.n_nodes
        xs = [z[:, i].contiguous() for i in range(n)]
        ys = [z[:, n + i].contiguous() for i in range(n)]
        params: list[dict[str, Tensor]] = [{} for _ in range(n)]
        for _, idx, p in self.groups:
            for col, i in enumerate(idx.tolist()):
                for name, v in p.items():
                    params[i][name] = (v[:, col] if v.shape[1] > 1 else v[:, 0]).contiguous()
        cm = self.coupling_matrix()  # (B|1, N, N)
        nz = (cm != 0).any(0)
        cs = [
            [
                (cm[:, i, j].contiguous() if cm.shape[0] > 1 else cm[0, i, j].clone()) if nz[i, j] else None
                for j in range(n)
            ]
            for i in range(n)
        ]
        return xs, ys, params, cs

    def _compiled_chunk(self, chunk: int, obs: tuple[int, ...]) -> Callable:
        key = f"chunk-{chunk}-{obs}"
        if key not in self._cache:
            n = self.n_nodes
            fs = [None] * n
            for spec, idx, _ in self.groups:
                for i in idx.tolist():
                    fs[i] = spec.f

            def run_chunk(
                xs: list[Tensor], ys: list[Tensor], params: list[dict[str, Tensor]], cs: list[list]
            ) -> tuple[list[Tensor], list[Tensor], Tensor]:
                recs = []
                for _ in range(chunk):
                    xn, yn = [], []
                    for i in range(n):
                        fx, fy = fs[i](xs[i], ys[i], params[i])
                        for j in range(n):
                            if cs[i][j] is not None:
                                fx = fx + cs[i][j] * xs[j]
                        xn.append(fx)
                        yn.append(fy)
                    xs, ys = xn, yn
                    recs.append(torch.stack([xs[o] if o < n else ys[o - n] for o in obs], -1))
                return xs, ys, torch.stack(recs, 0)

            self._cache[key] = torch.compile(run_chunk, dynamic=False, fullgraph=True)
        return self._cache[key]  # type: ignore[return-value]

    def run(
        self,
        z0: Tensor,
        n_iter: int,
        transient: int = 0,
        observe: Sequence[int] | None = None,
        record_every: int = 1,
        bound: float = 1e6,
        check_every: int = 256,
        backend: str = "eager",
        chunk: int = 16,
    ) -> RunResult:
        """Iterate ``n_iter`` steps from z0 (B, 2N) and record ``observe`` coordinates after ``transient``.

        The fast path for bifurcation sweeps. ``backend="eager"``: for all-Chialvo networks the
        step runs as fused in-place tensor ops on (B, N) buffers (no allocation per step), other
        networks use :meth:`step`. ``backend="compile"``: ``chunk`` steps are unrolled over per-node
        (B,) columns and compiled by ``torch.compile`` into a few vectorised loops (about 20 s to
        compile once per network structure and chunk; worth it for long sweeps; falls back to
        eager with a warning if compilation fails). Every ``check_every`` steps (every chunk when
        compiled) rows with non-finite values or |z| > bound are flagged as diverged and reset to 0
        so they cost nothing further; their records and final state are NaN.
        """
        self._check_complete()
        if n_iter < 1 or transient < 0 or transient >= n_iter:
            raise ValueError(
                f"need n_iter >= 1 and 0 <= transient < n_iter, got n_iter={n_iter}, transient={transient}"
            )
        if record_every < 1:
            raise ValueError(f"record_every must be >= 1, got {record_every}")
        if backend not in ("eager", "compile"):
            raise ValueError(f"backend must be 'eager' or 'compile', got {backend!r}")
        self._split(z0)
        if not torch.isfinite(z0).all():
            raise ValueError("z0 contains NaN or inf; give finite initial conditions")
        obs = list(range(self.n_nodes)) if observe is None else [int(i) for i in observe]
        if not obs or any(not 0 <= i < self.dim for i in obs):
            raise ValueError(f"observe must index coordinates in [0, {self.dim}), got {observe!r}")
        if backend == "compile":
            try:
                return self._run_compiled(z0, n_iter, transient, obs, record_every, bound, chunk)
            except Exception as err:  # noqa: BLE001 - a missing compiler must not break a sweep
                import warnings

                warnings.warn(
                    f"torch.compile path failed ({type(err).__name__}: {err}); using eager", stacklevel=2
                )
        return self._run_eager(z0, n_iter, transient, obs, record_every, bound, check_every)

    def _run_compiled(
        self,
        z0: Tensor,
        n_iter: int,
        transient: int,
        obs: list[int],
        record_every: int,
        bound: float,
        chunk: int,
    ) -> RunResult:
        fn = self._compiled_chunk(chunk, tuple(obs))
        xs, ys, params, cs = self._columns(z0)
        b = z0.shape[0]
        n_rec = (n_iter - transient + record_every - 1) // record_every
        rec = torch.empty(n_rec, b, len(obs), dtype=z0.dtype)
        diverged = torch.zeros(b, dtype=torch.bool)
        t = 0
        r = 0
        while t < n_iter:
            if n_iter - t >= chunk:
                xs, ys, out = fn(xs, ys, params, cs)
                steps = chunk
            else:  # the remainder runs through the plain step
                z = torch.stack(xs + ys, 1)
                outs = []
                for _ in range(n_iter - t):
                    z = self.step(z)
                    outs.append(z[:, obs])
                xs = [z[:, i] for i in range(self.n_nodes)]
                ys = [z[:, self.n_nodes + i] for i in range(self.n_nodes)]
                out = torch.stack(outs, 0)
                steps = n_iter - t
            z = torch.stack(xs + ys, 1)
            bad = ~torch.isfinite(z).all(1) | (z.abs() > bound).any(1)
            if bad.any():
                diverged |= bad
                z[bad] = 0.0
                xs = [z[:, i].contiguous() for i in range(self.n_nodes)]
                ys = [z[:, self.n_nodes + i].contiguous() for i in range(self.n_nodes)]
            keep = [i for i in range(steps) if t + i >= transient and (t + i - transient) % record_every == 0]
            if keep:
                rec[r : r + len(keep)] = out[keep[0] : keep[-1] + 1 : record_every]
                r += len(keep)
            t += steps
        final = torch.stack(xs + ys, 1)
        rec[:, diverged] = float("nan")
        final[diverged] = float("nan")
        return RunResult(rec[:r], final, diverged)

    def _run_eager(
        self,
        z0: Tensor,
        n_iter: int,
        transient: int,
        obs: list[int],
        record_every: int,
        bound: float,
        check_every: int,
    ) -> RunResult:
        b = z0.shape[0]
        n_rec = (n_iter - transient + record_every - 1) // record_every
        rec = torch.empty(n_rec, b, len(obs), dtype=z0.dtype)
        diverged = torch.zeros(b, dtype=torch.bool)
        obs_t = torch.tensor(obs)
        fast = self._fast_chialvo()
        shared_t, batched = self._coupling_parts()
        z = z0.clone()
        x = y = e = xn = tmp = z  # placeholders for the fast path
        if fast is not None:
            a, bb, c, k = fast
            x = z[:, : self.n_nodes].contiguous()
            y = z[:, self.n_nodes :].contiguous()
            e = torch.empty_like(x)
            xn = torch.empty_like(x)
            tmp = torch.empty_like(x)
        x_only = all(i < self.n_nodes for i in obs)
        r = 0
        for t in range(n_iter):
            if fast is not None:
                torch.sub(y, x, out=e)
                e.exp_()
                e.mul_(x)
                e.mul_(x)
                e.add_(k)
                if shared_t is not None:
                    torch.addmm(e, x, shared_t, out=xn)
                else:
                    xn.copy_(e)
                for s, mt in batched:
                    torch.mm(x, mt, out=tmp)
                    xn.addcmul_(tmp, s)
                y.mul_(a)
                y.addcmul_(x, bb, value=-1.0)
                y.add_(c)
                x, xn = xn, x
            else:
                z = self.step(z)
            if (t + 1) % check_every == 0 or t == n_iter - 1:
                zz = torch.cat([x, y], 1) if fast is not None else z
                bad = ~torch.isfinite(zz).all(1) | (zz.abs() > bound).any(1)
                if bad.any():
                    diverged |= bad
                    if fast is not None:
                        x[bad] = 0.0
                        y[bad] = 0.0
                    else:
                        z[bad] = 0.0
            if t >= transient and (t - transient) % record_every == 0:
                if fast is not None:
                    src = x if x_only else torch.cat([x, y], 1)
                    torch.index_select(src, 1, obs_t, out=rec[r])
                else:
                    torch.index_select(z, 1, obs_t, out=rec[r])
                r += 1
        final = torch.cat([x, y], 1) if fast is not None else z
        rec[:, diverged] = float("nan")
        final[diverged] = float("nan")
        return RunResult(rec, final, diverged)


def _triangles(adj: Tensor) -> list[tuple[int, int, int]]:
    n = adj.shape[0]
    return [
        (i, j, k) for i, j, k in itertools.combinations(range(n), 3) if adj[i, j] and adj[j, k] and adj[i, k]
    ]


def ring_star_network(
    sigma1: float | Tensor = 0.1,
    sigma2: float | Tensor = 0.05,
    n_peripheral: int = 3,
    sigma_ring: float | Tensor | None = None,
    a: float | Tensor = 0.89,
    b: float | Tensor = 0.18,
    c: float | Tensor = 0.28,
    k: float | Tensor = 0.03,
    dtype: torch.dtype = torch.float64,
) -> MapNetwork:
    """Ring-star network of Chialvo neurons, pairwise + higher-order diffusive coupling (arXiv:2405.06000).

    Node 0 is the centre, nodes 1..n_peripheral sit on a ring. For node i::

        x_i' = x_i^2 exp(y_i - x_i) + k
               + sigma1 sum_{j star-linked to i} (x_j - x_i)
               + sigma_ring sum_{j ring-linked to i} (x_j - x_i)
               + sigma2 sum_{triangles {i,j,l}} (x_j + x_l - 2 x_i)
        y_i' = a y_i - b x_i + c

    The triangles are all 3-cliques of the ring-star graph; for the smallest ring star
    (n_peripheral = 3, the complete graph K4) these are the four faces of the tetrahedron.
    The paper's exact coupling equations could not be retrieved here (only its abstract was
    reachable); this is our reading of "linear diffusive couplings, both pairwise and
    higher-order" (the 2-simplex form of Gambuzza et al. 2021), with unnormalised sums and
    sigma_ring = sigma1 by default. Any argument may be a (B,) tensor to sweep it across the batch.
    """
    if n_peripheral < 3:
        raise ValueError(f"n_peripheral must be >= 3 to form a ring, got {n_peripheral}")
    n = n_peripheral + 1
    net = MapNetwork(n, dtype)
    net.set_nodes("chialvo", a=a, b=b, c=c, k=k)
    star = [(0, i) for i in range(1, n)]
    ring = [(i, i % n_peripheral + 1) for i in range(1, n)]
    net.add_pairwise(star, sigma1, label="sigma1 (star)")
    net.add_pairwise(ring, sigma1 if sigma_ring is None else sigma_ring, label="sigma1 (ring)")
    adj = torch.zeros(n, n, dtype=torch.bool)
    for i, j in star + ring:
        adj[i, j] = adj[j, i] = True
    net.add_hyperedges(_triangles(adj), sigma2, label="sigma2")
    return net


def chialvo_rulkov_chain(
    sigma12: float | Tensor = 0.0,
    sigma21: float | Tensor = 0.0,
    sigma23: float | Tensor = 0.0,
    sigma32: float | Tensor = 0.0,
    a: float | Tensor = 0.89,
    b: float | Tensor = 0.6,
    c: float | Tensor = 0.28,
    k: float | Tensor = 0.03,
    alpha: float | Tensor = 4.1,
    mu: float | Tensor = 0.001,
    rulkov_sigma: float | Tensor = -1.0,
    dtype: torch.dtype = torch.float64,
) -> MapNetwork:
    """Chialvo - Rulkov - Chialvo chain with bidirectional linear couplings (arXiv:2405.05675).

    Nodes 0 and 2 are Chialvo maps, node 1 a chaotic Rulkov map. sigma_ij is the strength with
    which neuron i drives neuron j (1-based as in the paper)::

        x_1' = x_1^2 exp(y_1 - x_1) + k + sigma21 (x_2 - x_1),     y_1' = a y_1 - b x_1 + c
        x_2' = alpha / (1 + x_2^2) + y_2 + sigma12 (x_1 - x_2) + sigma32 (x_3 - x_2),
        y_2' = y_2 - mu (x_2 - rulkov_sigma)
        x_3' = x_3^2 exp(y_3 - x_3) + k + sigma23 (x_2 - x_3),     y_3' = a y_3 - b x_3 + c

    Sources (the paper's equations themselves could not be retrieved: every stored copy of
    arxiv.org/html/2405.05675v3 and of its EPJ Plus version, doi 10.1140/epjp/s13360-024-05363-0,
    ends before its model section): the topology (a six-dimensional map, Chialvo neurons at both
    ends, a Rulkov neuron in the centre, bidirectional static linear couplings sigma12, sigma21,
    sigma23, sigma32) is from a summary of the paper's conclusions (emergentmind.com, open problem
    "Lyapunov exponent analysis for the coupled Chialvo-Rulkov tri-oscillator network"); the Rulkov
    map is Rulkov's 2001 chaotic map (chaotic bursting for alpha > 4). The diffusive form and the
    i -> j reading of sigma_ij are our choice. With all four strengths equal both readings give the
    same map; otherwise the other reading (sigma_ij in neuron i's equation) swaps the roles of
    (sigma12, sigma32) and (sigma21, sigma23). With sigma12 = sigma32 and sigma21 = sigma23 the map
    commutes with swapping neurons 1 and 3, so x_1 = x_3 is an invariant (synchronous) manifold.
    """
    net = MapNetwork(3, dtype)
    net.set_nodes("chialvo", [0, 2], a=a, b=b, c=c, k=k)
    net.set_nodes("rulkov", [1], alpha=alpha, mu=mu, sigma=rulkov_sigma)
    net.add_pairwise([(1, 0)], sigma12, symmetric=False, label="sigma12")  # node 0 (neuron 1) drives node 1
    net.add_pairwise([(0, 1)], sigma21, symmetric=False, label="sigma21")
    net.add_pairwise([(2, 1)], sigma23, symmetric=False, label="sigma23")
    net.add_pairwise([(1, 2)], sigma32, symmetric=False, label="sigma32")
    return net
