"""Compile time of a case's nutpie model in a fresh process: without the on-disk cache, storing into it, loading from it.

Each measurement runs :func:`bayesmfa.inference.sampling.compiled_nutpie` (building the
fused model included, as ``fit`` reports it in ``compile_s``) in its own
process, against a fresh temporary cache folder:

- ``off``: the compiled-model cache turned off (``BAYESMFA_COMPILE_CACHE=0``):
  what every new process paid before the cache (numba's and PyTensor's own
  on-disk caches are used in every row; empty, they add ~20 s to the first);
- ``cold``: an empty cache folder: compile, then store the entry;
- ``warm``: the same folder again: the entry is loaded.

    python benchmarks/bench_compile.py              # REE, 2 repeats
    python benchmarks/bench_compile.py --case demo --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def measure(case: str) -> dict:
    """Compile (or load) the case's fused model in this process; seconds and cache state."""
    warnings.simplefilter("ignore")
    from bayesmfa.cases import get_case
    from bayesmfa.inference.sampling import compiled_nutpie

    module = get_case(case)
    problem = module.load(REPO)
    options = module.options
    status: dict[str, str] = {}
    start = time.perf_counter()
    _, seconds = compiled_nutpie(problem, options, fused=problem.graph.depth is not None, status=status)
    return {"compile_s": round(seconds, 2), "wall_s": round(time.perf_counter() - start, 2), "state": status["compile_cache"]}


def _run(case: str, env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, __file__, "--case", case, "--one"], capture_output=True, text=True,
                         env={**os.environ, **env})
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="ree")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.case)))
        return 0
    rows = []
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="bayesmfa-bench-compile-") as folder:
            env = {"BAYESMFA_CACHE_DIR": folder}
            for label, extra in (("off", {"BAYESMFA_COMPILE_CACHE": "0"}), ("cold", {}), ("warm", {})):
                row = {"case": args.case, "repeat": i, "run": label, **_run(args.case, {**env, **extra})}
                rows.append(row)
                print(json.dumps(row), flush=True)
    print("\nrun | compile_s (each repeat) | state")
    for label in ("off", "cold", "warm"):
        mine = [r for r in rows if r["run"] == label]
        print(f"{label} | {', '.join(str(r['compile_s']) for r in mine)} | {mine[0]['state']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
