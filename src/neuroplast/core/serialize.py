"""State files without pickle: tensors in safetensors, everything else in JSON.

``save_state(path, nested)`` writes two files:

- ``<path>.safetensors``: every tensor (and numpy array) of ``nested`` under a flattened key;
- ``<path>.json``: the tree, with a placeholder where each tensor was, JSON scalars
  (int, float, bool, str, None), lists, tuples and dicts whose keys are ``str`` or ``int``.

Key types and tuples are preserved, and a module ``state_dict`` comes back as an OrderedDict with
its ``_metadata`` (module versions); other OrderedDicts come back as plain dicts. So
``load_state(path)`` returns a structure that
``nn.Module.load_state_dict``, ``Optimizer.load_state_dict`` (whose state is keyed by int) and
``torch.Generator.set_state`` accept. Both files are written atomically (temp file, fsync,
``os.replace``), the JSON last; the JSON records the SHA-256 of the tensor file, so a torn pair
(a crash between the two replaces) or a corrupted file is detected on load.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch

__all__ = ["save_state", "load_state", "state_paths"]

_FORMAT = "neuroplast.state"
_VERSION = 1
# Reserved keys that mark encoded nodes in the JSON tree.
_TENSOR = "__tensor__"
_NDARRAY = "__ndarray__"
_DICT = "__dict__"
_TUPLE = "__tuple__"
_FLOAT = "__float__"
_STATE_DICT = "__state_dict__"
_RESERVED = {_TENSOR, _NDARRAY, _DICT, _TUPLE, _FLOAT, _STATE_DICT}
_SUFFIXES = (".safetensors", ".json")


def state_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Return ``(<path>.safetensors, <path>.json)``; a trailing ``.safetensors``/``.json`` is dropped."""
    p = str(os.fspath(path))
    for suffix in _SUFFIXES:
        if p.endswith(suffix):
            p = p[: -len(suffix)]
            break
    if not p:
        raise ValueError(f"path: expected a file stem, got {path!r}")
    return Path(p + ".safetensors"), Path(p + ".json")


def _at(where: str) -> str:
    return f"save_state: nested[{where or '<root>'!r}]"


def _encode(obj: Any, where: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Replace tensors by placeholders, recording them in ``tensors`` under a unique key."""
    if isinstance(obj, torch.Tensor | np.ndarray):
        key = where or "root"
        if key in tensors:  # names are readable paths; disambiguate the rare collision
            i = 1
            while f"{key}#{i}" in tensors:
                i += 1
            key = f"{key}#{i}"
        if isinstance(obj, np.ndarray):
            if obj.dtype == object:
                raise TypeError(f"{_at(where)}: numpy arrays of dtype object cannot be saved")
            t = torch.from_numpy(np.ascontiguousarray(obj))
        else:
            t = obj.detach()
        # clone: safetensors refuses tensors that share storage (tied weights, views).
        tensors[key] = t.to("cpu").contiguous().clone()
        return {_NDARRAY if isinstance(obj, np.ndarray) else _TENSOR: key}
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, float | np.floating):
        x = float(obj)
        return x if math.isfinite(x) else {_FLOAT: repr(x)}  # strict JSON has no nan/inf
    if isinstance(obj, dict) and isinstance(getattr(obj, "_metadata", None), dict):
        # a module state_dict: keep its per-module versions for load_state_dict's upgrade logic
        items = _encode(dict(obj), where, tensors)
        metadata = _encode(obj._metadata, f"{where}._metadata", tensors)
        return {_STATE_DICT: {"items": items, "metadata": metadata}}
    if isinstance(obj, dict):
        keys = list(obj)
        for k in keys:
            if isinstance(k, bool) or not isinstance(k, str | int):
                raise TypeError(
                    f"{_at(where)}: dict keys must be str or int, got {type(k).__name__} ({k!r})"
                )
        if all(isinstance(k, str) for k in keys) and not _RESERVED.intersection(keys):
            return {k: _encode(v, f"{where}.{k}" if where else k, tensors) for k, v in obj.items()}
        return {
            _DICT: [
                [k, _encode(v, f"{where}.{k}" if where else str(k), tensors)] for k, v in obj.items()
            ]
        }
    if isinstance(obj, list | tuple):
        items = [_encode(v, f"{where}.{i}" if where else str(i), tensors) for i, v in enumerate(obj)]
        return {_TUPLE: items} if isinstance(obj, tuple) else items
    raise TypeError(
        f"{_at(where)}: cannot save a {type(obj).__name__}; expected tensors, numpy arrays, "
        "int/float/bool/str/None, lists, tuples or dicts with str/int keys"
    )


def _decode(node: Any, tensors: dict[str, torch.Tensor], device: torch.device) -> Any:
    if isinstance(node, list):
        return [_decode(v, tensors, device) for v in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        (tag, value), = node.items()
        if tag in (_TENSOR, _NDARRAY):
            if value not in tensors:
                raise ValueError(f"tensor {value!r} is in the JSON tree but not in the tensor file")
            return tensors[value].numpy() if tag == _NDARRAY else tensors[value].to(device)
        if tag == _DICT:
            return {k: _decode(v, tensors, device) for k, v in value}
        if tag == _TUPLE:
            return tuple(_decode(v, tensors, device) for v in value)
        if tag == _FLOAT:
            return float(value)
        if tag == _STATE_DICT:
            out = OrderedDict(_decode(value["items"], tensors, device))
            out._metadata = _decode(value["metadata"], tensors, device)  # type: ignore[attr-defined]
            return out
    return {k: _decode(v, tensors, device) for k, v in node.items()}


def _atomic_write(target: Path, data: bytes) -> None:
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_state(path: str | os.PathLike[str], nested: Any) -> None:
    """Save a nested structure of tensors and JSON scalars as ``<path>.safetensors`` + ``<path>.json``.

    Tensors are saved detached, on CPU, with their dtype and shape; numpy arrays come back as
    numpy arrays. Non-finite floats, tuples and int dict keys survive the round trip. Parent
    directories are created. Raises TypeError (naming the location) for anything else, before
    any file is touched.
    """
    st_path, json_path = state_paths(path)
    tensors: dict[str, torch.Tensor] = {}
    tree = _encode(nested, "", tensors)
    blob = safetensors.torch.save(tensors, metadata={"format": _FORMAT})
    header = {
        "format": _FORMAT,
        "version": _VERSION,
        "safetensors_sha256": hashlib.sha256(blob).hexdigest(),
        "tensors": sorted(tensors),
        "tree": tree,
    }
    text = json.dumps(header, allow_nan=False, indent=1)
    st_path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(st_path, blob)
    _atomic_write(json_path, text.encode("utf-8"))  # last: its presence commits the pair


def load_state(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Any:
    """Load what :func:`save_state` wrote at ``path``; tensors are placed on ``device``.

    Raises ValueError when a file is missing, corrupt, or the two files do not belong together.
    """
    st_path, json_path = state_paths(path)
    for p in (json_path, st_path):
        if not p.is_file():
            raise ValueError(f"load_state: missing state file {str(p)!r} (written by save_state({path!r}))")
    try:
        header = json.loads(json_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"load_state: corrupt JSON in {str(json_path)!r}: {e}") from e
    if not isinstance(header, dict) or header.get("format") != _FORMAT or "tree" not in header:
        raise ValueError(f"load_state: {str(json_path)!r} is not a neuroplast state file")
    if header.get("version") != _VERSION:
        raise ValueError(
            f"load_state: {str(json_path)!r} has format version {header.get('version')!r}, "
            f"this neuroplast reads version {_VERSION}"
        )
    blob = st_path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != header.get("safetensors_sha256"):
        raise ValueError(
            f"load_state: {str(st_path)!r} does not match {str(json_path)!r} (checksum differs): "
            "the tensor file is corrupt or from another save"
        )
    try:
        tensors = safetensors.torch.load(blob)
    except Exception as e:  # safetensors raises its own error type
        raise ValueError(f"load_state: corrupt tensor file {str(st_path)!r}: {e}") from e
    if sorted(tensors) != header.get("tensors"):
        raise ValueError(f"load_state: tensor names in {str(st_path)!r} do not match {str(json_path)!r}")
    try:
        return _decode(header["tree"], tensors, torch.device(device))
    except (TypeError, ValueError) as e:
        raise ValueError(f"load_state: malformed tree in {str(json_path)!r}: {e}") from e
