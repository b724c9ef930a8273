"""Runs and sweeps over seeds: output directories, executors (the backend seam), resume.

A sweep directory holds ``sweep.json`` (study, seeds, config, recipe) and one run directory per
seed, ``seed-<n>/``. Runs execute through an :class:`Executor`: ``InlineExecutor`` (in this
process, ``--jobs 1``) or ``LocalExecutor`` (a forkserver/spawn process pool, one torch thread budget of
``cores // jobs`` per worker). A Ray backend will be one more class with ``submit``/``shutdown``.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import shutil
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from neuroplast.runner.run import (
    CLAIMS_FILE,
    RUN_FILE,
    SUMMARY_FILE,
    NeuroplastUsageError,
    RunResult,
    RunSpec,
    check_resumable,
    config_from_json,
    config_to_json,
    default_checkpoint_every,
    execute,
    make_config,
    now_iso,
    read_json,
    write_json_atomic,
)
from neuroplast.studies import StudyError, get_study

__all__ = [
    "Executor",
    "InlineExecutor",
    "LocalExecutor",
    "BACKENDS",
    "make_executor",
    "parse_seeds",
    "run_specs",
    "Outcome",
    "start",
    "resume",
    "default_out_dir",
    "claim_out_dir",
    "recipe",
]

SWEEP_FILE = "sweep.json"
_SEEDS_RE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` -> [0..4], ``"0,2,5"``, ``"3"``, and mixes such as ``"0-2,7"``."""
    seeds: list[int] = []
    if not isinstance(text, str) or not text.strip():
        raise NeuroplastUsageError(f"--seeds expects e.g. 0-4, 0,2,5 or 3, got {text!r}")
    for part in text.split(","):
        m = _SEEDS_RE.match(part)
        if not m:
            raise NeuroplastUsageError(f"--seeds expects e.g. 0-4, 0,2,5 or 3 (seeds >= 0), got {text!r}")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise NeuroplastUsageError(f"--seeds: range {part.strip()!r} runs backwards")
        if hi >= 2**32:
            raise NeuroplastUsageError(f"--seeds: seeds must be < 2**32, got {hi}")
        if hi - lo >= 10_000:
            raise NeuroplastUsageError(f"--seeds: {part.strip()!r} asks for more than 10000 runs")
        seeds.extend(range(lo, hi + 1))
    if len(set(seeds)) != len(seeds):
        raise NeuroplastUsageError(f"--seeds: seed listed twice in {text!r}")
    return seeds


# --------------------------------------------------------------------------------------------
# Executors: the backend seam


class Executor(Protocol):
    """What a backend provides: ``submit(fn, *args) -> Future`` and ``shutdown``."""

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future: ...

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None: ...


class InlineExecutor:
    """Runs each job in this process when it is submitted (``--jobs 1``)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args))
        except Exception as exc:  # noqa: BLE001 - delivered through the future
            fut.set_exception(exc)
        return fut

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        return None


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    os.environ.setdefault("MPLBACKEND", "Agg")


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _mp_context() -> multiprocessing.context.BaseContext:
    """"forkserver" with torch preloaded (workers fork from a clean server: no torch threads are
    inherited and torch is imported once), or "spawn" where forkserver does not exist."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["torch", "neuroplast.runner.run"])
        return ctx
    return multiprocessing.get_context("spawn")


class LocalExecutor:
    """A process pool on this machine (forkserver or spawn context: safe with torch's threads).

    Each worker gets ``max(1, cores // jobs)`` torch threads.
    """

    def __init__(self, jobs: int) -> None:
        threads = max(1, _available_cores() // jobs)
        self._pool = ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=_mp_context(),
            initializer=_init_worker,
            initargs=(threads,),
        )

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future:
        return self._pool.submit(fn, *args)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)


BACKENDS: dict[str, Callable[[int], Executor]] = {"local": LocalExecutor}


def make_executor(backend: str, jobs: int) -> Executor:
    """An executor for ``jobs`` parallel runs: inline for one job, else the named backend."""
    if backend not in BACKENDS:
        raise NeuroplastUsageError(
            f"--backend {backend!r} is not available (available: {', '.join(sorted(BACKENDS))})"
        )
    if jobs < 1:
        raise NeuroplastUsageError(f"--jobs must be >= 1, got {jobs}")
    return InlineExecutor() if jobs == 1 else BACKENDS[backend](jobs)


def _neuroplast_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith("NEUROPLAST_")}


def _safe_execute(spec: RunSpec, env: dict[str, str] | None = None) -> RunResult:
    if env is not None:  # a worker: use the caller's NEUROPLAST_* settings, not the pool's
        for k in [k for k in os.environ if k.startswith("NEUROPLAST_") and k not in env]:
            del os.environ[k]
        os.environ.update(env)
    try:
        return execute(spec)
    except NeuroplastUsageError as exc:
        return RunResult(seed=spec.seed, dir=spec.dir, status="invalid", error=str(exc),
                         study_key=spec.study_key)
    except Exception as exc:  # noqa: BLE001 - a broken run must not take the sweep down
        return RunResult(seed=spec.seed, dir=spec.dir, status="failed", error=f"{type(exc).__name__}: {exc}",
                         traceback=traceback.format_exc(), study_key=spec.study_key)


def run_specs(
    specs: list[RunSpec],
    *,
    jobs: int = 1,
    backend: str = "local",
    stop_on_invalid: bool = True,
    on_result: Callable[[RunResult], None] | None = None,
) -> list[RunResult]:
    """Execute ``specs`` on ``min(jobs, len(specs))`` workers; results in the order of ``specs``.

    With ``stop_on_invalid``, the first ``invalid`` result cancels the runs not yet started.
    """
    if not specs:
        return []
    executor = make_executor(backend, max(1, min(jobs, len(specs))))
    results: dict[int, RunResult] = {}
    try:
        if isinstance(executor, InlineExecutor):
            for i, spec in enumerate(specs):
                results[i] = executor.submit(_safe_execute, spec).result()
                if on_result is not None:
                    on_result(results[i])
                if stop_on_invalid and results[i].status == "invalid":
                    break
        else:
            env = _neuroplast_env()
            futures = {executor.submit(_safe_execute, spec, env): i for i, spec in enumerate(specs)}
            for fut in as_completed(futures):
                i = futures[fut]
                if fut.cancelled():
                    continue
                try:
                    results[i] = fut.result()
                except BrokenProcessPool as exc:
                    spec = specs[i]
                    results[i] = RunResult(seed=spec.seed, dir=spec.dir, status="failed",
                                           error=f"worker process died: {exc}", study_key=spec.study_key)
                if on_result is not None:
                    on_result(results[i])
                if stop_on_invalid and results[i].status == "invalid":
                    for f in futures:
                        f.cancel()
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
    return [results[i] for i in sorted(results)]


# --------------------------------------------------------------------------------------------
# Output directories


def _timestamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S")


def default_out_dir(name: str, root: str | os.PathLike[str] = "runs") -> Path:
    """``runs/<name>-<timestamp>``, made unique with ``-2``, ``-3`` ... if taken."""
    base = Path(root) / f"{name}-{_timestamp()}"
    path, i = base, 1
    while path.exists():
        i += 1
        path = base.with_name(f"{base.name}-{i}")
    return path


def claim_out_dir(out: str | os.PathLike[str] | None, name: str) -> Path:
    """Check that the output directory can be used (missing or empty); creates nothing."""
    path = default_out_dir(name) if out is None else Path(out)
    if path.exists():
        if not path.is_dir():
            raise NeuroplastUsageError(f"--out {path}: exists and is not a directory")
        if any(path.iterdir()):
            raise NeuroplastUsageError(
                f"--out {path}: directory exists and is not empty (choose another --out, "
                f"or continue a killed run with --resume {path})"
            )
    return path


def remove_out_dir(path: Path, existed: bool) -> None:
    """Undo what a failed start created: the directory itself, or its contents if it existed."""
    if not path.exists():
        return
    if existed:
        for child in path.iterdir():
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    else:
        shutil.rmtree(path)


def _seeds_text(seeds: list[int]) -> str:
    if seeds and seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 1:
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(str(s) for s in seeds)


def recipe(key: str, quick: bool, sets: Iterable[str], seeds: int | str | None = None) -> str:
    """The command line that reproduces a run (``seeds``: one seed or a --seeds text)."""
    import shlex

    parts = ["neuroplast", "run", key]
    if quick:
        parts.append("--quick")
    if seeds is not None:
        parts += ["--seeds", str(seeds)]
    for s in sets:
        parts += ["--set", s]
    return " ".join(shlex.quote(p) for p in parts)


# --------------------------------------------------------------------------------------------
# start / resume


@dataclass
class Outcome:
    """What a start or resume did: the directory, its kind (run | sweep) and one result per seed."""

    dir: Path
    kind: str
    study_key: str
    results: list[RunResult] = field(default_factory=list)
    already_done: bool = False

    @property
    def ok(self) -> bool:
        return all(r.status == "done" for r in self.results)


def _study_or_usage(key: str) -> Any:
    try:
        return get_study(key)
    except StudyError as exc:
        raise NeuroplastUsageError(str(exc)) from None


def _raise_invalid(results: list[RunResult], study_key: str) -> None:
    for r in results:
        if r.status == "invalid":
            raise NeuroplastUsageError(f"study {study_key!r} rejected its config: {r.error}")


def start(
    study_key: str,
    *,
    quick: bool = False,
    sets: list[str] | tuple[str, ...] = (),
    seeds: list[int] | None = None,
    out: str | os.PathLike[str] | None = None,
    jobs: int = 1,
    backend: str = "local",
    checkpoint_every: int | None = None,
    on_result: Callable[[RunResult], None] | None = None,
) -> Outcome:
    """Start a run (``seeds=None``: seed 0 in ``out`` itself) or a sweep (``out/seed-<n>/``).

    Everything is validated before the directory is created; a study that rejects its config
    during setup (ValueError before its first log/checkpoint) leaves no directory behind.
    """
    study = _study_or_usage(study_key)
    cfg = make_config(study, quick=quick, sets=sets)
    every = default_checkpoint_every() if checkpoint_every is None else checkpoint_every
    if every < 0:
        raise NeuroplastUsageError(f"--checkpoint-every must be >= 0, got {every}")
    make_executor(backend, 1)  # validates the backend name and jobs before anything exists
    if jobs < 1:
        raise NeuroplastUsageError(f"--jobs must be >= 1, got {jobs}")
    path = claim_out_dir(out, study.key)
    existed = path.exists()
    config = config_to_json(cfg)
    module = type(study).__module__
    if seeds is None:
        specs = [RunSpec(study.key, module, config, 0, str(path), False, every, quick,
                         recipe(study.key, quick, sets))]
        kind = "run"
    else:
        specs = [RunSpec(study.key, module, config, s, str(path / f"seed-{s}"), False, every, quick,
                         recipe(study.key, quick, sets, s)) for s in seeds]
        kind = "sweep"
    try:
        if kind == "sweep":
            path.mkdir(parents=True, exist_ok=True)
            write_json_atomic(path / SWEEP_FILE, _sweep_meta(study, seeds or [], quick, sets, config))
        results = run_specs(specs, jobs=jobs, backend=backend, on_result=on_result)
    except BaseException:
        if not any((Path(s.dir) / RUN_FILE).exists() for s in specs):
            remove_out_dir(path, existed)
        raise
    if any(r.status == "invalid" for r in results):
        remove_out_dir(path, existed)
        _raise_invalid(results, study.key)
    return Outcome(path, kind, study.key, results)


def _sweep_meta(study: Any, seeds: list[int], quick: bool, sets: Iterable[str], config: dict) -> dict:
    import neuroplast

    return {
        "kind": "sweep",
        "study": study.key,
        "title": study.title,
        "arxiv": study.arxiv,
        "family": study.family,
        "seeds": list(seeds),
        "quick": quick,
        "sets": list(sets),
        "config": config,
        "recipe": recipe(study.key, quick, sets, _seeds_text(seeds)),
        "neuroplast_version": neuroplast.__version__,
        "created": now_iso(),
    }


def _result_from_files(run_dir: Path, meta: dict) -> RunResult:
    summary = read_json(run_dir / SUMMARY_FILE, f"{run_dir}")
    claims_path = run_dir / CLAIMS_FILE
    claims = read_json(claims_path, f"{run_dir}") if claims_path.exists() else []
    return RunResult(seed=int(meta["seed"]), dir=str(run_dir), status="done", summary=summary, claims=claims,
                     wall_time_s=float(meta.get("wall_time_s") or 0.0), study_key=meta["study"])


def resume(
    directory: str | os.PathLike[str],
    *,
    study_key: str | None = None,
    jobs: int = 1,
    backend: str = "local",
    checkpoint_every: int | None = None,
    on_result: Callable[[RunResult], None] | None = None,
) -> Outcome:
    """Continue a killed run or sweep from its last checkpoints; finished seeds are kept as they are."""
    path = Path(directory)
    if not path.is_dir():
        raise NeuroplastUsageError(f"--resume {path}: no such directory")
    every = default_checkpoint_every() if checkpoint_every is None else checkpoint_every
    make_executor(backend, max(1, jobs))
    if jobs < 1:
        raise NeuroplastUsageError(f"--jobs must be >= 1, got {jobs}")
    if (path / RUN_FILE).exists():
        meta, study = check_resumable(path, study_key)
        if meta.get("status") == "done":
            return Outcome(path, "run", study.key, [_result_from_files(path, meta)], already_done=True)
        config = read_json(path / "config.json", str(path))
        specs = [RunSpec(study.key, type(study).__module__, config, int(meta["seed"]), str(path), True, every,
                         bool(meta.get("quick")), meta.get("recipe", ""))]
        results = run_specs(specs, jobs=1, backend=backend, on_result=on_result)
        _raise_invalid(results, study.key)
        return Outcome(path, "run", study.key, results)
    if (path / SWEEP_FILE).exists():
        sweep = read_json(path / SWEEP_FILE, "not a neuroplast sweep directory")
        if not isinstance(sweep, dict) or sweep.get("kind") != "sweep" or "study" not in sweep:
            raise NeuroplastUsageError(f"{path}: sweep.json is not a neuroplast sweep record")
        if study_key is not None and sweep["study"] != study_key:
            raise NeuroplastUsageError(f"{path} is a sweep of study {sweep['study']!r}, not {study_key!r}")
        study = _study_or_usage(sweep["study"])
        config_from_json(study, sweep.get("config"), where=f"{path / SWEEP_FILE}")
        done: list[RunResult] = []
        specs: list[RunSpec] = []
        fresh_dirs: list[Path] = []
        for s in sweep.get("seeds", []):
            seed_dir = path / f"seed-{int(s)}"
            rec = recipe(study.key, bool(sweep.get("quick")), sweep.get("sets", []), int(s))
            if (seed_dir / RUN_FILE).exists():
                meta, _ = check_resumable(seed_dir, study.key)
                if meta.get("status") == "done":
                    done.append(_result_from_files(seed_dir, meta))
                    continue
                config = read_json(seed_dir / "config.json", str(seed_dir))
                specs.append(RunSpec(study.key, type(study).__module__, config, int(s), str(seed_dir), True,
                                     every, bool(sweep.get("quick")), rec))
            else:
                fresh_dirs.append(seed_dir)
                specs.append(RunSpec(study.key, type(study).__module__, sweep["config"], int(s),
                                     str(seed_dir), False, every, bool(sweep.get("quick")), rec))
        for d in fresh_dirs:  # a seed killed before its run.json existed starts over
            if d.exists():
                shutil.rmtree(d)
        for r in done:
            if on_result is not None:
                on_result(r)
        results = run_specs(specs, jobs=jobs, backend=backend, on_result=on_result)
        _raise_invalid(results, study.key)
        merged = sorted(done + results, key=lambda r: r.seed)
        return Outcome(path, "sweep", study.key, merged, already_done=not specs)
    raise NeuroplastUsageError(
        f"--resume {path}: not a neuroplast run directory (it has no run.json or sweep.json)"
    )
