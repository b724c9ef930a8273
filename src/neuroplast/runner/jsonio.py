"""Small JSON helpers of the runner: the usage error, strict JSON conversion, atomic writes."""

from __future__ import annotations

import json
import math
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

__all__ = ["NeuroplastUsageError", "now_iso", "to_json_value", "write_json_atomic", "read_json"]


class NeuroplastUsageError(Exception):
    """Bad input from the user (study key, --set, --resume dir, ...): one line, exit code 2."""


# --------------------------------------------------------------------------------------------
# JSON helpers


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def to_json_value(obj: Any, where: str = "value") -> Any:
    """Convert ``obj`` to plain JSON: numbers, bools, strings, None, lists and str-keyed dicts.

    0-d tensors and numpy scalars become Python numbers, tuples and 1-d tensors become lists,
    non-finite floats become None (strict JSON has no NaN). Anything else raises TypeError naming
    ``where``.
    """
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, torch.Tensor):
        if obj.numel() == 1 and obj.dim() == 0:
            return to_json_value(obj.item(), where)
        return to_json_value(obj.detach().cpu().tolist(), where)
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(obj, np.generic):
            return to_json_value(obj.item(), where)
        if isinstance(obj, np.ndarray):
            return to_json_value(obj.tolist(), where)
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: dict keys must be str, got {k!r} ({type(k).__name__})")
            out[k] = to_json_value(v, f"{where}[{k!r}]")
        return out
    if isinstance(obj, list | tuple):
        return [to_json_value(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    raise TypeError(
        f"{where}: expected JSON numbers, lists or dicts (or 0-d tensors), got {type(obj).__name__}"
    )


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` via a temp file and ``os.replace``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    text = json.dumps(obj, indent=1, allow_nan=False, sort_keys=False) + "\n"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def read_json(path: Path, what: str) -> Any:
    """Read JSON or raise NeuroplastUsageError naming ``what``."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NeuroplastUsageError(f"{what}: {path} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NeuroplastUsageError(f"{what}: {path} is not valid JSON ({exc})") from None
