"""Simulation-based calibration on the demo system.

For each of ``--n`` datasets: draw a true system from the prior and simulate
every record (:func:`bayesmfa.simulate.simulate_records`), fit it with short
chains under the same model options, and compare the truth with the posterior:

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
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
#: True quantities checked: named flows and process totals of the demo (every coord and year).
QUANTITIES = ("flow_ore_trade", "flow_refined_trade", "output_mining", "output_refining")
#: Simulation and fit share this floor, so the data come from exactly the fitted model.
FLOOR = 1e-9


@dataclass(frozen=True)
class SBCTask:
    """Simulate and fit one block of datasets (picklable for worker processes).

    The model is built and compiled by nutpie once per block; each dataset
    only swaps the observed values (the ``record_obs`` data container)
    and samples, with the settings :func:`bayesmfa.fit` gives nutpie
    (low-rank mass matrix, target_accept 0.9). The block's true systems and
    records are drawn together from the prior predictive, seeded by the
    block's first seed.
    """

    draws: int
    tune: int
    chains: int
    n_ranks: int
    quantities: tuple[str, ...] = QUANTITIES

    def __call__(self, seeds: tuple[int, ...]) -> list[dict]:
        import nutpie
        import pymc as pm

        import bayesmfa as bm
        from bayesmfa.cases import demo

        problem = demo.load(ROOT)
        rec = problem.records
        model = bm.build_model(problem, bm.ModelOptions(floor=FLOOR))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prior = pm.sample_prior_predictive(draws=len(seeds), model=model, random_seed=seeds[0])
            compiled = nutpie.compile_pymc_model(model)
        position = {label: i for i, label in enumerate(rec.labels)}
        out = []
        for k, seed in enumerate(seeds):
            values = rec.value.astype(float).copy()  # bound records keep their template values
            for group, dim in (("records", "obs"), ("records_t", "obs_t")):
                if group in prior.prior_predictive:
                    sim = prior.prior_predictive[group].isel(chain=0, draw=k)
                    values[[position[label] for label in sim[dim].values]] = np.clip(np.exp(sim.values) - FLOOR, 0.0, None)
            # a lognormal share record can exceed 1, which the record checks reject: clip at 1
            values = np.where(rec.is_share, np.minimum(values, 1.0), values)
            data = compiled.with_data(record_obs=np.log(values + FLOOR))
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    idata = nutpie.sample(data, draws=self.draws, tune=self.tune, chains=self.chains, seed=seed,
                                          cores=self.chains, progress_bar=False, low_rank_modified_mass_matrix=True,
                                          target_accept=0.9)
            except Exception as err:  # one failed dataset is reported, never fatal to its block
                out.append({"seed": seed, "error": repr(err)})
                continue
            out.append(self._compare(seed, prior.prior.isel(chain=0, draw=k), idata))
        return out

    def _compare(self, seed: int, truth, idata) -> dict:
        """Ranks of one element per quantity, and which true elements the 90% intervals hold."""
        post = idata.posterior
        pick = np.random.default_rng([seed, 7919])  # element choice independent of the simulated data
        thin = np.linspace(0, self.draws * self.chains - 1, self.n_ranks).round().astype(int)
        ranks, inside = {}, []
        for name in self.quantities:
            true = np.asarray(truth[name].values, dtype=float).reshape(-1)
            draws = np.asarray(post[name].stack(sample=("chain", "draw")).transpose("sample", ...).values).reshape(-1, true.size)
            keep = np.flatnonzero(true > 0)  # structural zeros (a region trading with itself) carry no information
            j = keep[pick.integers(len(keep))]
            ranks[name] = int(np.sum(draws[thin, j] < true[j]))
            lo, hi = np.quantile(draws[:, keep], [0.05, 0.95], axis=0)
            inside.extend(((true[keep] >= lo) & (true[keep] <= hi)).tolist())
        divergences = int(idata.sample_stats["diverging"].sum())
        return {"seed": seed, "ranks": ranks, "inside": inside, "n_ranks": self.n_ranks, "divergences": divergences}


def summarise(results: list[dict], bins: int = 10) -> dict:
    """Coverage of the 90% intervals and chi-square tests of uniform ranks.

    Returns
    -------
    dict
        ``n_datasets``; ``n_ranks`` (ranks run from 0 to this); ``coverage_90``
        (fraction of true elements inside their 90% interval, 0-1);
        ``rank_counts``, ``chi2``, ``chi2_pvalue`` (per quantity: histogram of
        its ranks in ``bins`` bins and the chi-square test against uniform);
        ``min_pvalue`` and ``min_pvalue_bonferroni`` (smallest per-quantity
        p-value, and times the number of quantities, capped at 1);
        ``divergences`` (total over datasets).
    """
    n_ranks = results[0]["n_ranks"] if results else 0
    names = list(results[0]["ranks"]) if results else []
    bins = max(2, min(bins, n_ranks + 1, len(results) // 5 or 2))
    counts, chi2, pvalue = {}, {}, {}
    for name in names:
        ranks = np.array([r["ranks"][name] for r in results])
        # bins of equal width over the n_ranks + 1 possible ranks (integer edges keep them equally likely)
        edges = np.linspace(0, n_ranks + 1, bins + 1).round()
        hist = np.histogram(ranks, bins=edges)[0]
        expected = len(ranks) * np.diff(edges) / (n_ranks + 1)
        counts[name] = hist.tolist()
        chi2[name], pvalue[name] = (float(v) for v in stats.chisquare(hist, expected))
    inside = np.concatenate([r["inside"] for r in results]) if results else np.array([])
    pmin = min(pvalue.values()) if pvalue else float("nan")
    return {
        "n_datasets": len(results),
        "n_ranks": int(n_ranks),
        "coverage_90": float(np.mean(inside)) if len(inside) else float("nan"),
        "rank_counts": counts,
        "chi2": chi2,
        "chi2_pvalue": pvalue,
        "min_pvalue": pmin,
        "min_pvalue_bonferroni": min(1.0, pmin * len(pvalue)) if pvalue else float("nan"),
        "divergences": int(sum(r.get("divergences", 0) for r in results)),
    }


def run_sbc(n: int, *, draws: int = 200, tune: int = 300, chains: int = 2, n_ranks: int = 19, seed: int = 1000,
            workers: int = 1, scheduler: str | None = None, block: int | None = None) -> dict:
    """Run SBC over ``n`` simulated datasets (seeds ``seed .. seed + n - 1``) with a pluggable executor.

    The datasets are split into blocks of ``block`` (default: one block per
    worker), each compiled once; blocks are the executor's tasks.

    Returns
    -------
    dict
        :func:`summarise` output plus ``failed`` (seed -> error) and ``wall_s``.
    """
    from bayesmfa.sweeps import make_executor

    start = time.perf_counter()
    executor = make_executor(scheduler, max_workers=workers)
    task = SBCTask(draws, tune, chains, min(n_ranks, draws * chains - 1))
    block = block or -(-n // max(1, workers))
    blocks = [tuple(range(s, min(s + block, seed + n))) for s in range(seed, seed + n, block)]
    results, failed = [], {}
    try:
        for item, res in executor.map(task, blocks):
            if isinstance(res, BaseException):  # the whole block failed (e.g. compilation)
                failed.update({str(s): repr(res) for s in item})
                continue
            failed.update({str(r["seed"]): r["error"] for r in res if "error" in r})
            results.extend(r for r in res if "error" not in r)
    finally:
        if hasattr(executor, "close"):
            executor.close()
    out = summarise(sorted(results, key=lambda r: r["seed"]))
    out.update({"failed": failed, "wall_s": time.perf_counter() - start})
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
