"""Figures of a fit: a Sankey of the whole system, uncertainty bands, trade triangle, counterfactual.

Static figures use matplotlib and return :class:`matplotlib.figure.Figure`
objects (nothing is shown); the interactive Sankey uses plotly, imported only
when it is drawn so the package imports without it.

Every interval is computed per draw first and summarised afterwards: sums over
years or over flow types are taken draw by draw, never by adding quantiles.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from bayesmfa.balance import edge_values
from bayesmfa.graph import Graph
from bayesmfa.summaries import PERIOD_COLUMNS, SAMPLE_DIMS, annual, interval_columns, summarize_array, with_period
from bayesmfa.system import System

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go

YearSelection = int | tuple[int, int] | None

#: Colours of ordinary and of unregistered links (flows marked ``unregistered: true`` in the system file).
LINK_COLOR = "rgba(90, 120, 160, 0.45)"
UNREGISTERED_COLOR = "rgba(200, 40, 40, 0.55)"
UNREGISTERED_TRADE_COLOR = "rgba(160, 20, 20, 0.85)"
#: Hue of each product's Sankey links (RGB); other products are grey.
PRODUCT_RGB: dict[str, tuple[int, int, int]] = {
    "concentrate": (140, 100, 60),
    "salt": (230, 150, 40),
    "oxide": (50, 110, 180),
    "metal": (110, 80, 160),
    "": (60, 150, 90),
}
NODE_COLOR = "rgba(60, 60, 60, 0.8)"

_STAT_COLUMNS = {"mean", "sd", "q50", "contraction", "weakly_informed"}


# ---------------------------------------------------------------------------
# display labels
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Labels:
    """Display labels of a case's codes, with its title, unit, sources and caveats.

    Read from a case's ``labels.yaml`` (:func:`load_labels`); a code without a
    label is shown as it is, so a case without a table falls back to code names.

    Attributes
    ----------
    names : mapping of kind -> (code -> label)
        Kinds: ``quantity``, ``region`` (also used for ``partner``), ``product``,
        ``end_use``, ``process``, ``flow``.
    title : str
        The case's title (report heading).
    unit : str
        The unit of flows as printed (e.g. ``"kt REO"``; empty: the system's).
    methods : str
        A paragraph on how the case is modelled (report).
    sources : tuple of str
        The data sources, one line each (report).
    caveats : tuple of str
        What a reader must keep in mind, one line each (report).
    regions : tuple of str
        Region codes in the order figures show them (one figure or line each);
        regions of the data not listed follow in their data order. Empty: the
        data's order.
    aggregate : str
        The code of the row that adds up all regions (e.g. ``"World"``): it is
        left out of figures that compare regions with each other. Empty: none.
    default_regions : mapping of str -> tuple of str
        Per figure quantity, the regions drawn when the summary does not name
        any (e.g. ``{"unregistered_mining": ("CN", "RoW")}``).
    key_quantities : tuple of str
        The quantities of the report's key-interval table, in order. Empty:
        every quantity (see :func:`bayesmfa.report.key_intervals`).
    """

    names: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    title: str = ""
    unit: str = ""
    methods: str = ""
    sources: tuple[str, ...] = ()
    caveats: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    aggregate: str = ""
    default_regions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    key_quantities: tuple[str, ...] = ()

    def __call__(self, kind: str, code: Any) -> str:
        """The label of ``code`` in table ``kind``; the code itself when there is none."""
        text = str(code)
        return str(self.names.get(kind, {}).get(text, text))

    def order_regions(self, values: Sequence[str]) -> list[str]:
        """``values`` in display order: those in :attr:`regions` first, in that order, then the rest as given."""
        values = [str(v) for v in values]
        first = [r for r in self.regions if r in values]
        return first + [r for r in values if r not in first]

    def regions_for(self, quantity: str, present: Sequence[str]) -> list[str]:
        """The regions of a figure of ``quantity``: ``present`` in display order, else :attr:`default_regions`."""
        return self.order_regions(present) or list(self.default_regions.get(quantity, ()))


#: Top-level keys of a ``labels.yaml`` (every one optional).
LABEL_KEYS = ("title", "unit", "methods", "sources", "caveats", "labels", "regions", "aggregate", "default_regions",
              "key_quantities")


def load_labels(path: str | Path) -> Labels:
    """A case's label table (``labels.yaml``); :class:`Labels` with no names when the file does not exist.

    The file holds ``title``, ``unit``, ``methods`` (text), ``sources`` and
    ``caveats`` (lists of text) and ``labels``: a mapping of kind (``quantity``,
    ``region``, ``product``, ``end_use``, ``process``, ``flow``) to a mapping
    of code to display label. The case's display choices: ``regions`` (list of
    region codes in display order), ``aggregate`` (the code of the all-regions
    row), ``default_regions`` (quantity -> list of region codes drawn when the
    summary names none) and ``key_quantities`` (list: the report's key table).
    Every key is optional (see :class:`Labels`).

    Raises
    ------
    ValueError
        One line naming the file and the key, when it is not YAML of that
        shape (an unknown key, or a value of the wrong type).
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        return Labels()
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from exc
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a mapping at the top, got {type(doc).__name__}")
    unknown = [str(k) for k in doc if k not in LABEL_KEYS]
    if unknown:
        raise ValueError(f"{path}: unknown key {unknown[0]!r} (known: {', '.join(LABEL_KEYS)})")
    names = doc.get("labels") or {}
    if not isinstance(names, dict) or not all(isinstance(v, dict) for v in names.values()):
        raise ValueError(f"{path}: 'labels' must map each kind to a mapping of code -> label")
    for key in ("title", "unit", "methods", "aggregate"):
        if doc.get(key) is not None and not isinstance(doc[key], str | int | float):
            raise ValueError(f"{path}: '{key}' must be text, got {type(doc[key]).__name__}")
    lists = {key: _text_list(doc, key, path) for key in ("sources", "caveats", "regions", "key_quantities")}
    defaults = doc.get("default_regions") or {}
    if not isinstance(defaults, dict):
        raise ValueError(f"{path}: 'default_regions' must map a quantity to a list of region codes, got {type(defaults).__name__}")
    default_regions = {str(q): _text_list(defaults, q, path, f"default_regions.{q}") for q in defaults}
    return Labels(
        names={str(k): {str(c): str(lab) for c, lab in v.items()} for k, v in names.items()},
        title=str(doc.get("title") or ""),
        unit=str(doc.get("unit") or ""),
        methods=" ".join(str(doc.get("methods") or "").split()),
        aggregate=str(doc.get("aggregate") or ""),
        default_regions=default_regions,
        **lists,
    )


def _text_list(doc: Mapping[str, Any], key: str, path: Path, where: str | None = None) -> tuple[str, ...]:
    """``doc[key]`` as a tuple of stripped text (absent: empty); anything but a list of scalars is an error naming the key."""
    value = doc.get(key) or []
    if not isinstance(value, list) or any(isinstance(v, dict | list) for v in value):
        raise ValueError(f"{path}: '{where or key}' must be a list of text, got {type(value).__name__}")
    return tuple(str(v).strip() for v in value)


# ---------------------------------------------------------------------------
# number formatting
# ---------------------------------------------------------------------------


def format_number(x: float) -> str:
    """A flow value with about three significant figures and no exponent for ordinary magnitudes.

    Parameters
    ----------
    x : float
        The value.

    Returns
    -------
    str
        E.g. ``"1,235"``, ``"123"``, ``"12.3"``, ``"1.23"``, ``"0.0123"``.
    """
    if not np.isfinite(x):
        return str(x)
    a = abs(x)
    if a == 0:
        return "0"
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def format_interval(median: float, lo: float, hi: float, unit: str = "") -> str:
    """``"median [lo, hi] unit"`` with :func:`format_number` applied to each number.

    Parameters
    ----------
    median, lo, hi : float
        Posterior median and interval bounds.
    unit : str
        Appended after a space when not empty.

    Returns
    -------
    str
        The label.
    """
    text = f"{format_number(median)} [{format_number(lo)}, {format_number(hi)}]"
    return f"{text} {unit}" if unit else text


# ---------------------------------------------------------------------------
# Sankey
# ---------------------------------------------------------------------------


def _posterior(idata: az.InferenceData | xr.Dataset) -> xr.Dataset:
    if isinstance(idata, az.InferenceData):
        return idata.posterior
    if isinstance(idata, xr.Dataset):
        return idata
    raise TypeError(f"expected InferenceData or xarray.Dataset, got {type(idata).__name__}")


def _year_positions(years: Sequence[int], year: YearSelection) -> tuple[np.ndarray, str]:
    """Positions of the selected years in ``years`` and a label for the selection."""
    years = [int(y) for y in years]
    if year is None:
        return np.arange(len(years)), f"{years[0]}-{years[-1]}" if len(years) > 1 else str(years[0])
    if isinstance(year, tuple | list):
        if len(year) != 2:
            raise ValueError(f"a period is (start, end), got {year!r}")
        start, end = int(year[0]), int(year[1])
        if end < start:
            raise ValueError(f"period end {end} is before its start {start}")
        pos = np.array([i for i, y in enumerate(years) if start <= y <= end], dtype=int)
        if not pos.size:
            raise ValueError(f"no year of the fit ({years[0]}-{years[-1]}) lies in {start}-{end}")
        return pos, f"{start}-{end}"
    y = int(year)
    if y not in years:
        raise ValueError(f"year {y} is not in the fit ({years[0]}-{years[-1]})")
    return np.array([years.index(y)]), str(y)


def is_unregistered(system: System, flow: str) -> bool:
    """Whether flow type ``flow`` is unregistered, as the system file marks it (never guessed from names).

    A flow is unregistered when the system file says ``unregistered: true`` on
    it or on its source process (:attr:`bayesmfa.system.FlowType.unregistered`).
    A system without the key (e.g. stored in a ``posterior.nc`` written before
    the flag existed) has no unregistered flow: its Sankey draws none red.
    """
    return bool(getattr(system.flows[flow], "unregistered", False))


def node_display_label(graph: Graph, index: int) -> str:
    """A short label of a process instance: the process name then its coords, e.g. ``"mining CN"``."""
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
    ds = _posterior(idata)
    values = edge_values(ds, graph)  # (..., year, edge)
    first = next(iter(graph.system.flows))
    dims = ds[f"flow_{first}"].dims
    year_axis = dims.index("year")
    years = ds["year"].values if "year" in ds.coords else graph.system.years
    pos, period = _year_positions(list(years), year)
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


def product_colour(product: str, *, trade: bool = False, unregistered: bool = False) -> str:
    """The ``rgba`` colour of a Sankey link: its product's hue, lighter for domestic and stronger for trade flows.

    Unregistered flows (:func:`is_unregistered`) are :data:`UNREGISTERED_COLOR`
    (a darker red when traded); a product without a colour of its own is grey.
    """
    if unregistered:
        return UNREGISTERED_TRADE_COLOR if trade else UNREGISTERED_COLOR
    r, g, b = PRODUCT_RGB.get(product, (120, 120, 120))
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
    (mining, cracking, ..., consumption) and ordered by region within it, so
    labels do not overlap. A link's width is the posterior median of its
    flow (summed over the period per draw) and its hover label the median
    and interval. Links take their product's colour (:data:`PRODUCT_RGB`):
    pale for flows within a region, strong for trade between regions;
    flows the system file marks ``unregistered`` are red (:func:`is_unregistered`); structural zeros are left out. A legend
    names the colours.

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
        Display names of processes, regions and end uses.
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
    colours = [product_colour(p, trade=t, unregistered=u) for p, t, u in zip(table["product"], table["trade"], table["unregistered"])]
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
    period = table["period"].iloc[0] if len(table) else _year_positions(list(graph.system.years), year)[1]
    fig = go.Figure(go.Sankey(arrangement="snap", node=node, link=link, valueformat=",.3r", valuesuffix=f" {unit}",
                              domain={"x": [0.0, 1.0], "y": [0.0, 0.93]}))
    head_x = {graph.nodes[n].process: x for n, x in zip(used, xs)}
    for process in heads:
        fig.add_annotation(x=head_x[process], y=1.0, xref="paper", yref="paper", showarrow=False, text=f"<b>{lab('process', process)}</b>",
                           xanchor="right" if head_x[process] > 0.9 else "left", yanchor="bottom", font={"size": 11})
    for name, colour in _sankey_legend(table, lab):
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


def _sankey_legend(table: pd.DataFrame, labels: Labels | None = None) -> list[tuple[str, str]]:
    """(legend name, colour) of the link colours present, products in :data:`PRODUCT_RGB` order.

    The entry of unregistered links reads ``labels("legend", "unregistered")`` (default ``unregistered flows``).
    """
    lab = labels or Labels()
    out = []
    present = set(zip(table["product"], table["trade"], table["unregistered"]))
    products = [p for p in PRODUCT_RGB if any(p == q for q, _, u in present if not u)]
    products += sorted({q for q, _, u in present if not u and q not in PRODUCT_RGB})
    for p in products:
        for trade in (False, True):
            if (p, trade, False) in present:
                out.append((f"{p or 'other flows'} ({'trade' if trade else 'domestic'})", product_colour(p, trade=trade)))
    if any(u for _, _, u in present):
        out.append((lab.names.get("legend", {}).get("unregistered", "unregistered flows"), UNREGISTERED_COLOR))
    return out


# ---------------------------------------------------------------------------
# uncertainty bands from a summary table
# ---------------------------------------------------------------------------


def _blank(s: pd.Series) -> pd.Series:
    return s.isna() | (s.astype(str).str.strip() == "")


def _text(values: pd.Series) -> pd.Series:
    """Values as stripped text, with integral floats written as integers (``2020.0`` -> ``2020``)."""
    def one(v: Any) -> str:
        if isinstance(v, float | np.floating) and np.isfinite(v) and float(v).is_integer():
            return str(int(v))
        return str(v).strip()

    return values.map(one)


def _matches(col: pd.Series, value: Any) -> pd.Series:
    """Rows of ``col`` equal to ``value`` (or any of a list), compared as text; ``None``/``""`` match blanks."""
    values = list(value) if isinstance(value, list | tuple | set) else [value]
    text = _text(col)
    out = pd.Series(False, index=col.index)
    for v in values:
        out |= _blank(col) if v is None or str(v) == "" else text == _text(pd.Series([v])).iloc[0]
    return out


def quantile_columns(df: pd.DataFrame) -> tuple[str, str]:
    """The lowest and highest ``qNN`` columns other than ``q50`` of a summary table (``q05``/``q95`` for a 90% table).

    Raises
    ------
    ValueError
        When the table has no ``qNN`` column below or above 50.
    """
    cols = []
    for c in df.columns:
        if isinstance(c, str) and c.startswith("q") and c != "q50":
            try:
                cols.append((float(c[1:]), c))
            except ValueError:
                continue
    lows = [x for x in cols if x[0] < 50]
    highs = [x for x in cols if x[0] > 50]
    if not lows or not highs:
        raise ValueError(f"summary has no interval columns (qNN); columns: {list(df.columns)}")
    return min(lows)[1], max(highs)[1]


def select_rows(summary: pd.DataFrame, quantity: str, filters: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Rows of one quantity passing the filters.

    Parameters
    ----------
    summary : DataFrame
        A tidy summary table (``quantity`` column, dim columns, ``year_start``/``year_end``
        or ``year``, ``mean, sd, qNN``).
    quantity : str
        Value of the ``quantity`` column.
    filters : mapping of column -> value or list of values, optional
        Compared as text; ``None`` or ``""`` selects blanks. ``year`` on a
        summary with ``year_start``/``year_end`` selects the yearly rows of
        that year.

    Returns
    -------
    DataFrame
        The matching rows (a copy).

    Raises
    ------
    ValueError
        When the quantity is absent, a filter column is missing, or no row is left.
    """
    if "quantity" not in summary.columns:
        raise ValueError("summary has no 'quantity' column")
    rows = summary[summary["quantity"].astype(str) == quantity]
    if rows.empty:
        known = sorted(summary["quantity"].astype(str).unique())
        raise ValueError(f"no rows for quantity {quantity!r} in the summary; quantities present: {known}")
    for col, value in (filters or {}).items():
        if col == "year" and "year" not in rows.columns and set(PERIOD_COLUMNS) <= set(rows.columns):
            rows = annual(rows)
        if col not in rows.columns:
            raise ValueError(f"cannot filter {quantity!r} on {col!r}: no such column")
        rows = rows[_matches(rows[col], value)]
        if rows.empty:
            raise ValueError(f"no rows for quantity {quantity!r} with {col}={value!r}")
    return rows.copy()


def dim_columns(rows: pd.DataFrame) -> list[str]:
    """The dim columns of summary rows that carry a value in some row (``region``, ``end_use``...).

    Not ``quantity``, ``year``/``year_start``/``year_end``, ``unit``, ``description``
    nor a statistic (:func:`is_stat_column`); columns blank in every row are left out.
    """
    out = []
    for c in rows.columns:
        if c in ("quantity", "year", *PERIOD_COLUMNS, "unit", "description") or is_stat_column(c):
            continue
        if not _blank(rows[c]).all():
            out.append(c)
    return out


def is_stat_column(column: Any) -> bool:
    """Whether a summary column holds a statistic (``mean``, ``qNN``, ``prior_qNN``, ``contraction``, ...), not a dim."""
    if column in _STAT_COLUMNS:
        return True
    name = str(column).removeprefix("prior_")
    return name[:1] == "q" and name[1:].replace(".", "").isdigit()


def new_axes(ax: Axes | None, figsize: tuple[float, float] = (7.6, 4.2)) -> tuple[Figure, Axes]:
    """``ax`` and its figure, or a new figure of ``figsize`` inches (constrained layout) with one axes."""
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def unit_of(rows: pd.DataFrame, unit: str | None) -> str:
    """The unit to print of summary rows: ``unit`` when given, else the rows' ``unit`` column (one value), else ``""``."""
    if unit:
        return unit
    if "unit" in rows.columns:
        units = [u for u in dict.fromkeys(rows["unit"].astype(str).str.strip()) if u and u != "nan"]
        if len(units) == 1:
            return units[0]
    return ""


def interval_text(lo: str, hi: str) -> str:
    """``"median and 90% interval"`` for the columns ``q05``/``q95``."""
    return f"median and {_interval_label(lo, hi)} interval"


def value_axis_label(unit: str, lo: str, hi: str, *, center: str = "q50") -> str:
    """Y-axis label with the unit and the interval level, e.g. ``"kt REO (median, 90% interval)"``.

    For a probability drawn from the ``mean`` column no interval is shown, so none is named.
    """
    what = "posterior mean" if center == "mean" else f"median, {_interval_label(lo, hi)} interval"
    return f"{unit} ({what})" if unit else what


def outside_legend(ax: Axes, ncols: int = 1, title: str | None = None) -> None:
    """Draw the legend of ``ax`` to the right of its axes, clear of the data (nothing when it has no labelled artist)."""
    handles, names = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, names, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize="small",
                  ncols=ncols, title=title, title_fontsize="small", frameon=False)


def bands(
    summary: pd.DataFrame,
    quantity: str,
    *,
    by: str | None = "region",
    filters: Mapping[str, Any] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    unit: str | None = None,
    center: str = "q50",
    band: bool = True,
    ylim: tuple[float, float] | None = None,
    label_prefix: str = "",
    labels: Labels | None = None,
    legend: bool = True,
) -> Figure:
    """Uncertainty bands over years of one quantity, one line per value of ``by``.

    The interval (lowest to highest ``qNN`` column, e.g. q05 to q95) is
    shaded and the median drawn as a line. Cumulative rows
    (``year_start < year_end``) are skipped. The y axis names the unit and
    the interval level; the legend sits outside the axes.

    Parameters
    ----------
    summary : DataFrame
        Tidy summary table (``quantity``, dim columns, ``year_start``/``year_end``
        or ``year``, ``mean, sd, qNN``, optionally ``unit``).
    quantity : str
        The quantity to draw.
    by : str or None
        Column giving one line per value; ``None`` (or a column blank for this
        quantity) draws a single line.
    filters : mapping, optional
        Column -> value (or list of values) restricting the rows.
    ax : matplotlib Axes, optional
        Draw into these axes (a new figure otherwise).
    title : str, optional
        Axes title (default: the quantity's label and the filters).
    unit : str, optional
        Unit on the y axis (default: the rows' ``unit`` column).
    center : str
        Column drawn as the line (``q50``; ``mean`` for probabilities).
    band : bool
        Whether to shade the interval.
    ylim : (float, float), optional
        Y-axis limits (e.g. ``(0, 1)`` for shares).
    label_prefix : str
        Prepended to each legend label (to tell quantities apart on shared axes).
    labels : Labels, optional
        Display names of codes (default: the codes).
    legend : bool
        Draw the legend (outside the axes, on the right).

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the axes.

    Raises
    ------
    ValueError
        When no yearly row matches, or when the rows are not unique per line
        and year (filter the remaining dims).
    """
    labels = labels or Labels()
    rows = annual(select_rows(summary, quantity, filters))
    if rows.empty:
        raise ValueError(f"quantity {quantity!r} has no yearly rows (only cumulative ones) with filters {dict(filters or {})}")
    lo, hi = quantile_columns(rows)
    if center not in rows.columns:
        raise ValueError(f"summary has no column {center!r}")
    if by is not None and by in rows.columns and not _blank(rows[by]).all():
        key = rows[by].astype(str)
    else:
        by = None
        key = pd.Series(quantity, index=rows.index)
    dup = pd.DataFrame({"key": key, "year": rows["year"]}).duplicated()
    if dup.any():
        other = [c for c in dim_columns(rows) if c != by]
        raise ValueError(
            f"quantity {quantity!r} has several rows per {by or 'line'} and year; filter on {other or 'the other columns'}"
        )
    fig, ax = new_axes(ax)
    kind = label_kind(by) if by else "quantity"
    for k in pd.unique(key):
        part = rows[key == k].sort_values("year")
        x = part["year"].to_numpy()
        (line,) = ax.plot(x, part[center].astype(float).to_numpy(), marker="." if len(x) < 3 else None,
                          label=f"{label_prefix}{labels(kind, k)}")
        if band and len(x) == 1:  # one year (a single-year system): the interval as an error bar, a band has no width
            mid, low, high = (float(part[c].iloc[0]) for c in (center, lo, hi))
            ax.errorbar(x, [mid], yerr=[[mid - low], [high - mid]], color=line.get_color(), capsize=6, linewidth=1.5)
        elif band:
            ax.fill_between(x, part[lo].astype(float).to_numpy(), part[hi].astype(float).to_numpy(), color=line.get_color(),
                            alpha=0.25, linewidth=0)
    if ylim is not None:
        ax.set_ylim(*ylim)
    if title is None:
        where = ", ".join(labels(label_kind(c), v) for c, v in (filters or {}).items() if not isinstance(v, list | tuple))
        title = f"{labels('quantity', quantity)}, {where}" if where else labels("quantity", quantity)
    ax.set_title(title)
    ax.set_xlabel("year")
    ax.set_ylabel(value_axis_label(unit_of(rows, unit), lo, hi, center=center if band else "mean"))
    if rows["year"].nunique() == 1:  # not a century of empty axis around one year
        year = int(rows["year"].iloc[0])
        ax.set_xlim(year - 1, year + 1)
        ax.set_xticks([year])
    else:
        ax.xaxis.get_major_locator().set_params(integer=True)
    if legend:
        outside_legend(ax, ncols=2 if key.nunique() > 8 else 1)
    ax.grid(alpha=0.3)
    return fig


def label_kind(column: str | None) -> str:
    """The kind of :class:`Labels` a summary column's codes are looked up in (``partner``, ``origin``, ``destination``: ``region``)."""
    return "region" if column in ("region", "partner", "origin", "destination") else str(column)


def without_self_pairs(rows: pd.DataFrame) -> pd.DataFrame:
    """Summary rows whose ``partner`` is not their own ``region`` (a region's structural zero with itself left out)."""
    if "partner" not in rows.columns or "region" not in rows.columns:
        return rows
    same = ~_blank(rows["partner"]) & (rows["partner"].astype(str) == rows["region"].astype(str))
    return rows[~same]


# ---------------------------------------------------------------------------
# net trade between pairs, and the trade triangle
# ---------------------------------------------------------------------------


def net_pair_flows(
    idata: az.InferenceData | xr.Dataset,
    flow_names: Iterable[str],
    prob: float = 0.9,
    *,
    year: YearSelection | str = "each",
    regions: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Net trade between each pair of regions, computed per draw then summarised.

    The given flow types (each with ``origin`` and ``destination`` dims) are
    summed per draw over all their other dims, and the net flow from A to B
    is ``T(A->B) - T(B->A)`` per draw.

    Parameters
    ----------
    idata : InferenceData or Dataset
        A fit or its posterior Dataset with ``flow_<name>`` variables.
    flow_names : iterable of str
        Flow types to add up (with or without the ``flow_`` prefix).
    prob : float
        Mass of the equal-tailed interval.
    year : "each", int, (start, end) or None
        ``"each"``: one row per pair and year; an int: that year; a period
        (or ``None`` for the whole fit) summed per draw.
    regions : sequence of str, optional
        Only pairs within these regions.

    Returns
    -------
    DataFrame
        ``quantity`` (``net_trade``), ``region``, ``partner``, ``year_start``,
        ``year_end`` (integers, as in ``summary.csv``), ``mean, sd, qNN, q50, qNN``: one row per unordered pair (region before
        partner in coord order); positive means region exports to partner on net.
    """
    ds = _posterior(idata)
    total: xr.DataArray | None = None
    names = [n if n.startswith("flow_") else f"flow_{n}" for n in flow_names]
    if not names:
        raise ValueError("no flow names given")
    for name in names:
        if name not in ds:
            raise ValueError(f"{name} is not in the posterior")
        da = ds[name]
        if "origin" not in da.dims or "destination" not in da.dims:
            raise ValueError(f"{name} has no origin/destination dims (dims {da.dims})")
        extra = [d for d in da.dims if d not in (*SAMPLE_DIMS, "sample", "year", "origin", "destination")]
        da = da.sum(extra) if extra else da
        total = da if total is None else total + da
    assert total is not None
    if regions is not None:
        total = total.sel(origin=list(regions), destination=list(regions))
    back = total.rename({"origin": "destination", "destination": "origin"})
    net = (total - back.transpose(*total.dims)).rename({"origin": "region", "destination": "partner"})
    years = [int(y) for y in net["year"].values]
    span = (years[0], years[-1])
    if not (isinstance(year, str) and year == "each"):
        pos, _ = _year_positions(years, year)  # type: ignore[arg-type]
        span = (years[pos[0]], years[pos[-1]])
        net = net.isel(year=pos).sum("year")
    df = with_period(summarize_array(net, prob, "net_trade"), *span)
    order = {str(r): i for i, r in enumerate(net["region"].values)}
    keep = [order[str(r)] < order[str(p)] for r, p in zip(df["region"], df["partner"])]
    df = df[keep].reset_index(drop=True)
    lo, hi = interval_columns(prob)
    return df[["quantity", "region", "partner", *PERIOD_COLUMNS, "mean", "sd", lo, "q50", hi]]


def trade_triangle(
    net: pd.DataFrame,
    year: int | tuple[int, int] | None = None,
    *,
    regions: Sequence[str] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    unit: str | None = None,
) -> Figure:
    """Three regions at the corners of a triangle with an arrow for the net flow between each pair.

    An arrow points the way of the median net flow, its width scales with
    the median, and its label gives the median and interval; an arrow whose
    interval spans zero (direction uncertain) is grey and dashed.

    Parameters
    ----------
    net : DataFrame
        Per-pair net flows: ``region, partner, q50`` and interval columns
        (``q05, q95``), optionally ``year``; positive = region exports to
        partner on net (as from :func:`net_pair_flows`). Either order of a
        pair may be given.
    year : int or (start, end), optional
        Selects the rows of one year, or of a period (``year_start``, ``year_end``);
        required when the table has several.
    regions : sequence of three str, optional
        The corners (default: the three regions in the table).
    ax : matplotlib Axes, optional
        Draw into these axes.
    title : str, optional
        Axes title.
    unit : str, optional
        Unit in the labels (default: the table's ``unit`` column, else none).

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    rows = net
    if "quantity" in rows.columns and (rows["quantity"].astype(str) == "net_trade").any():
        rows = rows[rows["quantity"].astype(str) == "net_trade"]
    if "year" not in rows.columns and set(PERIOD_COLUMNS) <= set(rows.columns):
        if isinstance(year, tuple | list):  # a period summed per draw
            rows = rows[(rows["year_start"] == int(year[0])) & (rows["year_end"] == int(year[1]))]
        else:
            rows = annual(rows)
    if "year" in rows.columns:
        if year is not None and not isinstance(year, tuple | list):
            rows = rows[_matches(rows["year"], year)]
        elif rows["year"].astype(str).nunique() > 1:
            raise ValueError("net table has several years: pass year")
    if rows.empty:
        raise ValueError(f"no net trade rows for year {year}")
    lo_col, hi_col = quantile_columns(rows)
    unit = unit_of(rows, unit)
    if regions is None:
        regions = list(dict.fromkeys([*rows["region"].astype(str), *rows["partner"].astype(str)]))
    regions = [str(r) for r in regions]
    if len(regions) != 3:
        raise ValueError(f"a trade triangle needs three regions, got {regions}")
    angles = np.deg2rad([90.0, 210.0, 330.0])
    corner = {r: np.array([np.cos(a), np.sin(a)]) for r, a in zip(regions, angles)}
    pairs = []
    for i in range(3):
        for j in range(i + 1, 3):
            a, b = regions[i], regions[j]
            fwd = rows[(rows["region"].astype(str) == a) & (rows["partner"].astype(str) == b)]
            bwd = rows[(rows["region"].astype(str) == b) & (rows["partner"].astype(str) == a)]
            if len(fwd):
                r = fwd.iloc[0]
                med, lo, hi = float(r["q50"]), float(r[lo_col]), float(r[hi_col])
            elif len(bwd):
                r = bwd.iloc[0]
                med, lo, hi = -float(r["q50"]), -float(r[hi_col]), -float(r[lo_col])
            else:
                continue
            if med < 0:
                a, b, med, lo, hi = b, a, -med, -hi, -lo
            pairs.append((a, b, med, lo, hi))
    fig, ax = new_axes(ax, figsize=(6.0, 5.6))
    biggest = max([p[2] for p in pairs] + [1e-12])
    for a, b, med, lo, hi in pairs:
        p, q = corner[a], corner[b]
        d = (q - p) / np.linalg.norm(q - p)
        start, end = p + 0.22 * d, q - 0.22 * d
        certain = lo > 0
        width = 1.0 + 9.0 * med / biggest
        ax.annotate(
            "", xy=tuple(end), xytext=tuple(start),
            arrowprops={"arrowstyle": "-|>,head_width=0.5,head_length=0.9", "lw": width, "mutation_scale": 12,
                        "color": "#2b5d8a" if certain else "#999999", "linestyle": "-" if certain else "--"},
        )
        mid = (start + end) / 2
        normal = np.array([-d[1], d[0]])
        outward = normal if np.dot(normal, mid) > 0 else -normal
        shift = 0.22 + 0.3 * abs(outward[0])  # labels are wide: push them further off slanted edges
        txt = ax.text(*(mid + shift * outward), f"{a} → {b}\n{format_interval(med, lo, hi, unit)}", ha="center", va="center",
                      fontsize=9, bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.8})
        txt.set_gid(f"net:{a}->{b}")
    for r, c in corner.items():
        ax.scatter([c[0]], [c[1]], s=1800, color="#f0f0f0", edgecolor="black", zorder=3)
        ax.text(c[0], c[1], r, ha="center", va="center", fontsize=12, fontweight="bold", zorder=4)
    ax.set_xlim(-1.7, 1.7)
    ax.set_ylim(-1.0, 1.35)
    ax.set_aspect("equal")
    ax.axis("off")
    yr = f" {year[0]}-{year[1]}" if isinstance(year, tuple | list) else f" {year}" if year is not None else ""
    in_unit = f", {unit}" if unit else ""
    ax.set_title(title or f"Net trade{yr}{in_unit}\nmedian [{_interval_label(lo_col, hi_col)} interval]; grey dashed = direction uncertain",
                 fontsize="medium")
    return fig


# ---------------------------------------------------------------------------
# prior vs posterior: how far the records moved each quantity
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Panel:
    """One axes of :func:`prior_posterior_bands`.

    Attributes
    ----------
    quantity : str
        Value of the summary's ``quantity`` column.
    filters : mapping of column -> value
        Selects one row per year (or a single row, e.g. a cumulative one).
    title : str, optional
        Axes title (default: the quantity and the filters).
    unit : str
        Y-axis label, e.g. ``"kt REO"`` or ``"share"``.
    log : bool
        Logarithmic y axis: for flows whose prior spans orders of magnitude
        (the posterior band would be a flat line at the bottom of a linear axis).
    """

    quantity: str
    filters: Mapping[str, Any] = field(default_factory=dict)
    title: str | None = None
    unit: str = ""
    log: bool = False


#: Colours of the prior (light grey band, grey dashed median) and of the posterior (band and median).
PRIOR_COLOR = "0.55"
PRIOR_BAND_COLOR = "0.85"
POSTERIOR_COLOR = "#2b5d8a"


def _interval_label(lo: str, hi: str) -> str:
    """``"90%"`` for the columns ``q05``/``q95``."""
    mass = float(hi[1:]) - float(lo[1:])
    return f"{mass:g}%"


def prior_posterior_bands(
    summary: pd.DataFrame,
    panels: Sequence[Panel],
    *,
    ncols: int = 3,
    title: str | None = None,
) -> Figure:
    """Prior and posterior intervals side by side, one axes per panel.

    For a quantity with one row per year: the prior interval as a light grey
    band with its median dashed, the posterior interval as a coloured band
    with its median as a solid line, year on x. For a single row (e.g. a
    cumulative one): the two intervals as bars with their medians marked.
    Each title notes the contraction (``1 - posterior width / prior width``
    of the linear widths, also on a log axis; for a time series its median
    over years).

    Parameters
    ----------
    summary : DataFrame
        Tidy summary with ``q50``, interval columns (``q05``/``q95``) and the
        prior's (``prior_q05, prior_q50, prior_q95``; see
        :func:`bayesmfa.summaries.add_prior_columns`).
    panels : sequence of Panel
        What to draw; one axes each, in order, ``ncols`` per row.
    ncols : int
        Axes per row.
    title : str, optional
        Figure title (default: ``"Prior and posterior 90% intervals"``, the
        mass following the interval columns).

    Returns
    -------
    matplotlib.figure.Figure
        ``len(panels)`` axes with data (unused grid cells are removed).

    Raises
    ------
    ValueError
        When no panel is given, the summary has no prior columns, or a panel
        selects no row or several rows per year.
    """
    if not panels:
        raise ValueError("no panel to draw")
    lo, hi = quantile_columns(summary)
    p_lo, p_mid, p_hi = f"prior_{lo}", "prior_q50", f"prior_{hi}"
    missing = [c for c in (p_lo, p_mid, p_hi) if c not in summary.columns]
    if missing:
        raise ValueError(f"summary has no prior columns {missing}: fit with prior draws (bayesmfa.fit(prior_draws=...))")
    ncols = max(1, min(ncols, len(panels)))
    nrows = -(-len(panels) // ncols)
    fig = Figure(figsize=(3.6 * ncols, 2.9 * nrows + 0.5), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(panels):]:
        fig.delaxes(ax)
    for ax, panel in zip(axes, panels):
        rows = select_rows(summary, panel.quantity, panel.filters)
        yearly = annual(rows)
        if len(yearly) > 1:
            if yearly["year"].duplicated().any():
                raise ValueError(f"panel {panel.quantity!r} {dict(panel.filters)} has several rows per year; "
                                 f"filter on {dim_columns(yearly)}")
            note = _prior_posterior_series(ax, yearly.sort_values("year"), (lo, "q50", hi), (p_lo, p_mid, p_hi))
        elif len(rows) == 1:
            note = _prior_posterior_bars(ax, rows.iloc[0], (lo, "q50", hi), (p_lo, p_mid, p_hi))
        else:
            raise ValueError(f"panel {panel.quantity!r} {dict(panel.filters)} selects {len(rows)} rows and no yearly series")
        where = ", ".join(f"{v}" for v in panel.filters.values())
        head = panel.title or (f"{panel.quantity} ({where})" if where else panel.quantity)
        ax.set_title(f"{head}\n{note}" if note else head, fontsize="medium")
        unit = unit_of(rows, panel.unit)
        scale = ", log scale" if panel.log else ""
        ax.set_ylabel(f"{unit} ({_interval_label(lo, hi)} intervals{scale})" if unit else f"{_interval_label(lo, hi)} intervals{scale}")
        ax.grid(alpha=0.3)
        if panel.log:
            _log_axis(ax, rows, (lo, "q50", hi, p_mid))
        else:
            ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0]))
    handles = [
        Patch(facecolor=PRIOR_BAND_COLOR, edgecolor=PRIOR_COLOR, label="prior interval"),
        Line2D([], [], color=PRIOR_COLOR, linestyle="--", label="prior median"),
        Patch(facecolor=POSTERIOR_COLOR, alpha=0.45, label="posterior interval"),
        Line2D([], [], color=POSTERIOR_COLOR, label="posterior median"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=4, fontsize="small", frameon=False)
    fig.suptitle(title or f"Prior and posterior {_interval_label(lo, hi)} intervals")
    return fig


def _log_axis(ax: Axes, rows: pd.DataFrame, columns: tuple[str, ...]) -> None:
    """Log y axis reaching down to a tenth of the smallest positive posterior value or prior median.

    The prior's lower quantile of a heavy-tailed flow can be many orders of magnitude below
    anything the records allow; the band is cut there rather than squeezing the posterior.
    """
    values = rows[list(columns)].apply(pd.to_numeric, errors="coerce").to_numpy().ravel()
    positive = values[np.isfinite(values) & (values > 0)]
    ax.set_yscale("log")
    if len(positive):
        ax.set_ylim(bottom=float(positive.min()) / 10)


def _contraction_text(lo, hi, prior_lo, prior_hi, several: bool) -> str:  # noqa: ANN001
    """``"contraction 0.62 (median over years)"``; empty when undefined (zero prior widths).

    The same definition as the summary's ``contraction`` column (:func:`bayesmfa.summaries.interval_contraction`).
    """
    from bayesmfa.summaries import WEAKLY_INFORMED, interval_contraction

    c = np.atleast_1d(interval_contraction(lo, hi, prior_lo, prior_hi))
    c = c[np.isfinite(c)]
    if not len(c):
        return ""
    value = float(np.median(c))
    return f"contraction {value:.2f}" + (" (median over years)" if several else "") + (", weak" if value < WEAKLY_INFORMED else "")


def _prior_posterior_series(ax: Axes, rows: pd.DataFrame, post: tuple[str, str, str], prior: tuple[str, str, str]) -> str:
    """Bands over years; returns the contraction text."""
    x = rows["year"].to_numpy()
    val = {c: rows[c].astype(float).to_numpy() for c in (*post, *prior)}
    ax.fill_between(x, val[prior[0]], val[prior[2]], color=PRIOR_BAND_COLOR, linewidth=0)
    ax.plot(x, val[prior[1]], color=PRIOR_COLOR, linestyle="--", linewidth=1.0)
    ax.fill_between(x, val[post[0]], val[post[2]], color=POSTERIOR_COLOR, alpha=0.45, linewidth=0)
    ax.plot(x, val[post[1]], color=POSTERIOR_COLOR, linewidth=1.5)
    ax.set_xlabel("year")
    ax.xaxis.get_major_locator().set_params(integer=True)
    return _contraction_text(val[post[0]], val[post[2]], val[prior[0]], val[prior[2]], several=True)


def _prior_posterior_bars(ax: Axes, row: pd.Series, post: tuple[str, str, str], prior: tuple[str, str, str]) -> str:
    """The two intervals of one row as bars; returns the contraction text."""
    for x, cols, face, edge in ((0, prior, PRIOR_BAND_COLOR, PRIOR_COLOR), (1, post, POSTERIOR_COLOR, POSTERIOR_COLOR)):
        low, mid, high = (float(row[c]) for c in cols)
        ax.bar(x, high - low, bottom=low, width=0.5, color=face, alpha=1.0 if x == 0 else 0.45, edgecolor=edge)
        ax.plot([x - 0.25, x + 0.25], [mid, mid], color=edge, linestyle="--" if x == 0 else "-")
    ax.set_xticks([0, 1], ["prior", "posterior"])
    ax.set_xlim(-0.6, 1.6)
    if "year" in row.index and not _blank(pd.Series([row["year"]])).iloc[0]:
        ax.set_xlabel(_text(pd.Series([row["year"]])).iloc[0])
    return _contraction_text(*(np.array([float(row[c])]) for c in (post[0], post[2], prior[0], prior[2])), several=False)


def default_panels(summary: pd.DataFrame, max_panels: int = 9, unit: str = "", labels: Labels | None = None) -> list[Panel]:
    """Panels of the process inputs (``input_<process>``) of a generic summary, one per coordinate of their first dim.

    Parameters
    ----------
    summary : DataFrame
        Tidy summary (e.g. of :func:`bayesmfa.summaries.summarize_with_prior`).
    max_panels : int
        At most this many panels.
    unit : str
        Y-axis label of every panel (the system unit).
    labels : Labels, optional
        Display names of processes and coords in the panel titles.

    Returns
    -------
    list of Panel
        Yearly quantities with at most one dim besides ``year``.
    """
    panels: list[Panel] = []
    qcol = summary["quantity"].astype(str)
    for q in dict.fromkeys(qcol):
        if not q.startswith("input_") or q.startswith("input_log") or q.endswith("__"):
            continue
        rows = annual(summary[qcol == q])
        dims = dim_columns(rows)
        if rows.empty or len(dims) > 1:
            continue
        coords = list(dict.fromkeys(rows[dims[0]].astype(str))) if dims else [None]
        for c in coords:
            filters = {dims[0]: c} if dims else {}
            lab = labels or Labels()
            title = f"Input of {lab('process', q.removeprefix('input_'))}" + (f", {lab(label_kind(dims[0]), c)}" if dims else "")
            panels.append(Panel(q, filters, title, unit))
    return panels[:max_panels]


# ---------------------------------------------------------------------------
# counterfactual: consumption with and without trade
# ---------------------------------------------------------------------------


def counterfactual(
    summary: pd.DataFrame,
    year: int | str,
    *,
    regions: Sequence[str] | None = None,
    unit: str | None = None,
    actual: str = "consumption",
    no_trade: str = "no_trade_consumption",
    legend_labels: tuple[str, str] = ("with trade (as estimated)", "no trade (counterfactual)"),
    panel: str = "region",
    category: str = "end_use",
    labels: Labels | None = None,
    title: str | None = None,
) -> Figure:
    """Actual vs counterfactual (by default: no-trade) consumption by region and end use, with interval error bars.

    Parameters
    ----------
    summary : DataFrame
        Summary with quantities ``consumption`` and ``no_trade_consumption``
        (columns ``region, end_use``, the year, ``q50`` and interval columns).
    year : int or str
        The year compared (a yearly row).
    regions : sequence of str, optional
        One panel per region (default: the regions of the no-trade rows).
    unit : str, optional
        Unit on the y axis (default: the rows' ``unit`` column).
    actual, no_trade : str
        Names of the two quantities (the counterfactual second).
    legend_labels : tuple of str
        Legend labels of the two.
    panel, category : str
        Column giving one panel each, and column of the bars within a panel.
    labels : Labels, optional
        Display names of regions and end uses.
    title : str, optional
        Figure title (default: consumption with and without trade); the
        interval level is appended.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per region, paired bars per end use; the legend below the panels.

    Raises
    ------
    ValueError
        When a quantity has no row for the year.
    """
    lab = labels or Labels()
    both = {name: select_rows(summary, name, {"year": year}) for name in (actual, no_trade)}
    lo, hi = quantile_columns(both[no_trade])
    unit = unit_of(both[no_trade], unit)
    if regions is None:
        regions = list(dict.fromkeys(both[no_trade][panel].astype(str)))
    regions = [str(r) for r in regions]
    end_uses = list(dict.fromkeys(both[no_trade][category].astype(str)))
    fig = Figure(figsize=(max(6.0, 3.4 * len(regions)), 4.6), layout="constrained")
    axes = fig.subplots(1, len(regions), sharey=False, squeeze=False)[0]
    x = np.arange(len(end_uses))
    w = 0.38
    for ax, region in zip(axes, regions):
        for k, (name, label, color) in enumerate(((actual, legend_labels[0], "#2b5d8a"), (no_trade, legend_labels[1], "#d08a2e"))):
            rows = both[name]
            rows = rows[rows[panel].astype(str) == region]
            by_use = {str(u): r for u, (_, r) in zip(rows[category], rows.iterrows())}
            med = np.array([float(by_use[u]["q50"]) if u in by_use else np.nan for u in end_uses])
            low = np.array([float(by_use[u][lo]) if u in by_use else np.nan for u in end_uses])
            high = np.array([float(by_use[u][hi]) if u in by_use else np.nan for u in end_uses])
            err = np.vstack([np.clip(med - low, 0, None), np.clip(high - med, 0, None)])
            ax.bar(x + (k - 0.5) * w, med, w, yerr=err, capsize=3, label=label, color=color)
        ax.set_xticks(x, [lab(category, u) for u in end_uses], rotation=30, ha="right")
        ax.set_title(lab(label_kind(panel), region))
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel(value_axis_label(unit, lo, hi))
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize="small", frameon=False)
    head = title or f"Consumption by end use in {year}, with and without trade"
    fig.suptitle(f"{head} (bars: median; whiskers: {_interval_label(lo, hi)} interval)")
    return fig


# ---------------------------------------------------------------------------
# the figures of a result folder, one file each
# ---------------------------------------------------------------------------

#: (file stem, caption, quantities needed, builder) of one figure drawn from a summary.
FigureSpec = tuple[str, str, tuple[str, ...], Callable[[], Figure]]


def has_quantity(summary: pd.DataFrame, quantity: str) -> bool:
    """Whether the summary has a row of ``quantity``."""
    return bool((summary["quantity"].astype(str) == quantity).any())


def quantity_values(summary: pd.DataFrame, quantity: str, column: str) -> list[str]:
    """The distinct non-blank values of ``column`` in the rows of ``quantity``, as text, in their order (``[]`` without the column)."""
    rows = summary[summary["quantity"].astype(str) == quantity]
    if column not in rows.columns:
        return []
    vals = _text(rows[column].dropna())
    return list(dict.fromkeys(v for v in vals if v))


def generic_figures(summary: pd.DataFrame, labels: Labels | None = None) -> list[FigureSpec]:
    """Bands of every yearly process input with at most one dim (``figures/input_<process>.png``), for any case.

    Parameters
    ----------
    summary : DataFrame
        A summary with ``input_<process>`` quantities (:func:`bayesmfa.summaries.summarize_system`).
    labels : Labels, optional
        Display names of processes and coords.
    """
    lab = labels or Labels()
    specs: list[FigureSpec] = []
    for q in dict.fromkeys(summary["quantity"].astype(str)):
        if not q.startswith("input_") or q.startswith("input_log") or q.endswith("__"):
            continue
        rows = summary[summary["quantity"].astype(str) == q]
        dims = dim_columns(rows)
        if len(dims) > 1 or annual(rows).empty:  # several dims, or not a yearly quantity
            continue
        by = dims[0] if dims else None
        process = lab("process", q.removeprefix("input_"))
        title = f"Input of {process}" + (f" by {by}" if by else "")
        specs.append((q, title, (q,), lambda q=q, by=by, title=title: bands(summary, q, by=by, labels=lab, title=title)))
    return specs


#: Names that moved to :mod:`bayesmfa.cases.ree_figures` (the REE case's figures), still importable from here
#: (``from bayesmfa.plots import summary_figures``) until their callers import them from there.
MOVED_TO_REE_FIGURES = ("consumption_bands", "dependence_bands", "mining_share_bands", "net_exporter_probability",
                        "net_trade_bands", "summary_figures", "unregistered_mining_bands")


def __getattr__(name: str) -> Any:
    """The REE figure functions that moved to :mod:`bayesmfa.cases.ree_figures` (imported on first use)."""
    if name in MOVED_TO_REE_FIGURES:
        from bayesmfa.cases import ree_figures

        return getattr(ree_figures, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "LABEL_KEYS",
    "LINK_COLOR",
    "PRODUCT_RGB",
    "UNREGISTERED_COLOR",
    "UNREGISTERED_TRADE_COLOR",
    "FigureSpec",
    "Labels",
    "Panel",
    "bands",
    "counterfactual",
    "default_panels",
    "dim_columns",
    "format_interval",
    "format_number",
    "generic_figures",
    "has_quantity",
    "interval_text",
    "is_stat_column",
    "is_unregistered",
    "label_kind",
    "load_labels",
    "net_pair_flows",
    "new_axes",
    "node_display_label",
    "node_label",
    "outside_legend",
    "prior_posterior_bands",
    "product_colour",
    "quantile_columns",
    "quantity_values",
    "sankey",
    "sankey_table",
    "select_rows",
    "trade_triangle",
    "unit_of",
    "value_axis_label",
    "without_self_pairs",
]
