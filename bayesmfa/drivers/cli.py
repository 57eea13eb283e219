"""The ``bayesmfa`` command line.

Every input error ends the same way on every command: one line
``bayesmfa <command>: <message>`` on stderr and exit status 2 (``--debug``
shows the traceback instead); an interrupt exits 130. Arguments are checked
by argparse before anything is loaded or compiled.
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from bayesmfa.cases import case_names, is_case_folder
from bayesmfa.errors import BayesMFAError

#: Errors reported as one line with exit status 2 (UnicodeDecodeError is a ValueError, FileNotFoundError an OSError).
USER_ERRORS = (BayesMFAError, OSError, ValueError)


# ---------------------------------------------------------------------------- argument types


def _int_at_least(least: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``least``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
        return value

    parse.__name__ = f"integer >= {least}"
    return parse


def _open_unit(text: str) -> float:
    """An argparse type: a number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be strictly between 0 and 1, got {text}")
    return value


def _year(text: str) -> int:
    """An argparse type: a year written as an integer."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a year (an integer), got {text!r}") from None


def _case(text: str) -> str:
    """An argparse type: a known case's name (built in or registered) or a case folder (holding ``system.yaml``)."""
    if text in case_names() or is_case_folder(text):
        return text
    if Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text}: not a case folder: no system.yaml (see 'bayesmfa init')")
    raise argparse.ArgumentTypeError(f"{text!r} is neither a known case ({', '.join(case_names())}) nor a folder holding system.yaml")


def _version() -> str:
    """The installed package's version, without importing the package's heavy modules."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bayesmfa")
    except PackageNotFoundError:
        return "0.0.0+unknown"


POSITIVE = _int_at_least(1)
NON_NEGATIVE = _int_at_least(0)


# ---------------------------------------------------------------------------- commands


def _run(args: argparse.Namespace) -> int:
    from bayesmfa.drivers.runner import RunSettings, run_case
    from bayesmfa.inference.diagnostics import Thresholds

    settings = RunSettings.quick() if args.quick else RunSettings()
    names = ("draws", "tune", "chains", "seed", "backend", "target_accept", "min_tree_depth", "max_tree_depth", "thin", "method")
    overrides = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    settings = replace(settings, progressbar=not args.no_progress, **overrides)
    if args.likelihood != "auto":
        from bayesmfa.cases import get_case

        settings = replace(settings, options=replace(get_case(args.case).options, likelihood=args.likelihood))
    approximate = args.method == "laplace"
    gate = not (args.allow_failed_diagnostics or args.quick or approximate)
    result = run_case(args.case, args.out, settings, root=args.root, thresholds=Thresholds(), force=args.force,
                      divert_failed=gate)
    d = result.diagnostics
    print(
        f"wrote {result.out}: max R-hat {d.max_rhat:.3f}, min bulk ESS {d.min_ess_bulk:.0f}, "
        f"min tail ESS {d.min_ess_tail:.0f}, divergences {d.divergences}, wall {d.wall_s:.0f} s"
        + (f", Pareto k {d.pareto_k:.2f} (Laplace approximation: for iteration, not publication)" if approximate else "")
    )
    if result.input_warnings:
        print(f"{len(result.input_warnings)} input warning(s), listed in diagnostics.json under input_warnings", file=sys.stderr)
    if result.failures:
        print("diagnostics FAILED: " + "; ".join(result.failures), file=sys.stderr)
        if gate:
            print(f"the result went to {result.out}; {args.out} was left as it was "
                  "(--allow-failed-diagnostics writes a failing fit to --out)", file=sys.stderr)
            return 3
        print("(kept: --quick, --method laplace or --allow-failed-diagnostics)", file=sys.stderr)
    return 0


def _data_check(args: argparse.Namespace) -> int:
    from bayesmfa.core.datacheck import check_data, format_problems

    path = Path(args.path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    problems = check_data(path)
    print(format_problems(problems))
    return 1 if problems else 0


def _check(args: argparse.Namespace) -> int:
    from bayesmfa.drivers.casecheck import check_case

    found = check_case(args.case, root=args.root)
    for err in found.errors:
        print(one_line(err))
    for message in found.warnings:
        print(f"warning: {message}")
    if found.errors:
        print(f"{len(found.errors)} error(s) in {args.case}", file=sys.stderr)
        return 1
    print(f"{args.case}: system, priors and {found.n_records} records are valid")
    return 0


def _init(args: argparse.Namespace) -> int:
    from bayesmfa.drivers.starter import init_case

    dest = init_case(args.name)
    print(f"wrote the starter case {dest}/ (system.yaml, priors/priors.yaml, records.csv, README.md); "
          f"check it with 'bayesmfa check {dest}', fit it with 'bayesmfa run {dest} --out {dest}-fit'")
    return 0


def _report(args: argparse.Namespace) -> int:
    from bayesmfa.drivers.runner import report_case

    print(report_case(args.dir))
    return 0


def _sensitivity(args: argparse.Namespace) -> int:
    from bayesmfa.drivers.sensitivityrun import run_sensitivity

    only = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
    out = run_sensitivity(args.case, Path(args.out), scheduler=args.scheduler, quick=args.quick, seed=args.seed,
                          root=args.root, max_workers=args.workers, only=only, baseline=args.baseline, force=args.force)
    print(f"wrote {out}")
    return 0


def _scenario(args: argparse.Namespace) -> int:
    from bayesmfa.analysis.scenarios import NO_TRADE, parse_restriction
    from bayesmfa.drivers.scenariorun import run_scenarios

    specs = ([NO_TRADE] if args.no_trade else []) + [parse_restriction(r) for r in args.restrict]
    out = run_scenarios(args.case, args.fit, args.out, specs, root=args.root, year=args.year, force=args.force)
    figures = sorted(p.name for p in Path(out).glob("*.png"))
    print(f"wrote {out}: scenarios.csv ({', '.join(s.name for s in specs)})"
          + (f" and {len(figures)} figure(s)" if figures else "; no figure (they need a sink process with two dims)"))
    return 0


# ---------------------------------------------------------------------------- the parser


def _case_help() -> str:
    return f"{', '.join(case_names())} (known cases) or the path of a case folder holding system.yaml, priors/ and records*.csv"


ROOT_HELP = ("for built-in cases: the folder holding data/ and priors/ (default: the current folder if it holds both, "
             "else the package's own copy)")


def _common() -> argparse.ArgumentParser:
    """Options every sub-command accepts (``--debug`` also works before the sub-command)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the Python traceback of an error instead of one line")
    return common


def _force(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--force", action="store_true",
                        help=f"replace whatever is at --out (by default only {what}, an empty folder or a new path)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``bayesmfa``."""
    parser = argparse.ArgumentParser(prog="bayesmfa", description="Bayesian material flow analysis")
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an error instead of one line")
    parser.add_argument("--version", action="version", version=f"bayesmfa {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    common = _common()

    run = sub.add_parser("run", parents=[common],
                         help="fit a case and write posterior.nc, derived.nc, summary.csv, diagnostics.json, figures/")
    run.add_argument("case", type=_case, metavar="CASE", help=_case_help())
    run.add_argument("--out", required=True,
                     help="result folder (replaced atomically; a fit failing its diagnostics goes to OUT.failed)")
    _force(run, "an earlier 'bayesmfa run' result")
    run.add_argument("--draws", type=POSITIVE, help="draws per chain after tuning, >= 1 (default 1000)")
    run.add_argument("--tune", type=NON_NEGATIVE, help="tuning steps per chain, >= 0 (default 1000)")
    run.add_argument("--chains", type=POSITIVE, help="number of chains, >= 1 (default 4)")
    run.add_argument("--seed", type=NON_NEGATIVE, help="random seed, >= 0 (default 0)")
    run.add_argument("--backend", choices=["auto", "pymc", "nutpie", "numpyro"], help="NUTS backend (default auto)")
    run.add_argument("--target-accept", type=_open_unit, help="NUTS target acceptance in (0, 1) (default: the case's, else 0.9)")
    run.add_argument("--min-tree-depth", type=POSITIVE, help="minimum NUTS tree depth >= 1, nutpie only (default: the case's, none; "
                     "setting either depth drops both of the case's)")
    run.add_argument("--max-tree-depth", type=POSITIVE,
                     help="maximum NUTS tree depth >= 1, nutpie and pymc (default: the case's, else the sampler's 10)")
    run.add_argument("--method", choices=["nuts", "laplace"],
                     help="nuts (default; publishable) or laplace: a Gaussian at the mode checked by Pareto-smoothed importance "
                          "sampling, in seconds, for iterating on priors and records (diagnostics reported, not enforced)")
    run.add_argument("--thin", type=POSITIVE, help="keep every THIN-th draw, >= 1 (default: the case's, else 1)")
    run.add_argument(
        "--likelihood", choices=["auto", "lognormal", "studentt"], default="auto",
        help="record likelihood: per source type as in the noise priors (auto), or forced for all records",
    )
    run.add_argument("--quick", action="store_true", help="short chains for a smoke test (diagnostics reported, not enforced)")
    run.add_argument("--root", help=ROOT_HELP)
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    run.add_argument("--allow-failed-diagnostics", action="store_true",
                     help="write to --out and exit 0 even when R-hat/ESS/divergence checks fail (else: OUT.failed, exit 3)")
    run.set_defaults(func=_run)

    sens = sub.add_parser("sensitivity", parents=[common],
                          help="power-scaling, leave-one-family-out, noise/prior/likelihood sweeps, checks")
    sens.add_argument("case", type=_case, metavar="CASE", help=_case_help())
    sens.add_argument("--out", required=True,
                      help="result folder (each sweep is written as it finishes; an earlier study there is resumed)")
    _force(sens, "an earlier sensitivity folder (resumed)")
    sens.add_argument("--scheduler", help="address of a dask.distributed scheduler (default: local processes)")
    sens.add_argument("--workers", type=POSITIVE, default=1, help="local worker processes, >= 1 (default 1)")
    sens.add_argument("--quick", action="store_true", help="short chains (smoke test)")
    sens.add_argument("--seed", type=NON_NEGATIVE, default=0, help="random seed, >= 0 (default 0)")
    sens.add_argument("--root", help=ROOT_HELP)
    sens.add_argument("--only", metavar="SWEEP[,SWEEP]",
                      help="run only these sweeps, e.g. literature_dropped,china_customs_dropped (names as in sweeps.csv)")
    sens.add_argument("--baseline", metavar="DIR",
                      help="reuse a 'bayesmfa run' result (its posterior.nc) as the baseline instead of refitting it")
    sens.set_defaults(func=_sensitivity)

    scen = sub.add_parser("scenario", parents=[common],
                          help="no-trade and export-restriction scenarios on a saved fit, with intervals")
    scen.add_argument("case", type=_case, metavar="CASE", help=_case_help())
    scen.add_argument("--fit", required=True, help="a 'bayesmfa run' result folder (or its posterior.nc)")
    scen.add_argument("--out", required=True, help="result folder (replaced atomically)")
    _force(scen, "an earlier 'bayesmfa scenario' result")
    scen.add_argument("--no-trade", action="store_true", help="every trade flow removed in every year")
    scen.add_argument("--restrict", action="append", default=[], metavar="REGION:FLOW[,FLOW]:CAP:FROM_YEAR",
                      help="cap a region's exports on some flows at CAP (0-1) of their value from a year on; repeatable, "
                           "e.g. A:ore_trade,refined_trade:0.5:2015 (region A's trade capped at half from 2015)")
    scen.add_argument("--year", type=_year, help="year of the figures (default: the last year)")
    scen.add_argument("--root", help=ROOT_HELP)
    scen.set_defaults(func=_scenario)

    check_case = sub.add_parser("check", parents=[common],
                                help="validate a case's system, priors and records together, listing every error at once")
    check_case.add_argument("case", type=_case, metavar="CASE", help=_case_help())
    check_case.add_argument("--root", help=ROOT_HELP)
    check_case.set_defaults(func=_check)

    init = sub.add_parser("init", parents=[common], help="write a runnable, commented starter case folder to edit")
    init.add_argument("name", help="the folder to create (new or empty)")
    init.set_defaults(func=_init)

    report = sub.add_parser("report", parents=[common], help="write report.html and figures for a result folder")
    report.add_argument("dir", help="a result folder written by 'bayesmfa run'")
    report.set_defaults(func=_report)

    data = sub.add_parser("data", parents=[common], help="data tools")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    check = data_sub.add_parser("check", parents=[common], help="validate every record table under PATH")
    check.add_argument("path", help="a data folder (e.g. data/ree) or one CSV file")
    check.set_defaults(func=_data_check)
    return parser


def _command(args: argparse.Namespace) -> str:
    """The sub-command as typed (``run``, ``data check``...)."""
    sub = getattr(args, "data_command", None)
    return f"{args.command} {sub}" if sub else args.command


def one_line(err: BaseException) -> str:
    """An error as one line: the file of an OS error first, lines of a multi-line message joined."""
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        return f"{err.filename}: {err.strerror}"
    lines = [ln.strip() for ln in str(err).splitlines()]
    lines = [ln for ln in lines if ln and not re.fullmatch(r"\^+", ln)]  # drop YAML's '^' pointer lines
    return " ".join(lines) or type(err).__name__


def _format_warning(message, category, filename, lineno, line=None) -> str:  # noqa: ANN001  (warnings.formatwarning's signature)
    """Input findings (``PlausibilityWarning``) as one line each; other warnings as Python prints them."""
    if category.__name__ == "PlausibilityWarning":
        return f"bayesmfa: warning: {message}\n"
    return _PYTHON_FORMAT(message, category, filename, lineno, line)


_PYTHON_FORMAT = warnings.formatwarning


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``bayesmfa`` command.

    Returns
    -------
    int
        0 on success, 1 when ``data check`` finds problems, 2 on an input
        error (one line on stderr), 3 when a run fails its diagnostics, 130 on
        an interrupt.
    """
    args = build_parser().parse_args(argv)
    command = _command(args)
    try:
        with warnings.catch_warnings():
            warnings.formatwarning = _format_warning
            return int(args.func(args))
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"bayesmfa {command}: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as err:
        if args.debug:
            raise
        print(f"bayesmfa {command}: {one_line(err)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
