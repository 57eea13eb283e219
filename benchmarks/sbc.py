"""Simulation-based calibration on the demo system.

For each of ``--n`` datasets: draw a true system from the prior and simulate
every record (:func:`bayesmfa.simulate.simulate_records`), fit it with short
chains, and record the rank of each selected true flow among the (thinned)
posterior draws and whether it falls in the 90% interval. A calibrated model
gives uniform ranks and ~90% coverage.

Usage::

    python benchmarks/sbc.py --n 100 [--draws 200 --tune 300 --chains 2] [--workers 2 | --scheduler ADDRESS] [--out sbc.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
#: True quantities checked: named flows and process totals of the demo (every coord and year).
QUANTITIES = ("flow_ore_trade", "flow_refined_trade", "output_mining", "output_refining")


@dataclass(frozen=True)
class SBCTask:
    """Fit one simulated dataset and rank the truth (picklable for worker processes)."""

    draws: int
    tune: int
    chains: int
    n_ranks: int
    quantities: tuple[str, ...] = QUANTITIES

    def __call__(self, seed: int) -> dict:
        import bayesmfa as bm
        from bayesmfa.cases import demo
        from bayesmfa.simulate import resimulated_problem

        problem = demo.load(ROOT)
        truth, records = bm.simulate_records(problem, seed=seed)
        # lognormal noise can push a simulated share above 1, which the record checks reject: clip at 1
        share = records["unit"].isin(["share", "fraction"])
        records.loc[share, "value"] = [f"{min(float(v), 1.0):.6g}" for v in records.loc[share, "value"]]
        sim = resimulated_problem(problem, records)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            idata = bm.fit(sim, draws=self.draws, tune=self.tune, chains=self.chains, seed=seed)
        post = idata.posterior
        ranks, inside = [], []
        for name in self.quantities:
            true = np.asarray(truth[name].values, dtype=float).reshape(-1)
            draws = np.asarray(post[name].stack(sample=("chain", "draw")).transpose("sample", ...).values).reshape(-1, true.size)
            keep = true > 0  # structural zeros (a region trading with itself) carry no information
            thin = np.linspace(0, len(draws) - 1, self.n_ranks).round().astype(int)
            sub = draws[thin][:, keep]
            ranks.extend(np.sum(sub < true[keep], axis=0).tolist())
            lo, hi = np.quantile(draws[:, keep], [0.05, 0.95], axis=0)
            inside.extend(((true[keep] >= lo) & (true[keep] <= hi)).tolist())
        return {"seed": seed, "ranks": ranks, "inside": inside, "n_ranks": self.n_ranks}


def summarise(results: list[dict], bins: int = 10) -> dict:
    """Coverage of the 90% intervals and a chi-square test of uniform ranks.

    Returns
    -------
    dict
        ``n_datasets``, ``n_ranks`` (ranks per quantity run from 0 to this),
        ``coverage_90`` (fraction of truths inside the 90% interval, 0-1),
        ``rank_counts`` (per bin), ``chi2``, ``chi2_pvalue``.
    """
    ranks = np.concatenate([r["ranks"] for r in results]) if results else np.array([])
    inside = np.concatenate([r["inside"] for r in results]) if results else np.array([])
    n_ranks = results[0]["n_ranks"] if results else 0
    bins = max(2, min(bins, n_ranks + 1, len(ranks) // 5 or 2))
    counts = np.histogram(ranks, bins=bins, range=(0, n_ranks + 1))[0] if len(ranks) else np.zeros(bins, int)
    chi2, pvalue = stats.chisquare(counts) if counts.sum() else (float("nan"), float("nan"))
    return {
        "n_datasets": len(results),
        "n_ranks": int(n_ranks),
        "coverage_90": float(np.mean(inside)) if len(inside) else float("nan"),
        "rank_counts": counts.tolist(),
        "chi2": float(chi2),
        "chi2_pvalue": float(pvalue),
    }


def run_sbc(n: int, *, draws: int = 200, tune: int = 300, chains: int = 2, n_ranks: int = 99, seed: int = 1000,
            workers: int = 1, scheduler: str | None = None) -> dict:
    """Run SBC over ``n`` simulated datasets (seeds ``seed .. seed + n - 1``) with a pluggable executor.

    Returns
    -------
    dict
        :func:`summarise` output plus ``failed`` (seed -> error) and ``wall_s``.
    """
    from bayesmfa.sweeps import make_executor

    start = time.perf_counter()
    executor = make_executor(scheduler, max_workers=workers)
    task = SBCTask(draws, tune, chains, min(n_ranks, draws * chains - 1))
    results, failed = [], {}
    try:
        for item, res in executor.map(task, range(seed, seed + n)):
            if isinstance(res, BaseException):
                failed[str(item)] = str(res)
            else:
                results.append(res)
    finally:
        if hasattr(executor, "close"):
            executor.close()
    out = summarise(sorted(results, key=lambda r: r["seed"]))
    out.update({"failed": failed, "wall_s": time.perf_counter() - start})
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="number of simulated datasets")
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--tune", type=int, default=300)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=1, help="local worker processes")
    parser.add_argument("--scheduler", default=None, help="dask.distributed scheduler address")
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    args = parser.parse_args(argv)
    res = run_sbc(args.n, draws=args.draws, tune=args.tune, chains=args.chains, seed=args.seed, workers=args.workers,
                  scheduler=args.scheduler)
    print(f"datasets: {res['n_datasets']} (failed {len(res['failed'])}), wall {res['wall_s']:.0f} s")
    print(f"90% interval coverage: {res['coverage_90']:.3f}")
    print(f"rank uniformity: chi2 = {res['chi2']:.2f}, p = {res['chi2_pvalue']:.3f}, counts {res['rank_counts']}")
    if args.out:
        args.out.write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
