"""The figures of the REE case: its derived quantities drawn, one file each.

These wrappers name the REE case's quantities (``consumption`` by ``end_use``,
``mining_share``, ``unregistered_mining``, ``net_export``, ``import_share_from``,
``mined_refined_in_cn_share``, ``p_net_exporter``, ``no_trade_consumption``,
``net_trade``), so they live with the case, not in :mod:`bayesmfa.reporting.plots`, which
draws any. Each takes the derived quantities (:mod:`bayesmfa.analysis.derived`; a summary table works too).
The case's display choices (region order, the aggregate row,
regions drawn when the summary names none) come from its ``labels.yaml``
(:class:`bayesmfa.reporting.plots.Labels`), not from this code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from bayesmfa.analysis.summaries import annual
from bayesmfa.reporting.plots import (
    FigureSpec,
    Labels,
    SummaryData,
    bands,
    counterfactual,
    dim_columns,
    has_quantity,
    interval_text,
    new_axes,
    outside_legend,
    quantile_columns,
    quantity_values,
    select_rows,
    trade_triangle,
    unit_of,
    value_axis_label,
    without_self_pairs,
)

#: The shares drawn in one dependence figure (those present in the summary).
DEPENDENCE_QUANTITIES = ("import_share_from", "mined_refined_in_cn_share")


def consumption_bands(
    summary: SummaryData, region: str, *, unit: str | None = None, labels: Labels | None = None
) -> Figure:
    """Consumption of one region by end use (quantity ``consumption``): stacked medians beside one small panel per end use.

    The left panel stacks the end uses' medians (their sum is the median-by-parts
    picture of total use, not the median of the total); the small panels give
    each end use its own 90% band and median on a shared value axis, so the
    intervals can be read and compared. Unit and interval level are on the y axes.
    """
    labels = labels or Labels()
    rows = annual(select_rows(summary, "consumption", {"region": region}))
    if rows.empty:
        raise ValueError(f"quantity 'consumption' has no yearly rows for region {region!r}")
    lo, hi = quantile_columns(rows)
    unit = unit_of(rows, unit)
    uses = list(pd.unique(rows["end_use"].astype(str)))
    fig = Figure(figsize=(3.1 + 2.3 * len(uses) + 1.0, 3.8), layout="constrained")
    grid = fig.add_gridspec(1, len(uses) + 1, width_ratios=[1.5] + [1.0] * len(uses))
    stack_ax = fig.add_subplot(grid[0, 0])
    parts = {u: rows[rows["end_use"].astype(str) == u].sort_values("year") for u in uses}
    years = parts[uses[0]]["year"].to_numpy()
    colours = [f"C{i}" for i in range(len(uses))]
    medians = [parts[u].set_index("year")["q50"].reindex(years).astype(float).to_numpy() for u in uses]
    stack_ax.stackplot(years, *medians, colors=colours, labels=[labels("end_use", u) for u in uses], alpha=0.85)
    stack_ax.set_title("all end uses (stacked medians)", fontsize="medium")
    stack_ax.set_ylabel(f"{unit} (median)" if unit else "median")
    stack_ax.set_xlabel("year")
    stack_ax.grid(alpha=0.3)
    stack_ax.xaxis.get_major_locator().set_params(integer=True)
    first = None
    for i, (use, colour) in enumerate(zip(uses, colours, strict=True)):
        ax = fig.add_subplot(grid[0, i + 1], sharey=first)
        first = first or ax
        part = parts[use]
        x = part["year"].to_numpy()
        ax.fill_between(x, part[lo].astype(float), part[hi].astype(float), color=colour, alpha=0.3, linewidth=0)
        ax.plot(x, part["q50"].astype(float), color=colour, linewidth=1.8)
        ax.set_title(labels("end_use", use), fontsize="medium")
        ax.set_xlabel("year")
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
        if i == 0:
            ax.set_ylabel(value_axis_label(unit, lo, hi))
        else:
            ax.tick_params(labelleft=False)
    first.set_ylim(bottom=0)
    stack_ax.set_ylim(bottom=0)
    fig.legend(*stack_ax.get_legend_handles_labels(), loc="outside lower center", ncols=len(uses), fontsize="small", frameon=False)
    fig.suptitle(f"{labels('quantity', 'consumption')} by end use, {labels('region', region)}: {interval_text(lo, hi)}")
    return fig


def mining_share_bands(
    summary: SummaryData, *, filters: Mapping[str, Any] | None = None, ax: Axes | None = None, labels: Labels | None = None
) -> Figure:
    """Share of world mining by region (quantity ``mining_share``), on a 0-1 axis."""
    return bands(summary, "mining_share", by="region", filters=filters, ax=ax, ylim=(0.0, 1.0), labels=labels,
                 title=f"{(labels or Labels())('quantity', 'mining_share')} by region")


def unregistered_mining_bands(
    summary: SummaryData, regions: Sequence[str] | None = None, *, ax: Axes | None = None, unit: str | None = None,
    labels: Labels | None = None,
) -> Figure:
    """Unregistered (illegal) mining of the given regions (quantity ``unregistered_mining``; ``None``: every region of its rows)."""
    filters = None if regions is None else {"region": list(regions)}
    return bands(summary, "unregistered_mining", by="region", filters=filters, ax=ax, unit=unit,
                 labels=labels, title=(labels or Labels())("quantity", "unregistered_mining"))


def net_trade_bands(
    summary: SummaryData, region: str, *, ax: Axes | None = None, unit: str | None = None, labels: Labels | None = None
) -> Figure:
    """Net exports of one region by product (quantity ``net_export``; negative = net imports)."""
    lab = labels or Labels()
    fig = bands(summary, "net_export", by="product", filters={"region": region}, ax=ax, unit=unit, labels=labels,
                title=f"{lab('quantity', 'net_export')} by product, {lab('region', region)} (below 0: net imports)")
    (ax or fig.axes[0]).axhline(0.0, color="black", linewidth=0.8)
    return fig


def dependence_bands(
    summary: SummaryData,
    region: str | None = None,
    *,
    quantities: Sequence[str] = ("import_share_from", "mined_refined_in_cn_share"),
    ax: Axes | None = None,
    labels: Labels | None = None,
) -> Figure:
    """Dependence shares on one 0-1 axis: import shares by partner and the share mined or refined in China.

    Each quantity present in the summary is drawn (missing ones are skipped);
    ``region`` filters a quantity only where it has a region. A region's share
    from itself (a structural zero: CN's imports from CN) is not drawn. The
    legend sits outside the axes.

    Raises
    ------
    ValueError
        When none of ``quantities`` is in the summary.
    """
    lab = labels or Labels()
    present = [q for q in quantities if has_quantity(summary, q)]
    if not present:
        raise ValueError(f"none of {list(quantities)} is in the summary")
    fig, ax = new_axes(ax, figsize=(8.4, 4.2))
    drawn = 0
    for q in present:
        rows = without_self_pairs(select_rows(summary, q))
        has_region = region is not None and "region" in dim_columns(rows)
        filters = {"region": region} if has_region else None
        by = "partner" if "partner" in dim_columns(rows) else "region"
        try:
            bands(rows, q, by=by, filters=filters, ax=ax, ylim=(0.0, 1.0), labels=lab, label_prefix=f"{lab('quantity', q)}: ",
                  legend=False)
        except ValueError:  # e.g. no such share for this region
            continue
        drawn += 1
    if not drawn:
        raise ValueError(f"none of {present} has yearly rows for region {region!r}")
    where = f", {lab('region', region)}" if region else ""
    ax.set_title(f"Dependence shares{where}")
    outside_legend(ax)
    return fig


def net_exporter_probability(
    summary: SummaryData, *, filters: Mapping[str, Any] | None = None, ax: Axes | None = None, labels: Labels | None = None
) -> Figure:
    """Posterior probability that each region is a net exporter (quantity ``p_net_exporter``, the ``mean`` column)."""
    fig = bands(summary, "p_net_exporter", by="region", filters=filters, ax=ax, center="mean", band=False, ylim=(-0.04, 1.04),
                unit="probability", labels=labels, title="Probability of being a net exporter (all products)")
    axes = ax or fig.axes[0]
    axes.axhline(0.5, color="grey", linewidth=0.8, linestyle=":")
    for line in axes.get_lines()[:-1]:  # lines at exactly 0 or 1 would hide in the frame: widen and mark them
        line.set_linewidth(1.8)
        line.set_marker(".")
    return fig


def net_export_bands(
    summary: SummaryData, region: str, *, ax: Axes | None = None, unit: str | None = None, labels: Labels | None = None
) -> Figure:
    """Net exports of one region by product (``figures/net_export_<region>.png``); the same as :func:`net_trade_bands`."""
    return net_trade_bands(summary, region, ax=ax, unit=unit, labels=labels)


def no_trade_bars(summary: SummaryData, year: int | str, *, labels: Labels | None = None) -> Figure:
    """Consumption by region and end use in one year, as estimated and without trade (``figures/counterfactual_<year>.png``)."""
    return counterfactual(summary, year, actual="consumption", no_trade="no_trade_consumption", category="end_use",
                          legend_labels=("with trade (as estimated)", "no trade (counterfactual)"), labels=labels,
                          title=f"Consumption by end use in {year}, with and without trade")


def summary_figures(summary: SummaryData, labels: Labels | None = None) -> list[FigureSpec]:
    """Every figure drawn from the REE summary, one file name each (``figures/<name>.png``).

    Consumption by end use per region, mining shares, unregistered mining, net
    exports by product per region, dependence shares per region, the
    probability of being a net exporter, the no-trade counterfactual and the
    trade triangle (when the summary has ``net_trade``). ``bayesmfa run`` and
    ``bayesmfa report`` draw the same list, so a figure has one name.

    Regions come in the order of ``labels.regions`` (others after them, in the
    summary's order); ``labels.aggregate`` (the all-regions row) is left out of
    unregistered mining; where the summary names no region of a quantity,
    ``labels.default_regions[quantity]`` names the figure (it is then skipped
    for the missing quantity), and without one the figure is left out.

    Parameters
    ----------
    summary : Dataset or DataFrame
        The case's derived quantities (``derived.nc``; or its summary table, ``summary.csv``).
    labels : Labels, optional
        Display names and choices (default: the codes, the summary's order).

    Returns
    -------
    list of FigureSpec
        ``(name, caption, quantities needed, builder)``; a builder may raise
        ``ValueError`` when the summary lacks what it draws.
    """
    lab = labels or Labels()
    specs: list[FigureSpec] = []

    def regions(quantity: str, drop_aggregate: bool = False) -> list[str]:
        present = quantity_values(summary, quantity, "region")
        if drop_aggregate:
            present = [r for r in present if r != lab.aggregate]
        return lab.regions_for(quantity, present)

    for region in regions("consumption"):
        specs.append((f"consumption_{region}", f"Consumption by end use, {lab('region', region)}", ("consumption",),
                      lambda r=region: consumption_bands(summary, r, labels=lab)))
    specs.append(("mining_share", "Share of world mining by region", ("mining_share",),
                  lambda: mining_share_bands(summary, labels=lab)))
    unregistered = regions("unregistered_mining", drop_aggregate=True)
    specs.append(("unregistered_mining", "Unregistered mining", ("unregistered_mining",),
                  lambda: unregistered_mining_bands(summary, unregistered or None, labels=lab)))
    for region in regions("net_export"):
        specs.append((f"net_export_{region}", f"Net exports by product, {lab('region', region)}", ("net_export",),
                      lambda r=region: net_export_bands(summary, r, labels=lab)))
    dep = tuple(q for q in DEPENDENCE_QUANTITIES if has_quantity(summary, q)) or DEPENDENCE_QUANTITIES[:1]
    for region in regions("import_share_from") or [None]:
        name = f"dependence_{region}" if region else "dependence"
        where = f", {lab('region', region)}" if region else ""
        specs.append((name, f"Dependence shares{where}", dep, lambda r=region: dependence_bands(summary, r, labels=lab)))
    specs.append(("p_net_exporter", "Probability of being a net exporter", ("p_net_exporter",),
                  lambda: net_exporter_probability(summary, labels=lab)))
    no_trade = "no_trade_consumption"
    years = sorted(set(annual(select_rows(summary, no_trade))["year"])) if has_quantity(summary, no_trade) else []
    for year in years[-1:] or ["?"]:
        specs.append((f"counterfactual_{year}", f"Consumption with and without trade, {year}", ("consumption", "no_trade_consumption"),
                      lambda y=year: no_trade_bars(summary, y, labels=lab)))
    if has_quantity(summary, "net_trade"):
        yrs = sorted(set(annual(select_rows(summary, "net_trade"))["year"]))
        if yrs:
            specs.append((f"trade_triangle_{yrs[-1]}", f"Net trade between regions, {yrs[-1]}", ("net_trade",),
                          lambda y=yrs[-1]: trade_triangle(select_rows(summary, "net_trade"), y)))
    return specs


__all__ = [
    "DEPENDENCE_QUANTITIES",
    "consumption_bands",
    "dependence_bands",
    "mining_share_bands",
    "net_export_bands",
    "net_exporter_probability",
    "net_trade_bands",
    "no_trade_bars",
    "summary_figures",
    "unregistered_mining_bands",
]
