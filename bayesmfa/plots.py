"""Figures of a fit: a Sankey of the whole system, uncertainty bands, trade triangle, counterfactual.

Static figures use matplotlib and return :class:`matplotlib.figure.Figure`
objects (nothing is shown); the interactive Sankey uses plotly, imported only
when it is drawn so the package imports without it.

Every interval is computed per draw first and summarised afterwards: sums over
years or over flow types are taken draw by draw, never by adding quantiles.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
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
from bayesmfa.summaries import SAMPLE_DIMS, interval_columns, summarize_array

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go

YearSelection = int | tuple[int, int] | None

#: Colours of ordinary and of unregistered (illegal mining, smuggling) links.
LINK_COLOR = "rgba(90, 120, 160, 0.45)"
UNREGISTERED_COLOR = "rgba(200, 40, 40, 0.65)"
NODE_COLOR = "rgba(60, 60, 60, 0.8)"

_UNREGISTERED_MARKERS = ("unregistered", "smuggl")
_STAT_COLUMNS = {"mean", "sd", "q50", "contraction", "weakly_informed"}


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


def is_unregistered(flow: str, source_process: str = "") -> bool:
    """Whether a flow is unregistered: its name mentions ``unregistered``/``smuggl``, or its source process ``unregistered``."""
    name = flow.lower()
    return any(m in name for m in _UNREGISTERED_MARKERS) or "unregistered" in source_process.lower()


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
        ``label`` (``"median [lo, hi] unit"``) and ``period``.
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
        src = graph.nodes[e.source]
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
                "unregistered": is_unregistered(e.flow, src.process),
                "label": format_interval(m, float(lo[e.index]), float(hi[e.index]), unit),
                "period": period,
            }
        )
    cols = ["source", "target", "flow", "median", "lo", "hi", "edge", "source_index", "target_index", "unregistered", "label", "period"]
    return pd.DataFrame(rows, columns=cols)


def sankey(
    idata: az.InferenceData | xr.Dataset,
    graph: Graph,
    year: YearSelection = None,
    prob: float = 0.9,
    *,
    title: str | None = None,
    min_value: float | None = None,
) -> go.Figure:
    """An interactive Sankey of the whole system for one year or a period.

    Nodes are process instances; a link's width is the posterior median of
    its flow (summed over the period per draw) and its hover label the
    median and interval. Unregistered flows are drawn in
    :data:`UNREGISTERED_COLOR`; structural zeros are left out.

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
        Figure title (by default the system name and the period).
    min_value : float, optional
        See :func:`sankey_table`.

    Returns
    -------
    plotly.graph_objects.Figure
        ``link.customdata`` holds ``[flow instance, interval label]`` per link.
    """
    import plotly.graph_objects as go

    table = sankey_table(idata, graph, year, prob, min_value=min_value)
    used = sorted(set(table["source_index"]) | set(table["target_index"]))
    position = {n: i for i, n in enumerate(used)}
    lo_name, hi_name = interval_columns(prob)
    link = {
        "source": [position[i] for i in table["source_index"]],
        "target": [position[i] for i in table["target_index"]],
        "value": table["median"].tolist(),
        "color": [UNREGISTERED_COLOR if u else LINK_COLOR for u in table["unregistered"]],
        "customdata": [[e, lab] for e, lab in zip(table["edge"], table["label"])],
        "hovertemplate": (
            "%{source.label} → %{target.label}<br>%{customdata[0]}<br>"
            f"median [{lo_name}, {hi_name}]: %{{customdata[1]}}<extra></extra>"
        ),
    }
    node = {
        "label": [node_display_label(graph, i) for i in used],
        "color": NODE_COLOR,
        "pad": 12,
        "thickness": 14,
    }
    period = table["period"].iloc[0] if len(table) else _year_positions(list(graph.system.years), year)[1]
    fig = go.Figure(go.Sankey(node=node, link=link, valueformat=",.3r", valuesuffix=f" {graph.system.unit}"))
    fig.update_layout(
        title=title or f"{graph.system.name}: flows {period} (median, {prob:.0%} interval on hover; red = unregistered)",
        font={"size": 11},
        height=max(450, 28 * len(used)),
    )
    return fig


# ---------------------------------------------------------------------------
# uncertainty bands from a summary table
# ---------------------------------------------------------------------------


def _blank(s: pd.Series) -> pd.Series:
    return s.isna() | (s.astype(str).str.strip() == "")


def _text(values: pd.Series) -> pd.Series:
    """Values as stripped text, with integral floats written as integers (``2020.0`` -> ``2020``)."""
    return values.astype(str).str.strip().str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True)


def _matches(col: pd.Series, value: Any) -> pd.Series:
    """Rows of ``col`` equal to ``value`` (or any of a list), compared as text; ``None``/``""`` match blanks."""
    values = list(value) if isinstance(value, list | tuple | set) else [value]
    text = _text(col)
    out = pd.Series(False, index=col.index)
    for v in values:
        out |= _blank(col) if v is None or str(v) == "" else text == _text(pd.Series([v])).iloc[0]
    return out


def _quantile_columns(df: pd.DataFrame) -> tuple[str, str]:
    """The lowest and highest ``qNN`` columns other than ``q50`` (``q05``/``q95`` for a 90% table)."""
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
        A tidy summary table (``quantity`` column, dim columns, ``mean, sd, qNN``).
    quantity : str
        Value of the ``quantity`` column.
    filters : mapping of column -> value or list of values, optional
        Compared as text; ``None`` or ``""`` selects blanks.

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
        if col not in rows.columns:
            raise ValueError(f"cannot filter {quantity!r} on {col!r}: no such column")
        rows = rows[_matches(rows[col], value)]
        if rows.empty:
            raise ValueError(f"no rows for quantity {quantity!r} with {col}={value!r}")
    return rows.copy()


def _yearly(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows with an integer year (cumulative rows such as ``2000-2022`` dropped), ``year`` as int."""
    if "year" not in rows.columns:
        return rows.iloc[0:0]
    num = pd.to_numeric(rows["year"], errors="coerce")
    keep = num.notna() & (num == np.floor(num))
    out = rows[keep].copy()
    out["year"] = num[keep].astype(int)
    return out


def _dim_columns(rows: pd.DataFrame) -> list[str]:
    """Dim columns of a summary that carry a value in some row (all but quantity, year and the statistics)."""
    out = []
    for c in rows.columns:
        if c in ("quantity", "year") or _is_stat(c):
            continue
        if not _blank(rows[c]).all():
            out.append(c)
    return out


def _is_stat(column: Any) -> bool:
    """Whether a summary column holds a statistic (``mean``, ``qNN``, ``prior_qNN``, ``contraction``, ...), not a dim."""
    if column in _STAT_COLUMNS:
        return True
    name = str(column).removeprefix("prior_")
    return name[:1] == "q" and name[1:].replace(".", "").isdigit()


def _new_axes(ax: Axes | None, figsize: tuple[float, float] = (7.0, 4.2)) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


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
) -> Figure:
    """Uncertainty bands over years of one quantity, one line per value of ``by``.

    The interval (lowest to highest ``qNN`` column, e.g. q05 to q95) is
    shaded and the median drawn as a line. Cumulative rows (a year like
    ``2000-2022``) are skipped.

    Parameters
    ----------
    summary : DataFrame
        Tidy summary table (``quantity``, dim columns, ``year``, ``mean, sd, qNN``).
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
        Axes title (default: the quantity and the filters).
    unit : str, optional
        Y-axis label.
    center : str
        Column drawn as the line (``q50``; ``mean`` for probabilities).
    band : bool
        Whether to shade the interval.
    ylim : (float, float), optional
        Y-axis limits (e.g. ``(0, 1)`` for shares).
    label_prefix : str
        Prepended to each legend label (to tell quantities apart on shared axes).

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
    rows = _yearly(select_rows(summary, quantity, filters))
    if rows.empty:
        raise ValueError(f"quantity {quantity!r} has no yearly rows (only cumulative ones) with filters {dict(filters or {})}")
    lo, hi = _quantile_columns(rows)
    if center not in rows.columns:
        raise ValueError(f"summary has no column {center!r}")
    if by is not None and by in rows.columns and not _blank(rows[by]).all():
        key = rows[by].astype(str)
    else:
        by = None
        key = pd.Series(quantity, index=rows.index)
    dup = pd.DataFrame({"key": key, "year": rows["year"]}).duplicated()
    if dup.any():
        other = [c for c in _dim_columns(rows) if c != by]
        raise ValueError(
            f"quantity {quantity!r} has several rows per {by or 'line'} and year; filter on {other or 'the other columns'}"
        )
    fig, ax = _new_axes(ax)
    for k in pd.unique(key):
        part = rows[key == k].sort_values("year")
        x = part["year"].to_numpy()
        (line,) = ax.plot(x, part[center].astype(float).to_numpy(), marker="." if len(x) < 3 else None, label=f"{label_prefix}{k}")
        if band:
            ax.fill_between(x, part[lo].astype(float).to_numpy(), part[hi].astype(float).to_numpy(), color=line.get_color(),
                            alpha=0.25, linewidth=0)
    if ylim is not None:
        ax.set_ylim(*ylim)
    if title is None:
        where = ", ".join(f"{c}={v}" for c, v in (filters or {}).items())
        title = f"{quantity} ({where})" if where else quantity
    ax.set_title(title)
    ax.set_xlabel("year")
    if unit:
        ax.set_ylabel(unit)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize="small", ncols=2 if key.nunique() > 5 else 1)
    ax.grid(alpha=0.3)
    return fig


def consumption_bands(summary: pd.DataFrame, region: str = "World", *, unit: str | None = "kt REO") -> Figure:
    """Consumption of one region by end use (quantity ``consumption``), one small panel per end use.

    Five overlapping bands cannot be read, so each end use gets its own axes (shared year
    and value axes, so heights compare across panels): its 90% band and median, with the
    medians of the other end uses as thin grey lines for reference.
    """
    rows = _yearly(select_rows(summary, "consumption", {"region": region}))
    if rows.empty:
        raise ValueError(f"quantity 'consumption' has no yearly rows for region {region!r}")
    lo, hi = _quantile_columns(rows)
    uses = list(pd.unique(rows["end_use"].astype(str)))
    fig = Figure(figsize=(2.6 * len(uses) + 0.8, 3.4), layout="constrained")
    axes = fig.subplots(1, len(uses), sharex=True, sharey=True, squeeze=False)[0]
    colours = [f"C{i}" for i in range(len(uses))]
    medians = {u: rows[rows["end_use"].astype(str) == u].sort_values("year") for u in uses}
    for ax, use, colour in zip(axes, uses, colours, strict=True):
        for other, part in medians.items():
            if other != use:
                ax.plot(part["year"], part["q50"].astype(float), color="0.75", linewidth=0.8, label="_other")
        part = medians[use]
        x = part["year"].to_numpy()
        ax.fill_between(x, part[lo].astype(float), part[hi].astype(float), color=colour, alpha=0.3, linewidth=0)
        ax.plot(x, part["q50"].astype(float), color=colour, linewidth=1.8, label=use)
        ax.set_title(use.replace("_", " / ") if use == "glass_ceramics" else use)
        ax.set_xlabel("year")
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    if unit:
        axes[0].set_ylabel(f"{unit} per year")
    axes[0].set_ylim(bottom=0)
    fig.suptitle(f"Consumption by end use, {region}: posterior median and 90% interval (grey: the other end uses' medians)")
    return fig


def mining_share_bands(summary: pd.DataFrame, *, filters: Mapping[str, Any] | None = None, ax: Axes | None = None) -> Figure:
    """Share of world mining by region (quantity ``mining_share``), on a 0-1 axis."""
    return bands(summary, "mining_share", by="region", filters=filters, ax=ax, unit="share of world mining",
                 ylim=(0.0, 1.0), title="mining share by region")


def unregistered_mining_bands(
    summary: pd.DataFrame, regions: Sequence[str] = ("CN", "RoW"), *, ax: Axes | None = None, unit: str | None = "kt"
) -> Figure:
    """Unregistered (illegal) mining of the given regions (quantity ``unregistered_mining``)."""
    return bands(summary, "unregistered_mining", by="region", filters={"region": list(regions)}, ax=ax, unit=unit,
                 title="unregistered mining")


def net_trade_bands(summary: pd.DataFrame, region: str, *, ax: Axes | None = None, unit: str | None = "kt") -> Figure:
    """Net exports of one region by product (quantity ``net_export``; negative = net imports)."""
    fig = bands(summary, "net_export", by="product", filters={"region": region}, ax=ax, unit=unit,
                title=f"net exports by product, {region} (negative = net imports)")
    (ax or fig.axes[0]).axhline(0.0, color="black", linewidth=0.8)
    return fig


def dependence_bands(
    summary: pd.DataFrame,
    region: str | None = None,
    *,
    quantities: Sequence[str] = ("import_share_from", "mined_refined_in_cn_share"),
    ax: Axes | None = None,
) -> Figure:
    """Dependence shares on one 0-1 axis: import shares by partner and the share mined or refined in China.

    Each quantity present in the summary is drawn (missing ones are skipped);
    ``region`` filters a quantity only where it has a region.

    Raises
    ------
    ValueError
        When none of ``quantities`` is in the summary.
    """
    present = [q for q in quantities if (summary["quantity"].astype(str) == q).any()]
    if not present:
        raise ValueError(f"none of {list(quantities)} is in the summary")
    fig, ax = _new_axes(ax)
    for q in present:
        rows = summary[summary["quantity"].astype(str) == q]
        filters = {"region": region} if region is not None and "region" in rows.columns and not _blank(rows["region"]).all() else None
        by = "partner" if "partner" in rows.columns and not _blank(rows["partner"]).all() else "region"
        bands(summary, q, by=by, filters=filters, ax=ax, ylim=(0.0, 1.0), unit="share", label_prefix=f"{q}: ")
    ax.set_title(f"dependence shares{f', {region}' if region else ''}")
    return fig


def net_exporter_probability(summary: pd.DataFrame, *, filters: Mapping[str, Any] | None = None, ax: Axes | None = None) -> Figure:
    """Posterior probability that each region is a net exporter (quantity ``p_net_exporter``, the ``mean`` column)."""
    fig = bands(summary, "p_net_exporter", by="region", filters=filters, ax=ax, center="mean", band=False, ylim=(0.0, 1.0),
                unit="P(net exporter)", title="probability of being a net exporter")
    (ax or fig.axes[0]).axhline(0.5, color="grey", linewidth=0.8, linestyle=":")
    return fig


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
        (or ``None`` for the whole fit) summed per draw, labelled ``start-end``.
    regions : sequence of str, optional
        Only pairs within these regions.

    Returns
    -------
    DataFrame
        ``quantity`` (``net_trade``), ``region``, ``partner``, ``year``,
        ``mean, sd, qNN, q50, qNN``: one row per unordered pair (region before
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
    if not (isinstance(year, str) and year == "each"):
        years = [int(y) for y in net["year"].values]
        pos, label = _year_positions(years, year)  # type: ignore[arg-type]
        net = net.isel(year=pos).sum("year").expand_dims(year=[label])
    df = summarize_array(net, prob, "net_trade")
    order = {str(r): i for i, r in enumerate(net["region"].values)}
    keep = [order[str(r)] < order[str(p)] for r, p in zip(df["region"], df["partner"])]
    df = df[keep].reset_index(drop=True)
    lo, hi = interval_columns(prob)
    return df[["quantity", "region", "partner", "year", "mean", "sd", lo, "q50", hi]]


def trade_triangle(
    net: pd.DataFrame,
    year: int | str | None = None,
    *,
    regions: Sequence[str] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    unit: str = "kt",
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
    year : int or str, optional
        Selects rows on the ``year`` column (required when it has several values).
    regions : sequence of three str, optional
        The corners (default: the three regions in the table).
    ax : matplotlib Axes, optional
        Draw into these axes.
    title : str, optional
        Axes title.
    unit : str
        Unit in the labels.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    rows = net
    if "quantity" in rows.columns and (rows["quantity"].astype(str) == "net_trade").any():
        rows = rows[rows["quantity"].astype(str) == "net_trade"]
    if "year" in rows.columns:
        if year is not None:
            rows = rows[_matches(rows["year"], year)]
        elif rows["year"].astype(str).nunique() > 1:
            raise ValueError("net table has several years: pass year")
    if rows.empty:
        raise ValueError(f"no net trade rows for year {year}")
    lo_col, hi_col = _quantile_columns(rows)
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
    fig, ax = _new_axes(ax, figsize=(6.0, 5.6))
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
        shift = 0.18 + 0.22 * abs(outward[0])  # labels are wide: push them further off slanted edges
        txt = ax.text(*(mid + shift * outward), f"{a} → {b}\n{format_interval(med, lo, hi, unit)}", ha="center", va="center",
                      fontsize=9, bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.8})
        txt.set_gid(f"net:{a}->{b}")
    for r, c in corner.items():
        ax.scatter([c[0]], [c[1]], s=1800, color="#f0f0f0", edgecolor="black", zorder=3)
        ax.text(c[0], c[1], r, ha="center", va="center", fontsize=12, fontweight="bold", zorder=4)
    ax.set_xlim(-1.5, 1.5)
    ax.set_ylim(-1.0, 1.35)
    ax.set_aspect("equal")
    ax.axis("off")
    yr = f" {year}" if year is not None else ""
    ax.set_title(title or f"net trade{yr} (median [{lo_col}, {hi_col}]; grey = direction uncertain)")
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
    lo, hi = _quantile_columns(summary)
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
        yearly = _yearly(rows)
        if len(yearly) > 1:
            if yearly["year"].duplicated().any():
                raise ValueError(f"panel {panel.quantity!r} {dict(panel.filters)} has several rows per year; "
                                 f"filter on {_dim_columns(yearly)}")
            note = _prior_posterior_series(ax, yearly.sort_values("year"), (lo, "q50", hi), (p_lo, p_mid, p_hi))
        elif len(rows) == 1:
            note = _prior_posterior_bars(ax, rows.iloc[0], (lo, "q50", hi), (p_lo, p_mid, p_hi))
        else:
            raise ValueError(f"panel {panel.quantity!r} {dict(panel.filters)} selects {len(rows)} rows and no yearly series")
        where = ", ".join(f"{v}" for v in panel.filters.values())
        head = panel.title or (f"{panel.quantity} ({where})" if where else panel.quantity)
        ax.set_title(f"{head}\n{note}" if note else head, fontsize="medium")
        if panel.unit:
            ax.set_ylabel(panel.unit + (" (log scale)" if panel.log else ""))
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


def default_panels(summary: pd.DataFrame, max_panels: int = 9, unit: str = "") -> list[Panel]:
    """Panels of the process inputs (``input_<process>``) of a generic summary, one per coordinate of their first dim.

    Parameters
    ----------
    summary : DataFrame
        Tidy summary (e.g. of :func:`bayesmfa.summaries.summarize_with_prior`).
    max_panels : int
        At most this many panels.
    unit : str
        Y-axis label of every panel (the system unit).

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
        rows = _yearly(summary[qcol == q])
        dims = _dim_columns(rows)
        if rows.empty or len(dims) > 1:
            continue
        coords = list(dict.fromkeys(rows[dims[0]].astype(str))) if dims else [None]
        for c in coords:
            filters = {dims[0]: c} if dims else {}
            title = f"{q.removeprefix('input_')} input" + (f", {c}" if c is not None else "")
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
    unit: str = "kt",
    actual: str = "consumption",
    no_trade: str = "no_trade_consumption",
    labels: tuple[str, str] = ("with trade", "no trade"),
    panel: str = "region",
    category: str = "end_use",
) -> Figure:
    """Actual vs counterfactual (by default: no-trade) consumption by region and end use, with interval error bars.

    Parameters
    ----------
    summary : DataFrame
        Summary with quantities ``consumption`` and ``no_trade_consumption``
        (columns ``region, end_use, year, q50`` and interval columns).
    year : int or str
        The year compared.
    regions : sequence of str, optional
        One panel per region (default: the regions of the no-trade rows).
    unit : str
        Y-axis label.
    actual, no_trade : str
        Names of the two quantities (the counterfactual second).
    labels : tuple of str
        Legend labels of the two.
    panel, category : str
        Column giving one panel each, and column of the bars within a panel.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per region, paired bars per end use.

    Raises
    ------
    ValueError
        When a quantity has no row for the year.
    """
    both = {}
    for name in (actual, no_trade):
        rows = select_rows(summary, name, {"year": year})
        both[name] = rows
    lo, hi = _quantile_columns(both[no_trade])
    if regions is None:
        regions = list(dict.fromkeys(both[no_trade][panel].astype(str)))
    regions = [str(r) for r in regions]
    end_uses = list(dict.fromkeys(both[no_trade][category].astype(str)))
    fig = Figure(figsize=(max(6.0, 3.2 * len(regions)), 4.2), layout="constrained")
    axes = fig.subplots(1, len(regions), sharey=False, squeeze=False)[0]
    x = np.arange(len(end_uses))
    w = 0.38
    for ax, region in zip(axes, regions):
        for k, (name, label, color) in enumerate(((actual, labels[0], "#2b5d8a"), (no_trade, labels[1], "#d08a2e"))):
            rows = both[name]
            rows = rows[rows[panel].astype(str) == region]
            by_use = {str(u): r for u, (_, r) in zip(rows[category], rows.iterrows())}
            med = np.array([float(by_use[u]["q50"]) if u in by_use else np.nan for u in end_uses])
            low = np.array([float(by_use[u][lo]) if u in by_use else np.nan for u in end_uses])
            high = np.array([float(by_use[u][hi]) if u in by_use else np.nan for u in end_uses])
            err = np.vstack([np.clip(med - low, 0, None), np.clip(high - med, 0, None)])
            ax.bar(x + (k - 0.5) * w, med, w, yerr=err, capsize=3, label=label, color=color)
        ax.set_xticks(x, end_uses, rotation=30, ha="right")
        ax.set_title(region)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel(unit)
    axes[0].legend(fontsize="small")
    fig.suptitle(f"{year}: {labels[0]} vs {labels[1]} (median, {lo}-{hi})")
    return fig


__all__ = [
    "LINK_COLOR",
    "UNREGISTERED_COLOR",
    "Panel",
    "bands",
    "consumption_bands",
    "counterfactual",
    "default_panels",
    "dependence_bands",
    "format_interval",
    "format_number",
    "is_unregistered",
    "mining_share_bands",
    "net_exporter_probability",
    "net_pair_flows",
    "net_trade_bands",
    "node_display_label",
    "prior_posterior_bands",
    "sankey",
    "sankey_table",
    "select_rows",
    "trade_triangle",
    "unregistered_mining_bands",
]
