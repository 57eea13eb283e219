"""Benchmark fits of a case with every installed NUTS backend.

Prints, per backend: compile+sampling wall time, min bulk ESS, ESS/s, max R-hat,
divergences and peak memory (resident set size of this process and its children).

    python benchmarks/bench_fit.py                 # demo case, all installed backends
    python benchmarks/bench_fit.py --case ree      # the REE case
    python benchmarks/bench_fit.py --quick         # short chains (CI profile)
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import warnings
from pathlib import Path

import bayesmfa as bm
from bayesmfa.cases import get_case, project_root


def peak_rss_mb() -> float:
    """Peak resident memory of this process and its finished children, in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024.0


def run(case: str, backends: list[str], draws: int, tune: int, chains: int, seed: int) -> list[dict]:
    module = get_case(case)
    problem = module.load(project_root(Path(__file__).resolve().parents[1]))
    rows = []
    for backend in backends:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            idata = bm.fit(problem, backend=backend, draws=draws, tune=tune, chains=chains, seed=seed)
        wall = time.perf_counter() - start
        names = module.reported_variables(idata) if hasattr(module, "reported_variables") else None
        diag = bm.compute_diagnostics(idata, names, wall_s=wall)
        row = {
            "case": case,
            "backend": backend,
            "latent_flows": problem.graph.n_edges * len(problem.system.years),
            "records": problem.records.n_obs,
            "draws": draws,
            "chains": chains,
            "wall_s": round(wall, 1),
            "min_ess_bulk": round(diag.min_ess_bulk, 1),
            "ess_per_s": round(diag.min_ess_bulk / wall, 2),
            "max_rhat": round(diag.max_rhat, 4),
            "divergences": diag.divergences,
            "peak_mem_mb": round(peak_rss_mb(), 0),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="demo")
    parser.add_argument("--backends", nargs="*", default=None, help="default: every installed backend")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="200 draws, 300 tune, 2 chains, default backend only")
    args = parser.parse_args(argv)
    backends = args.backends or bm.available_backends()
    if args.quick:
        args.draws, args.tune, args.chains = 200, 300, 2
        backends = args.backends or [bm.available_backends()[-1] if "nutpie" not in bm.available_backends() else "nutpie"]
    rows = run(args.case, backends, args.draws, args.tune, args.chains, args.seed)
    header = list(rows[0])
    print("\n" + " | ".join(header))
    for row in rows:
        print(" | ".join(str(row[h]) for h in header))
    return 0


if __name__ == "__main__":
    sys.exit(main())
