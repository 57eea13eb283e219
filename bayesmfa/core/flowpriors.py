"""Priors on the size of flows (the ``flows`` section of the priors), compiled like records.

The model's parameters are external inputs and transfer coefficients; a flow's
size follows from them. A ``flows`` prior states what is known about a flow
itself, as published Bayesian MFAs do (``copper_scrap ~ LogNormal(median 120 kt,
sigma 0.3)``). It enters the joint density as a **soft constraint**: one factor
``LogNormal(flow | median, sigma)`` per selected flow instance and year,
multiplied onto the structural prior of inputs and shares. So the flow's prior
is the structural prior times this density — as if the flow had been measured
at the median with that relative error, but kept apart from the records (no
pointwise log-likelihood, no record checks; power-scaling treats it as the
prior section ``flows``). Where the structural prior of the flow is wide, the
flow's prior is close to the stated lognormal; where it is narrow, it is
narrower than either.

Prior draws (``sample_prior``, the ``prior`` group) come from the structural
prior alone: PyMC's forward sampling ignores potentials.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayesmfa.core.graph import Graph
from bayesmfa.core.likelihoods import RecordLikelihoods
from bayesmfa.core.priors import PriorEntry, Priors
from bayesmfa.core.records import CompiledRecords, compile_records
from bayesmfa.errors import PriorError


def flow_prior_rows(priors: Priors, graph: Graph) -> pd.DataFrame:
    """One record-like row per flow instance and year that a ``flows`` entry selects (later entries win).

    Columns: ``quantity`` (the flow), every dim of the flow (its coords),
    ``year``, ``value`` (the median), ``unit`` (the system unit), ``record_id``
    (``<file>:<key>:<edge>:<year>``), ``source_type`` (``flow prior``),
    ``source``, ``sigma`` (the log-scale sd).

    Raises
    ------
    PriorError
        Naming the file and key: an unknown flow, a selector that is not a
        dim of the flow, a coord or year the flow does not have, an entry
        that selects nothing.
    """
    system = graph.system
    years = [str(y) for y in system.years]
    chosen: dict[tuple[int, str], tuple[PriorEntry, dict]] = {}
    for entry in priors.entries.get("flows", []):
        flows = entry.get_select("flow")
        unknown = [f for f in flows if f not in system.flows]
        if unknown:
            raise PriorError(f"unknown flow {unknown[0]!r} (flows: {', '.join(system.flows)})", file=entry.file, field=f"{entry.key}.flow")
        when = _years(entry, years)
        hits = 0
        for flow in flows:
            dims = system.flow_dims(flow)
            for k, values in entry.select:
                if k in ("flow", "year"):
                    continue
                if k not in dims:
                    raise PriorError(f"flow {flow!r} has no dim {k!r} (its dims: {list(dims)})", file=entry.file, field=f"{entry.key}.{k}")
                known = {str(v) for e in graph.edges_of(flow) for d, v in e.coords if d == k}
                bad = [v for v in values if v not in known]
                if bad:
                    raise PriorError(f"flow {flow!r} has no {k} {bad[0]!r} (its: {', '.join(sorted(known))})", file=entry.file,
                                     field=f"{entry.key}.{k}")
            for edge in graph.edges_of(flow):
                coords = {d: str(v) for d, v in edge.coords}
                if all(coords.get(k) in values for k, values in entry.select if k not in ("flow", "year")):
                    for y in when:
                        chosen[(edge.index, y)] = (entry, coords)
                        hits += 1
        if not hits:
            raise PriorError("the entry selects no flow instance", file=entry.file, field=entry.key)
    rows = []
    for (edge_index, year), (entry, coords) in sorted(chosen.items()):
        mu, sigma = (float(entry.dist.kwargs[k]) for k in ("mu", "sigma"))
        edge = graph.edges[edge_index]
        rows.append({"quantity": edge.flow, **coords, "year": year, "value": repr(float(np.exp(mu))), "unit": system.unit,
                     "source_type": "flow prior", "source": entry.source, "sigma": sigma,
                     "cv": repr(float(np.sqrt(np.expm1(sigma**2)))),  # its own noise: no learned source type
                     "record_id": f"{entry.file}:{entry.key}:{edge.label}:{year}"})
    return pd.DataFrame(rows)


def _years(entry: PriorEntry, years: list[str]) -> list[str]:
    """The years an entry selects: its ``year`` values (a year or a range ``2005-2010``), or all."""
    given = entry.get_select("year")
    if not given:
        return years
    out = []
    for text in given:
        lo, _, hi = text.partition("-")
        span = [y for y in years if int(lo) <= int(y) <= int(hi or lo)] if lo.strip().isdigit() and (hi or lo).strip().isdigit() else []
        if not span:
            raise PriorError(f"year {text!r} is not a year or range within {years[0]}-{years[-1]}", file=entry.file,
                             field=f"{entry.key}.year")
        out.extend(span)
    return list(dict.fromkeys(out))


def compile_flow_priors(priors: Priors, graph: Graph) -> tuple[CompiledRecords, RecordLikelihoods] | None:
    """The ``flows`` priors as record operators (one row per flow instance and year) and their lognormal terms.

    Returns
    -------
    (CompiledRecords, RecordLikelihoods) or None
        ``None`` when there are no ``flows`` entries. The likelihood terms are
        lognormal on ``log(flow)`` (no floor: flows are positive in every
        draw) with the entry's sigma, whatever the model options force on records.
    """
    rows = flow_prior_rows(priors, graph)
    if rows.empty:
        return None
    sigma = rows.pop("sigma").to_numpy(dtype=float)
    rows.insert(0, "file", [rid.split(":")[0] for rid in rows["record_id"]])
    rows.insert(1, "row", 0)
    compiled = compile_records(rows.fillna(""), graph)
    n = compiled.n_obs
    lik = RecordLikelihoods(kind=np.zeros(n, dtype=np.int64), nu=np.full(n, 4.0), floor=np.zeros(n),
                            obs=np.log(compiled.value), fixed_sd=sigma)
    return compiled, lik
