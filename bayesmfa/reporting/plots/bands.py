"""Uncertainty bands over years of derived quantities, prior vs posterior panels and the generic figure list.

Each figure takes the derived quantities of a fit (:mod:`bayesmfa.analysis.derived`), one of them as a DataArray,
or a summary table (see :func:`bayesmfa.reporting.plots.tables.rows_of`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from bayesmfa.analysis.summaries import annual
from bayesmfa.reporting.plots.labels import Labels, label_kind
from bayesmfa.reporting.plots.tables import (
    SummaryData,
    as_text,
    dim_columns,
    interval_label,
    is_blank,
    quantile_columns,
    quantity_names,
    rows_of,
    select_rows,
    unit_of,
    value_axis_label,
)


def new_axes(ax: Axes | None, figsize: tuple[float, float] = (7.6, 4.2)) -> tuple[Figure, Axes]:
    """``ax`` and its figure, or a new figure of ``figsize`` inches (constrained layout) with one axes."""
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def outside_legend(ax: Axes, ncols: int = 1, title: str | None = None) -> None:
    """Draw the legend of ``ax`` to the right of its axes, clear of the data (nothing when it has no labelled artist)."""
    handles, names = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, names, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize="small",
                  ncols=ncols, title=title, title_fontsize="small", frameon=False)


def bands(
    summary: SummaryData,
    quantity: str | None = None,
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
    summary : Dataset, DataArray or DataFrame
        Derived quantities (:func:`bayesmfa.analysis.derived.summary_dataset`), the one to draw
        (e.g. ``ds.consumption.sel(region="CN")``), or a tidy summary table (``quantity``, dim
        columns, ``year_start``/``year_end`` or ``year``, ``mean, sd, qNN``, optionally ``unit``).
    quantity : str, optional
        The quantity to draw (default: the DataArray's name).
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
    if isinstance(summary, xr.DataArray):  # a quantity narrowed with .sel: its one-value coords name it in the title
        picked = {str(k): v.item() for k, v in summary.coords.items()
                  if v.ndim == 0 and k not in ("stat", "period", "year", "year_start", "year_end")}
        filters = {**picked, **(filters or {})}
    rows = annual(select_rows(summary, quantity, filters))
    quantity = str(rows["quantity"].iloc[0]) if quantity is None and len(rows) else quantity
    if rows.empty:
        raise ValueError(f"quantity {quantity!r} has no yearly rows (only cumulative ones) with filters {dict(filters or {})}")
    lo, hi = quantile_columns(rows)
    if center not in rows.columns:
        raise ValueError(f"summary has no column {center!r}")
    if by is not None and by in rows.columns and not is_blank(rows[by]).all():
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


def prior_posterior_bands(
    summary: SummaryData,
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
    summary : Dataset or DataFrame
        Derived quantities (or a tidy summary) with ``q50``, interval stats (``q05``/``q95``) and the
        prior's (``prior_q05, prior_q50, prior_q95``; see
        :func:`bayesmfa.analysis.summaries.add_prior_columns`).
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
    first = rows_of(summary, panels[0].quantity) if not isinstance(summary, pd.DataFrame) else summary
    lo, hi = quantile_columns(first)
    p_lo, p_mid, p_hi = f"prior_{lo}", "prior_q50", f"prior_{hi}"
    missing = [c for c in (p_lo, p_mid, p_hi) if c not in first.columns]
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
        ax.set_ylabel(f"{unit} ({interval_label(lo, hi)} intervals{scale})" if unit else f"{interval_label(lo, hi)} intervals{scale}")
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
    fig.suptitle(title or f"Prior and posterior {interval_label(lo, hi)} intervals")
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

    The same definition as the summary's ``contraction`` column (:func:`bayesmfa.analysis.summaries.interval_contraction`).
    """
    from bayesmfa.analysis.summaries import WEAKLY_INFORMED, interval_contraction

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
    if "year" in row.index and not is_blank(pd.Series([row["year"]])).iloc[0]:
        ax.set_xlabel(as_text(pd.Series([row["year"]])).iloc[0])
    return _contraction_text(*(np.array([float(row[c])]) for c in (post[0], post[2], prior[0], prior[2])), several=False)


def default_panels(summary: SummaryData, max_panels: int = 9, unit: str = "", labels: Labels | None = None) -> list[Panel]:
    """Panels of the process inputs (``input_<process>``) of a generic summary, one per coordinate of their first dim.

    Parameters
    ----------
    summary : Dataset or DataFrame
        Derived quantities, or a tidy summary (e.g. of :func:`bayesmfa.analysis.summaries.summarize_with_prior`).
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
    for q in quantity_names(summary):
        if not q.startswith("input_") or q.startswith("input_log") or q.endswith("__"):
            continue
        rows = annual(select_rows(summary, q))
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


#: (file stem, caption, quantities needed, builder) of one figure drawn from a summary.
FigureSpec = tuple[str, str, tuple[str, ...], Callable[[], Figure]]


def generic_figures(summary: SummaryData, labels: Labels | None = None) -> list[FigureSpec]:
    """Bands of every yearly process input with at most one dim (``figures/input_<process>.png``), for any case.

    Parameters
    ----------
    summary : Dataset or DataFrame
        Derived quantities (or a summary) with ``input_<process>`` quantities (:func:`bayesmfa.analysis.summaries.summarize_system`).
    labels : Labels, optional
        Display names of processes and coords.
    """
    lab = labels or Labels()
    specs: list[FigureSpec] = []
    for q in quantity_names(summary):
        if not q.startswith("input_") or q.startswith("input_log") or q.endswith("__"):
            continue
        rows = select_rows(summary, q)
        dims = dim_columns(rows)
        if len(dims) > 1 or annual(rows).empty:  # several dims, or not a yearly quantity
            continue
        by = dims[0] if dims else None
        process = lab("process", q.removeprefix("input_"))
        title = f"Input of {process}" + (f" by {by}" if by else "")
        specs.append((q, title, (q,), lambda q=q, by=by, title=title: bands(summary, q, by=by, labels=lab, title=title)))
    return specs
