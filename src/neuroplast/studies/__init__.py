"""Studies: one file per paper, discovered and registered here.

A study is a subclass of :class:`Study` decorated with :func:`register`. It holds a ``Config``
dataclass (``Config()`` is the full setting, ``Config.quick()`` the small one), ``run(cfg, run)``
returning a summary dict of JSON numbers/lists/dicts, and ``claims``: :class:`Claim` objects, each
measured on ONE seed's summary.

Discovery imports every module of this package (``pkgutil``) plus the modules named in the
environment variable ``NEUROPLAST_STUDIES`` (comma-separated dotted module paths): the plugin seam
for users' own studies. Nothing heavy is imported here; matplotlib is only loaded when a study
module imports it.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import os
import pkgutil
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "Claim",
    "ClaimResult",
    "Study",
    "StudyError",
    "register",
    "get_study",
    "all_studies",
    "discover",
    "discovery_errors",
    "STUDIES_ENV",
]

STUDIES_ENV = "NEUROPLAST_STUDIES"
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}
_KEY_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class StudyError(ValueError):
    """Bad study definition or lookup: unknown key, duplicate key, plugin module that fails."""


@dataclass(frozen=True)
class ClaimResult:
    """Outcome of one claim on one seed's summary. ``value`` is NaN when it could not be measured."""

    name: str
    value: float
    holds: bool
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        value = self.value if math.isfinite(self.value) else None
        return {"name": self.name, "value": value, "holds": self.holds, "error": self.error}


@dataclass(frozen=True)
class Claim:
    """A named, measured comparison: ``measure(summary) <op> threshold`` on one seed's summary.

    ``measure`` reads the summary dict that the study's ``run`` returned (after its round trip
    through JSON). A study's claim holds when it holds on every seed.
    """

    name: str
    statement: str
    measure: Callable[[dict], float]
    op: str
    threshold: float

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Claim name must be a non-empty string, got {self.name!r}")
        if self.op not in _OPS:
            raise ValueError(f"Claim {self.name!r}: op must be one of {sorted(_OPS)}, got {self.op!r}")
        if not callable(self.measure):
            kind = type(self.measure).__name__
            raise TypeError(f"Claim {self.name!r}: measure must be callable, got {kind}")
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float)):
            raise TypeError(f"Claim {self.name!r}: threshold must be a number, got {self.threshold!r}")

    def evaluate(self, summary: dict) -> ClaimResult:
        """Measure the claim on one seed's summary; a measure that fails gives ``holds=False``."""
        try:
            raw = self.measure(summary)
            value = float(raw)
        except Exception as exc:  # noqa: BLE001 - a claim that cannot be measured does not hold
            return ClaimResult(self.name, math.nan, False, f"{type(exc).__name__}: {exc}")
        if not math.isfinite(value):
            return ClaimResult(self.name, value, False, f"measured value is {value}")
        return ClaimResult(self.name, value, bool(_OPS[self.op](value, float(self.threshold))))


class Study:
    """Base class of a study (subclass it and decorate with :func:`register`).

    Class attributes: ``key`` (kebab-case, the paper key), ``title``, ``arxiv`` (id such as
    ``"2302.12902"``), ``family`` (catalog section), ``Config`` (a dataclass; ``Config()`` is the
    full setting and the classmethod ``Config.quick()`` the small one) and ``claims``.
    ``validate(cfg)`` may raise ValueError for a config that cannot run (the runner calls it before
    it creates any directory). ``threads``: torch intra-op threads the runner gives ``run`` (1 for
    studies of small tensors, where more threads only add synchronisation and the numbers should
    not depend on the machine; None leaves the process setting).
    """

    key: ClassVar[str]
    title: ClassVar[str] = ""
    arxiv: ClassVar[str] = ""
    family: ClassVar[str] = ""
    Config: ClassVar[type]
    claims: ClassVar[tuple[Claim, ...]] = ()
    threads: ClassVar[int | None] = None

    def run(self, cfg: Any, run: Any) -> dict:
        """Run the experiment described by ``cfg`` inside the run directory ``run``; return the summary."""
        raise NotImplementedError(f"study {type(self).__name__} does not define run(cfg, run)")

    def validate(self, cfg: Any) -> None:
        """Raise ValueError if ``cfg`` cannot run. Default: accept every config."""

    def config(self, quick: bool = False) -> Any:
        """``Config.quick()`` when ``quick`` (``Config()`` if there is no such preset), else ``Config()``."""
        if quick and hasattr(self.Config, "quick"):
            return self.Config.quick()
        return self.Config()

    def __repr__(self) -> str:
        return f"<Study {self.key!r}: {self.title}>"


_REGISTRY: dict[str, type[Study]] = {}
_PACKAGE_DISCOVERED = False


def register(cls: type[Study]) -> type[Study]:
    """Class decorator adding a study to the registry. A key registered twice raises StudyError."""
    if not (isinstance(cls, type) and issubclass(cls, Study)):
        raise TypeError(f"register expects a Study subclass, got {cls!r}")
    key = getattr(cls, "key", None)
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise StudyError(
            f"{cls.__qualname__}.key must be a kebab-case string such as 'dormant-neurons', got {key!r}"
        )
    config = getattr(cls, "Config", None)
    if not (isinstance(config, type) and dataclasses.is_dataclass(config)):
        raise StudyError(f"study {key!r}: Config must be a dataclass class, got {config!r}")
    claims = tuple(getattr(cls, "claims", ()))
    for c in claims:
        if not isinstance(c, Claim):
            raise StudyError(f"study {key!r}: claims must be Claim objects, got {c!r}")
    names = [c.name for c in claims]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise StudyError(f"study {key!r}: claim names must be unique, repeated: {dupes}")
    cls.claims = claims
    old = _REGISTRY.get(key)
    if old is not None and old is not cls:
        same_origin = old.__module__ == cls.__module__ and old.__qualname__ == cls.__qualname__
        if not same_origin:  # a module reload re-registers the same class: allowed
            raise StudyError(
                f"study key {key!r} is registered twice: by {old.__module__}.{old.__qualname__} and "
                f"{cls.__module__}.{cls.__qualname__}; give one of them another key"
            )
    _REGISTRY[key] = cls
    return cls


def _plugin_modules() -> list[str]:
    raw = os.environ.get(STUDIES_ENV, "")
    return [m.strip() for m in raw.split(",") if m.strip()]


_ATTEMPTED: set[str] = set()
_IMPORT_ERRORS: dict[str, str] = {}


def discover() -> None:
    """Import every study module of this package and every module named in $NEUROPLAST_STUDIES.

    Each module is tried once per process. A module that fails to import does not stop the others:
    its error is kept (see :func:`discovery_errors`) and named when a study cannot be found.
    """
    names = [
        f"{__name__}.{info.name}"
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name)
        if not info.name.startswith("_")
    ]
    for name in [*names, *_plugin_modules()]:
        if name in _ATTEMPTED:
            continue
        _ATTEMPTED.add(name)
        try:
            importlib.import_module(name)
        except StudyError:
            raise  # duplicate keys and malformed studies are errors of the whole registry
        except Exception as exc:  # noqa: BLE001 - one broken study must not hide the others
            hint = ""
            if isinstance(exc, ModuleNotFoundError) and name in _plugin_modules():
                hint = f" (named in ${STUDIES_ENV}; is its directory on PYTHONPATH?)"
            _IMPORT_ERRORS[name] = f"{type(exc).__name__}: {exc}{hint}"


def discovery_errors() -> dict[str, str]:
    """Study modules that failed to import: module name -> error."""
    discover()
    return dict(_IMPORT_ERRORS)


def get_study(key: str) -> Study:
    """The registered study ``key`` (an instance). Unknown key: StudyError listing close matches."""
    discover()
    cls = _REGISTRY.get(key)
    if cls is None:
        import difflib

        known = sorted(_REGISTRY)
        close = difflib.get_close_matches(str(key), known, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        listing = ", ".join(known) if known else "none registered"
        broken = "".join(
            f"; study module {m} failed to import: {e}" for m, e in sorted(_IMPORT_ERRORS.items())
        )
        raise StudyError(
            f"unknown study {key!r}{hint} (known studies: {listing}; see 'neuroplast list'){broken}"
        )
    return cls()


def all_studies() -> list[Study]:
    """Every registered study (instances), sorted by key."""
    discover()
    return [_REGISTRY[k]() for k in sorted(_REGISTRY)]
