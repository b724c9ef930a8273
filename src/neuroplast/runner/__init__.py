"""The runner: run directories, checkpoints and resume, seed sweeps, verify, and the HTML report.

``run_study`` runs one study in this process (what a study's smoke test uses)::

    from neuroplast.runner import run_study
    summary = run_study("dormant-neurons", out=tmp_path / "run", quick=True, sets=["steps=20"])
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from neuroplast.runner.report import render_report, write_report
from neuroplast.runner.run import (
    CHECKPOINT_EVERY_ENV,
    DEFAULT_CHECKPOINT_EVERY,
    NeuroplastUsageError,
    Run,
    RunResult,
    RunSpec,
    config_from_json,
    config_to_json,
    execute,
    make_config,
    parse_sets,
)
from neuroplast.runner.sweep import (
    BACKENDS,
    Executor,
    InlineExecutor,
    LocalExecutor,
    Outcome,
    make_executor,
    parse_seeds,
    resume,
    run_specs,
    start,
)
from neuroplast.runner.verify import VerifyOutcome, format_table, verify

__all__ = [
    "BACKENDS",
    "CHECKPOINT_EVERY_ENV",
    "DEFAULT_CHECKPOINT_EVERY",
    "Executor",
    "InlineExecutor",
    "LocalExecutor",
    "NeuroplastUsageError",
    "Outcome",
    "Run",
    "RunResult",
    "RunSpec",
    "VerifyOutcome",
    "config_from_json",
    "config_to_json",
    "execute",
    "format_table",
    "make_config",
    "make_executor",
    "parse_seeds",
    "parse_sets",
    "render_report",
    "resume",
    "run_specs",
    "run_study",
    "start",
    "verify",
    "write_report",
]


def run_study(
    study: Any,
    *,
    out: str | os.PathLike[str],
    seed: int = 0,
    quick: bool = False,
    sets: list[str] | tuple[str, ...] = (),
    cfg: Any = None,
    checkpoint_every: int | None = None,
) -> dict[str, Any]:
    """Run one registered study (key, instance or class) on one seed in this process; return its summary.

    ``cfg`` (a ``Config`` instance) replaces the ``quick``/``sets`` preset. Raises
    NeuroplastUsageError for bad input and RuntimeError (with the study's traceback) if the run fails.
    """
    from neuroplast.runner.run import default_checkpoint_every
    from neuroplast.runner.sweep import _study_or_usage, claim_out_dir, recipe

    key = study if isinstance(study, str) else study.key
    st = _study_or_usage(key)
    if cfg is None:
        cfg = make_config(st, quick=quick, sets=sets)
    else:
        if not (dataclasses.is_dataclass(cfg) and isinstance(cfg, st.Config)):
            raise TypeError(f"run_study: cfg must be a {st.Config.__qualname__} instance, got {cfg!r}")
        st.validate(cfg)
    path = claim_out_dir(out, st.key)
    every = default_checkpoint_every() if checkpoint_every is None else checkpoint_every
    spec = RunSpec(st.key, type(st).__module__, config_to_json(cfg), seed, str(Path(path)), False, every,
                   quick, recipe(st.key, quick, sets, seed))
    result = execute(spec)
    if result.status != "done":
        raise RuntimeError(
            f"study {st.key!r} seed {seed} {result.status}: {result.error}\n{result.traceback or ''}"
        )
    return result.summary or {}
