"""Side by side on one case: PyMC's default NUTS, nutpie as shipped before the fused kernel, and today's default.

Variants (each in its own process, so peak memory is its own):

* ``pymc_default`` — ``pm.sample`` with PyMC's own NUTS and its defaults
  (target_accept 0.8, diagonal mass matrix), on the reference model (a plain
  PyTensor graph, C backend). It is slow on the REE case: ``--pymc-draws``
  and ``--pymc-tune`` shorten it (printed in the row).
* ``nutpie_before`` — what ``bayesmfa.fit`` did before issue 13: the
  reference model through nutpie (numba), every named array stored per draw,
  the model options of today and the sampler settings of then (REE:
  target_accept 0.95, min tree depth 8, 1000 draws after 1000 tuning steps).
* ``new_default`` — ``bayesmfa.fit`` with the case's settings: the fused
  kernel, parameters stored, named arrays and pointwise log-likelihood
  computed after sampling.

Printed per variant: draws and tune per chain, compile time, total wall time
(compile + sampling + post-processing), min bulk ESS over the case's reported
quantities, ESS/s (that ESS over the total wall time), max R-hat, divergences,
leapfrog steps per draw, peak resident memory.

    python benchmarks/bench_compare.py --case ree
    python benchmarks/bench_compare.py --case demo --variants nutpie_before new_default
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

REPO = Path(__file__).resolve().parents[1]
VARIANTS = ("pymc_default", "nutpie_before", "new_default")


def _peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024.0


def run_variant(case: str, variant: str, draws: int, tune: int, chains: int, seed: int) -> dict:
    """Fit ``case`` one way in this process and return the figures."""
    warnings.simplefilter("ignore")
    import pymc as pm

    import bayesmfa as bm
    from bayesmfa.cases import get_case

    module = get_case(case)
    problem = module.load(REPO)
    options = module.options
    sampler = dict(module.sampler)
    case_tune = sampler.pop("tune", 1000)
    tune = case_tune if tune < 0 else tune
    case_draws = sampler.pop("draws", 1000)
    if variant == "nutpie_before":  # the settings bayesmfa shipped before issue 13 (REE: target_accept 0.95, min tree depth 8)
        sampler = {"target_accept": 0.95, "min_tree_depth": 8} if case == "ree" else {"target_accept": sampler.get("target_accept", 0.9)}
    start = time.perf_counter()
    if variant == "new_default":
        draws = case_draws if draws <= 0 else draws
        idata = bm.fit(problem, options=options, draws=draws, tune=tune, chains=chains, seed=seed, **sampler)
        compile_s = float("nan")
    else:
        model = bm.build_model(problem, options)
        with model:
            if variant == "pymc_default":
                t0 = time.perf_counter()
                model.compile_logp()
                model.compile_dlogp()
                compile_s = time.perf_counter() - t0
                idata = pm.sample(draws=draws, tune=tune, chains=chains, cores=2, random_seed=seed, progressbar=False,
                                  compute_convergence_checks=False)
            else:
                import nutpie

                t0 = time.perf_counter()
                compiled = nutpie.compile_pymc_model(model)
                compile_s = time.perf_counter() - t0
                idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, seed=seed, cores=2, progress_bar=False,
                                      target_accept=sampler.get("target_accept", 0.8), low_rank_modified_mass_matrix=True,
                                      **({"mindepth": sampler["min_tree_depth"]} if sampler.get("min_tree_depth") else {}))
            pm.compute_log_likelihood(idata, extend_inferencedata=True, progressbar=False)
    wall = time.perf_counter() - start
    if variant == "new_default":
        compile_s = json.loads(idata.posterior.attrs["settings"]).get("compile_s", float("nan"))
    dataset = module.reported_dataset(idata, problem) if module.reported_dataset is not None else None
    diag = bm.compute_diagnostics(idata, wall_s=wall, dataset=dataset)
    stats = idata.sample_stats
    steps_var = next((v for v in ("n_steps", "tree_size") if v in stats), None)
    return {
        "variant": variant,
        "draws": draws,
        "thin": sampler.get("thin", 1) if variant == "new_default" else 1,
        "tune": tune,
        "chains": chains,
        "compile_s": round(compile_s, 1),
        "wall_s": round(wall, 1),
        "min_ess_bulk": round(diag.min_ess_bulk, 1),
        "ess_per_s": round(diag.min_ess_bulk / wall, 2),
        "max_rhat": round(diag.max_rhat, 4),
        "divergences": diag.divergences,
        "steps_per_draw": round(float(stats[steps_var].mean()), 1) if steps_var else float("nan"),
        "peak_mem_mb": round(_peak_mb(), 0),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="ree")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--draws", type=int, default=0, help="draws per chain (default: the case's for new_default, 1000 before)")
    parser.add_argument("--tune", type=int, default=-1, help="default: the case's (REE 1000)")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pymc-draws", type=int, default=250, help="draws per chain of pymc_default (it is slow)")
    parser.add_argument("--pymc-tune", type=int, default=250)
    parser.add_argument("--one", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_variant(args.case, args.one, args.draws, args.tune, args.chains, args.seed)))
        return 0
    rows = []
    for variant in args.variants:
        draws, tune = (args.pymc_draws, args.pymc_tune) if variant == "pymc_default" else (args.draws, args.tune)
        if variant == "nutpie_before":  # as shipped before issue 13: 1000 draws after 1000 tuning steps
            draws = 1000 if draws <= 0 else draws
            tune = 1000 if tune < 0 else tune
        cmd = [sys.executable, __file__, "--one", variant, "--case", args.case, "--draws", str(draws), "--tune", str(tune),
               "--chains", str(args.chains), "--seed", str(args.seed)]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{variant}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    if not rows:
        return 1
    header = list(rows[0])
    print("\n" + " | ".join(header))
    for row in rows:
        print(" | ".join(str(row[h]) for h in header))
    return 0 if len(rows) == len(args.variants) else 1


if __name__ == "__main__":
    sys.exit(main())
