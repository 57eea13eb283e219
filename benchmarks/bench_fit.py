"""Benchmark fits of a case with every installed NUTS backend.

Prints, per backend: compile+sampling wall time, min bulk ESS and tail ESS over
the case's reported quantities, ESS/s, max R-hat, divergences, leapfrog steps
per draw and peak memory. Each backend runs in its own process, so the peak
resident memory is that backend's alone. The case's model options and sampler
settings (``Case.options``, ``Case.sampler``, resolved by ``bayesmfa.resolve_settings``) are used, as by ``bayesmfa run``.

    python benchmarks/bench_fit.py                 # demo case, all installed backends
    python benchmarks/bench_fit.py --case ree      # the REE case
    python benchmarks/bench_fit.py --quick         # short chains (CI profile)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import bayesmfa as bm
from bayesmfa.cases import get_case, project_root
from bayesmfa.drivers.runner import RunSettings, fit_kwargs, resolve_settings


def peak_rss_mb() -> float:
    """Peak resident memory of this process and its finished children, in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024.0


def run_one(case: str, backend: str, draws: int, tune: int, chains: int, seed: int) -> dict:
    """Fit ``case`` with ``backend`` in this process and return the figures.

    ``draws``/``tune`` of 0 or less take the case's (as ``bayesmfa run`` resolves them:
    :func:`bayesmfa.drivers.runner.resolve_settings`); ``min_tree_depth`` reaches nutpie only.
    """
    spec = get_case(case)
    problem = spec.load(project_root(Path(__file__).resolve().parents[1]))
    chosen = {"draws": draws, "tune": tune}
    settings = resolve_settings(spec, RunSettings(chains=chains, seed=seed, backend=backend, progressbar=False,
                                                  **{k: v for k, v in chosen.items() if v > 0}))
    draws = settings.draws
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = bm.fit(problem, options=settings.options, **fit_kwargs(settings))
    wall = time.perf_counter() - start
    dataset = spec.reported_dataset(idata, problem) if spec.reported_dataset is not None else None
    diag = bm.compute_diagnostics(idata, wall_s=wall, dataset=dataset)
    stats = idata.sample_stats
    steps_var = next((v for v in ("n_steps", "tree_size", "num_steps") if v in stats), None)  # nutpie / pymc / numpyro
    steps = float(stats[steps_var].mean()) if steps_var else float("nan")
    return {
        "case": case,
        "backend": backend,
        "latent_flows": problem.graph.n_edges * len(problem.system.years),
        "records": problem.records.n_obs,
        "draws": draws,
        "chains": chains,
        "wall_s": round(wall, 1),
        "min_ess_bulk": round(diag.min_ess_bulk, 1),
        "min_ess_tail": round(diag.min_ess_tail, 1),
        "ess_per_s": round(diag.min_ess_bulk / wall, 2),
        "max_rhat": round(diag.max_rhat, 4),
        "divergences": diag.divergences,
        "steps_per_draw": round(steps, 1),
        "peak_mem_mb": round(peak_rss_mb(), 0),
    }


def run(case: str, backends: list[str], draws: int, tune: int, chains: int, seed: int) -> list[dict]:
    """Each backend in a fresh process (its own peak memory); one JSON line each."""
    rows = []
    for backend in backends:
        cmd = [sys.executable, __file__, "--one", backend, "--case", case, "--draws", str(draws), "--tune", str(tune),
               "--chains", str(chains), "--seed", str(seed)]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{backend}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
            continue
        row = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="demo")
    parser.add_argument("--backends", nargs="*", default=None, help="default: every installed backend")
    parser.add_argument("--draws", type=int, default=0, help="draws per chain (default: the case's, thinned as the case does; else 1000)")
    parser.add_argument("--tune", type=int, default=0, help="tuning steps per chain (default: the case's, else 1000)")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="200 draws, 300 tune, 2 chains, default backend only")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one backend in this process
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.case, args.one, args.draws, args.tune, args.chains, args.seed)))
        return 0
    backends = args.backends or bm.available_backends()
    if args.quick:
        args.draws, args.tune, args.chains = 200, 300, 2
        backends = args.backends or ["nutpie" if "nutpie" in bm.available_backends() else "pymc"]
    rows = run(args.case, backends, args.draws, args.tune, args.chains, args.seed)
    if not rows:
        return 1
    header = list(rows[0])
    print("\n" + " | ".join(header))
    for row in rows:
        print(" | ".join(str(row[h]) for h in header))
    return 0 if len(rows) == len(backends) else 1


if __name__ == "__main__":
    sys.exit(main())
