"""``neuroplast report DIR``: one static, self-contained HTML page from the files of a run directory.

It reads only files (run.json, config.json, summary.json, claims.json, figures/*.png, and
timings.json / sweep.json / verify.json when present) from every run directory under DIR, groups
them by study and writes DIR/report.html: claims table with per-seed values, summary values,
wall-clock timings (timings.json, outside the reproducibility guarantee), configs, figures
embedded as base64 PNG, and run metadata. No external CSS, JS or fonts.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuroplast.runner.run import (
    CLAIMS_FILE,
    CONFIG_FILE,
    FIGURE_DIR,
    RUN_FILE,
    SUMMARY_FILE,
    TIMINGS_FILE,
    NeuroplastUsageError,
    now_iso,
)

__all__ = ["write_report", "render_report", "REPORT_FILE"]

REPORT_FILE = "report.html"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;margin:2rem auto;
max-width:1200px;padding:0 1rem;color:#1d1f21;line-height:1.4}
h1{margin-bottom:.2rem} h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2.5rem}
h3{margin-top:1.5rem} .meta{color:#555;font-size:.9rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3} td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#116611;font-weight:600} .bad{color:#aa1111;font-weight:600}
.verdict{padding:.5rem 1rem;border-radius:4px;display:inline-block}
.verdict.ok{background:#e6f4e6} .verdict.bad{background:#fbe9e9}
code{background:#f5f5f5;padding:0 .25rem;border-radius:3px}
figure{display:inline-block;margin:.5rem;text-align:center} figure img{max-width:520px;border:1px solid #eee}
figcaption{font-size:.85rem;color:#555} nav ul{columns:2}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _read_json(path: Path) -> tuple[Any, str | None]:
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"{path.name} unreadable: {exc}"


@dataclass
class _RunFiles:
    dir: Path
    meta: dict[str, Any]
    config: dict[str, Any] | None
    summary: dict[str, Any] | None
    claims: list[dict[str, Any]]
    figures: dict[str, Path]
    problems: list[str] = field(default_factory=list)
    label: str = ""
    timings: dict[str, Any] | None = None

    @property
    def seed(self) -> int:
        try:
            return int(self.meta.get("seed", -1))
        except (TypeError, ValueError):
            return -1


def _load_run(run_dir: Path) -> _RunFiles | None:
    meta, err = _read_json(run_dir / RUN_FILE)
    if not isinstance(meta, dict) or meta.get("kind") != "run":
        return None
    problems = [err] if err else []
    config, err = _read_json(run_dir / CONFIG_FILE)
    problems += [err] if err else []
    summary, err = _read_json(run_dir / SUMMARY_FILE)
    problems += [err] if err else []
    claims, err = _read_json(run_dir / CLAIMS_FILE)
    problems += [err] if err else []
    timings, err = _read_json(run_dir / TIMINGS_FILE)
    problems += [err] if err else []
    fig_dir = run_dir / FIGURE_DIR
    figures = {p.stem: p for p in sorted(fig_dir.glob("*.png"))} if fig_dir.is_dir() else {}
    return _RunFiles(run_dir, meta, config if isinstance(config, dict) else None,
                     summary if isinstance(summary, dict) else None,
                     claims if isinstance(claims, list) else [], figures, problems,
                     timings=timings if isinstance(timings, dict) else None)


def _find_runs(root: Path) -> list[_RunFiles]:
    runs = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames if d not in ("checkpoints", "figures") and not d.startswith(".")
        )
        if RUN_FILE in filenames:
            r = _load_run(Path(dirpath))
            if r is not None:
                runs.append(r)
    return runs


def _fmt_num(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.6g}" if math.isfinite(v) else str(v)
    if v is None:
        return "n/a"
    return str(v)


def _fmt_value(v: Any) -> str:
    if isinstance(v, list):
        if len(v) <= 8 and all(not isinstance(x, list | dict) for x in v):
            return "[" + ", ".join(_fmt_num(x) for x in v) + "]"
        first = _fmt_num(v[0]) if v and not isinstance(v[0], list | dict) else "..."
        return f"[{len(v)} values: {first} ...]"
    if isinstance(v, dict):
        return json.dumps(v)[:200]
    return _fmt_num(v)


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _img(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"<em>{_e(path.name)} unreadable: {_e(exc)}</em>"
    if not data.startswith(_PNG_MAGIC):
        return f"<em>{_e(path.name)} is not a PNG file</em>"
    b64 = base64.b64encode(data).decode("ascii")
    return f'<img alt="{_e(path.stem)}" src="data:image/png;base64,{b64}">'


def _table(header: list[str], rows: list[list[str]], num_cols: set[int] = frozenset()) -> str:
    """``header`` and ``rows`` hold already-escaped HTML."""
    out = ["<table><thead><tr>", *(f"<th>{h}</th>" for h in header), "</tr></thead><tbody>"]
    for row in rows:
        out.append("<tr>" + "".join(
            f'<td class="num">{c}</td>' if i in num_cols else f"<td>{c}</td>" for i, c in enumerate(row)
        ) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _arxiv_link(arxiv: str) -> str:
    if not arxiv:
        return ""
    return f'arXiv:<a href="https://arxiv.org/abs/{_e(arxiv)}">{_e(arxiv)}</a>'


def _study_section(key: str, runs: list[_RunFiles], root: Path) -> tuple[str, bool | None]:
    runs = sorted(runs, key=lambda r: (r.seed, str(r.dir)))
    seeds = [r.seed for r in runs]
    for r in runs:
        rel = os.path.relpath(r.dir, root)
        r.label = f"seed {r.seed}" if seeds.count(r.seed) == 1 else f"seed {r.seed} ({rel})"
    meta0 = runs[0].meta
    parts = [f'<section id="study-{_e(key)}">', f"<h2>{_e(key)}: {_e(meta0.get('title', ''))}</h2>"]
    info = [x for x in (_arxiv_link(str(meta0.get("arxiv", ""))),
                        f"family: {_e(meta0['family'])}" if meta0.get("family") else "") if x]
    if info:
        parts.append(f'<p class="meta">{" · ".join(info)}</p>')
    recipes = set()
    for r in runs:  # a sweep's one command line stands for all its seeds
        sweep, _ = _read_json(r.dir.parent / "sweep.json")
        recipe = sweep.get("recipe") if isinstance(sweep, dict) else r.meta.get("recipe")
        if recipe:
            recipes.add(str(recipe))
    recipes = sorted(recipes)
    if recipes:
        parts.append("<p>Recipe: " + "<br>".join(f"<code>{_e(x)}</code>" for x in recipes) + "</p>")

    # Claims
    claim_names: list[str] = []
    claim_info: dict[str, dict[str, Any]] = {}
    for r in runs:
        for c in r.claims:
            if isinstance(c, dict) and "name" in c and c["name"] not in claim_info:
                claim_names.append(c["name"])
                claim_info[c["name"]] = c
    study_holds: bool | None = None
    parts.append("<h3>Claims</h3>")
    if claim_names:
        rows = []
        study_holds = True
        for name in claim_names:
            c = claim_info[name]
            cells, all_hold = [], True
            for r in runs:
                found = next((x for x in r.claims if isinstance(x, dict) and x.get("name") == name), None)
                if found is None:
                    cells.append(f'<span class="bad">{_e(r.meta.get("status", "missing"))}</span>')
                    all_hold = False
                    continue
                holds = bool(found.get("holds"))
                all_hold &= holds
                mark = '<span class="ok">&#10003;</span>' if holds else '<span class="bad">&#10007;</span>'
                err = f' <small title="{_e(found["error"])}">(error)</small>' if found.get("error") else ""
                cells.append(f"{_e(_fmt_num(found.get('value')))} {mark}{err}")
            study_holds &= all_hold
            verdict = ('<span class="ok">holds</span>' if all_hold
                       else '<span class="bad">does not hold</span>')
            crit = f"{_e(c.get('op', ''))} {_e(_fmt_num(c.get('threshold')))}"
            rows.append([_e(name), _e(c.get("statement", "")), crit, *cells, verdict])
        parts.append(_table(["claim", "statement", "criterion", *(_e(r.label) for r in runs), "holds"], rows,
                            set(range(3, 3 + len(runs)))))
    elif any(r.meta.get("status") != "done" for r in runs):
        parts.append("<p>No finished runs yet.</p>")
    else:
        parts.append("<p>This study states no claims.</p>")

    # Summary
    flat = [(_flatten(r.summary) if r.summary is not None else None) for r in runs]
    keys: list[str] = []
    for f in flat:
        for k in f or {}:
            if k not in keys:
                keys.append(k)
    if keys:
        parts.append("<h3>Summary</h3>")
        rows = [[_e(k), *(_e(_fmt_value(f[k])) if f is not None and k in f else "" for f in flat)]
                for k in keys]
        parts.append(_table(["value", *(_e(r.label) for r in runs)], rows, set(range(1, 1 + len(runs)))))

    # Timings: wall-clock seconds (timings.json), not results of the seed
    tflat = [(_flatten(r.timings) if r.timings else None) for r in runs]
    tkeys: list[str] = []
    for f in tflat:
        for k in f or {}:
            if k not in tkeys:
                tkeys.append(k)
    if tkeys:
        parts.append("<h3>Timings</h3>")
        parts.append('<p class="meta">Wall-clock seconds measured on the machine that ran each seed '
                     "(timings.json); they are not part of the reproducibility guarantee.</p>")
        rows = [[_e(k), *(_e(_fmt_value(f[k])) if f is not None and k in f else "" for f in tflat)]
                for k in tkeys]
        parts.append(_table(["measurement", *(_e(r.label) for r in runs)], rows,
                            set(range(1, 1 + len(runs)))))

    # Config
    configs = [r.config for r in runs if r.config is not None]
    if configs:
        parts.append("<h3>Config</h3>")
        names = list(configs[0])
        same = all(c == configs[0] for c in configs)
        if same:
            rows = [[_e(n), _e(json.dumps(configs[0][n]))] for n in names]
            parts.append(_table(["field", "value"], rows))
        else:
            rows = [[_e(n), *(_e(json.dumps(r.config.get(n))) if r.config else "" for r in runs)]
                    for n in names]
            parts.append(_table(["field", *(_e(r.label) for r in runs)], rows))

    # Figures
    fig_names = sorted({n for r in runs for n in r.figures})
    if fig_names:
        parts.append("<h3>Figures</h3>")
        for name in fig_names:
            parts.append(f"<h4>{_e(name)}</h4><div>")
            for r in runs:
                if name in r.figures:
                    parts.append(f"<figure>{_img(r.figures[name])}<figcaption>{_e(r.label)}</figcaption></figure>")
            parts.append("</div>")

    # Runs
    parts.append("<h3>Runs</h3>")
    rows = []
    for r in runs:
        m = r.meta
        status = str(m.get("status", "?"))
        cls = "ok" if status == "done" else "bad"
        note = "; ".join([*([str(m["error"])] if m.get("error") else []), *r.problems])
        wall = m.get("wall_time_s")
        rows.append([
            _e(r.label), f'<span class="{cls}">{_e(status)}</span>', _e(m.get("started") or ""),
            _e(m.get("finished") or ""), _e(f"{wall:.1f} s" if isinstance(wall, int | float) else ""),
            _e(m.get("segments", "")), _e(m.get("neuroplast_version", "")), _e(m.get("torch_version", "")),
            f"<code>{_e(os.path.relpath(r.dir, root))}</code>", _e(note),
        ])
    parts.append(_table(["run", "status", "started", "finished", "wall time", "segments", "neuroplast",
                         "torch", "directory", "notes"], rows))
    parts.append("</section>")
    return "\n".join(parts), study_holds


def render_report(root: str | os.PathLike[str]) -> str:
    """The HTML text of the report for the run directories under ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise NeuroplastUsageError(f"report: {root} is not a directory")
    runs = _find_runs(root)
    if not runs:
        raise NeuroplastUsageError(f"report: no neuroplast run directories (run.json) under {root}")
    by_study: dict[str, list[_RunFiles]] = defaultdict(list)
    for r in runs:
        by_study[str(r.meta.get("study", "?"))].append(r)
    import neuroplast

    sections, verdicts = [], {}
    for key in sorted(by_study):
        text, holds = _study_section(key, by_study[key], root)
        sections.append(text)
        verdicts[key] = holds
    verify, _ = _read_json(root / "verify.json")
    head = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>neuroplast report: {_e(root.resolve().name)}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>neuroplast report</h1>",
        f'<p class="meta">Directory <code>{_e(root.resolve())}</code> · generated {_e(now_iso())} · '
        f"neuroplast {_e(neuroplast.__version__)} · {len(runs)} run(s) of {len(by_study)} study(ies)</p>",
    ]
    if isinstance(verify, dict):
        seeds = ", ".join(str(s) for s in verify.get("seeds", []))
        quick = " (quick settings)" if verify.get("quick") else ""
        ok = bool(verify.get("all_hold"))
        head.append(
            f'<p class="verdict {"ok" if ok else "bad"}">'
            f'{"All claims hold" if ok else "Some claims do not hold"} on seeds {_e(seeds)}{_e(quick)}.</p>'
        )
    head.append("<nav><h3>Studies</h3><ul>")
    for key in sorted(by_study):
        holds = verdicts[key]
        badge = "" if holds is None else (' <span class="ok">&#10003;</span>' if holds
                                          else ' <span class="bad">&#10007;</span>')
        title = by_study[key][0].meta.get("title", "")
        head.append(f'<li><a href="#study-{_e(key)}">{_e(key)}</a>: {_e(title)}{badge}</li>')
    head.append("</ul></nav>")
    return "\n".join([*head, *sections, "</body></html>", ""])


def write_report(root: str | os.PathLike[str]) -> Path:
    """Write ``root/report.html`` (atomically) and return its path."""
    text = render_report(root)
    path = Path(root) / REPORT_FILE
    tmp = path.with_name(f".{REPORT_FILE}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
