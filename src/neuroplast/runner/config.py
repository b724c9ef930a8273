"""Study configs: presets (full and ``quick()``), ``--set name=value`` parsing by field type, JSON."""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from typing import Any, Literal, Union

from neuroplast.runner.jsonio import NeuroplastUsageError

__all__ = ["make_config", "config_to_json", "config_from_json", "parse_sets"]


def _config_types(config_cls: type) -> dict[str, Any]:
    try:
        hints = typing.get_type_hints(config_cls)
    except Exception:  # noqa: BLE001 - unresolved forward references: fall back per field
        hints = {}
    out = {}
    for f in dataclasses.fields(config_cls):
        if not f.init:
            continue
        tp = hints.get(f.name, f.type)
        if isinstance(tp, str):  # unresolvable annotation: use the default's type if any
            tp = type(f.default) if f.default is not dataclasses.MISSING else Any
        out[f.name] = tp
    return out


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType)


def _seq_elem_types(tp: Any) -> tuple[type | None, list[Any] | None, Any]:
    """(container, fixed element types or None, variadic element type) of a tuple/list annotation."""
    origin = typing.get_origin(tp) or tp
    args = typing.get_args(tp)
    container = tuple if origin is tuple else list
    if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        return container, list(args), None
    return container, None, (args[0] if args else None)


def _parse_scalar(text: str, tp: Any, name: str) -> Any:
    t = text.strip()
    if tp is bool:
        low = t.lower()
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
        raise ValueError(f"{name} expects a bool (true/false), got {text!r}")
    if tp is int:
        try:
            return int(t)
        except ValueError:
            raise ValueError(f"{name} expects an int, got {text!r}") from None
    if tp is float:
        try:
            x = float(t)
        except ValueError:
            raise ValueError(f"{name} expects a float, got {text!r}") from None
        if not math.isfinite(x):
            raise ValueError(f"{name} expects a finite float, got {text!r}")
        return x
    if tp is str:
        return text
    if tp is None:  # unannotated sequence element: a number
        for kind in (int, float):
            try:
                return _parse_scalar(text, kind, name)
            except ValueError:
                pass
        raise ValueError(f"{name} expects numbers, got {text!r}")
    return _parse_text(text, tp, name)


def _parse_text(text: str, tp: Any, name: str) -> Any:
    """Parse a --set value by the field's annotation."""
    if _is_union(tp):
        args = typing.get_args(tp)
        if type(None) in args and text.strip().lower() in ("none", "null"):
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _parse_text(text, arg, name)
            except ValueError:
                continue
        raise ValueError(f"{name} expects {_type_name(tp)}, got {text!r}")
    if typing.get_origin(tp) is Literal:
        for choice in typing.get_args(tp):
            if str(choice) == text.strip():
                return choice
        choices = ", ".join(str(c) for c in typing.get_args(tp))
        raise ValueError(f"{name} expects one of {choices}, got {text!r}")
    origin = typing.get_origin(tp) or tp
    if origin in (tuple, list):
        container, fixed, elem = _seq_elem_types(tp)
        parts = [] if text.strip() == "" else [p.strip() for p in text.split(",")]
        if fixed is not None:
            if len(parts) != len(fixed):
                raise ValueError(
                    f"{name} expects {len(fixed)} comma-separated values ({_type_name(tp)}), got {text!r}"
                )
            return container(_parse_scalar(p, t, name) for p, t in zip(parts, fixed, strict=True))
        return container(_parse_scalar(p, elem, name) for p in parts)
    if tp in (bool, int, float, str):
        return _parse_scalar(text, tp, name)
    raise ValueError(f"{name} has type {_type_name(tp)}, which cannot be set from the command line")


def _coerce_json(value: Any, tp: Any, name: str) -> Any:
    """Check/convert one JSON value (from config.json) to the field's annotation."""
    if _is_union(tp):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce_json(value, arg, name)
            except (TypeError, ValueError):
                continue
        raise ValueError(f"{name} expects {_type_name(tp)}, got {value!r}")
    if typing.get_origin(tp) is Literal:
        if value in typing.get_args(tp):
            return value
        raise ValueError(f"{name} expects one of {typing.get_args(tp)}, got {value!r}")
    origin = typing.get_origin(tp) or tp
    if origin in (tuple, list):
        if not isinstance(value, list):
            raise ValueError(f"{name} expects a list, got {value!r}")
        container, fixed, elem = _seq_elem_types(tp)
        if fixed is not None:
            if len(value) != len(fixed):
                raise ValueError(f"{name} expects {len(fixed)} values, got {value!r}")
            return container(_coerce_json(v, t, name) for v, t in zip(value, fixed, strict=True))
        return container(_coerce_json(v, elem, name) if elem is not None else v for v in value)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if value in ("inf", "-inf", "nan"):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    else:
        return value  # an annotation we cannot check: keep the JSON value
    raise ValueError(f"{name} expects {_type_name(tp)}, got {value!r}")


def _config_json_value(obj: Any, name: str) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return repr(obj)  # "inf", "-inf", "nan": strict JSON has no such numbers
    if isinstance(obj, list | tuple):
        return [_config_json_value(v, name) for v in obj]
    if isinstance(obj, dict):
        return {str(k): _config_json_value(v, name) for k, v in obj.items()}
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise TypeError(f"config field {name!r}: values must be JSON-able (numbers, str, tuples), got {obj!r}")


def config_to_json(cfg: Any) -> dict[str, Any]:
    """The config dataclass as a JSON dict (tuples become lists, inf/nan become strings)."""
    return {
        f.name: _config_json_value(getattr(cfg, f.name), f.name) for f in dataclasses.fields(cfg) if f.init
    }


def config_from_json(study: Any, data: Any, where: str = "config") -> Any:
    """Rebuild ``study.Config`` from :func:`config_to_json` output; mismatches raise NeuroplastUsageError."""
    if not isinstance(data, dict):
        raise NeuroplastUsageError(f"{where}: expected a JSON object, got {type(data).__name__}")
    types_ = _config_types(study.Config)
    unknown = sorted(set(data) - set(types_))
    missing = sorted(set(types_) - set(data))
    if unknown or missing:
        raise NeuroplastUsageError(
            f"{where} does not match study {study.key!r}'s Config "
            f"(unknown fields: {unknown or 'none'}; missing fields: {missing or 'none'})"
        )
    try:
        values = {name: _coerce_json(data[name], tp, name) for name, tp in types_.items()}
        return study.Config(**values)
    except (TypeError, ValueError) as exc:
        raise NeuroplastUsageError(f"{where}: {exc}") from None


def parse_sets(study: Any, sets: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Parse ``["name=value", ...]`` by the types of ``study.Config``'s fields."""
    types_ = _config_types(study.Config)
    out: dict[str, Any] = {}
    for item in sets:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise NeuroplastUsageError(f"--set expects name=value, got {item!r}")
        if name not in types_:
            import difflib

            close = difflib.get_close_matches(name, list(types_), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise NeuroplastUsageError(
                f"--set {item}: study {study.key!r} has no config field {name!r}{hint} "
                f"(fields: {', '.join(types_)})"
            )
        try:
            out[name] = _parse_text(text, types_[name], name)
        except ValueError as exc:
            raise NeuroplastUsageError(f"--set {item}: {exc}") from None
    return out


def make_config(study: Any, quick: bool = False, sets: list[str] | tuple[str, ...] = ()) -> Any:
    """Build and validate the config: preset, then --set overrides, then ``study.validate(cfg)``.

    Everything that can be checked before a run directory exists is checked here: field names and
    types, the Config's own ``__post_init__``, the study's ``validate`` hook, and that the config
    survives its JSON round trip (so that --resume rebuilds the same config).
    """
    overrides = parse_sets(study, sets)
    try:
        cfg = study.config(quick=quick)
        if overrides:
            cfg = dataclasses.replace(cfg, **overrides)
        study.validate(cfg)
    except (ValueError, TypeError) as exc:  # Config.__post_init__ or the validate hook said no
        raise NeuroplastUsageError(f"invalid config for study {study.key!r}: {exc}") from None
    data = config_to_json(cfg)
    again = config_from_json(study, json.loads(json.dumps(data)))
    if again != cfg:
        raise TypeError(
            f"study {study.key!r}: its Config does not survive a JSON round trip "
            f"({cfg!r} became {again!r}); annotate fields with int/float/bool/str/tuple types"
        )
    return cfg
