"""The ``neuroplast`` command line: list, run, verify, report, tour.

Exit codes: 0 success (verify/tour: every claim holds), 1 a run failed or a claim does not hold,
2 bad input (one line on stderr, nothing left behind), 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

__all__ = ["main", "TOUR", "TOUR_ENV"]

TOUR: tuple[str, ...] = ("dormant-neurons",)
TOUR_ENV = "NEUROPLAST_TOUR"  # comma-separated study keys replacing TOUR (used by tests)
TOUR_SEEDS = "0-1"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"neuroplast: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(2)


def _progress(result: Any) -> None:
    if result.status == "invalid":  # reported once, as the usage error
        return
    where = result.dir
    msg = f"[{result.study_key} seed {result.seed}] {result.status} in {result.wall_time_s:.1f} s: {where}"
    if result.status != "done" and result.error:
        msg += f"\n  {result.error}"
    print(msg, file=sys.stderr, flush=True)


def _print_failures(results: Sequence[Any]) -> None:
    for r in results:
        if r.status == "failed" and r.traceback:
            print(f"--- {r.study_key} seed {r.seed} failed ---\n{r.traceback}", file=sys.stderr)


def _jobs(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int >= 1, got {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected an int >= 1, got {value!r}")
    return n


def _nonneg(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int >= 0, got {value!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected an int >= 0, got {value!r}")
    return n


# --------------------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    from neuroplast.studies import all_studies, discovery_errors

    studies = all_studies()
    for module, error in sorted(discovery_errors().items()):
        print(f"neuroplast: warning: study module {module} failed to import: {error}", file=sys.stderr)
    if not studies:
        print("no studies registered")
        return 0
    rows = [["key", "family", "arXiv", "claims", "title"]]
    rows += [[s.key, s.family, s.arxiv, str(len(s.claims)), s.title] for s in studies]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4])
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from neuroplast.runner import NeuroplastUsageError, format_table, parse_seeds, resume, start
    from neuroplast.runner.verify import verdicts_from_results
    from neuroplast.studies import get_study

    if args.resume is not None:
        given = (("--quick", args.quick), ("--set", args.set), ("--seeds", args.seeds), ("--out", args.out))
        clash = [flag for flag, value in given if value]
        if clash:
            raise NeuroplastUsageError(
                "--resume continues a run with its recorded settings; "
                f"it cannot be combined with {', '.join(clash)}"
            )
        outcome = resume(args.resume, study_key=args.key, jobs=args.jobs, backend=args.backend,
                         checkpoint_every=args.checkpoint_every, on_result=_progress)
        if outcome.already_done:
            print(f"{outcome.dir}: already finished; nothing to resume", file=sys.stderr)
    else:
        if args.key is None:
            raise NeuroplastUsageError("run: give a study KEY (see 'neuroplast list') or --resume DIR")
        seeds = parse_seeds(args.seeds) if args.seeds is not None else None
        outcome = start(args.key, quick=args.quick, sets=args.set or [], seeds=seeds, out=args.out,
                        jobs=args.jobs, backend=args.backend, checkpoint_every=args.checkpoint_every,
                        on_result=_progress)
    _print_failures(outcome.results)
    study = get_study(outcome.study_key)
    seeds_done = sorted(r.seed for r in outcome.results)
    print(format_table([verdicts_from_results(study, seeds_done, outcome.results)]))
    print(f"run directory: {outcome.dir}")
    return 0 if outcome.ok else 1


def _verify_and_print(keys: Sequence[str], *, quick: bool, seeds_text: str, jobs: int, out: str | None,
                      backend: str, checkpoint_every: int | None, name: str) -> tuple[int, Any]:
    from neuroplast.runner import format_table, parse_seeds, verify

    seeds = parse_seeds(seeds_text)
    outcome = verify(list(keys), quick=quick, seeds=seeds, jobs=jobs, out=out, backend=backend,
                     checkpoint_every=checkpoint_every, name=name, on_result=_progress)
    _print_failures([r for sv in outcome.studies for r in sv.runs])
    print(format_table(outcome.studies))
    print(f"verify.json: {outcome.dir / 'verify.json'}")
    return (0 if outcome.all_hold else 1), outcome


def cmd_verify(args: argparse.Namespace) -> int:
    code, _ = _verify_and_print(args.keys, quick=args.quick, seeds_text=args.seeds, jobs=args.jobs,
                                out=args.out, backend=args.backend, checkpoint_every=args.checkpoint_every,
                                name="verify")
    return code


def cmd_report(args: argparse.Namespace) -> int:
    from neuroplast.runner import write_report

    print(write_report(args.dir))
    return 0


def tour_keys() -> tuple[str, ...]:
    raw = os.environ.get(TOUR_ENV, "")
    keys = tuple(k.strip() for k in raw.split(",") if k.strip())
    return keys or TOUR


def cmd_tour(args: argparse.Namespace) -> int:
    from neuroplast.runner import write_report
    from neuroplast.runner.sweep import _available_cores

    jobs = args.jobs if args.jobs is not None else max(1, min(2, _available_cores()))
    code, outcome = _verify_and_print(tour_keys(), quick=True, seeds_text=TOUR_SEEDS, jobs=jobs, out=args.out,
                                      backend="local", checkpoint_every=None, name="tour")
    path = write_report(outcome.dir)
    print(f"report: {path}")
    return code


# --------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    import neuroplast

    parser = _Parser(prog="neuroplast", description="Run, verify and report neuroplast studies.")
    parser.add_argument("--version", action="version", version=f"neuroplast {neuroplast.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("list", help="list the registered studies")
    p.set_defaults(func=cmd_list)

    def run_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--jobs", type=_jobs, default=1, help="parallel runs (default 1: in this process)")
        p.add_argument("--backend", default="local", help="executor for --jobs > 1 (default: local)")
        p.add_argument("--checkpoint-every", type=_nonneg, default=None, metavar="N",
                       help="checkpoint every N steps (default $NEUROPLAST_CHECKPOINT_EVERY or 50; 0: never)")

    p = sub.add_parser("run", help="run one study (one seed, or a sweep with --seeds)")
    p.add_argument("key", nargs="?", metavar="KEY", help="study key (see 'neuroplast list')")
    p.add_argument("--quick", action="store_true", help="use the study's quick config")
    p.add_argument("--seeds", default=None, metavar="SEEDS",
                   help="sweep over seeds: 0-4, 0,2,5 or 3 (each in DIR/seed-<n>/)")
    p.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="override a config field (repeatable); tuples as comma-separated values")
    p.add_argument("--out", default=None, metavar="DIR", help="output directory (default runs/<key>-<time>)")
    p.add_argument("--resume", default=None, metavar="DIR", help="continue a killed run or sweep")
    run_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("verify", help="run studies on several seeds and check their claims")
    p.add_argument("keys", nargs="*", metavar="KEY", help="study keys (default: all)")
    p.add_argument("--quick", action="store_true", help="use the quick configs")
    p.add_argument("--seeds", default="0-2", metavar="SEEDS", help="seeds: 0-4, 0,2,5 or 3 (default 0-2)")
    p.add_argument("--out", default=None, metavar="DIR", help="output directory (default runs/verify-<time>)")
    run_options(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("report", help="write DIR/report.html from the runs under DIR")
    p.add_argument("dir", metavar="DIR")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("tour", help="quick runs of a few studies on seeds 0-1, verified, with a report")
    p.add_argument("--out", default=None, metavar="DIR", help="output directory (default runs/tour-<time>)")
    p.add_argument("--jobs", type=_jobs, default=None, help="parallel runs (default: up to 2)")
    p.set_defaults(func=cmd_tour)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``neuroplast``; returns the exit code."""
    from neuroplast.runner.run import NeuroplastUsageError
    from neuroplast.studies import StudyError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (NeuroplastUsageError, StudyError) as exc:
        if os.environ.get("NEUROPLAST_DEBUG"):
            raise
        message = " ".join(str(exc).split())
        print(f"neuroplast: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("neuroplast: interrupted; continue with 'neuroplast run --resume DIR'", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
