"""How the cost of a fit grows with the number of regions of a rare-earth-like system.

A synthetic system with the structure of the REE case (``data/ree/system.yaml``:
registered mining, cracking, separation, an oxide market, electrolysis, use and
consumption by five end uses in every region; trade of concentrate, salts,
oxides and metals between every ordered pair of regions) is built for regions
``R1..RN``. As China in the REE case, ``R1`` alone has unregistered mining (it
feeds R1's own cracking) and a smuggled-oxide flow to every other region. Its
records are simulated from one draw of the model's prior (``bm.simulate_records``):
per region and year registered mine production and consumption (the input of
``use``), exporter- and importer-reported trade of each product for every
ordered pair (mirror records with their own noise each; R1's own reports carry
a latent reporting factor, like China's customs), R1's unregistered mining every
fourth year, and the magnets share of each region's consumption every fifth year.
The system is then fitted for each N, each in a fresh process (its peak memory is
its own), with the REE case's model options (share knots every 4 years, centred
registered-mining walks).

    python benchmarks/bench_scaling.py                     # N = 3 10 20 40, 4 chains x 1000 draws
    python benchmarks/bench_scaling.py --regions 3 5 8     # other sizes
    python benchmarks/bench_scaling.py --quick             # CI profile: N = 3 5, 2 chains x 200 draws, 200 tune
    python benchmarks/bench_scaling.py --timeout 600 --years 2000 2010

Columns (one row per N, printed and written to ``--csv``)

``regions``
    N.
``nodes``
    Process instances: ``11 N + 1`` (six processes per region, one
    unregistered mine, five end-use consumption nodes per region).
``edges``
    Flow instances: ``4 N^2 + 8 N`` (``N (N-1)`` per traded product).
``latent``
    Latent variables: the free parameters NUTS samples (sum of the sizes of
    the model's free random variables, in their unconstrained space).
``records``
    Simulated records the model is fitted to.
``wall_s``
    Compile + sampling wall time of ``bm.fit``, seconds (model building,
    compilation, tuning, sampling, derived arrays and diagnostics).
``min_ess_bulk``
    Smallest bulk effective sample size over every posterior variable.
``ess_per_s``
    ``min_ess_bulk / wall_s``.
``max_rhat``
    Largest rank-normalised split R-hat over every posterior variable.
``divergences``
    Divergent transitions after tuning, all chains.
``steps_per_draw``
    Mean leapfrog steps per draw (``n_steps`` of nutpie, ``tree_size`` of PyMC).
``peak_mem_mb``
    Peak resident memory of the N's process (building, simulating the records,
    fitting), MiB.
``setup_s``
    Seconds to build the system, its model and the simulated records (not
    part of ``wall_s``).
``status``
    ``ok``, ``timed out after X s`` (``--timeout`` per N covers the whole
    child process; the structure columns are still filled in when the child
    got as far as them) or ``failed: ...``.

A PNG (``--plot``) shows wall time and latent variables against N on log-log
axes; the last line printed names the quantity (latent variables, wall time,
peak memory) whose log-log slope against N is largest.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import resource
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm

import bayesmfa as bm

HERE = Path(__file__).resolve().parent
DEFAULT_CSV = HERE / "results" / "scaling.csv"
DEFAULT_PLOT = HERE / "results" / "scaling.png"

#: Columns of a result row, in order.
COLUMNS = ("regions", "nodes", "edges", "latent", "records", "wall_s", "min_ess_bulk", "ess_per_s", "max_rhat",
           "divergences", "steps_per_draw", "peak_mem_mb", "setup_s", "status")
#: Flows crossing ``region`` with a product of their own (each has N (N-1) instances).
TRADE_FLOWS = ("concentrate_trade", "salt_trade", "oxide_trade", "metal_trade")
END_USES = ("magnets", "catalysts", "metallurgy", "glass_ceramics", "other")
#: Source types of the simulated records.
PRODUCTION, CONSUMPTION, EXPORTER, IMPORTER, LITERATURE, SURVEY = (
    "production", "consumption_survey", "customs_exporter", "customs_importer", "literature_estimate", "end_use_survey")
#: Latent reporting factor of R1's own trade reports (like China's customs in the REE case).
R1_FACTOR = "r1_customs_basis"
#: Model options of the REE case that shape the parameter count (share knots every 4 years, centred mining walks).
OPTIONS = {"share_knots_every": 4, "centred_inputs": ("mining",)}
SOURCE = "synthetic: benchmarks/bench_scaling.py (simulated from a prior draw, seed {seed})"


def region_names(n: int) -> list[str]:
    """Coords of the region dim: ``R1..RN``."""
    if n < 2:
        raise ValueError(f"at least 2 regions are needed for trade, got {n}")
    return [f"R{i}" for i in range(1, n + 1)]


def system_dict(n: int, years: tuple[int, int] = (2000, 2022)) -> dict[str, Any]:
    """The REE system's structure for ``n`` regions, as a dict for :func:`bayesmfa.system_from_dict`.

    Parameters
    ----------
    n : int
        Number of regions (``R1..Rn``); R1 plays China's part.
    years : tuple of int
        First and last year.

    Returns
    -------
    dict
        Same layout as ``data/ree/system.yaml``. The REE flow of unregistered
        RoW concentrate to China has no counterpart (only R1 mines unregistered).
    """
    regions = region_names(n)
    first = regions[0]
    return {
        "name": f"ree_like_{n}",
        "description": f"synthetic REE-like system with {n} regions (benchmarks/bench_scaling.py)",
        "unit": "kt",
        "time": {"dim": "year", "start": int(years[0]), "end": int(years[1])},
        "dims": {"region": regions, "end_use": list(END_USES)},
        "processes": {
            "mining": {"dims": ["region"]},
            "mining_unregistered": {"dims": ["region"], "coords": {"region": [first]}},
            "cracking": {"dims": ["region"], "yield": True},
            "separation": {"dims": ["region"], "yield": True},
            "oxide_market": {"dims": ["region"]},
            "electrolysis": {"dims": ["region"], "yield": True},
            "use": {"dims": ["region"]},
            "consumption": {"dims": ["region", "end_use"]},
        },
        "boundary": {"inputs": ["mining", "mining_unregistered"], "sinks": ["consumption"]},
        "trade_dim": "region",
        "flows": {
            "concentrate": {"from": "mining", "to": "cracking", "product": "concentrate"},
            "concentrate_trade": {"from": "mining", "to": "cracking", "cross": "region", "product": "concentrate"},
            "concentrate_unregistered": {"from": "mining_unregistered", "to": "cracking", "from_coords": {"region": [first]},
                                         "product": "concentrate"},
            "salt": {"from": "cracking", "to": "separation", "product": "salt"},
            "salt_trade": {"from": "cracking", "to": "separation", "cross": "region", "product": "salt"},
            "oxide": {"from": "separation", "to": "oxide_market", "product": "oxide"},
            "oxide_trade": {"from": "separation", "to": "oxide_market", "cross": "region", "product": "oxide"},
            "oxide_to_metal": {"from": "oxide_market", "to": "electrolysis", "product": "oxide"},
            "oxide_use": {"from": "oxide_market", "to": "use", "product": "oxide"},
            "smuggled": {"from": "separation", "to": "use", "cross": "region", "from_coords": {"region": [first]}, "product": "oxide"},
            "metal": {"from": "electrolysis", "to": "use", "product": "metal"},
            "metal_trade": {"from": "electrolysis", "to": "use", "cross": "region", "product": "metal"},
            "end_use": {"from": "use", "to": "consumption"},
        },
    }


def priors_dict(n: int) -> dict[str, list[dict[str, Any]]]:
    """Priors of the synthetic system, modelled on ``priors/ree/*.yaml``.

    Parameters
    ----------
    n : int
        Number of regions.

    Returns
    -------
    dict
        Sections ``inputs, steps, shares, yields, noise, factors`` for :func:`bayesmfa.priors_from_dict`.
    """
    regions = region_names(n)
    src = "benchmarks/bench_scaling.py: synthetic benchmark prior modelled on priors/ree"
    return {
        "inputs": [
            {"process": "mining", "dist": "LogNormal", "median": 10, "sigma": 1.0, "source": src},
            {"process": "mining", "region": regions[0], "dist": "LogNormal", "median": 70, "sigma": 0.7, "source": src},
            {"process": "mining_unregistered", "dist": "LogNormal", "median": 20, "sigma": 1.0, "source": src},
        ],
        "steps": [
            {"target": "input", "process": "mining", "dist": "LogNormal", "median": 0.15, "sigma": 0.5, "source": src},
            {"target": "input", "process": "mining_unregistered", "dist": "Fixed", "value": 0.4, "source": src},
            {"target": "share", "dist": "Fixed", "value": 0.5, "source": src},
        ],
        "shares": [
            {"process": "mining", "shares": {"concentrate": 0.9, "concentrate_trade": 0.1}, "sd_logit": 1.5, "source": src},
            {"process": "cracking", "shares": {"salt": 0.9, "salt_trade": 0.1}, "sd_logit": 1.5, "source": src},
            {"process": "separation", "shares": {"oxide": 0.8, "oxide_trade": 0.2}, "sd_logit": 1.5, "source": src},
            {"process": "separation", "region": regions[0], "shares": {"oxide": 0.7, "oxide_trade": 0.25, "smuggled": 0.05},
             "sd_logit": 1.5, "source": src},
            {"process": "oxide_market", "shares": {"oxide_to_metal": 0.5, "oxide_use": 0.5}, "sd_logit": 1.5, "source": src},
            {"process": "electrolysis", "shares": {"metal": 0.8, "metal_trade": 0.2}, "sd_logit": 1.5, "source": src},
            {"process": "use", "shares": {"magnets": 0.18, "catalysts": 0.28, "metallurgy": 0.16, "glass_ceramics": 0.27,
                                          "other": 0.11}, "sd_logit": 1.0, "source": src},
        ],
        "yields": [
            {"process": p, "dist": "Beta", "alpha": 9, "beta": 1, "source": src} for p in ("cracking", "separation", "electrolysis")
        ],
        "noise": [
            {"source_type": PRODUCTION, "dist": "LogNormal", "median": 0.1, "sigma": 0.5, "source": src},
            {"source_type": CONSUMPTION, "likelihood": "studentt", "nu": 4, "dist": "LogNormal", "median": 0.2, "sigma": 0.5,
             "source": src},
            {"source_type": EXPORTER, "likelihood": "studentt", "nu": 4, "dist": "LogNormal", "median": 0.15, "sigma": 0.5,
             "source": src},
            {"source_type": IMPORTER, "likelihood": "studentt", "nu": 4, "dist": "LogNormal", "median": 0.15, "sigma": 0.5,
             "source": src},
            {"source_type": LITERATURE, "likelihood": "studentt", "nu": 4, "dist": "LogNormal", "median": 0.5, "sigma": 0.5,
             "source": src},
            {"source_type": SURVEY, "likelihood": "studentt", "nu": 4, "dist": "LogNormal", "median": 0.3, "sigma": 0.5,
             "source": src},
        ],
        "factors": [{"name": R1_FACTOR, "dist": "LogNormal", "median": 1.0, "sigma": 0.3, "source": src}],
    }


def record_template(n: int, years: tuple[int, int] = (2000, 2022), seed: int = 0) -> pd.DataFrame:
    """Which records the synthetic system has (placeholder values; :func:`synthetic_problem` simulates them).

    Per year: mine production and consumption (``use.input``) of every region;
    for every traded product and ordered pair of regions an exporter's and an
    importer's record (R1's own reports with the factor ``r1_customs_basis``).
    R1's unregistered mining every fourth year; each region's magnets share of
    consumption every fifth year.

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
        String cells in the record layout of :mod:`bayesmfa.core.records`.
    """
    regions = region_names(n)
    rows: list[dict[str, Any]] = []
    for y in range(years[0], years[1] + 1):
        for r in regions:
            rows.append({"quantity": "mining", "region": r, "year": y, "source_type": PRODUCTION})
            rows.append({"quantity": "use.input", "region": r, "year": y, "source_type": CONSUMPTION})
        for flow in TRADE_FLOWS:
            for o in regions:
                for d in regions:
                    if o == d:
                        continue
                    rows.append({"quantity": flow, "origin": o, "destination": d, "year": y, "source_type": EXPORTER,
                                 "reporter": "exporter", "factor": R1_FACTOR if o == regions[0] else ""})
                    rows.append({"quantity": flow, "origin": o, "destination": d, "year": y, "source_type": IMPORTER,
                                 "reporter": "importer", "factor": R1_FACTOR if d == regions[0] else ""})
        if (y - years[0]) % 4 == 0:
            rows.append({"quantity": "mining_unregistered", "region": regions[0], "year": y, "source_type": LITERATURE})
        if (y - years[0]) % 5 == 0:
            for r in regions:
                rows.append({"quantity": "end_use", "region": r, "end_use": "magnets", "share_of": "end_use", "year": y,
                             "unit": "share", "value": 0.2, "source_type": SURVEY})
    df = pd.DataFrame(rows)
    df["unit"] = df["unit"].fillna("kt")
    df["value"] = df["value"].fillna(1.0)
    df["source"] = SOURCE.format(seed=seed)
    cols = ["quantity", "region", "origin", "destination", "end_use", "year", "value", "unit", "share_of", "factor",
            "source_type", "reporter", "source"]
    return df.reindex(columns=cols).fillna("").astype(str)


def model_options(**extra: Any) -> bm.ModelOptions:
    """The REE case's options that shape the parameters (knots every 4 years, centred mining walks)."""
    return bm.ModelOptions(**OPTIONS, **extra)


def synthetic_problem(n: int, years: tuple[int, int] = (2000, 2022), seed: int = 0) -> tuple[bm.Problem, int]:
    """The synthetic problem for ``n`` regions, its records simulated from one prior draw.

    Does what :func:`bayesmfa.simulate_records` does (one prior predictive draw
    of the model with a negligible floor; the records' simulated values replace
    the template's), but keeps the model it builds to count its parameters:
    building the model is a large part of the cost at large N.

    Parameters
    ----------
    n : int
        Number of regions.
    years : tuple of int
        First and last year.
    seed : int
        Seed of the prior draw (the truth) and of the record noise.

    Returns
    -------
    problem : Problem
        With the simulated records.
    latent : int
        Free parameters of its model (:func:`latent_size`).
    """
    system = bm.system_from_dict(system_dict(n, years), file=f"<bench_scaling N={n}>")
    priors = bm.priors_from_dict(priors_dict(n), file=f"<bench_scaling priors N={n}>")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        template = bm.make_problem(system, priors, record_template(n, years, seed))
        floor = 1e-9
        model = bm.build_model(template, model_options(floor=floor))
        latent = latent_size(model)
        prior = pm.sample_prior_predictive(draws=1, model=model, random_seed=seed, var_names=[v.name for v in model.observed_RVs])
    table = template.records.table.copy()
    position = pd.Series(np.arange(len(table)), index=table["record_id"].to_numpy())
    for group, dim in (("records", "obs"), ("records_t", "obs_t")):
        if group in prior.prior_predictive:
            sim = prior.prior_predictive[group].isel(chain=0, draw=0)
            values = np.clip(np.exp(sim.to_numpy()) - floor, 0.0, None)
            table.loc[position[sim[dim].to_numpy()].to_numpy(), "value"] = [f"{v:.6g}" for v in values]
    records = table.drop(columns=["file", "row", "record_id"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bm.make_problem(system, priors, records), latent


def latent_size(model: Any) -> int:
    """Number of free parameters of a PyMC model (sizes of its free RVs' value variables, i.e. in unconstrained space)."""
    shapes = model.eval_rv_shapes()
    values = [model.rvs_to_values[rv].name for rv in model.free_RVs]
    return int(sum(np.prod(shapes[name], dtype=int) for name in values))


def peak_rss_mb() -> float:
    """Peak resident memory of this process and its finished children, in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024.0


def _round(x: float, digits: int) -> float | None:
    """``x`` rounded, or None when it is not finite (JSON has no NaN)."""
    return round(float(x), digits) if x is not None and math.isfinite(float(x)) else None


def run_one(n: int, years: tuple[int, int], draws: int, tune: int, chains: int, seed: int, backend: str = "auto",
            emit: bool = False) -> dict[str, Any]:
    """Build, simulate and fit the system with ``n`` regions in this process; return its row.

    Parameters
    ----------
    n : int
        Number of regions.
    years : tuple of int
        First and last year.
    draws, tune, chains, seed : int
        Sampler settings.
    backend : str
        NUTS backend (``auto``, ``nutpie``, ``pymc``, ``numpyro``).
    emit : bool
        Print a JSON line with the structure columns before fitting (so that
        a parent that times out still knows the size of the problem).

    Returns
    -------
    dict
        One row with the keys :data:`COLUMNS`.
    """
    start = time.perf_counter()
    graph = bm.Graph(bm.system_from_dict(system_dict(n, years)))
    row: dict[str, Any] = {"regions": n, "nodes": graph.n_nodes, "edges": graph.n_edges, "records": len(record_template(n, years))}
    if emit:  # the size of the problem, before anything expensive
        print(json.dumps({**row, "status": "structure"}), flush=True)
    problem, latent = synthetic_problem(n, years, seed)
    options = model_options()
    row.update({"latent": latent, "records": problem.records.n_obs, "setup_s": _round(time.perf_counter() - start, 2)})
    if emit:
        print(json.dumps({**row, "status": "structure"}), flush=True)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = bm.fit(problem, options=options, backend=backend, draws=draws, tune=tune, chains=chains, seed=seed)
    wall = time.perf_counter() - start
    diag = bm.compute_diagnostics(idata, wall_s=wall)
    stats = idata.sample_stats
    steps_var = next((v for v in ("n_steps", "tree_size", "num_steps") if v in stats), None)  # nutpie / pymc / numpyro
    steps = float(stats[steps_var].mean()) if steps_var else float("nan")
    row.update({
        "wall_s": _round(wall, 2),
        "min_ess_bulk": _round(diag.min_ess_bulk, 1),
        "ess_per_s": _round(diag.min_ess_bulk / wall, 3),
        "max_rhat": _round(diag.max_rhat, 4),
        "divergences": int(diag.divergences),
        "steps_per_draw": _round(steps, 1),
        "peak_mem_mb": _round(peak_rss_mb(), 0),
        "status": "ok",
    })
    return row


def _blank_row(n: int, status: str, partial: dict[str, Any] | None = None) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row.update(partial or {})
    row.update({"regions": n, "status": status})
    return row


def _last_json(text: str) -> dict[str, Any] | None:
    for line in reversed((text or "").strip().splitlines()):
        try:
            out = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(out, dict):
            return out
    return None


def run_child(n: int, years: tuple[int, int], draws: int, tune: int, chains: int, seed: int, backend: str,
              timeout: float) -> dict[str, Any]:
    """Run one N in a fresh process (own peak memory), killing it (and its workers) after ``timeout`` seconds.

    Returns
    -------
    dict
        The child's row; on a time-out or failure a row with ``status`` saying so
        and whatever structure columns the child had printed.
    """
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", str(n), "--years", str(years[0]), str(years[1]),
           "--draws", str(draws), "--tune", str(tune), "--chains", str(chains), "--seed", str(seed), "--backend", backend]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the child's own session: it and the sampler workers it started
        out, _ = proc.communicate()
        partial = _last_json(out) or {}
        partial.pop("status", None)
        return _blank_row(n, f"timed out after {timeout:g} s", partial)
    row = _last_json(out)
    if proc.returncode != 0 or row is None or row.get("status") != "ok":
        tail = (err or "").strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        print(f"N={n}: failed\n{(err or '')[-2000:]}", file=sys.stderr)
        partial = {k: v for k, v in (row or {}).items() if k != "status"}
        return _blank_row(n, f"failed: {tail[0][:200]}", partial)
    return row


def run(ns: list[int], years: tuple[int, int], draws: int, tune: int, chains: int, seed: int, backend: str,
        timeout: float) -> list[dict[str, Any]]:
    """Each N in its own process, in order; one JSON line printed per N as it finishes."""
    rows = []
    for n in ns:
        row = run_child(n, years, draws, tune, chains, seed, backend, timeout)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def slope(rows: list[dict[str, Any]], key: str) -> float:
    """Least-squares slope of ``log(key)`` against ``log(regions)`` over rows where ``key`` is positive and finite."""
    pts = [(math.log(r["regions"]), math.log(float(r[key]))) for r in rows
           if r.get(key) is not None and math.isfinite(float(r[key])) and float(r[key]) > 0]
    if len({x for x, _ in pts}) < 2:
        return float("nan")
    x, y = np.array(pts).T
    return float(np.polyfit(x, y, 1)[0])


def grows_worst(rows: list[dict[str, Any]]) -> str:
    """One line naming the quantity with the largest log-log slope against N (latent variables, wall time, peak memory)."""
    labels = {"latent": "latent variables", "wall_s": "wall time", "peak_mem_mb": "peak memory"}
    slopes = {labels[k]: slope([r for r in rows if r.get("status") == "ok"], k) for k in labels}
    known = {k: v for k, v in slopes.items() if math.isfinite(v)}
    if not known:
        return "grows worst: n/a (fewer than two finished sizes)"
    worst = max(known, key=lambda k: known[k])
    detail = ", ".join(f"{k} {v:.2f}" for k, v in slopes.items())
    return f"grows worst: {worst} (log-log slope vs N: {detail})"


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    """Write the rows (columns :data:`COLUMNS`) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(COLUMNS))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row.get(k) is None else row[k] for k in COLUMNS})


def write_plot(rows: list[dict[str, Any]], path: Path, settings: str = "", timeout: float | None = None) -> None:
    """Wall time and latent variables against N, log-log, to a PNG at ``path``.

    Sizes that timed out are drawn at the time-out (a lower bound of their wall time).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (ax_t, ax_p) = plt.subplots(1, 2, figsize=(10, 4.2))
    ok = [r for r in rows if r.get("status") == "ok"]
    late = [r for r in rows if str(r.get("status", "")).startswith("timed out")]
    if ok:
        ax_t.plot([r["regions"] for r in ok], [r["wall_s"] for r in ok], "o-", label=f"fit (slope {slope(ok, 'wall_s'):.2f})")
    if late and timeout:
        ax_t.plot([r["regions"] for r in late], [timeout] * len(late), "^", color="tab:red", label="timed out (lower bound)")
    ax_t.set(xscale="log", yscale="log", xlabel="regions N", ylabel="compile + sampling wall time (s)", title="Wall time")
    with_latent = [r for r in rows if r.get("latent")]
    if with_latent:
        ax_p.plot([r["regions"] for r in with_latent], [r["latent"] for r in with_latent], "s-", color="tab:green",
                  label=f"latent variables (slope {slope(with_latent, 'latent'):.2f})")
    with_edges = [r for r in rows if r.get("edges")]
    if with_edges:
        ax_p.plot([r["regions"] for r in with_edges], [r["edges"] for r in with_edges], "d--", color="tab:gray",
                  label=f"flow instances (slope {slope(with_edges, 'edges'):.2f})")
    ax_p.set(xscale="log", yscale="log", xlabel="regions N", ylabel="count (parameters, edges)", title="Problem size")
    for ax in (ax_t, ax_p):
        ns = sorted({r["regions"] for r in rows})
        ax.set_xticks(ns, [str(n) for n in ns])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.grid(True, which="major", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle(f"Cost growth of an REE-like fit with N regions (all-pairs trade){settings}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def format_table(rows: list[dict[str, Any]]) -> str:
    """The rows as an aligned text table."""
    cells = [list(COLUMNS)] + [["" if r.get(c) is None else str(r[c]) for c in COLUMNS] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.rjust(w) if i < len(COLUMNS) - 1 else c for i, (c, w) in enumerate(zip(row, widths, strict=True)))
                     for row in cells)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--regions", type=int, nargs="+", default=[3, 10, 20, 40], help="numbers of regions N")
    parser.add_argument("--years", type=int, nargs=2, default=[2000, 2022], metavar=("START", "END"))
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", default="auto", help="auto, nutpie, pymc or numpyro")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per N (whole child process)")
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--plot", type=Path, default=DEFAULT_PLOT)
    parser.add_argument("--quick", action="store_true", help="N = 3 5, 200 draws, 200 tune, 2 chains (CI profile)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: run one N in this process
    args = parser.parse_args(argv)
    years = (args.years[0], args.years[1])
    if args.one is not None:
        row = run_one(args.one, years, args.draws, args.tune, args.chains, args.seed, args.backend, emit=True)
        print(json.dumps(row), flush=True)
        return 0
    if args.quick:
        args.regions, args.draws, args.tune, args.chains = [3, 5], 200, 200, 2
    rows = run(args.regions, years, args.draws, args.tune, args.chains, args.seed, args.backend, args.timeout)
    print("\n" + format_table(rows))
    write_csv(rows, args.csv)
    settings = f"\n{args.chains} chains x {args.draws} draws ({args.tune} tune), years {years[0]}-{years[1]}, backend {args.backend}"
    write_plot(rows, args.plot, settings, args.timeout)
    print(f"\nwrote {args.csv} and {args.plot}")
    print(grows_worst(rows))
    return 0 if all(r.get("status") == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
