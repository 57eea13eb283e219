"""Derived quantities of a fit as an ``xarray.Dataset``: what plots and the report read; ``summary.csv`` is its export.

One data variable per quantity (``consumption``, ``mining_share``...), with its own dims (``region``,
``end_use``...), a ``period`` dim and a ``stat`` dim:

- ``period`` holds the years (``"2010"``) and the cumulative periods (``"2000-2022"``: the quantity summed,
  or a share of sums, over those years per draw); the integer coords ``year_start`` and ``year_end`` (on
  ``period``) say which years each covers, so nothing is parsed from text. :func:`yearly` turns the yearly
  periods into an integer ``year`` dim.
- ``stat`` holds the posterior statistics ``mean, sd, <lo>, q50, <hi>`` (interval names follow the
  interval mass, ``q05``/``q95`` for 0.9), the prior's ``prior_<lo>, prior_q50, prior_<hi>`` and the
  ``contraction``; ``weakly_informed`` is ``contraction < WEAKLY_INFORMED``, computed on export.

Variables carry ``unit`` and ``description`` attrs. A dim shared by several quantities holds the union of
their coords; cells a quantity does not have (a region paired with itself, a region only another quantity
reports) are NaN, and each variable's ``coords`` attr (JSON) lists its own coords in its own order, so
:func:`summary_frame` writes exactly the rows of the summary it was built from, in their order. Use
:func:`own` to get a variable without the other quantities' cells.

Build it from a summary table with :func:`summary_dataset` (the case's summary, or a ``summary.csv`` read with
:func:`bayesmfa.analysis.summaries.read_summary`); write and read it with :func:`write_derived` / :func:`read_derived`
(``derived.nc`` in a result folder).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayesmfa.analysis.summaries import PERIOD_COLUMNS, WEAKLY_INFORMED, interval_stat_names, normalise_summary, read_summary
from bayesmfa.core.outputs import atomic_write

STAT = "stat"
PERIOD = "period"
#: Layout tag of a derived Dataset (``attrs["layout"]``), checked by :func:`read_derived`.
LAYOUT = "bayesmfa.analysis.derived/1"
_NOT_DIMS = ("quantity", *PERIOD_COLUMNS, "unit", "description", "weakly_informed")


def period_name(start: int, end: int) -> str:
    """The ``period`` coord of a year (``"2010"``) or of a cumulative period (``"2000-2022"``)."""
    return str(int(start)) if int(start) == int(end) else f"{int(start)}-{int(end)}"


def _is_stat(column: object) -> bool:
    name = str(column).removeprefix("prior_")
    return name in ("mean", "sd", "contraction") or (name[:1] == "q" and name[1:].replace(".", "", 1).isdigit())


def _one_text(rows: pd.DataFrame, column: str, quantity: str) -> str:
    if column not in rows.columns:
        return ""
    values = list(dict.fromkeys(rows[column].astype(str)))
    if len(values) > 1:
        raise ValueError(f"summary: quantity {quantity!r} has several {column}s {values}")
    return values[0] if values else ""


def _slow_to_fast(codes: dict[str, np.ndarray]) -> list[str]:
    """Dims in the order that makes the rows C-ordered: the dim whose value changes least often first.

    Dims with one value (which any position fits) go last; ties keep the table's column order.
    """
    changes = {k: int(np.count_nonzero(np.diff(c))) for k, c in codes.items()}
    single = {k: not len(c) or int(c.max()) == 0 for k, c in codes.items()}
    return sorted(codes, key=lambda k: (single[k], changes[k]))


def summary_dataset(summary: pd.DataFrame) -> xr.Dataset:
    """The derived Dataset of a summary table (see the module docstring).

    Parameters
    ----------
    summary : DataFrame
        A summary in the published layout (:func:`bayesmfa.analysis.summaries.summary_columns`), as a case's
        ``summary_table`` returns it or :func:`bayesmfa.analysis.summaries.read_summary` reads it: ``quantity``, dim
        columns (blank where a quantity lacks the dim), integer ``year_start``/``year_end``, optionally
        ``unit`` and ``description``, and statistic columns (``mean, sd, qNN``, ``prior_qNN``, ``contraction``).

    Returns
    -------
    xarray.Dataset
        One variable per quantity, dims (``stat``, its dims, ``period``) in the order its rows vary.

    Raises
    ------
    ValueError
        When a row lacks its period, two rows of a quantity share dims and period, a quantity has two units,
        or the table has no statistic column.
    """
    df = normalise_summary(summary)
    missing = [c for c in ("quantity", *PERIOD_COLUMNS) if c not in df.columns]
    if missing:
        raise ValueError(f"summary: no column {missing[0]!r}")
    if df[list(PERIOD_COLUMNS)].isna().any().any():
        bad = int(np.flatnonzero(df[list(PERIOD_COLUMNS)].isna().any(axis=1).to_numpy())[0])
        raise ValueError(f"summary: row {bad + 1} ({df['quantity'].iloc[bad]}) has no year_start/year_end")
    stats = [c for c in df.columns if _is_stat(c)]
    if not stats:
        raise ValueError("summary: no statistic column (mean, sd, qNN)")
    dims = [c for c in df.columns if c not in _NOT_DIMS and c not in stats]
    df = df.assign(**{PERIOD: [period_name(s, e) for s, e in zip(df["year_start"], df["year_end"], strict=True)]})
    spans = dict(zip(df[PERIOD], zip(df["year_start"].astype(int), df["year_end"].astype(int), strict=True), strict=False))
    arrays: dict[str, xr.DataArray] = {}
    union: dict[str, list[str]] = {d: [] for d in dims}
    for quantity, rows in df.groupby("quantity", sort=False):
        name = str(quantity)
        qdims = [d for d in dims if (rows[d] != "").any()]
        keys = [*qdims, PERIOD]
        dup = rows.duplicated(keys)
        if dup.any():
            first = rows[dup].iloc[0]
            raise ValueError(f"summary: quantity {name!r} has two rows for {dict(first[keys])}")
        text = {k: rows[k].astype(str).to_numpy() for k in keys}
        order = _slow_to_fast({k: pd.factorize(text[k])[0] for k in keys})
        coords = {k: _coord_order(text, order, i) for i, k in enumerate(order)}
        shape = tuple(len(coords[k]) for k in order)
        values = np.full((len(stats), *shape), np.nan)
        index = tuple(pd.Index(coords[k]).get_indexer(text[k]) for k in order)
        values[(slice(None), *index)] = rows[stats].to_numpy(dtype=float).T
        present = np.zeros(shape, dtype=bool)
        present[index] = True
        absent = [{k: coords[k][i] for k, i in zip(order, cell, strict=True)} for cell in np.argwhere(~present).tolist()]
        attrs = {"unit": _one_text(rows, "unit", name), "description": _one_text(rows, "description", name),
                 "coords": json.dumps(coords), "absent": json.dumps(absent)}
        arrays[name] = xr.DataArray(values, dims=(STAT, *order), coords={STAT: stats, **coords}, attrs=attrs, name=name)
        for d in qdims:
            union[d] += [c for c in coords[d] if c not in union[d]]
    periods = sorted(spans, key=lambda p: (spans[p][0] != spans[p][1], spans[p]))
    full = {**{d: v for d, v in union.items() if v}, PERIOD: periods}
    ds = xr.Dataset({name: da.reindex({d: full[d] for d in da.dims if d != STAT}) for name, da in arrays.items()})
    for name, da in arrays.items():
        ds[name].attrs = da.attrs
    ds = ds.assign_coords(year_start=(PERIOD, [spans[p][0] for p in periods]), year_end=(PERIOD, [spans[p][1] for p in periods]))
    ds.attrs = {"layout": LAYOUT, "dim_columns": json.dumps(dims), "weakly_informed_below": WEAKLY_INFORMED}
    return ds


def _coord_order(text: dict[str, np.ndarray], order: Sequence[str], position: int) -> list[str]:
    """The coords of the dim at ``position`` of ``order`` in the order its rows step through them.

    Within rows where the slower dims keep their values, ``a`` directly before ``b`` means ``a`` comes first;
    these precedences are sorted topologically (ties, and a table in no grid order, by first appearance). So
    a grid with cells left out (a region paired with itself) gets its full order back.
    """
    values = text[order[position]]
    first = list(dict.fromkeys(values.tolist()))
    same = np.ones(len(values) - 1, dtype=bool) if len(values) > 1 else np.zeros(0, dtype=bool)
    for k in order[:position]:
        same &= text[k][1:] == text[k][:-1]
    after: dict[str, set[str]] = {v: set() for v in first}
    for i in np.flatnonzero(same & (values[1:] != values[:-1])):
        after[values[i]].add(values[i + 1])
    before = {v: sum(v in after[u] for u in first) for v in first}
    out: list[str] = []
    ready = [v for v in first if before[v] == 0]
    while ready:
        v = ready.pop(0)
        out.append(v)
        for w in first:
            if w in after[v]:
                before[w] -= 1
                if before[w] == 0:
                    ready.append(w)
        ready.sort(key=first.index)
    return out if len(out) == len(first) else first


def own(da: xr.DataArray) -> xr.DataArray:
    """One quantity of a derived Dataset on its own coords, in its own order (no cells of other quantities).

    Cells the quantity has no row for (e.g. a region paired with itself) stay NaN. A DataArray without the
    ``coords`` attr (built by hand) is returned as it is.
    """
    coords = json.loads(da.attrs["coords"]) if "coords" in da.attrs else {}
    keep = {d: [c for c in v if c in set(da[d].values.astype(str))] for d, v in coords.items() if d in da.dims}
    out = da.sel(keep) if keep else da
    order = [d for d in (STAT, *coords) if d in out.dims] + [d for d in out.dims if d not in coords and d != STAT]
    return out.transpose(*order)


def yearly(da: xr.DataArray) -> xr.DataArray:
    """The yearly periods of a quantity with an integer ``year`` dim in place of ``period`` (cumulative ones dropped)."""
    one = da[PERIOD][da["year_start"] == da["year_end"]].values
    out = da.sel({PERIOD: one})
    return out.assign_coords(year=(PERIOD, out["year_start"].values.astype(int))).swap_dims({PERIOD: "year"}).drop_vars(
        [PERIOD, "year_start", "year_end"])


def cumulative(da: xr.DataArray) -> xr.DataArray:
    """The cumulative periods of a quantity (``year_start < year_end``), still on ``period``."""
    return da.sel({PERIOD: da[PERIOD][da["year_start"] < da["year_end"]].values})


def stat_names(ds: xr.Dataset | xr.DataArray) -> tuple[str, str]:
    """The lower and upper posterior interval stats of a derived Dataset or quantity (``q05``, ``q95`` for 0.9)."""
    return interval_stat_names([s for s in ds[STAT].values.astype(str) if not s.startswith("prior_")])


def summary_frame(ds: xr.Dataset) -> pd.DataFrame:
    """The summary table of a derived Dataset, in the published layout: what ``summary.csv`` holds.

    Per quantity (in the Dataset's order), the rows of its own cells in C order over its dims, yearly periods
    before cumulative ones as they were built; ``weakly_informed`` = ``contraction < WEAKLY_INFORMED``.
    A Dataset made by :func:`summary_dataset` gives back the table it was made from, row for row.
    """
    dims = json.loads(ds.attrs.get("dim_columns", "[]")) or [d for d in ds.dims if d not in (STAT, PERIOD)]
    stats = [str(s) for s in ds[STAT].values]
    frames = []
    for name, var in ds.data_vars.items():
        da = own(var)
        order = [d for d in da.dims if d != STAT]
        absent = {tuple(str(cell.get(d)) for d in order) for cell in json.loads(var.attrs.get("absent", "[]")) if set(cell) == set(order)}
        kinds = (da["year_start"] == da["year_end"]).values
        runs = [list(group) for _, group in itertools.groupby(range(da.sizes[PERIOD]), key=lambda i: kinds[i])]
        for run in runs:
            block = da.isel({PERIOD: run})
            labels = [[str(c) for c in block[d].values] for d in order]
            cells = list(itertools.product(*labels))
            values = block.transpose(STAT, *order).values.reshape(len(stats), -1).T
            keep = np.array([cell not in absent for cell in cells], dtype=bool)
            if "absent" not in var.attrs:  # built by hand: a cell with no statistic is no row
                keep &= ~np.isnan(values).all(axis=1)
            frame = pd.DataFrame([cell for cell, k in zip(cells, keep, strict=True) if k], columns=order)
            frame = frame.assign(**{s: values[keep, i] for i, s in enumerate(stats)})
            span = dict(zip(block[PERIOD].values, zip(block["year_start"].values, block["year_end"].values, strict=True), strict=True))
            frame["year_start"] = [int(span[p][0]) for p in frame[PERIOD]]
            frame["year_end"] = [int(span[p][1]) for p in frame[PERIOD]]
            frame.insert(0, "quantity", str(name))
            frame["unit"] = var.attrs.get("unit", "")
            frame["description"] = var.attrs.get("description", "")
            frames.append(frame.drop(columns=PERIOD))
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["quantity", *PERIOD_COLUMNS])
    for d in dims:
        out[d] = out[d].fillna("") if d in out.columns else ""
    if "contraction" in out.columns:
        out["weakly_informed"] = out["contraction"] < ds.attrs.get("weakly_informed_below", WEAKLY_INFORMED)
    head = ["quantity", *dims, *PERIOD_COLUMNS, "unit", "description"]
    tail = [c for c in ("weakly_informed",) if c in out.columns]
    return out[head + stats + tail]


def write_derived(ds: xr.Dataset, path: str | Path) -> Path:
    """Write a derived Dataset to netCDF (``derived.nc``), atomically (an earlier file survives a failed write)."""
    path = Path(path)
    return atomic_write(path, lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf"))


def read_derived(path: str | Path) -> xr.Dataset:
    """Read a derived Dataset written by :func:`write_derived`.

    Raises
    ------
    ValueError
        When the file is not a derived Dataset (no ``layout`` attr of this package).
    """
    path = Path(path)
    with xr.open_dataset(path, engine="h5netcdf") as handle:
        ds = handle.load()
    if ds.attrs.get("layout") != LAYOUT:
        raise ValueError(f"{path}: not a bayesmfa derived Dataset (layout {ds.attrs.get('layout')!r}, expected {LAYOUT!r})")
    for name in ds.data_vars:
        for d in ds[name].dims:
            if d != STAT and ds[d].dtype.kind != "U":
                ds = ds.assign_coords({d: ds[d].values.astype(str)})
    return ds


def as_dataset(data: xr.Dataset | xr.DataArray) -> xr.Dataset:
    """A derived Dataset from itself or from one of its quantities (a DataArray with a ``stat`` dim).

    A quantity narrowed with ``.sel`` keeps its selected coords as one-element dims (``ds.consumption.sel(region="CN")``
    is CN's rows), and one with a ``year`` dim (:func:`yearly`) gets its ``period`` back.

    Raises
    ------
    ValueError
        When a DataArray has no ``stat`` dim (a single statistic is no summary) or no name.
    """
    if isinstance(data, xr.Dataset):
        return data
    da = data
    if STAT not in da.dims:
        raise ValueError(f"quantity {da.name!r} has no {STAT!r} dim: pass the quantity with its statistics, not one of them")
    if da.name is None:
        raise ValueError("the quantity has no name: name it (da.rename('consumption'))")
    if "year" in da.dims and PERIOD not in da.dims:
        years = da["year"].values.astype(int)
        da = da.rename(year=PERIOD).assign_coords({PERIOD: [str(y) for y in years], "year_start": (PERIOD, years),
                                                    "year_end": (PERIOD, years)})
    for name in [str(n) for n, c in da.coords.items() if c.ndim == 0 and n not in (STAT, "year_start", "year_end")]:
        da = da.expand_dims(name)
    if PERIOD in da.dims and da["year_start"].ndim == 0:
        da = da.assign_coords(year_start=(PERIOD, [int(da["year_start"])]), year_end=(PERIOD, [int(da["year_end"])]))
    dims = [d for d in da.dims if d not in (STAT, PERIOD)]
    ds = da.to_dataset()
    ds[da.name].attrs = dict(da.attrs)
    ds.attrs = {"layout": LAYOUT, "dim_columns": json.dumps(dims), "weakly_informed_below": WEAKLY_INFORMED}
    return ds


def quantity_frame(data: xr.Dataset | xr.DataArray, quantity: str | None = None) -> pd.DataFrame:
    """The summary rows of one quantity (of every quantity when ``quantity`` is None) as :func:`summary_frame` writes them.

    Parameters
    ----------
    data : Dataset or DataArray
        A derived Dataset or one of its quantities (see :func:`as_dataset`).
    quantity : str, optional
        The quantity to take from a Dataset.

    Raises
    ------
    ValueError
        When ``quantity`` is not in the Dataset (the message lists those present).
    """
    ds = as_dataset(data)
    if quantity is not None and isinstance(data, xr.Dataset):
        if quantity not in ds.data_vars:
            raise ValueError(f"no quantity {quantity!r} in the derived quantities; present: {sorted(map(str, ds.data_vars))}")
        ds = ds[[quantity]]
    return summary_frame(ds)


def load_derived(result_dir: str | Path) -> xr.Dataset:
    """The derived quantities of a result folder: ``derived.nc``, or for a folder written before it existed, ``summary.csv``.

    Raises
    ------
    FileNotFoundError
        When the folder has neither file.
    """
    result_dir = Path(result_dir)
    if (result_dir / "derived.nc").is_file():
        return read_derived(result_dir / "derived.nc")
    if (result_dir / "summary.csv").is_file():
        return summary_dataset(read_summary(result_dir / "summary.csv"))
    raise FileNotFoundError(f"{result_dir}: no derived.nc or summary.csv (is it a 'bayesmfa run' result folder?)")
