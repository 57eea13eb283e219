"""Net trade between pairs of regions (per draw), the trade triangle, and actual vs counterfactual bars."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from bayesmfa.analysis.summaries import PERIOD_COLUMNS, SAMPLE_DIMS, annual, interval_columns, summarize_array, with_period
from bayesmfa.reporting.plots.bands import new_axes
from bayesmfa.reporting.plots.labels import Labels, label_kind
from bayesmfa.reporting.plots.tables import (
    SummaryData,
    YearSelection,
    format_interval,
    interval_label,
    matches,
    posterior_of,
    quantile_columns,
    rows_of,
    select_rows,
    unit_of,
    value_axis_label,
    year_positions,
)


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
    ds = posterior_of(idata)
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
        pos, _ = year_positions(years, year)  # type: ignore[arg-type]
        span = (years[pos[0]], years[pos[-1]])
        net = net.isel(year=pos).sum("year")
    df = with_period(summarize_array(net, prob, "net_trade"), *span)
    order = {str(r): i for i, r in enumerate(net["region"].values)}
    keep = [order[str(r)] < order[str(p)] for r, p in zip(df["region"], df["partner"])]
    df = df[keep].reset_index(drop=True)
    lo, hi = interval_columns(prob)
    return df[["quantity", "region", "partner", *PERIOD_COLUMNS, "mean", "sd", lo, "q50", hi]]


def trade_triangle(
    net: xr.DataArray | pd.DataFrame,
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
    net : DataArray or DataFrame
        Per-pair net flows: the derived quantity ``net_trade`` (``ds.net_trade``), or rows with
        ``region, partner, q50`` and interval columns
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
    rows = rows_of(net)
    if "quantity" in rows.columns and (rows["quantity"].astype(str) == "net_trade").any():
        rows = rows[rows["quantity"].astype(str) == "net_trade"]
    if "year" not in rows.columns and set(PERIOD_COLUMNS) <= set(rows.columns):
        if isinstance(year, tuple | list):  # a period summed per draw
            rows = rows[(rows["year_start"] == int(year[0])) & (rows["year_end"] == int(year[1]))]
        else:
            rows = annual(rows)
    if "year" in rows.columns:
        if year is not None and not isinstance(year, tuple | list):
            rows = rows[matches(rows["year"], year)]
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
    ax.set_title(title or f"Net trade{yr}{in_unit}\nmedian [{interval_label(lo_col, hi_col)} interval]; grey dashed = direction uncertain",
                 fontsize="medium")
    return fig


def counterfactual(
    summary: SummaryData,
    year: int | str,
    *,
    actual: str,
    no_trade: str,
    category: str,
    regions: Sequence[str] | None = None,
    unit: str | None = None,
    legend_labels: tuple[str, str] = ("actual", "counterfactual"),
    panel: str = "region",
    labels: Labels | None = None,
    title: str | None = None,
) -> Figure:
    """Actual vs counterfactual values of one year, one panel per ``panel`` coord, paired bars per ``category``.

    Bars are medians with interval error bars.

    Parameters
    ----------
    summary : Dataset or DataFrame
        Derived quantities (or a summary table) with the quantities ``actual`` and ``no_trade`` (columns
        ``panel``, ``category``, the year, ``q50`` and interval columns).
    year : int or str
        The year compared (a yearly row).
    actual, no_trade : str
        Names of the two quantities (the counterfactual second).
    category : str
        Column of the bars within a panel.
    regions : sequence of str, optional
        One panel per value of ``panel`` (default: the values in the counterfactual's rows).
    unit : str, optional
        Unit on the y axis (default: the rows' ``unit`` column).
    legend_labels : tuple of str
        Legend labels of the two.
    panel : str
        Column giving one panel each.
    labels : Labels, optional
        Display names of the panels' and bars' codes.
    title : str, optional
        Figure title (default: the two quantities' labels and the year); the
        interval level is appended.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per coord, paired bars per category; the legend below the panels.

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
    head = title or f"{lab('quantity', actual)} and {lab('quantity', no_trade)} by {category} in {year}"
    fig.suptitle(f"{head} (bars: median; whiskers: {interval_label(lo, hi)} interval)")
    return fig
