"""Reading derived quantities for figures, and the text of numbers, intervals and axis labels.

Figures take the derived quantities of a fit (:mod:`bayesmfa.analysis.derived`: a Dataset, or one of its
quantities as a DataArray); a summary table (one row per quantity, dims and period; ``mean, sd, qNN``
columns, as in ``summary.csv``) is also taken. :func:`rows_of` turns the quantity a figure draws into
its rows; nothing here draws.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from bayesmfa.analysis.derived import own, quantity_frame
from bayesmfa.analysis.summaries import PERIOD_COLUMNS, annual

YearSelection = int | tuple[int, int] | None
#: What a figure reads: a derived Dataset, one of its quantities, or a summary table.
SummaryData = xr.Dataset | xr.DataArray | pd.DataFrame

_STAT_COLUMNS = {"mean", "sd", "q50", "contraction", "weakly_informed"}


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


def interval_label(lo: str, hi: str) -> str:
    """The interval mass of two quantile columns: ``"90%"`` for ``q05``/``q95``."""
    mass = float(hi[1:]) - float(lo[1:])
    return f"{mass:g}%"


def interval_text(lo: str, hi: str) -> str:
    """``"median and 90% interval"`` for the columns ``q05``/``q95``."""
    return f"median and {interval_label(lo, hi)} interval"


def value_axis_label(unit: str, lo: str, hi: str, *, center: str = "q50") -> str:
    """Y-axis label with the unit and the interval level, e.g. ``"kt REO (median, 90% interval)"``.

    For a probability drawn from the ``mean`` column no interval is shown, so none is named.
    """
    what = "posterior mean" if center == "mean" else f"median, {interval_label(lo, hi)} interval"
    return f"{unit} ({what})" if unit else what


def posterior_of(idata: az.InferenceData | xr.Dataset) -> xr.Dataset:
    """The posterior Dataset of a fit (``idata.posterior``), or the Dataset itself.

    Raises
    ------
    TypeError
        When ``idata`` is neither.
    """
    if isinstance(idata, az.InferenceData):
        return idata.posterior
    if isinstance(idata, xr.Dataset):
        return idata
    raise TypeError(f"expected InferenceData or xarray.Dataset, got {type(idata).__name__}")


def year_positions(years: Sequence[int], year: YearSelection) -> tuple[np.ndarray, str]:
    """Positions of the selected years in ``years`` and a label for the selection (``"2010"``, ``"2010-2014"``).

    ``year``: one year, an inclusive ``(start, end)`` period, or ``None`` for all years.

    Raises
    ------
    ValueError
        When the year or period lies outside ``years``.
    """
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


def is_blank(s: pd.Series) -> pd.Series:
    """Cells of a summary column that are missing or empty text."""
    return s.isna() | (s.astype(str).str.strip() == "")


def as_text(values: pd.Series) -> pd.Series:
    """Summary cells as stripped text, with integral floats written as integers (``2020.0`` -> ``2020``)."""
    def one(v: Any) -> str:
        if isinstance(v, float | np.floating) and np.isfinite(v) and float(v).is_integer():
            return str(int(v))
        return str(v).strip()

    return values.map(one)


def matches(col: pd.Series, value: Any) -> pd.Series:
    """Rows of ``col`` equal to ``value`` (or any of a list), compared as text; ``None``/``""`` match blanks."""
    values = list(value) if isinstance(value, list | tuple | set) else [value]
    text = as_text(col)
    out = pd.Series(False, index=col.index)
    for v in values:
        out |= is_blank(col) if v is None or str(v) == "" else text == as_text(pd.Series([v])).iloc[0]
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


def rows_of(data: SummaryData, quantity: str | None = None) -> pd.DataFrame:
    """The summary rows of ``quantity`` (every quantity when None) from a derived Dataset, a quantity or a table.

    A DataArray is one quantity (``quantity``, when given, must be its name); a table is returned whole.

    Raises
    ------
    ValueError
        When the Dataset has no such quantity, or the DataArray is another one.
    """
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, xr.DataArray) and quantity is not None and data.name != quantity:
        raise ValueError(f"the quantity passed is {data.name!r}, not {quantity!r}")
    return quantity_frame(data, quantity if isinstance(data, xr.Dataset) else None)


def quantity_names(data: SummaryData) -> list[str]:
    """The quantities of a derived Dataset, a quantity or a summary table, in their order."""
    if isinstance(data, xr.Dataset):
        return [str(n) for n in data.data_vars]
    if isinstance(data, xr.DataArray):
        return [str(data.name)]
    return list(dict.fromkeys(data["quantity"].astype(str))) if "quantity" in data.columns else []


def select_rows(summary: SummaryData, quantity: str | None = None, filters: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Rows of one quantity passing the filters.

    Parameters
    ----------
    summary : Dataset, DataArray or DataFrame
        Derived quantities (:mod:`bayesmfa.analysis.derived`), one of them, or a tidy summary table (``quantity``
        column, dim columns, ``year_start``/``year_end`` or ``year``, ``mean, sd, qNN``).
    quantity : str, optional
        The quantity (default: the DataArray's name).
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
    if isinstance(summary, xr.DataArray):
        quantity = quantity or str(summary.name)
    if quantity is None:
        raise ValueError("which quantity? pass quantity=")
    if isinstance(summary, xr.Dataset) and quantity not in summary.data_vars:
        raise ValueError(f"no rows for quantity {quantity!r} in the summary; quantities present: {sorted(quantity_names(summary))}")
    summary = rows_of(summary, quantity)
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
        rows = rows[matches(rows[col], value)]
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
        if not is_blank(rows[c]).all():
            out.append(c)
    return out


def is_stat_column(column: Any) -> bool:
    """Whether a summary column holds a statistic (``mean``, ``qNN``, ``prior_qNN``, ``contraction``, ...), not a dim."""
    if column in _STAT_COLUMNS:
        return True
    name = str(column).removeprefix("prior_")
    return name[:1] == "q" and name[1:].replace(".", "").isdigit()


def unit_of(rows: pd.DataFrame, unit: str | None) -> str:
    """The unit to print of summary rows: ``unit`` when given, else the rows' ``unit`` column (one value), else ``""``."""
    if unit:
        return unit
    if "unit" in rows.columns:
        units = [u for u in dict.fromkeys(rows["unit"].astype(str).str.strip()) if u and u != "nan"]
        if len(units) == 1:
            return units[0]
    return ""


def without_self_pairs(rows: pd.DataFrame) -> pd.DataFrame:
    """Summary rows whose ``partner`` is not their own ``region`` (a region's structural zero with itself left out)."""
    if "partner" not in rows.columns or "region" not in rows.columns:
        return rows
    same = ~is_blank(rows["partner"]) & (rows["partner"].astype(str) == rows["region"].astype(str))
    return rows[~same]


def has_quantity(summary: SummaryData, quantity: str) -> bool:
    """Whether the derived quantities (or the summary table) hold ``quantity``."""
    if isinstance(summary, xr.Dataset | xr.DataArray):
        return quantity in quantity_names(summary)
    return bool((summary["quantity"].astype(str) == quantity).any())


def quantity_values(summary: SummaryData, quantity: str, column: str) -> list[str]:
    """The distinct non-blank values of ``column`` in the rows of ``quantity``, as text, in their order (``[]`` without the column)."""
    if isinstance(summary, xr.Dataset | xr.DataArray):
        if not has_quantity(summary, quantity):
            return []
        da = own(summary[quantity] if isinstance(summary, xr.Dataset) else summary)
        return [str(v) for v in da[column].values if str(v)] if column in da.dims else []
    rows = summary[summary["quantity"].astype(str) == quantity]
    if column not in rows.columns:
        return []
    vals = as_text(rows[column].dropna())
    return list(dict.fromkeys(v for v in vals if v))
