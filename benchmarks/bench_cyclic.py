"""Compile time and fit cost of a large cyclic system (issue 16 item 7: an aluminium-like cycle with recycling loops).

A synthetic global aluminium-like cycle for regions ``R1..RN`` (default 5, one
year): per region bauxite mining, alumina refining, smelting, casting,
fabrication, manufacturing, use, end-of-life collection and remelting, an in-use
stock per region and one global landfill. Recycling makes it cyclic: new scrap
from fabrication and manufacturing, and collected old scrap, go to remelting,
whose metal goes back to casting. Bauxite, alumina, primary metal, semis and
scrap are traded between every ordered pair of regions. With N = 5 it has 51
processes and 170 flows.

Records are simulated from a true state drawn near the prior's centre (with NumPy): per region
mine production, smelter output, use and collected scrap, every primary-metal
and semis trade flow (exporter's record), and ratio records: each region's
new-scrap ratio of fabrication and manufacturing, collection rate (collected over
use), landfill rate of collection, and the destination split of its primary,
semis and scrap exports (``share_of: destination``).

    python benchmarks/bench_cyclic.py            # N = 5, one year, 4 chains x 1000 draws (tune 1000)
    python benchmarks/bench_cyclic.py --quick    # CI profile: N = 3, 2 chains x 200 draws, 200 tune
    python benchmarks/bench_cyclic.py --regions 6 --years 2018 2020

Printed (one JSON line, then a table):

``processes``, ``flows``
    Process instances (nodes) and flow instances (edges) of the expanded system.
``records``, ``ratio_records``
    Records, and how many of them are ratios (shares).
``free_parameters``
    Free parameters NUTS samples (unconstrained space).
``graph_s``
    PyTensor time for nutpie's log density + gradient (rewrites, gradient graph).
``numba_first_call_s``
    First call of the numba-compiled log density + gradient built for ``graph_s`` (numba compiles it here; seconds
    of cold compile when numba's and PyTensor's on-disk caches are empty, well under a second when they are warm).
``nutpie_compile_s``
    ``nutpie.compile_pymc_model`` wall time after that (graph + numba; warm on-disk caches from the first compile).
``object_mode``
    Whether numba fell back to object mode anywhere in the compiled log density (a
    ``NumbaWarning``/``NumbaPerformanceWarning`` about object mode or a Python fallback during compilation).
``gradient_us``
    One log density + gradient of the compiled function, called from Python, µs (mean over ``--calls``).
``fit_wall_s``, ``fit_compile_s``, ``fit_prior_s``
    ``bm.fit`` wall time with the nutpie backend and its defaults (compile, tune, draws, pointwise log-likelihood,
    derived arrays, diagnostics, 1000 prior draws), and the seconds of it spent compiling for nutpie (0 when this
    process already compiled the same model: the timing above did) and drawing from the prior.
``min_ess_bulk``, ``ess_per_s``, ``max_rhat``, ``divergences``, ``steps_per_draw``, ``max_depth_share``
    Sampler diagnostics over every posterior variable; ``max_depth_share`` is the fraction of draws at nutpie's
    maximum tree depth (10).
``peak_mem_mb``
    Peak resident memory of the process, MiB.
``max_balance_residual``
    Largest relative balance residual (input - output - loss) over every process and draw.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

import bayesmfa as bm

#: Flows that cross ``region`` (one instance per ordered pair of regions).
TRADE_FLOWS = ("bauxite_trade", "alumina_trade", "primary_trade", "semis_trade", "scrap_trade")
SOURCE = "synthetic: benchmarks/bench_cyclic.py (simulated from a prior draw, seed {seed})"
STATS, TRADE, SURVEY = "statistics", "customs", "survey"


def region_names(n: int) -> list[str]:
    """Coords of the region dim: ``R1..RN`` (at least two, for trade)."""
    if n < 2:
        raise ValueError(f"at least 2 regions are needed for trade, got {n}")
    return [f"R{i}" for i in range(1, n + 1)]


def system_dict(n: int = 5, years: tuple[int, int] = (2020, 2020)) -> dict[str, Any]:
    """The aluminium-like cyclic system for ``n`` regions, as a dict for :func:`bayesmfa.system_from_dict`.

    Parameters
    ----------
    n : int
        Number of regions.
    years : tuple of int
        First and last year (the same for a one-year balance).

    Returns
    -------
    dict
        ``10 n + 1`` processes, ``13 n + 5 n (n - 1)`` flows (kt aluminium).
    """
    regions = region_names(n)
    reg = {"dims": ["region"]}
    return {
        "name": f"aluminium_like_{n}",
        "description": f"synthetic cyclic aluminium-like system, {n} regions (benchmarks/bench_cyclic.py)",
        "unit": "kt",
        "time": {"dim": "year", "start": int(years[0]), "end": int(years[1])},
        "dims": {"region": regions},
        "processes": {
            "mining": dict(reg),
            "refining": {**reg, "yield": True},
            "smelting": {**reg, "yield": True},
            "casting": {**reg, "yield": True},
            "fabrication": {**reg, "yield": True},
            "manufacturing": {**reg, "yield": True},
            "use": dict(reg),
            "collection": dict(reg),
            "remelting": {**reg, "yield": True},
            "stock": dict(reg),
            "landfill": {"dims": []},
        },
        "boundary": {"inputs": ["mining"], "sinks": ["stock", "landfill"]},
        "trade_dim": "region",
        "flows": {
            "bauxite": {"from": "mining", "to": "refining"},
            "bauxite_trade": {"from": "mining", "to": "refining", "cross": "region"},
            "alumina": {"from": "refining", "to": "smelting"},
            "alumina_trade": {"from": "refining", "to": "smelting", "cross": "region"},
            "primary": {"from": "smelting", "to": "casting"},
            "primary_trade": {"from": "smelting", "to": "casting", "cross": "region"},
            "ingot": {"from": "casting", "to": "fabrication"},
            "semis": {"from": "fabrication", "to": "manufacturing"},
            "semis_trade": {"from": "fabrication", "to": "manufacturing", "cross": "region"},
            "fabrication_scrap": {"from": "fabrication", "to": "remelting"},
            "products": {"from": "manufacturing", "to": "use"},
            "manufacturing_scrap": {"from": "manufacturing", "to": "remelting"},
            "addition": {"from": "use", "to": "stock"},
            "end_of_life": {"from": "use", "to": "collection"},
            "collected": {"from": "collection", "to": "remelting"},
            "scrap_trade": {"from": "collection", "to": "remelting", "cross": "region"},
            "landfilled": {"from": "collection", "to": "landfill"},
            "secondary": {"from": "remelting", "to": "casting"},
        },
    }


def priors_dict() -> dict[str, list[dict[str, Any]]]:
    """Priors of the synthetic system (one year: levels only; steps fixed)."""
    src = "benchmarks/bench_cyclic.py: synthetic prior"
    return {
        "inputs": [{"process": "mining", "dist": "LogNormal", "median": 50, "sigma": 1.0, "source": src}],
        "steps": [
            {"target": "input", "dist": "Fixed", "value": 0.1, "source": src},
            {"target": "share", "dist": "Fixed", "value": 0.2, "source": src},
        ],
        "shares": [
            {"process": "mining", "shares": {"bauxite": 0.7, "bauxite_trade": 0.3}, "sd_logit": 1.0, "source": src},
            {"process": "refining", "shares": {"alumina": 0.7, "alumina_trade": 0.3}, "sd_logit": 1.0, "source": src},
            {"process": "smelting", "shares": {"primary": 0.7, "primary_trade": 0.3}, "sd_logit": 1.0, "source": src},
            {"process": "fabrication", "shares": {"semis": 0.6, "semis_trade": 0.25, "fabrication_scrap": 0.15},
             "sd_logit": 1.0, "source": src},
            {"process": "manufacturing", "shares": {"products": 0.85, "manufacturing_scrap": 0.15}, "sd_logit": 1.0,
             "source": src},
            {"process": "use", "shares": {"addition": 0.6, "end_of_life": 0.4}, "sd_logit": 1.0, "source": src},
            {"process": "collection", "shares": {"collected": 0.6, "scrap_trade": 0.2, "landfilled": 0.2}, "sd_logit": 1.0,
             "source": src},
        ],
        "yields": [{"process": p, "dist": "Beta", "alpha": 19, "beta": 1, "source": src}
                   for p in ("refining", "smelting", "casting", "fabrication", "manufacturing", "remelting")],
        "noise": [
            {"source_type": STATS, "dist": "LogNormal", "median": 0.05, "sigma": 0.3, "source": src},
            {"source_type": TRADE, "dist": "LogNormal", "median": 0.1, "sigma": 0.3, "source": src},
            {"source_type": SURVEY, "dist": "LogNormal", "median": 0.1, "sigma": 0.3, "source": src},
        ],
    }


def record_template(n: int = 5, years: tuple[int, int] = (2020, 2020), seed: int = 0) -> pd.DataFrame:
    """Which records the synthetic system has (placeholder values; :func:`synthetic_problem` simulates them).

    Parameters
    ----------
    n : int
        Number of regions.
    years : tuple of int
        First and last year.
    seed : int
        Seed named in the ``source`` column.

    Returns
    -------
    DataFrame
        String cells in the record layout of :mod:`bayesmfa.core.records`; ``14 n + 2 n (n - 1)`` flow records and
        ``4 n + 3 n (n - 2)`` ratio records per year.
    """
    regions = region_names(n)
    rows: list[dict[str, Any]] = []
    for y in range(years[0], years[1] + 1):
        for r in regions:
            for q in ("mining", "smelting", "use.input", "collected"):
                rows.append({"quantity": q, "region": r, "year": y, "source_type": STATS})
            for q, den in (("fabrication_scrap", "fabrication"), ("manufacturing_scrap", "manufacturing"),
                           ("end_of_life", "use"), ("landfilled", "collection")):
                rows.append({"quantity": q, "region": r, "year": y, "denominator": den, "unit": "share", "value": 0.1,
                             "source_type": SURVEY})
        for flow in ("primary_trade", "semis_trade"):
            for o in regions:
                for d in regions:
                    if o != d:
                        rows.append({"quantity": flow, "origin": o, "destination": d, "year": y, "source_type": TRADE})
        for flow in ("primary_trade", "semis_trade", "scrap_trade"):
            for o in regions:
                for d in [d for d in regions if d != o][:-1]:  # all destinations but one: noisy shares need not sum to 1
                    rows.append({"quantity": flow, "origin": o, "destination": d, "year": y, "share_of": "destination",
                                 "unit": "share", "value": 0.1, "source_type": SURVEY})
    df = pd.DataFrame(rows)
    df["unit"] = df["unit"].fillna("kt")
    df["value"] = df["value"].fillna(1.0)
    df["source"] = SOURCE.format(seed=seed)
    cols = ["quantity", "region", "origin", "destination", "year", "value", "unit", "share_of", "denominator",
            "source_type", "source"]
    return df.reindex(columns=cols).fillna("").astype(str)


def true_state(graph: bm.Graph, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A true system near the prior's centre, drawn with NumPy: external inputs, shares and yields.

    Mining ~ LogNormal(median 50 kt, sigma 0.5) per region, share logits at the prior's shares plus N(0, 0.5),
    yields ~ Beta(19, 1), constant over the years (the priors' steps are small).

    Returns
    -------
    u : ndarray (year, input_node), kt
    share : ndarray (year, edge)
    yields : ndarray (node,)
    """
    from bayesmfa.core.forward import NUMPY as NP
    from bayesmfa.core.forward import Layout, shares
    from bayesmfa.core.priors import resolve_priors

    rng = np.random.default_rng(seed)
    layout = Layout(graph)
    n_years = len(layout.years)
    resolved = resolve_priors(bm.priors_from_dict(priors_dict()), graph)
    u = np.broadcast_to(50.0 * rng.lognormal(0.0, 0.5, len(graph.input_nodes)), (n_years, len(graph.input_nodes))).copy()
    logits = resolved.share_mean + 0.5 * rng.standard_normal(len(graph.free_edges))
    share = shares(NP, layout, np.broadcast_to(logits, (n_years, len(logits))))
    yields = np.ones(graph.n_nodes)
    yields[[n.index for n in graph.yield_nodes]] = rng.beta(19.0, 1.0, len(graph.yield_nodes))
    return u, share, yields


def simulated_records(template: bm.Problem, seed: int = 0, noise: float = 0.05) -> pd.DataFrame:
    """The template's records with values simulated from :func:`true_state` and lognormal noise of sd ``noise``.

    Evaluates the records' operators on the true state with NumPy (no compiled model: compiling the
    reference model for prior draws takes minutes on a system of this size).
    """
    from bayesmfa.core.forward import NUMPY as NP
    from bayesmfa.core.forward import Layout, edge_flows, propagate

    graph, rec = template.graph, template.records
    u, share, yields = true_state(graph, seed)
    throughput, output = propagate(NP, Layout(graph), u, share, yields)
    state = np.concatenate([edge_flows(Layout(graph), output, share), output, throughput], axis=-1).reshape(-1)
    total = rec.numerator @ state
    den = rec.denominator @ state
    total = np.where(rec.is_share, total / np.where(rec.is_share, den, 1.0), total)
    rng = np.random.default_rng(seed + 1)
    values = total * np.exp(noise * rng.standard_normal(len(total)))
    table = rec.table.copy()
    table["value"] = [f"{v:.6g}" for v in values]
    return table.drop(columns=["file", "row", "record_id"])


def synthetic_problem(n: int = 5, years: tuple[int, int] = (2020, 2020), seed: int = 0) -> bm.Problem:
    """The synthetic cyclic problem for ``n`` regions, its records simulated from a true state (seed ``seed``)."""
    system = bm.system_from_dict(system_dict(n, years), file=f"<bench_cyclic N={n}>")
    priors = bm.priors_from_dict(priors_dict(), file="<bench_cyclic priors>")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        template = bm.make_problem(system, priors, record_template(n, years, seed))
        return bm.make_problem(system, priors, simulated_records(template, seed))


def peak_rss_mb() -> float:
    """Peak resident memory of this process and its finished children, MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024.0


def object_mode_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    """Messages of caught warnings that say numba compiled something in object mode (or fell back to Python)."""
    keys = ("object mode", "object-mode", "objmode", "fallback", "Falling back", "Cannot cache")
    return [str(w.message) for w in caught if any(k.lower() in str(w.message).lower() for k in keys)]


def compile_and_time(problem: bm.Problem, calls: int = 2000) -> dict[str, Any]:
    """Graph time, nutpie compile time, object-mode fallbacks and µs per log density + gradient of the model of ``problem``."""
    import nutpie
    import nutpie.compile_pymc as npc
    import pymc as pm

    from bayesmfa.inference.sampling import sampled_names

    model = bm.build_model(problem, bm.ModelOptions())
    names = sampled_names(model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        ip = pm.initial_point.make_initial_point_fn(model=model, return_transformed=True)
        n_free, _, logp_fn, _, init_fn, _ = npc._make_functions(
            model, mode="NUMBA", compute_grad=True, join_expanded=True, pymc_initial_point_fn=ip, var_names=names)
        graph_s = time.perf_counter() - start
        x = init_fn(0)
        shared = [np.asarray(v.get_value()) for v in logp_fn.get_shared()]
        fn = logp_fn.vm.jit_fn
        start = time.perf_counter()
        fn(x, *shared)
        first_call_s = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(calls):
            fn(x, *shared)
        grad_us = (time.perf_counter() - start) / calls * 1e6
        start = time.perf_counter()
        nutpie.compile_pymc_model(model, var_names=names)
        compile_s = time.perf_counter() - start
    fallbacks = object_mode_warnings(caught)
    return {"free_parameters": int(n_free), "graph_s": round(graph_s, 2), "numba_first_call_s": round(first_call_s, 1),
            "nutpie_compile_s": round(compile_s, 1),
            "object_mode": bool(fallbacks), "object_mode_messages": fallbacks[:3], "gradient_us": round(grad_us, 1)}


def fit_and_diagnose(problem: bm.Problem, draws: int, tune: int, chains: int, seed: int) -> dict[str, Any]:
    """Fit with nutpie and return wall time, ESS, R-hat, divergences, steps per draw and the balance residual."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = bm.fit(problem, backend="nutpie", draws=draws, tune=tune, chains=chains, seed=seed)
    wall = time.perf_counter() - start
    settings = json.loads(idata.posterior.attrs.get("settings", "{}"))
    diag = bm.compute_diagnostics(idata, wall_s=wall)
    stats = idata.sample_stats
    depth = stats["depth"].values if "depth" in stats else np.array([np.nan])
    resid = bm.balance_residuals(idata.posterior, problem.graph)
    scale = max(float(idata.posterior[f"input_{p}"].max()) for p in problem.system.processes)
    return {
        "fit_wall_s": round(wall, 1),
        "fit_compile_s": settings.get("compile_s"),
        "fit_prior_s": settings.get("prior_s"),
        "min_ess_bulk": round(float(diag.min_ess_bulk), 1),
        "ess_per_s": round(float(diag.min_ess_bulk) / wall, 2),
        "max_rhat": round(float(diag.max_rhat), 4),
        "divergences": int(diag.divergences),
        "steps_per_draw": round(float(stats["n_steps"].mean()), 1),
        "max_depth_share": round(float(np.mean(depth >= 10)), 3),
        "max_balance_residual": float(resid.max()) / scale,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regions", type=int, default=5)
    parser.add_argument("--years", type=int, nargs=2, default=(2020, 2020))
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--no-fit", action="store_true", help="compile and time the gradient only")
    parser.add_argument("--quick", action="store_true", help="N = 3, 2 chains x 200 draws, 200 tune")
    args = parser.parse_args(argv)
    if args.quick:
        args.regions, args.chains, args.draws, args.tune, args.calls = 3, 2, 200, 200, 200
    years = (int(args.years[0]), int(args.years[1]))
    start = time.perf_counter()
    problem = synthetic_problem(args.regions, years, args.seed)
    graph = problem.graph
    row: dict[str, Any] = {"regions": args.regions, "years": years[1] - years[0] + 1, "processes": graph.n_nodes,
                           "flows": graph.n_edges, "cyclic": graph.depth is None, "records": problem.records.n_obs,
                           "ratio_records": int(problem.records.is_share.sum()),
                           "setup_s": round(time.perf_counter() - start, 1)}
    row.update(compile_and_time(problem, args.calls))
    if not args.no_fit:
        row.update(fit_and_diagnose(problem, args.draws, args.tune, args.chains, args.seed))
    row["peak_mem_mb"] = round(peak_rss_mb(), 0)
    print(json.dumps(row), flush=True)
    print()
    for key, value in row.items():
        if key != "object_mode_messages":
            print(f"{key:>22}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
