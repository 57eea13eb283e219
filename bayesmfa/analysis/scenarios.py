"""Scenarios propagated per posterior draw, with intervals: no trade, export restrictions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from bayesmfa.analysis.balance import edge_values, node_values
from bayesmfa.analysis.summaries import summarize_array
from bayesmfa.core.forward import named_positions
from bayesmfa.core.graph import Graph
from bayesmfa.core.problem import Problem

Quantity = Callable[[xr.Dataset], xr.DataArray]
SAMPLE = ("chain", "draw")

# ============================================================================ scenarios


def _posterior_arrays(idata: az.InferenceData | xr.Dataset, graph: Graph) -> dict[str, np.ndarray]:
    post = idata.posterior if isinstance(idata, az.InferenceData) else idata
    external = node_values(post, graph, "external_")
    inputs = node_values(post, graph, "input_")
    outputs = node_values(post, graph, "output_")
    with np.errstate(divide="ignore", invalid="ignore"):
        yields = np.where(inputs > 0, outputs / inputs, 1.0)
    share = np.asarray(post["share"].transpose(*SAMPLE, "year", "edge").values)
    return {"external": external, "yield": yields, "share": share, "flows": edge_values(post, graph), "inputs": inputs}


def counterfactual_flows(
    idata: az.InferenceData | xr.Dataset,
    problem: Problem,
    restricted: np.ndarray,
    cap_share: float,
    *,
    iterations: int | None = None,
) -> dict[str, np.ndarray]:
    """Re-run the balance per draw with some flow instances capped; the excess stays at home.

    Each capped edge carries at most ``cap_share`` times its posterior value;
    what its source node can no longer send goes to the source node's
    domestic (not crossed) edges in proportion to their shares (to its other
    uncapped edges when it has no domestic edge). Shares, yields and external
    inputs stay as estimated in each draw; throughputs are propagated again.

    Parameters
    ----------
    idata : InferenceData or Dataset
        A fit (its posterior) with ``share``, ``flow_*``, ``input_*``,
        ``output_*``, ``external_*``.
    problem : Problem
        The problem of the fit.
    restricted : ndarray of bool
        Dims (year, edge): which flow instances are capped in which year.
    cap_share : float
        Cap as a fraction (0-1) of the posterior value of the flow.
    iterations : int, optional
        Propagation steps (default: the graph depth + 1, or 200 with cycles).

    Returns
    -------
    dict
        ``flows`` (chain, draw, year, edge), ``throughput`` and ``loss`` (chain, draw, year, node),
        ``external`` (same), system unit.
    """
    graph = problem.graph
    arr = _posterior_arrays(idata, graph)
    share, yields, external, base = arr["share"], arr["yield"], arr["external"], arr["flows"]
    src = graph.source_index
    crossed = np.array([graph.system.flows[e.flow].cross is not None for e in graph.edges])
    restricted = np.broadcast_to(np.asarray(restricted, dtype=bool), share.shape[-2:])
    # receivers of the excess: domestic, uncapped edges of the same source node (else any uncapped edge)
    recv = (~restricted) & (~crossed)[None, :]
    has_dom = (recv.astype(float) @ graph.source_matrix)[:, src] > 0
    recv = np.where(has_dom, recv, ~restricted)
    weight = share * recv
    total = weight @ graph.source_matrix
    with np.errstate(divide="ignore", invalid="ignore"):
        wnorm = np.where(total[..., src] > 0, weight / total[..., src], 0.0)
    cap = cap_share * base
    steps = iterations or ((graph.depth + 1) if graph.depth is not None else 200)
    throughput = external.copy()
    flows = base
    for _ in range(steps):
        raw = (throughput * yields)[..., src] * share
        capped = np.where(restricted, np.minimum(raw, cap), raw)
        excess = (raw - capped) @ graph.source_matrix
        flows = capped + excess[..., src] * wnorm
        throughput = external + flows @ graph.target_matrix
    loss = throughput * (1.0 - yields)
    return {"flows": flows, "throughput": throughput, "loss": loss, "external": external}


def trade_dim(problem: Problem, region_dim: str | None = None) -> str:
    """The dim whose coords trade with each other: ``region_dim`` when given, else the system's
    ``trade_dim``, else the dim the first crossed flow crosses, else ``"region"``."""
    if region_dim:
        return region_dim
    system = problem.system
    if system.trade_dim:
        return system.trade_dim
    return next((f.cross for f in system.flows.values() if f.cross), "region")


def _sink_by_region(values: np.ndarray, problem: Problem, post: xr.Dataset, region_dim: str) -> xr.DataArray:
    """Sum node values (chain, draw, year, node) of sink nodes by their region coord."""
    graph = problem.graph
    sinks = [n for n in graph.nodes if n.process in graph.system.sinks]
    regions = list(dict.fromkeys(dict(n.coords).get(region_dim, "all") for n in sinks))
    mat = np.zeros((graph.n_nodes, len(regions)))
    for n in sinks:
        mat[n.index, regions.index(dict(n.coords).get(region_dim, "all"))] = 1.0
    coords = {"chain": post["chain"].values, "draw": post["draw"].values, "year": list(graph.system.years), region_dim: regions}
    return xr.DataArray(values @ mat, dims=(*SAMPLE, "year", region_dim), coords=coords)


def _sink_arrays(values: np.ndarray, problem: Problem, post: xr.Dataset, prefix: str) -> dict[str, xr.DataArray]:
    """Node values (chain, draw, year, node) of each sink process on its own dims, as ``<prefix><process>``.

    Laid out like the model's ``input_<process>`` arrays (full system coords).
    """
    graph = problem.graph
    all_coords = graph.system.all_coords()
    lead = values.shape[:3]
    out = {}
    for pname in graph.system.sinks:
        dims = graph.system.processes[pname].dims
        nodes = graph.nodes_of(pname)
        shape = tuple(len(all_coords[d]) for d in dims)
        flat = np.zeros((*lead, int(np.prod(shape))))
        flat[..., named_positions(graph, [n.coords for n in nodes], dims)] = values[..., [n.index for n in nodes]]
        coords = {"chain": post["chain"].values, "draw": post["draw"].values, "year": list(graph.system.years),
                  **{d: list(all_coords[d]) for d in dims}}
        out[f"{prefix}{pname}"] = xr.DataArray(flat.reshape(*lead, *shape), dims=(*SAMPLE, "year", *dims), coords=coords)
    return out


def _scenario(idata: az.InferenceData | xr.Dataset, problem: Problem, restricted: np.ndarray, cap_share: float,
              region_dim: str) -> xr.Dataset:
    post = idata.posterior if isinstance(idata, az.InferenceData) else idata
    cf = counterfactual_flows(idata, problem, restricted, cap_share)
    base = _posterior_arrays(idata, problem.graph)
    consumption = _sink_by_region(cf["throughput"], problem, post, region_dim)
    baseline = _sink_by_region(base["inputs"], problem, post, region_dim)
    coords = {"chain": post["chain"].values, "draw": post["draw"].values, "year": list(problem.system.years)}
    ds = xr.Dataset(
        {
            "consumption": consumption,
            "baseline_consumption": baseline,
            "change": consumption - baseline,
            "flows": xr.DataArray(cf["flows"], dims=(*SAMPLE, "year", "edge"), coords={**coords, "edge": problem.graph.edge_labels()}),
            "throughput": xr.DataArray(cf["throughput"], dims=(*SAMPLE, "year", "node"),
                                       coords={**coords, "node": problem.graph.node_labels()}),
            "loss": xr.DataArray(cf["loss"], dims=(*SAMPLE, "year", "node"), coords={**coords, "node": problem.graph.node_labels()}),
            "external": xr.DataArray(cf["external"], dims=(*SAMPLE, "year", "node"),
                                     coords={**coords, "node": problem.graph.node_labels()}),
        }
    )
    sinks = _sink_arrays(cf["throughput"], problem, post, "sink_")
    base_sinks = _sink_arrays(base["inputs"], problem, post, "baseline_sink_")
    for name, da in sinks.items():
        ds[name] = da
        ds[f"baseline_{name}"] = base_sinks[f"baseline_{name}"]
        ds[f"change_{name}"] = da - base_sinks[f"baseline_{name}"]
    ds.attrs["unit"] = problem.system.unit
    return ds


def export_restriction(
    idata: az.InferenceData,
    problem: Problem,
    *,
    region: str,
    flow_names: Sequence[str],
    cap_share: float,
    from_year: int,
    region_dim: str | None = None,
) -> xr.Dataset:
    """A region's exports on some trade flows capped at a share of their value from a year on.

    Parameters
    ----------
    idata : InferenceData
        A fit.
    problem : Problem
        Its problem.
    region : str
        Exporting region (a coord of ``region_dim``; the flows' ``origin``).
    flow_names : sequence of str
        Crossed flows whose exports are capped.
    cap_share : float
        Fraction (0-1) of the posterior value each capped flow keeps.
    from_year : int
        First year of the restriction.
    region_dim : str, optional
        The crossed dim (default: :func:`trade_dim`, the system's trade dim).

    Returns
    -------
    xarray.Dataset
        Per draw: ``consumption`` (input of sink processes by region, chain, draw,
        year, region; system unit), ``baseline_consumption``, ``change``,
        counterfactual ``flows`` (edge), ``throughput``, ``loss`` and ``external`` (node),
        and per sink process ``sink_<process>``, ``baseline_sink_<process>`` and
        ``change_sink_<process>`` on the process's own dims (e.g. region x end use).
        Summarise with :func:`summarize_scenario`.
    """
    graph = problem.graph
    region_dim = trade_dim(problem, region_dim)
    origin = graph.system.cross_dim_names(region_dim)[0]
    unknown = [f for f in flow_names if f not in graph.system.flows]
    if unknown:
        raise ValueError(f"unknown flows {unknown}")
    edge_mask = np.array([e.flow in flow_names and dict(e.coords).get(origin) == region for e in graph.edges])
    if not edge_mask.any():
        raise ValueError(f"no flow instance of {list(flow_names)} leaves {region_dim} {region!r}")
    years = np.array(graph.system.years)
    restricted = (years >= from_year)[:, None] & edge_mask[None, :]
    return _scenario(idata, problem, restricted, cap_share, region_dim)


def no_trade(idata: az.InferenceData | xr.Dataset, problem: Problem, *, region_dim: str | None = None) -> xr.Dataset:
    """Every crossed flow removed in every year; exports handed to domestic destinations in proportion.

    The one no-trade rule of the package (``bayesmfa scenario --no-trade``, the
    sensitivity study's scenario and a case's no-trade rows): in every draw, a
    node's crossed (traded) edges carry nothing; what they carried goes to the
    node's domestic edges in proportion to their shares (to its other edges when
    it has no domestic one; lost when it has none); shares, yields and external
    inputs (mining, stock withdrawals) stay as estimated, and the balance is
    propagated again (:func:`counterfactual_flows`). ``idata`` may be a fit or
    one of its groups (posterior or prior, as a Dataset).

    Returns
    -------
    xarray.Dataset
        As :func:`export_restriction`.
    """
    graph = problem.graph
    crossed = np.array([graph.system.flows[e.flow].cross is not None for e in graph.edges])
    restricted = np.broadcast_to(crossed, (len(graph.system.years), graph.n_edges))
    return _scenario(idata, problem, restricted, 0.0, trade_dim(problem, region_dim))


def summarize_scenario(ds: xr.Dataset, prob: float = 0.9) -> pd.DataFrame:
    """Tidy intervals of a scenario's ``consumption``, ``baseline_consumption``, ``change`` and sink arrays (system unit).

    Returns
    -------
    DataFrame
        Columns ``quantity``, the dims (blank where a quantity lacks one),
        ``mean, sd, <lo>, q50, <hi>``.
    """
    names = ["consumption", "baseline_consumption", "change"]
    names += [v for v in ds.data_vars if str(v).startswith(("sink_", "baseline_sink_", "change_sink_"))]
    return pd.concat([summarize_array(ds[v], prob, str(v)) for v in names], ignore_index=True)


# ============================================================================ scenario specs


@dataclass(frozen=True)
class ScenarioSpec:
    """One scenario.

    Attributes
    ----------
    name : str
        Label (file names, the ``scenario`` column).
    kind : {"no_trade", "export_restriction"}
        Every crossed flow removed, or one region's exports on some flows capped.
    region : str
        Exporting region (export restriction only).
    flows : tuple of str
        Trade flows capped (export restriction only).
    cap_share : float
        Fraction (0-1) of its posterior value each capped flow keeps.
    from_year : int
        First year of the restriction.
    """

    name: str
    kind: str
    region: str = ""
    flows: tuple[str, ...] = field(default_factory=tuple)
    cap_share: float = 0.0
    from_year: int = 0


NO_TRADE = ScenarioSpec("no_trade", "no_trade")


def parse_restriction(text: str) -> ScenarioSpec:
    """A restriction written ``REGION:FLOW[,FLOW...]:CAP:FROM_YEAR``, e.g. ``CN:oxide_trade,metal_trade:0.5:2010``.

    Raises
    ------
    ValueError
        Naming the part that is malformed.
    """
    parts = text.split(":")
    if len(parts) != 4:
        raise ValueError(f"restriction {text!r}: expected REGION:FLOW[,FLOW...]:CAP:FROM_YEAR (4 parts), got {len(parts)}")
    region, flows, cap, year = (p.strip() for p in parts)
    names = tuple(f.strip() for f in flows.split(",") if f.strip())
    if not region or not names:
        raise ValueError(f"restriction {text!r}: region and at least one flow are required")
    try:
        cap_share = float(cap)
    except ValueError:
        raise ValueError(f"restriction {text!r}: CAP {cap!r} is not a number") from None
    if not 0.0 <= cap_share <= 1.0:
        raise ValueError(f"restriction {text!r}: CAP must be a share in [0, 1], got {cap_share}")
    try:
        from_year = int(year)
    except ValueError:
        raise ValueError(f"restriction {text!r}: FROM_YEAR {year!r} is not an integer year") from None
    name = f"{region}_{'+'.join(names)}_cap{cap_share:g}_from{from_year}"
    return ScenarioSpec(name, "export_restriction", region, names, cap_share, from_year)


def apply_scenario(idata: az.InferenceData, problem: Problem, spec: ScenarioSpec) -> xr.Dataset:
    """Propagate one scenario through every posterior draw (see :mod:`bayesmfa.analysis.scenarios`)."""
    if spec.kind == "no_trade":
        return no_trade(idata, problem)
    if spec.kind == "export_restriction":
        years = problem.system.years
        if not years[0] <= spec.from_year <= years[-1]:
            raise ValueError(f"scenario {spec.name}: from_year {spec.from_year} outside {years[0]}-{years[-1]}")
        return export_restriction(idata, problem, region=spec.region, flow_names=spec.flows, cap_share=spec.cap_share,
                                  from_year=spec.from_year)
    raise ValueError(f"scenario {spec.name}: unknown kind {spec.kind!r}")
