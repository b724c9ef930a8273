"""One run of one study on one seed: the run directory, checkpoints, resume.

Layout of a run directory::

    run.json        study key, seed, status (running | done | failed), version, times, recipe
    config.json     the study's Config as JSON
    metrics.jsonl   one JSON object per run.log() call, appended and flushed
    checkpoints/    step-<8 digits>/state.safetensors + state.json (the newest one is kept)
    summary.json    the dict returned by Study.run (written atomically, last)
    claims.json     each claim measured on this seed's summary
    timings.json    wall-clock measurements recorded with run.timing() (seconds; merged across
                    calls and across the segments of a resumed run; written atomically)
    figures/*.png   figures saved with run.save_figure()

A checkpoint records the byte length of metrics.jsonl and the RNG states (run.generator, torch,
numpy, python), so a resumed run truncates metrics.jsonl to that length, restores the RNGs and, on
CPU with the same seed, ends with the same summary.json and metrics.jsonl as an uninterrupted run.
timings.json is excluded from that guarantee: it holds measurements of the machine (wall-clock
seconds), not results of the seed, so a study keeps its times there and out of its summary.
A checkpoint is written into a temporary directory and renamed into place, so a kill while writing
leaves the previous checkpoint usable.
"""

from __future__ import annotations

import importlib
import json
import os
import random
import re
import shutil
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from neuroplast.core.seed import seed_everything
from neuroplast.runner.config import config_from_json, config_to_json, make_config, parse_sets
from neuroplast.runner.jsonio import (
    NeuroplastUsageError,
    now_iso,
    read_json,
    to_json_value,
    write_json_atomic,
)
from neuroplast.studies import StudyError, get_study

__all__ = [
    "NeuroplastUsageError",
    "Run",
    "RunSpec",
    "RunResult",
    "make_config",
    "config_to_json",
    "config_from_json",
    "parse_sets",
    "execute",
    "check_resumable",
    "read_json",
    "write_json_atomic",
    "to_json_value",
    "CHECKPOINT_EVERY_ENV",
    "DEFAULT_CHECKPOINT_EVERY",
    "default_checkpoint_every",
    "TIMINGS_FILE",
]

CHECKPOINT_EVERY_ENV = "NEUROPLAST_CHECKPOINT_EVERY"
DEFAULT_CHECKPOINT_EVERY = 50
RUN_FILE = "run.json"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
CLAIMS_FILE = "claims.json"
TIMINGS_FILE = "timings.json"
CHECKPOINT_DIR = "checkpoints"
FIGURE_DIR = "figures"
_CKPT_RE = re.compile(r"^step-(\d{8,})$")
_FIGURE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")



def default_checkpoint_every() -> int:
    """$NEUROPLAST_CHECKPOINT_EVERY if set (0 disables checkpoints), else 50."""
    raw = os.environ.get(CHECKPOINT_EVERY_ENV, "").strip()
    if not raw:
        return DEFAULT_CHECKPOINT_EVERY
    try:
        value = int(raw)
    except ValueError:
        raise NeuroplastUsageError(f"${CHECKPOINT_EVERY_ENV} must be an int >= 0, got {raw!r}") from None
    if value < 0:
        raise NeuroplastUsageError(f"${CHECKPOINT_EVERY_ENV} must be an int >= 0, got {raw!r}")
    return value


# --------------------------------------------------------------------------------------------
# Checkpoints


def _checkpoint_dirs(run_dir: Path) -> list[tuple[int, Path]]:
    root = run_dir / CHECKPOINT_DIR
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = _CKPT_RE.match(p.name)
        if m and p.is_dir():
            found.append((int(m.group(1)), p))
    return sorted(found)


def load_latest_checkpoint(run_dir: Path) -> dict[str, Any] | None:
    """The newest checkpoint's payload (step, metrics_bytes, rng, state), or None if there is none.

    A corrupt checkpoint raises NeuroplastUsageError.
    """
    from neuroplast.core.serialize import load_state

    found = _checkpoint_dirs(run_dir)
    if not found:
        return None
    step, path = found[-1]
    try:
        payload = load_state(path / "state")
    except ValueError as exc:
        raise NeuroplastUsageError(f"corrupted checkpoint {path}: {exc}") from None
    if not (isinstance(payload, dict) and {"step", "metrics_bytes", "rng", "state"} <= set(payload)):
        raise NeuroplastUsageError(f"corrupted checkpoint {path}: not a neuroplast run checkpoint")
    if payload["step"] != step:
        raise NeuroplastUsageError(f"corrupted checkpoint {path}: it records step {payload['step']}")
    metrics = run_dir / METRICS_FILE
    size = metrics.stat().st_size if metrics.exists() else 0
    if size < payload["metrics_bytes"]:
        raise NeuroplastUsageError(
            f"{metrics} is shorter ({size} bytes) than recorded in checkpoint {path} "
            f"({payload['metrics_bytes']} bytes)"
        )
    return payload


def _rng_state(generator: torch.Generator) -> dict[str, Any]:
    import numpy as np

    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "run_generator": generator.get_state(),
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": {"name": name, "keys": np.asarray(keys, dtype=np.int64), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def _set_rng_state(generator: torch.Generator, state: dict[str, Any]) -> None:
    import numpy as np

    generator.set_state(state["run_generator"])
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["name"], np.asarray(n["keys"]).astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --------------------------------------------------------------------------------------------
# Timings (wall-clock measurements, outside the reproducibility guarantee)


def _read_timings(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    data = read_json(path, "timings")
    if not isinstance(data, dict):
        raise NeuroplastUsageError(f"{path}: expected a JSON object of timings")
    return data


def _merge(old: Any, new: Any) -> Any:
    if isinstance(old, dict) and isinstance(new, dict):
        out = dict(old)
        for k, v in new.items():
            out[k] = _merge(out.get(k), v)
        return out
    return new


# --------------------------------------------------------------------------------------------
# Run: what Study.run receives


class Run:
    """The run directory seen from inside a study.

    Attributes: ``seed``, ``dir`` (Path), ``generator`` (a CPU ``torch.Generator`` seeded with
    ``seed``), ``config``, ``checkpoint_every``, ``resumed`` (True when continuing a killed run).

    A study that wants to survive a kill calls ``restore()`` once, after building its model and
    optimizer and before its loop, continues from ``step + 1`` when it returns ``(step, state)``,
    and calls ``checkpoint(step, state)`` whenever ``should_checkpoint(step)``. ``checkpoint``
    also saves ``generator`` and the global torch/numpy/python RNG states, and ``restore`` puts
    them back; any other generator the study made must go into ``state`` (``g.get_state()``).

    Wall-clock times go to ``timing(name, seconds)`` (timings.json), never into the summary: the
    summary of a seed is reproducible, the time it took is not.
    """

    def __init__(
        self,
        directory: Path,
        *,
        seed: int,
        config: Any = None,
        checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
        checkpoint: dict[str, Any] | None = None,
        resumed: bool = False,
        on_checkpoint: Any = None,
    ) -> None:
        self.dir = Path(directory)
        self.seed = int(seed)
        self.config = config
        self.checkpoint_every = int(checkpoint_every)
        self.resumed = bool(resumed)
        self.generator = torch.Generator().manual_seed(self.seed)
        self._ckpt = checkpoint
        self._restored = False
        self._active = False  # set by the first log/checkpoint/save_figure
        self._metrics: Any = None
        self._on_checkpoint = on_checkpoint

    # -- metrics ------------------------------------------------------------------------------
    def _open_metrics(self, keep_bytes: int) -> None:
        path = self.dir / METRICS_FILE
        with open(path, "ab") as f:  # creates it if missing
            f.truncate(keep_bytes)
        self._metrics = open(path, "ab")

    def _activate(self) -> None:
        if self._metrics is None:
            # Logging before restore(): the study starts from scratch, so drop earlier lines.
            self._open_metrics(0)
            self._restored = True
        self._active = True

    def log(self, step: int, **metrics: Any) -> None:
        """Append ``{"step": step, **metrics}`` as one line to metrics.jsonl and flush it."""
        if "step" in metrics:
            raise TypeError("run.log: 'step' is given positionally; do not pass it as a metric")
        self._activate()
        record = {"step": int(step), **to_json_value(metrics, "run.log metrics")}
        self._metrics.write((json.dumps(record, allow_nan=False) + "\n").encode("utf-8"))
        self._metrics.flush()

    # -- checkpoints --------------------------------------------------------------------------
    def should_checkpoint(self, step: int) -> bool:
        """True every ``checkpoint_every`` steps (never at step 0; never when checkpoint_every is 0)."""
        k = self.checkpoint_every
        return k > 0 and step > 0 and step % k == 0

    def checkpoint(self, step: int, state: dict[str, Any]) -> None:
        """Save ``state`` (nested dicts/lists of tensors and JSON scalars) as the checkpoint of ``step``.

        ``step`` means: everything up to and including ``step`` is done and logged.
        """
        from neuroplast.core.serialize import save_state

        self._activate()
        step = int(step)
        if step < 0:
            raise ValueError(f"run.checkpoint: step must be >= 0, got {step}")
        self._metrics.flush()
        payload = {
            "step": step,
            "metrics_bytes": self._metrics.tell(),
            "rng": _rng_state(self.generator),
            "state": state,
        }
        root = self.dir / CHECKPOINT_DIR
        root.mkdir(exist_ok=True)
        tmp = root / f".tmp-step-{step:08d}-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        save_state(tmp / "state", payload)
        final = root / f"step-{step:08d}"
        if final.exists():  # the same step saved again: move the old one aside first
            old = root / f".old-step-{step:08d}-{os.getpid()}"
            os.replace(final, old)
            shutil.rmtree(old)
        os.replace(tmp, final)
        for other_step, path in _checkpoint_dirs(self.dir):  # keep only the newest
            if other_step != step:
                shutil.rmtree(path, ignore_errors=True)
        if self._on_checkpoint is not None:
            self._on_checkpoint(step)

    def restore(self) -> tuple[int, dict[str, Any]] | None:
        """``(step, state)`` of the last checkpoint (also restoring the RNGs), or None on a fresh start."""
        if self._restored:
            if self._active:
                raise RuntimeError("run.restore() must be called before run.log()/run.checkpoint()")
            return (self._ckpt["step"], self._ckpt["state"]) if self._ckpt is not None else None
        self._restored = True
        if self._ckpt is None:
            self._open_metrics(0)
            return None
        self._open_metrics(int(self._ckpt["metrics_bytes"]))
        _set_rng_state(self.generator, self._ckpt["rng"])
        return self._ckpt["step"], self._ckpt["state"]

    # -- timings ------------------------------------------------------------------------------
    def timing(self, name: str, seconds: float | dict[str, Any]) -> None:
        """Record the wall-clock measurement ``name`` in timings.json (outside the summary).

        ``seconds``: a number, or a dict (nested dicts, lists, numbers, None) of measurements.
        The file is read, ``name`` set (a dict merged key by key into a dict already recorded
        under ``name``; anything else replaced) and written atomically, so calls accumulate and
        a resumed run keeps what its earlier segments recorded. timings.json is not part of the
        reproducibility guarantee of summary.json and metrics.jsonl.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"run.timing: name must be a non-empty str, got {name!r}")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float | dict):
            raise TypeError(
                f"run.timing: seconds must be a number or a dict, got {type(seconds).__name__}"
            )
        value = to_json_value(seconds, f"run.timing({name!r})")
        path = self.dir / TIMINGS_FILE
        timings = _read_timings(path)
        timings[name] = _merge(timings.get(name), value)
        write_json_atomic(path, timings)

    def timings(self) -> dict[str, Any]:
        """What timings.json holds now (an empty dict when nothing was recorded)."""
        return _read_timings(self.dir / TIMINGS_FILE)

    # -- figures ------------------------------------------------------------------------------
    def figure(self, **kwargs: Any) -> Any:
        """A new ``matplotlib.figure.Figure`` (no pyplot, no global state) for ``save_figure``."""
        from matplotlib.figure import Figure

        return Figure(**kwargs)

    def save_figure(self, name: str, fig: Any, dpi: int = 100) -> Path:
        """Save ``fig`` as figures/<name>.png (Agg) and close it if pyplot owns it."""
        if not isinstance(name, str) or not _FIGURE_NAME_RE.match(name) or name.endswith(".png"):
            raise ValueError(
                f"save_figure: name must look like 'loss_curve' (no path, no .png), got {name!r}"
            )
        folder = self.dir / FIGURE_DIR
        folder.mkdir(exist_ok=True)
        path = folder / f"{name}.png"
        tmp = folder / f".{name}.png.tmp-{os.getpid()}"
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
        os.replace(tmp, path)
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is not None:
            plt.close(fig)
        return path

    def close(self) -> None:
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None


# --------------------------------------------------------------------------------------------
# Executing one run (in this process or in a worker)


@dataclass
class RunSpec:
    """Everything a worker needs to execute one run; picklable and JSON-only."""

    study_key: str
    study_module: str
    config: dict[str, Any]
    seed: int
    dir: str
    resume: bool = False
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY
    quick: bool = False
    recipe: str = ""


@dataclass
class RunResult:
    """Outcome of one run. status: done | failed | invalid (ValueError during the study's setup)."""

    seed: int
    dir: str
    status: str
    summary: dict[str, Any] | None = None
    claims: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    traceback: str | None = None
    wall_time_s: float = 0.0
    study_key: str = ""


def load_study(key: str, module: str | None = None) -> Any:
    """``get_study(key)``, importing ``module`` first if discovery does not know the key."""
    try:
        return get_study(key)
    except StudyError:
        if not module or module == "__main__":
            raise
        importlib.import_module(module)
        return get_study(key)


def _run_meta(study: Any, spec: RunSpec) -> dict[str, Any]:
    import neuroplast

    return {
        "kind": "run",
        "study": study.key,
        "title": study.title,
        "arxiv": study.arxiv,
        "family": study.family,
        "seed": spec.seed,
        "quick": spec.quick,
        "recipe": spec.recipe,
        "status": "running",
        "neuroplast_version": neuroplast.__version__,
        "torch_version": torch.__version__,
        "python_version": sys.version.split()[0],
        "started": now_iso(),
        "finished": None,
        "wall_time_s": 0.0,
        "segments": 0,
        "last_checkpoint_step": None,
        "error": None,
    }


def check_resumable(run_dir: Path, study_key: str | None = None) -> tuple[dict[str, Any], Any]:
    """Validate a run directory for --resume without touching it: (run.json, study).

    Raises NeuroplastUsageError when it is not a neuroplast run, a run of another study, its
    config does not fit the study, or its newest checkpoint is corrupt.
    """
    run_dir = Path(run_dir)
    meta = read_json(run_dir / RUN_FILE, "not a neuroplast run directory")
    if not isinstance(meta, dict) or meta.get("kind") != "run" or "study" not in meta or "seed" not in meta:
        raise NeuroplastUsageError(f"{run_dir}: run.json is not a neuroplast run record")
    if study_key is not None and meta["study"] != study_key:
        raise NeuroplastUsageError(
            f"{run_dir} is a run of study {meta['study']!r}, not {study_key!r}"
        )
    try:
        study = get_study(meta["study"])
    except StudyError as exc:
        raise NeuroplastUsageError(str(exc)) from None
    config_from_json(study, read_json(run_dir / CONFIG_FILE, f"{run_dir}"), where=f"{run_dir / CONFIG_FILE}")
    if meta.get("status") != "done":
        load_latest_checkpoint(run_dir)
    return meta, study


def execute(spec: RunSpec) -> RunResult:
    """Run (or resume) one seed of one study in its directory; never raises for a study error.

    A ValueError raised by a fresh run before it logged or checkpointed anything (its setup:
    site patterns, shapes) gives status ``invalid``; the caller treats it as bad input.
    """
    t0 = time.perf_counter()
    run_dir = Path(spec.dir)
    result = RunResult(seed=spec.seed, dir=str(run_dir), status="failed", study_key=spec.study_key)
    study = load_study(spec.study_key, spec.study_module)
    cfg = config_from_json(study, spec.config)
    checkpoint = None
    if spec.resume:
        meta = read_json(run_dir / RUN_FILE, "run record")
        checkpoint = load_latest_checkpoint(run_dir)
        for stale in (run_dir / CHECKPOINT_DIR).glob(".*"):  # torn writes of a killed run
            shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink()
        meta.update(status="running", finished=None, error=None)
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / CHECKPOINT_DIR).mkdir(exist_ok=True)
        (run_dir / FIGURE_DIR).mkdir(exist_ok=True)
        (run_dir / TIMINGS_FILE).unlink(missing_ok=True)  # a fresh run measures afresh
        meta = _run_meta(study, spec)
        write_json_atomic(run_dir / CONFIG_FILE, config_to_json(cfg))
        (run_dir / METRICS_FILE).touch()
    meta["segments"] = int(meta.get("segments", 0)) + 1
    wall_before = float(meta.get("wall_time_s") or 0.0)

    def save_meta(**changes: Any) -> None:
        meta.update(changes)
        meta["wall_time_s"] = round(wall_before + time.perf_counter() - t0, 3)
        write_json_atomic(run_dir / RUN_FILE, meta)

    save_meta()
    os.environ.setdefault("MPLBACKEND", "Agg")
    seed_everything(spec.seed)  # global RNGs; run.generator is a fresh generator with the same seed
    run = Run(
        run_dir,
        seed=spec.seed,
        config=cfg,
        checkpoint_every=spec.checkpoint_every,
        checkpoint=checkpoint,
        resumed=spec.resume,
        on_checkpoint=lambda step: save_meta(last_checkpoint_step=step),
    )
    threads = torch.get_num_threads()
    try:
        if study.threads is not None:
            torch.set_num_threads(study.threads)
        raw = study.run(cfg, run)
        if not isinstance(raw, dict):
            raise TypeError(
                f"study {study.key!r}: run() must return a dict summary, got {type(raw).__name__}"
            )
        summary = json.loads(json.dumps(to_json_value(raw, "summary"), allow_nan=False))
    except Exception as exc:  # noqa: BLE001 - recorded in run.json and returned
        run.close()
        result.error = f"{type(exc).__name__}: {exc}"
        result.traceback = traceback.format_exc()
        if isinstance(exc, ValueError) and not run._active and not spec.resume:
            result.status = "invalid"
            result.error = str(exc)
        save_meta(status="failed", finished=now_iso(), error=result.error)
        result.wall_time_s = meta["wall_time_s"]
        return result
    except BaseException:  # KeyboardInterrupt: leave status "running" so --resume picks it up
        run.close()
        save_meta()
        raise
    finally:
        torch.set_num_threads(threads)
    run.close()
    claims = [c.evaluate(summary) for c in study.claims]
    claims_json = [
        {**r.to_json(), "statement": c.statement, "op": c.op, "threshold": c.threshold}
        for c, r in zip(study.claims, claims, strict=True)
    ]
    write_json_atomic(run_dir / SUMMARY_FILE, summary)
    write_json_atomic(run_dir / CLAIMS_FILE, claims_json)
    save_meta(status="done", finished=now_iso())
    result.status = "done"
    result.summary = summary
    result.claims = claims_json
    result.wall_time_s = meta["wall_time_s"]
    return result
