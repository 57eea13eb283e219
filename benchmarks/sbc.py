"""Simulation-based calibration on the demo system.

A thin command line over :func:`bayesmfa.calibrate` (:mod:`bayesmfa.analysis.calibration`).
For each of ``--n`` datasets: draw a true system from the prior and simulate
every record, refit the model (compiled once per block) with short chains
under the same model options, and compare the truth with the posterior:

* **rank uniformity** -- for each checked quantity, one element (region, year,
  ...) is picked per dataset by a generator seeded independently of the data,
  and the truth's rank among ``n_ranks`` evenly thinned posterior draws is
  kept. Across datasets these ranks are independent and, for a calibrated
  model and sampler, uniform on ``0 .. n_ranks`` (Talts et al. 2018). Each
  quantity gets a chi-square test; the smallest p-value is reported with its
  Bonferroni correction.
* **interval coverage** -- the fraction of every true element (all quantities,
  coords and years; structural zeros left out) inside its central 90%
  interval, averaged over datasets (0-1; target 0.90).

Thin to roughly the effective sample size: ranks among autocorrelated draws
are over-dispersed even when the posterior is exact.

Usage::

    python benchmarks/sbc.py --n 100 [--draws 200 --tune 300 --chains 2 --ranks 19] [--workers 2 | --scheduler ADDRESS] [--out sbc.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: True quantities checked: named flows and process totals of the demo (every coord and year).
QUANTITIES = ("flow_ore_trade", "flow_refined_trade", "output_mining", "output_refining")


def run_sbc(n: int, *, draws: int = 200, tune: int = 300, chains: int = 2, n_ranks: int = 19, seed: int = 1000,
            workers: int = 1, scheduler: str | None = None, block: int | None = None) -> dict:
    """Run SBC on the demo over ``n`` simulated datasets (seeds ``seed .. seed + n - 1``) with a pluggable executor.

    The datasets are split into blocks of ``block`` (default: one block per
    worker), each compiled once; blocks are the executor's tasks.

    Returns
    -------
    dict
        :meth:`bayesmfa.analysis.calibration.Calibration.to_dict` (``coverage_90``, ``rank_counts``, ``chi2``,
        ``chi2_pvalue``, ``min_pvalue``, ``min_pvalue_bonferroni``, ``divergences``, ...) plus
        ``failed`` (seed -> error) and ``wall_s``.
    """
    import bayesmfa as bm
    from bayesmfa.analysis.executors import make_executor
    from bayesmfa.cases import demo

    executor = make_executor(scheduler, max_workers=workers)
    try:
        res = bm.calibrate(demo.load(ROOT), n=n, seed=seed, quantities=QUANTITIES, draws=draws, tune=tune, chains=chains,
                           n_ranks=n_ranks, executor=executor, block=block)
    finally:
        executor.close()
    out = res.to_dict()
    out["wall_s"] = res.settings["wall_s"]
    return out


def report(res: dict) -> str:
    """The figures of one SBC run as printable lines."""
    lines = [
        f"datasets: {res['n_datasets']} (failed {len(res['failed'])}), wall {res['wall_s']:.0f} s, divergences {res['divergences']}",
        f"90% interval coverage: {res['coverage_90']:.3f}",
        f"rank uniformity (ranks 0-{res['n_ranks']}, chi-square per quantity):",
    ]
    for name, p in res["chi2_pvalue"].items():
        lines.append(f"  {name:<20} chi2 = {res['chi2'][name]:6.2f}  p = {p:.3f}  counts {res['rank_counts'][name]}")
    lines.append(f"smallest p = {res['min_pvalue']:.3f} (Bonferroni {res['min_pvalue_bonferroni']:.3f})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="number of simulated datasets")
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--tune", type=int, default=300)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--ranks", type=int, default=19, help="thinned draws the truth is ranked among")
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=1, help="local worker processes")
    parser.add_argument("--block", type=int, default=None, help="datasets per task (compiled once); default n / workers")
    parser.add_argument("--scheduler", default=None, help="dask.distributed scheduler address")
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    args = parser.parse_args(argv)
    res = run_sbc(args.n, draws=args.draws, tune=args.tune, chains=args.chains, n_ranks=args.ranks, seed=args.seed,
                  workers=args.workers, scheduler=args.scheduler, block=args.block)
    print(report(res))
    if args.out:
        args.out.write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
