"""Mass-balance check of every process instance in every draw."""

from __future__ import annotations

import numpy as np
import xarray as xr

from bayesmfa.core.forward import named_positions
from bayesmfa.core.graph import Graph


def _flat(ds: xr.Dataset, name: str, positions: np.ndarray) -> np.ndarray:
    da = ds[name]
    lead = da.dims.index("year") + 1
    arr = np.asarray(da.values)
    return arr.reshape(*arr.shape[:lead], -1)[..., positions]


def edge_values(ds: xr.Dataset, graph: Graph) -> np.ndarray:
    """Every flow instance as an array (..., year, edge) from the named ``flow_*`` variables."""
    parts = []
    order = []
    for fname in graph.system.flows:
        edges = graph.edges_of(fname)
        pos = named_positions(graph, [e.coords for e in edges], graph.system.flow_dims(fname))
        parts.append(_flat(ds, f"flow_{fname}", pos))
        order.extend(e.index for e in edges)
    out = np.concatenate(parts, axis=-1)
    return out[..., np.argsort(order)]


def node_values(ds: xr.Dataset, graph: Graph, prefix: str) -> np.ndarray:
    """``input_``/``output_``/``external_`` values per node as an array (..., year, node)."""
    parts = []
    for pname, proc in graph.system.processes.items():
        nodes = graph.nodes_of(pname)
        pos = named_positions(graph, [n.coords for n in nodes], proc.dims)
        if f"{prefix}{pname}" in ds:
            parts.append(_flat(ds, f"{prefix}{pname}", pos))
        else:
            shape = ds[f"input_{pname}"].shape[: ds[f"input_{pname}"].dims.index("year") + 1]
            parts.append(np.zeros((*shape, len(nodes))))
    return np.concatenate(parts, axis=-1)


def balance_residuals(ds: xr.Dataset, graph: Graph) -> xr.DataArray:
    """Largest absolute mass-balance residual of each node, per draw and year.

    Two identities are checked for every process instance: input = external
    input + inflows, and (for all but sinks) output = outflows; and output
    never exceeds input (a yield is at most 1).

    Parameters
    ----------
    ds : xarray.Dataset
        Posterior (or prior) group with the ``flow_*``, ``input_*``,
        ``output_*`` and ``external_*`` variables (system unit).
    graph : Graph
        The graph the model was built on.

    Returns
    -------
    xarray.DataArray
        Dims (..., year, node), in the system unit.
    """
    flows = edge_values(ds, graph)
    inputs = node_values(ds, graph, "input_")
    outputs = node_values(ds, graph, "output_")
    external = node_values(ds, graph, "external_")
    inflow = flows @ graph.target_matrix
    outflow = flows @ graph.source_matrix
    sinks = np.array([n.process in graph.system.sinks for n in graph.nodes])
    r_in = np.abs(external + inflow - inputs)
    r_out = np.where(sinks, 0.0, np.abs(outputs - outflow))
    r_yield = np.clip(outputs - inputs, 0.0, None)
    resid = np.maximum(np.maximum(r_in, r_out), r_yield)
    lead = ds["input_" + next(iter(graph.system.processes))].dims
    lead = lead[: lead.index("year") + 1]
    return xr.DataArray(resid, dims=(*lead, "node"), coords={"node": graph.node_labels(), "year": list(graph.system.years)})
