"""The Sankey of a whole system: one link per flow instance, width the posterior median, coloured by product.

Drawn with plotly, imported only when a Sankey is drawn. A link is red where
the system file marks its flow ``unregistered`` (:func:`is_unregistered`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from bayesmfa.analysis.balance import edge_values
from bayesmfa.analysis.summaries import interval_columns
from bayesmfa.core.graph import Graph
from bayesmfa.core.system import System
from bayesmfa.reporting.plots.labels import Labels, label_kind
from bayesmfa.reporting.plots.tables import YearSelection, format_interval, posterior_of, year_positions

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go


#: Colours of ordinary and of unregistered links (flows marked ``unregistered: true`` in the system file).
LINK_COLOR = "rgba(90, 120, 160, 0.45)"
UNREGISTERED_COLOR = "rgba(200, 40, 40, 0.55)"
UNREGISTERED_TRADE_COLOR = "rgba(160, 20, 20, 0.85)"
#: Hues (RGB) given to a system's products in the order its flows first name them, unless labels.yaml
#: names a product's colour (``product_colours``); products beyond the palette are grey.
PRODUCT_PALETTE: tuple[tuple[int, int, int], ...] = (
    (140, 100, 60), (230, 150, 40), (50, 110, 180), (110, 80, 160), (190, 90, 130), (70, 160, 170), (150, 150, 40),
)
#: Hue of flows without a product, and of a product without a colour.
NO_PRODUCT_RGB = (60, 150, 90)
OTHER_PRODUCT_RGB = (120, 120, 120)
NODE_COLOR = "rgba(60, 60, 60, 0.8)"


def is_unregistered(system: System, flow: str) -> bool:
    """Whether flow type ``flow`` is unregistered, as the system file marks it (never guessed from names).

    A flow is unregistered when the system file says ``unregistered: true`` on
    it or on its source process (:attr:`bayesmfa.core.system.FlowType.unregistered`).
    A system without the key (e.g. stored in a ``posterior.nc`` written before
    the flag existed) has no unregistered flow: its Sankey draws none red.
    """
    return bool(getattr(system.flows[flow], "unregistered", False))


def node_display_label(graph: Graph, index: int) -> str:
    """A short label of a process instance: the process name then its coords, e.g. ``"refining A"``."""
    node = graph.nodes[index]
    values = " ".join(str(v) for _, v in node.coords)
    return f"{node.process} {values}" if values else node.process


def sankey_table(
    idata: az.InferenceData | xr.Dataset,
    graph: Graph,
    year: YearSelection = None,
    prob: float = 0.9,
    *,
    min_value: float | None = None,
) -> pd.DataFrame:
    """The links of the system Sankey: each flow instance's median and interval.

    Flows are summed over the selected years draw by draw, then summarised.

    Parameters
    ----------
    idata : InferenceData or Dataset
        A fit (its posterior is used) or a posterior Dataset with the
        ``flow_*`` variables, dims (chain, draw, year, *flow dims).
    graph : Graph
        The graph the model was built on.
    year : int, (start, end) or None
        One year, an inclusive period summed per draw, or ``None`` for the
        whole period of the fit.
    prob : float
        Mass of the equal-tailed interval.
    min_value : float, optional
        Links whose median is at most this are left out (structural zeros);
        by default ``1e-9`` times the largest median.

    Returns
    -------
    DataFrame
        One row per kept flow instance: ``source, target, flow, median, lo,
        hi`` then ``edge`` (flow instance label), ``source_index``,
        ``target_index`` (graph node indices), ``unregistered`` (bool),
        ``label`` (``"median [lo, hi] unit"``), ``period``, ``product`` (the
        flow type's product, ``""`` if none) and ``trade`` (a flow between
        regions, bool).
    """
    if not 0 < prob < 1:
        raise ValueError(f"prob must be in (0, 1), got {prob}")
    ds = posterior_of(idata)
    values = edge_values(ds, graph)  # (..., year, edge)
    first = next(iter(graph.system.flows))
    dims = ds[f"flow_{first}"].dims
    year_axis = dims.index("year")
    years = ds["year"].values if "year" in ds.coords else graph.system.years
    pos, period = year_positions(list(years), year)
    total = np.take(values, pos, axis=year_axis).sum(axis=year_axis)  # (..., edge)
    samples = total.reshape(-1, total.shape[-1])
    q = np.quantile(samples, [(1 - prob) / 2, 0.5, 1 - (1 - prob) / 2], axis=0)
    lo, med, hi = q
    if min_value is None:
        top = float(np.max(np.abs(med))) if med.size else 0.0
        min_value = 1e-9 * top if top > 0 else 0.0
    unit = graph.system.unit
    rows = []
    for e in graph.edges:
        m = float(med[e.index])
        if not m > min_value:
            continue
        rows.append(
            {
                "source": node_display_label(graph, e.source),
                "target": node_display_label(graph, e.target),
                "flow": e.flow,
                "median": m,
                "lo": float(lo[e.index]),
                "hi": float(hi[e.index]),
                "edge": e.label,
                "source_index": e.source,
                "target_index": e.target,
                "unregistered": is_unregistered(graph.system, e.flow),
                "label": format_interval(m, float(lo[e.index]), float(hi[e.index]), unit),
                "period": period,
                "product": graph.system.flows[e.flow].product or "",
                "trade": graph.system.flows[e.flow].cross is not None,
            }
        )
    cols = ["source", "target", "flow", "median", "lo", "hi", "edge", "source_index", "target_index", "unregistered", "label", "period",
            "product", "trade"]
    return pd.DataFrame(rows, columns=cols)


def product_colours(system: System, labels: Labels | None = None) -> dict[str, tuple[int, int, int]]:
    """The hue (RGB) of each product of a system's flows, in the order its flows first name them, ``""`` last.

    ``labels.product_colours`` (from ``labels.yaml``) gives a product its hue; the
    others take the unused hues of :data:`PRODUCT_PALETTE` in turn (then grey).
    Flows without a product (``""``) are :data:`NO_PRODUCT_RGB`.
    """
    named = dict((labels or Labels()).product_colours)
    products = list(dict.fromkeys(f.product or "" for f in system.flows.values()))
    free = [c for c in PRODUCT_PALETTE if c not in named.values()]
    out: dict[str, tuple[int, int, int]] = {}
    for p in [q for q in products if q] + [q for q in products if not q]:
        out[p] = named.get(p) or (NO_PRODUCT_RGB if not p else free.pop(0) if free else OTHER_PRODUCT_RGB)
    return out


def product_colour(product: str, *, trade: bool = False, unregistered: bool = False,
                   colours: Mapping[str, tuple[int, int, int]] | None = None) -> str:
    """The ``rgba`` colour of a Sankey link: its product's hue, lighter for domestic and stronger for trade flows.

    ``colours`` maps a product to its hue (:func:`product_colours`); without it, or a
    product missing from it, :data:`OTHER_PRODUCT_RGB` (:data:`NO_PRODUCT_RGB` for ``""``).
    Unregistered flows (:func:`is_unregistered`) are :data:`UNREGISTERED_COLOR`
    (a darker red when traded).
    """
    if unregistered:
        return UNREGISTERED_TRADE_COLOR if trade else UNREGISTERED_COLOR
    r, g, b = (colours or {}).get(product) or (NO_PRODUCT_RGB if not product else OTHER_PRODUCT_RGB)
    return f"rgba({r}, {g}, {b}, {0.85 if trade else 0.35})"


def _process_stages(graph: Graph) -> dict[str, int]:
    """Column of each process in the Sankey: the longest chain of flows from a boundary input to it."""
    system = graph.system
    into: dict[str, set[str]] = {p: set() for p in system.processes}
    for f in system.flows.values():
        if f.source != f.target:
            into[f.target].add(f.source)
    stage: dict[str, int] = {}

    def depth(p: str, seen: frozenset[str]) -> int:
        if p not in stage:
            parents = [q for q in into[p] if q not in seen]
            stage[p] = 1 + max((depth(q, seen | {p}) for q in parents), default=-1)
        return stage[p]

    for p in system.processes:
        depth(p, frozenset())
    for p in system.processes:  # a source feeding a later stage only (a stock withdrawal) sits just before it
        targets = [f.target for f in system.flows.values() if f.source == p]
        if not into[p] and targets:
            stage[p] = max(stage[p], min(stage[t] for t in targets) - 1)
    return stage


def _node_positions(graph: Graph, used: Sequence[int], throughput: Mapping[int, float]) -> tuple[list[float], list[float]]:
    """x (stage) and y (centre) in (0, 1) of each used node.

    Within a stage, nodes are stacked in region order with heights in proportion to
    their throughput and a gap between them, so that nodes and their labels do not
    overlap; the last stage sits apart at the right edge, leaving room for its labels.
    """
    stages = _process_stages(graph)
    last = max(stages.values()) or 1
    columns: dict[int, list[int]] = {}
    order = {p: i for i, p in enumerate(graph.system.processes)}
    for n in used:
        columns.setdefault(stages[graph.nodes[n].process], []).append(n)
    tallest = max(sum(throughput.get(n, 0.0) for n in nodes) for nodes in columns.values()) or 1.0
    y_of: dict[int, float] = {}
    for nodes in columns.values():
        nodes.sort(key=lambda n: (tuple(str(v) for _, v in graph.nodes[n].coords[:1]), order[graph.nodes[n].process], n))
        gap = 0.25 * tallest / max(len(nodes), 1)
        slots = [max(throughput.get(n, 0.0), 0.06 * tallest) for n in nodes]  # a small node still gets a label's height
        span = max(tallest * 1.25, sum(slots) + gap * len(nodes))
        top = 0.0
        for n, height in zip(nodes, slots):
            y_of[n] = 0.02 + 0.96 * (top + height / 2) / span
            top += height + gap
    xs = [0.001 + 0.68 * stages[graph.nodes[n].process] / (last - 1) if stages[graph.nodes[n].process] < last and last > 1 else 0.999
          for n in used]
    return xs, [min(y_of[n], 0.999) for n in used]


def _columns(graph: Graph, used: Sequence[int]) -> dict[int, list[int]]:
    """Used nodes by Sankey column (stage)."""
    stages = _process_stages(graph)
    out: dict[int, list[int]] = {}
    for n in used:
        out.setdefault(stages[graph.nodes[n].process], []).append(n)
    return out


def _column_heads(graph: Graph, used: Sequence[int]) -> dict[str, str]:
    """The process named at the top of each Sankey column (the one with most nodes there), by process."""
    stages = _process_stages(graph)
    count: dict[int, dict[str, int]] = {}
    for n in used:
        p = graph.nodes[n].process
        count.setdefault(stages[p], {}).setdefault(p, 0)
        count[stages[p]][p] += 1
    return {max(c, key=c.get): "" for c in count.values()}


def node_label(graph: Graph, index: int, labels: Labels | None = None) -> str:
    """A process instance's display label, e.g. ``"Mining, China"`` (codes where ``labels`` has none)."""
    lab = labels or Labels()
    node = graph.nodes[index]
    coords = ", ".join(lab(label_kind(d), v) for d, v in node.coords)
    name = lab("process", node.process)
    return f"{name}, {coords}" if coords else name


def _short_node_label(graph: Graph, index: int, heads: Mapping[str, str], labels: Labels) -> str:
    """A node's label under its column head: its coords only when its process heads the column."""
    node = graph.nodes[index]
    if node.process in heads and node.coords:
        return ", ".join(labels(label_kind(d), v) for d, v in node.coords)
    return node_label(graph, index, labels)


def sankey(
    idata: az.InferenceData | xr.Dataset,
    graph: Graph,
    year: YearSelection = None,
    prob: float = 0.9,
    *,
    title: str | None = None,
    min_value: float | None = None,
    labels: Labels | None = None,
    unit: str | None = None,
) -> go.Figure:
    """An interactive Sankey of the whole system for one year or a period, coloured by product.

    Nodes are process instances, placed in one column per stage of the chain
    (from the boundary inputs to the sinks) and ordered by region within it, so
    labels do not overlap. A link's width is the posterior median of its
    flow (summed over the period per draw) and its hover label the median
    and interval. Links take their product's colour (:func:`product_colours`:
    ``product_colours`` of labels.yaml, else a palette in the system's order):
    pale for flows within a region, strong for trade between regions; flows
    the system file marks ``unregistered`` are red (:func:`is_unregistered`);
    structural zeros are left out. A legend names the colours.

    Parameters
    ----------
    idata : InferenceData or Dataset
        A fit or its posterior Dataset.
    graph : Graph
        The graph the model was built on.
    year : int, (start, end) or None
        One year, an inclusive period, or ``None`` for the whole period.
    prob : float
        Mass of the equal-tailed interval.
    title : str, optional
        Figure title (by default the system name, the period, unit and interval).
    min_value : float, optional
        See :func:`sankey_table`.
    labels : Labels, optional
        Display names of processes, regions and end uses, and product colours.
    unit : str, optional
        Unit in the hover labels and title (default: ``labels.unit``, else the system's).

    Returns
    -------
    plotly.graph_objects.Figure
        ``data[0]`` is the Sankey (``link.customdata`` holds ``[flow instance,
        interval label]`` per link); the other traces are legend entries only.
    """
    import plotly.graph_objects as go

    lab = labels or Labels()
    unit = unit or lab.unit or graph.system.unit
    table = sankey_table(idata, graph, year, prob, min_value=min_value)
    table["label"] = [format_interval(m, lo, hi, unit) for m, lo, hi in zip(table["median"], table["lo"], table["hi"])]
    used = sorted(set(table["source_index"]) | set(table["target_index"]))
    position = {n: i for i, n in enumerate(used)}
    lo_name, hi_name = interval_columns(prob)
    hues = product_colours(graph.system, lab)
    colours = [product_colour(p, trade=t, unregistered=u, colours=hues)
               for p, t, u in zip(table["product"], table["trade"], table["unregistered"])]
    link = {
        "source": [position[i] for i in table["source_index"]],
        "target": [position[i] for i in table["target_index"]],
        "value": table["median"].tolist(),
        "color": colours,
        "customdata": [[e, lab_] for e, lab_ in zip(table["edge"], table["label"])],
        "hovertemplate": (
            "%{source.label} → %{target.label}<br>%{customdata[0]}<br>"
            f"median [{lo_name}, {hi_name}]: %{{customdata[1]}}<extra></extra>"
        ),
    }
    throughput: dict[int, float] = {}
    for side in ("source_index", "target_index"):
        sums = table.groupby(side)["median"].sum()
        for n, v in sums.items():
            throughput[int(n)] = max(throughput.get(int(n), 0.0), float(v))
    xs, ys = _node_positions(graph, used, throughput) if used else ([], [])
    heads = _column_heads(graph, used)
    node = {"label": [_short_node_label(graph, i, heads, lab) for i in used], "color": NODE_COLOR, "pad": 8, "thickness": 12,
            "x": xs, "y": ys, "customdata": [node_label(graph, i, lab) for i in used],
            "hovertemplate": "%{customdata}<br>%{value}<extra></extra>"}
    period = table["period"].iloc[0] if len(table) else year_positions(list(graph.system.years), year)[1]
    fig = go.Figure(go.Sankey(arrangement="snap", node=node, link=link, valueformat=",.3r", valuesuffix=f" {unit}",
                              domain={"x": [0.0, 1.0], "y": [0.0, 0.93]}))
    head_x = {graph.nodes[n].process: x for n, x in zip(used, xs)}
    for process in heads:
        fig.add_annotation(x=head_x[process], y=1.0, xref="paper", yref="paper", showarrow=False, text=f"<b>{lab('process', process)}</b>",
                           xanchor="right" if head_x[process] > 0.9 else "left", yanchor="bottom", font={"size": 11})
    for name, colour in _sankey_legend(table, lab, hues):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=name, showlegend=True, hoverinfo="skip",
                                 marker={"size": 12, "symbol": "square", "color": colour}))
    fig.update_layout(
        title=title or f"{lab.title or graph.system.name}: flows {period}, {unit} (width: median; hover: {prob:.0%} interval)",
        font={"size": 11},
        height=max(560, 30 * max(len(v) for v in _columns(graph, used).values()) + 220) if used else 560,
        legend={"orientation": "h", "yanchor": "top", "y": -0.02, "xanchor": "left", "x": 0.0},
        xaxis={"visible": False}, yaxis={"visible": False}, plot_bgcolor="rgba(0,0,0,0)",
        margin={"l": 10, "r": 10, "t": 80, "b": 40},
    )
    return fig


def _sankey_legend(table: pd.DataFrame, labels: Labels, colours: Mapping[str, tuple[int, int, int]]) -> list[tuple[str, str]]:
    """(legend name, colour) of the link colours present, products in the order of ``colours``.

    The entry of unregistered links reads ``labels("legend", "unregistered")`` (default ``unregistered flows``).
    """
    lab = labels
    out = []
    present = set(zip(table["product"], table["trade"], table["unregistered"]))
    products = [p for p in colours if any(p == q for q, _, u in present if not u)]
    products += sorted({q for q, _, u in present if not u and q not in colours})
    for p in products:
        for trade in (False, True):
            if (p, trade, False) in present:
                out.append((f"{p or 'other flows'} ({'trade' if trade else 'domestic'})",
                            product_colour(p, trade=trade, colours=colours)))
    if any(u for _, _, u in present):
        out.append((lab.names.get("legend", {}).get("unregistered", "unregistered flows"), UNREGISTERED_COLOR))
    return out
