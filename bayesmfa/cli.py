"""The ``bayesmfa`` command line."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from bayesmfa.diagnostics import Thresholds


def _run(args: argparse.Namespace) -> int:
    from bayesmfa.model import ModelOptions
    from bayesmfa.runner import RunSettings, run_case

    settings = RunSettings.quick() if args.quick else RunSettings()
    names = ("draws", "tune", "chains", "seed", "backend", "target_accept", "min_tree_depth")
    overrides = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    settings = replace(settings, progressbar=not args.no_progress, **overrides)
    if args.likelihood != "auto":
        from bayesmfa.cases import get_case

        case = get_case(args.case)
        base = case.options() if hasattr(case, "options") else ModelOptions()
        settings = replace(settings, options=replace(base, likelihood=args.likelihood))
    thresholds = Thresholds()
    result = run_case(args.case, args.out, settings, root=args.root, thresholds=thresholds)
    d = result.diagnostics
    print(
        f"wrote {result.out}: max R-hat {d.max_rhat:.3f}, min bulk ESS {d.min_ess_bulk:.0f}, "
        f"min tail ESS {d.min_ess_tail:.0f}, divergences {d.divergences}, wall {d.wall_s:.0f} s"
    )
    if result.failures:
        print("diagnostics FAILED: " + "; ".join(result.failures), file=sys.stderr)
        if not (args.allow_failed_diagnostics or args.quick):
            return 3
        print("(kept: --quick or --allow-failed-diagnostics)", file=sys.stderr)
    return 0


def _data_check(args: argparse.Namespace) -> int:
    from bayesmfa.datacheck import check_data, format_problems

    path = Path(args.path)
    if not path.exists():
        print(f"{path}: no such file or directory", file=sys.stderr)
        return 2
    problems = check_data(path)
    print(format_problems(problems))
    return 1 if problems else 0


def _report(args: argparse.Namespace) -> int:
    from bayesmfa.report import write_report

    print(write_report(args.dir))
    return 0


def _sensitivity(args: argparse.Namespace) -> int:
    from bayesmfa.errors import ProvenanceError
    from bayesmfa.sensitivity import run_sensitivity

    only = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
    try:
        out = run_sensitivity(args.case, Path(args.out), scheduler=args.scheduler, quick=args.quick, seed=args.seed,
                              root=args.root, max_workers=args.workers, only=only, baseline=args.baseline)
    except (ValueError, FileNotFoundError, ProvenanceError) as err:
        print(f"bayesmfa sensitivity: {err}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


def _scenario(args: argparse.Namespace) -> int:
    from bayesmfa.errors import ProvenanceError
    from bayesmfa.scenariorun import NO_TRADE, parse_restriction, run_scenarios

    try:
        specs = ([NO_TRADE] if args.no_trade else []) + [parse_restriction(r) for r in args.restrict]
        out = run_scenarios(args.case, args.fit, args.out, specs, root=args.root, year=args.year)
    except (ValueError, FileNotFoundError, ProvenanceError) as err:
        print(f"bayesmfa scenario: {err}", file=sys.stderr)
        return 2
    print(f"wrote {out}: scenarios.csv and figures for {', '.join(s.name for s in specs)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``bayesmfa``."""
    parser = argparse.ArgumentParser(prog="bayesmfa", description="Bayesian material flow analysis")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="fit a case and write posterior.nc, summary.csv, diagnostics.json, figures/")
    run.add_argument("case", choices=["demo", "ree"], help="which case to fit")
    run.add_argument("--out", required=True, help="result folder (replaced atomically)")
    run.add_argument("--draws", type=int, help="draws per chain after tuning (default 1000)")
    run.add_argument("--tune", type=int, help="tuning steps per chain (default 1000)")
    run.add_argument("--chains", type=int, help="number of chains (default 4)")
    run.add_argument("--seed", type=int, help="random seed (default 0)")
    run.add_argument("--backend", choices=["auto", "pymc", "nutpie", "numpyro"], help="NUTS backend (default auto)")
    run.add_argument("--target-accept", type=float, help="NUTS target acceptance (default: the case's, else 0.9)")
    run.add_argument("--min-tree-depth", type=int, help="minimum NUTS tree depth, nutpie only (default: the case's, REE 8)")
    run.add_argument(
        "--likelihood", choices=["auto", "lognormal", "studentt"], default="auto",
        help="record likelihood: per source type as in the noise priors (auto), or forced for all records",
    )
    run.add_argument("--quick", action="store_true", help="short chains for a smoke test (diagnostics reported, not enforced)")
    run.add_argument("--root", help="folder holding data/ and priors/ (default: current folder)")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    run.add_argument("--allow-failed-diagnostics", action="store_true", help="exit 0 even when R-hat/ESS/divergence checks fail")
    run.set_defaults(func=_run)

    sens = sub.add_parser("sensitivity", help="power-scaling, leave-one-family-out, noise/prior/likelihood sweeps, checks")
    sens.add_argument("case", choices=["demo", "ree"], help="which case")
    sens.add_argument("--out", required=True, help="result folder (each sweep is written as it finishes)")
    sens.add_argument("--scheduler", help="address of a dask.distributed scheduler (default: local processes)")
    sens.add_argument("--workers", type=int, default=1, help="local worker processes (default 1)")
    sens.add_argument("--quick", action="store_true", help="short chains (smoke test)")
    sens.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sens.add_argument("--root", help="folder holding data/ and priors/ (default: current folder)")
    sens.add_argument("--only", metavar="SWEEP[,SWEEP]",
                      help="run only these sweeps, e.g. literature_dropped,china_customs_dropped (names as in sweeps.csv)")
    sens.add_argument("--baseline", metavar="DIR",
                      help="reuse a 'bayesmfa run' result (its posterior.nc) as the baseline instead of refitting it")
    sens.set_defaults(func=_sensitivity)

    scen = sub.add_parser("scenario", help="no-trade and export-restriction scenarios on a saved fit, with intervals")
    scen.add_argument("case", choices=["demo", "ree"], help="which case the fit is of")
    scen.add_argument("--fit", required=True, help="a 'bayesmfa run' result folder (or its posterior.nc)")
    scen.add_argument("--out", required=True, help="result folder (replaced atomically)")
    scen.add_argument("--no-trade", action="store_true", help="every trade flow removed in every year")
    scen.add_argument("--restrict", action="append", default=[], metavar="REGION:FLOW[,FLOW]:CAP:FROM_YEAR",
                      help="cap a region's exports on some flows at CAP (0-1) of their value from a year on; repeatable, "
                           "e.g. CN:oxide_trade,metal_trade:0.5:2010")
    scen.add_argument("--year", type=int, help="year of the figures (default: the last year)")
    scen.add_argument("--root", help="folder holding data/ and priors/ (default: current folder)")
    scen.set_defaults(func=_scenario)

    report = sub.add_parser("report", help="write report.html and figures for a result folder")
    report.add_argument("dir", help="a result folder written by 'bayesmfa run'")
    report.set_defaults(func=_report)

    data = sub.add_parser("data", help="data tools")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    check = data_sub.add_parser("check", help="validate every record table under PATH")
    check.add_argument("path", help="a data folder (e.g. data/ree) or one CSV file")
    check.set_defaults(func=_data_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``bayesmfa`` command."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
