"""The Laplace approximation (``fit(method="laplace")``) of a case: its cost, its Pareto k, and how far it is from NUTS.

Prints wall time, the seconds of each step (optimiser, Hessian, pool), the
Pareto k and importance ESS, and, given a NUTS result folder of the same case
(``bayesmfa run CASE --out DIR``), how the approximation's summary compares
with NUTS's over every row of ``summary.csv`` (rows whose NUTS median is at
least 0.5 in absolute value): the share of Laplace medians inside the NUTS 90%
interval, and quantiles of the median ratio and the interval-width ratio.

    python benchmarks/bench_laplace.py --case ree --against results/ree
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
KEY = ["quantity", "region", "partner", "product", "end_use", "year_start", "year_end"]


def _keyed(df: pd.DataFrame) -> pd.DataFrame:
    def text(v: object) -> str:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return ""
        if isinstance(v, (int, float, np.integer, np.floating)) and float(v).is_integer():
            return str(int(v))
        return str(v)

    out = df.copy()
    for k in KEY:
        out[k] = out[k].map(text)
    return out


def compare(approx: pd.DataFrame, nuts: pd.DataFrame) -> dict:
    """Agreement of an approximate summary with a NUTS summary of the same case."""
    from bayesmfa.analysis.summaries import normalise_summary  # either layout: integer year_start/year_end, or an older 'year'

    j = _keyed(normalise_summary(nuts)).merge(_keyed(normalise_summary(approx)), on=KEY, suffixes=("_nuts", "_approx"))
    j = j[j["q50_nuts"].abs() >= 0.5]
    ratio = j["q50_approx"] / j["q50_nuts"]
    width = (j["q95_approx"] - j["q05_approx"]) / (j["q95_nuts"] - j["q05_nuts"])
    inside = (j["q50_approx"] >= j["q05_nuts"]) & (j["q50_approx"] <= j["q95_nuts"])
    q = [0.05, 0.5, 0.95]
    return {
        "rows": int(len(j)),
        "median_inside_nuts_90": round(float(inside.mean()), 3),
        "median_ratio_q05_q50_q95": [round(float(x), 2) for x in ratio.quantile(q)],
        "width_ratio_q05_q50_q95": [round(float(x), 2) for x in width.replace([np.inf, -np.inf], np.nan).dropna().quantile(q)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="ree")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--against", help="a NUTS result folder of the same case (bayesmfa run CASE --out DIR)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    import bayesmfa as bm
    from bayesmfa.cases import get_case

    module = get_case(args.case)
    problem = module.load(REPO)
    options = module.options
    start = time.perf_counter()
    idata = bm.fit(problem, options=options, method="laplace", seed=args.seed, prior_draws=0)
    wall = time.perf_counter() - start
    info = json.loads(idata.posterior.attrs["settings"])["laplace"]
    row = {"case": args.case, "wall_s": round(wall, 1), "parameters": int(sum(v.size for v in idata.posterior[
        [n for n in idata.posterior.data_vars if n.endswith("__") or n.endswith("_z") or "innovation" in n or "walk" in n]
    ].isel(chain=0, draw=0).data_vars.values())), **info}
    if args.against:
        summary = module.summary_table(idata, problem, 0.9)
        nuts = pd.read_csv(Path(args.against) / "summary.csv")
        if summary is not None:
            row.update(compare(summary, nuts))
    print(json.dumps(row, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
