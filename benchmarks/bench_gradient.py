"""Cost of one log-density gradient and of compiling it, reference model vs fused kernel.

For a case (default REE), prints per model variant: free parameters, PyTensor
graph time (rewrites + gradient graph), numba compile time of the log-density
function (first call; warm when numba's on-disk cache already has it), nutpie's
total compile time, and the time of one log density + gradient in µs (mean of
many calls of the compiled function, from Python). Each variant runs in its own
process, so compile caches of one do not help the other within a run.

    python benchmarks/bench_gradient.py            # REE
    python benchmarks/bench_gradient.py --case demo
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def measure(case: str, fused: bool, calls: int) -> dict:
    """Build, compile and time the gradient of one model variant in this process."""
    warnings.simplefilter("ignore")
    import nutpie.compile_pymc as npc
    import pymc as pm

    import bayesmfa as bm
    from bayesmfa.cases import get_case
    from bayesmfa.inference.sampling import sampled_names

    module = get_case(case)
    problem = module.load(REPO)
    options = module.options
    start = time.perf_counter()
    model = bm.build_model(problem, options, fused=fused)
    build = time.perf_counter() - start
    names = sampled_names(model)
    start = time.perf_counter()
    ip = pm.initial_point.make_initial_point_fn(model=model, return_transformed=True)
    n_free, _, logp_fn, _, init_fn, _ = npc._make_functions(
        model, mode="NUMBA", compute_grad=True, join_expanded=True, pymc_initial_point_fn=ip, var_names=names
    )
    graph = time.perf_counter() - start
    x = init_fn(0)
    shared = [np.asarray(v.get_value()) for v in logp_fn.get_shared()]
    fn = logp_fn.vm.jit_fn
    start = time.perf_counter()
    fn(x, *shared)
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(calls):
        fn(x, *shared)
    grad_us = (time.perf_counter() - start) / calls * 1e6
    start = time.perf_counter()
    npc.compile_pymc_model(model, var_names=names)
    nutpie_compile = time.perf_counter() - start
    return {
        "case": case,
        "model": "fused kernel" if fused else "reference graph",
        "free_parameters": int(n_free),
        "build_s": round(build, 2),
        "graph_s": round(graph, 1),
        "numba_first_call_s": round(first, 1),
        "nutpie_compile_s": round(nutpie_compile, 1),
        "gradient_us": round(grad_us, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="ree")
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--one", choices=["reference", "fused"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.case, args.one == "fused", args.calls)))
        return 0
    rows = []
    for variant in ("reference", "fused"):
        out = subprocess.run([sys.executable, __file__, "--case", args.case, "--calls", str(args.calls), "--one", variant],
                             capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{variant}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
            return 1
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    header = list(rows[0])
    print("\n" + " | ".join(header))
    for row in rows:
        print(" | ".join(str(row[h]) for h in header))
    return 0


if __name__ == "__main__":
    sys.exit(main())
