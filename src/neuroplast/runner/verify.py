"""``neuroplast verify``: run studies on several seeds and check every claim on every seed.

Layout: ``OUT/verify.json`` and one sweep directory per study, ``OUT/<key>/seed-<n>/``. A claim
holds for a study when it holds on every seed; a seed whose run failed counts as not holding.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuroplast.runner.run import (
    NeuroplastUsageError,
    RunResult,
    RunSpec,
    config_to_json,
    default_checkpoint_every,
    make_config,
    now_iso,
    write_json_atomic,
)
from neuroplast.runner.sweep import (
    SWEEP_FILE,
    _seeds_text,
    _study_or_usage,
    _sweep_meta,
    claim_out_dir,
    make_executor,
    recipe,
    remove_out_dir,
    run_specs,
)
from neuroplast.studies import all_studies, discovery_errors

__all__ = ["ClaimVerdict", "StudyVerdict", "VerifyOutcome", "verify", "verdicts_from_results", "format_table"]

VERIFY_FILE = "verify.json"


@dataclass
class ClaimVerdict:
    """One claim of one study over the seeds: measured value and holds per seed, and overall."""

    name: str
    statement: str
    op: str
    threshold: float
    values: dict[int, float | None] = field(default_factory=dict)
    holds_per_seed: dict[int, bool] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)

    @property
    def holds(self) -> bool:
        return bool(self.holds_per_seed) and all(self.holds_per_seed.values())


@dataclass
class StudyVerdict:
    key: str
    title: str
    seeds: list[int]
    claims: list[ClaimVerdict]
    runs: list[RunResult]

    @property
    def holds(self) -> bool:
        return all(r.status == "done" for r in self.runs) and all(c.holds for c in self.claims)


@dataclass
class VerifyOutcome:
    dir: Path | None
    seeds: list[int]
    studies: list[StudyVerdict]

    @property
    def all_hold(self) -> bool:
        return all(s.holds for s in self.studies)


def verdicts_from_results(study: Any, seeds: list[int], results: list[RunResult]) -> StudyVerdict:
    """Collect per-seed claim results (from each run's claims.json data) into verdicts."""
    by_seed = {r.seed: r for r in results}
    claims = []
    for c in study.claims:
        v = ClaimVerdict(c.name, c.statement, c.op, float(c.threshold))
        for s in seeds:
            r = by_seed.get(s)
            found = None
            if r is not None and r.status == "done":
                found = next((x for x in r.claims if x.get("name") == c.name), None)
            if found is None:
                v.values[s] = None
                v.holds_per_seed[s] = False
                status = r.status if r else "missing"
                v.errors[s] = f"run {status}" + (f": {r.error}" if r and r.error else "")
            else:
                v.values[s] = found.get("value")
                v.holds_per_seed[s] = bool(found.get("holds"))
                if found.get("error"):
                    v.errors[s] = found["error"]
        claims.append(v)
    return StudyVerdict(study.key, study.title, list(seeds), claims, sorted(results, key=lambda r: r.seed))


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.4g}"


def format_table(studies: list[StudyVerdict]) -> str:
    """Plain-text table: study | claim | measured per seed | holds ("(x)" marks a failing seed)."""
    rows = [["study", "claim", "measured per seed", "holds"]]
    for sv in studies:
        failed = [r for r in sv.runs if r.status != "done"]
        if not sv.claims:
            rows.append([sv.key, "(no claims)", "", "yes" if not failed else "NO"])
        for c in sv.claims:
            cells = []
            for s in sv.seeds:
                mark = "" if c.holds_per_seed.get(s) else " (x)"
                cells.append(f"{s}: {_fmt(c.values.get(s))}{mark}")
            claim = f"{c.name} ({c.op} {c.threshold:g})"
            rows.append([sv.key, claim, "  ".join(cells), "yes" if c.holds else "NO"])
        for r in failed:
            rows.append([sv.key, f"run seed {r.seed} {r.status}", (r.error or "")[:80], "NO"])
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _verdict_json(sv: StudyVerdict) -> dict[str, Any]:
    return {
        "title": sv.title,
        "holds": sv.holds,
        "claims": [
            {
                "name": c.name,
                "statement": c.statement,
                "op": c.op,
                "threshold": c.threshold,
                "values": {str(s): v for s, v in c.values.items()},
                "holds_per_seed": {str(s): h for s, h in c.holds_per_seed.items()},
                "errors": {str(s): e for s, e in c.errors.items()},
                "holds": c.holds,
            }
            for c in sv.claims
        ],
        "runs": {str(r.seed): {"dir": r.dir, "status": r.status, "error": r.error,
                               "wall_time_s": r.wall_time_s} for r in sv.runs},
    }


def verify(
    keys: list[str] | tuple[str, ...] = (),
    *,
    quick: bool = False,
    seeds: list[int] = (0, 1, 2),
    jobs: int = 1,
    out: str | os.PathLike[str] | None = None,
    backend: str = "local",
    checkpoint_every: int | None = None,
    name: str = "verify",
    on_result: Callable[[RunResult], None] | None = None,
) -> VerifyOutcome:
    """Run ``keys`` (all studies if empty) on ``seeds``; write OUT/verify.json; return the verdicts."""
    studies = [_study_or_usage(k) for k in keys] if keys else all_studies()
    if not keys and discovery_errors():
        broken = "; ".join(f"{m}: {e}" for m, e in sorted(discovery_errors().items()))
        raise NeuroplastUsageError(f"cannot verify all studies, some study modules fail to import: {broken}")
    if not studies:
        raise NeuroplastUsageError("no studies to verify (none registered)")
    dupes = sorted({s.key for s in studies if [t.key for t in studies].count(s.key) > 1})
    if dupes:
        raise NeuroplastUsageError(f"study listed twice: {', '.join(dupes)}")
    seeds = list(seeds)
    configs = {s.key: make_config(s, quick=quick) for s in studies}
    every = default_checkpoint_every() if checkpoint_every is None else checkpoint_every
    make_executor(backend, max(1, jobs))
    path = claim_out_dir(out, name)
    existed = path.exists()
    specs = []
    try:
        path.mkdir(parents=True, exist_ok=True)
        for s in studies:
            config = config_to_json(configs[s.key])
            (path / s.key).mkdir(parents=True, exist_ok=True)
            write_json_atomic(path / s.key / SWEEP_FILE, _sweep_meta(s, seeds, quick, (), config))
            for seed in seeds:
                seed_dir = path / s.key / f"seed-{seed}"
                specs.append(RunSpec(s.key, type(s).__module__, config, seed, str(seed_dir), False, every,
                                     quick, recipe(s.key, quick, (), seed)))
    except BaseException:
        remove_out_dir(path, existed)
        raise
    started = now_iso()
    results = run_specs(specs, jobs=jobs, backend=backend, stop_on_invalid=False, on_result=on_result)
    verdicts = [verdicts_from_results(s, seeds, [r for r in results if r.study_key == s.key])
                for s in studies]
    outcome = VerifyOutcome(path, seeds, verdicts)
    import neuroplast

    write_json_atomic(path / VERIFY_FILE, {
        "kind": "verify",
        "seeds": seeds,
        "seeds_text": _seeds_text(seeds),
        "quick": quick,
        "started": started,
        "finished": now_iso(),
        "neuroplast_version": neuroplast.__version__,
        "all_hold": outcome.all_hold,
        "studies": {sv.key: _verdict_json(sv) for sv in verdicts},
    })
    return outcome
