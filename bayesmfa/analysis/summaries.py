"""Derived quantities computed per draw, summarised into tidy tables.

Aggregate per draw first, then summarise: never add up quantiles.

Every case writes ``summary.csv`` in one layout (:func:`summary_columns`, built by
:func:`publish`): ``quantity``, the dims ``region, partner, product, end_use``,
integer ``year_start``/``year_end`` (equal for a yearly row; the first and last
year of a cumulative row), ``unit``, ``description``, the posterior statistics,
the prior's and the contraction. Read it back with :func:`read_summary`, pick
yearly or cumulative rows with :func:`annual` / :func:`cumulative`, and describe
it in ``summary.md`` with :func:`write_summary_markdown`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

if TYPE_CHECKING:  # pragma: no cover
    from bayesmfa.core.system import System

SAMPLE_DIMS = ("chain", "draw")
Quantity = Callable[[xr.Dataset], xr.DataArray]


def interval_columns(prob: float) -> tuple[str, str]:
    """Names of the lower and upper quantile columns, e.g. ``q05``/``q95`` for 0.9."""
    lo = (1 - prob) / 2 * 100
    return f"q{lo:02.0f}" if lo >= 1 else f"q{lo:g}", f"q{100 - lo:02.0f}" if lo >= 1 else f"q{100 - lo:g}"


def summarize_array(da: xr.DataArray, prob: float = 0.9, name: str | None = None) -> pd.DataFrame:
    """Summarise one per-draw quantity into a tidy table.

    Parameters
    ----------
    da : xarray.DataArray
        With sample dims ``chain`` and ``draw`` (or ``sample``) and any others.
    prob : float
        Mass of the equal-tailed interval (0.9 gives q05 and q95).
    name : str, optional
        Value of the ``quantity`` column (``da.name`` by default).

    Returns
    -------
    DataFrame
        One row per coord combination: the non-sample dims as columns, then
        ``mean, sd, <lo>, q50, <hi>``.
    """
    if not 0 < prob < 1:
        raise ValueError(f"prob must be in (0, 1), got {prob}")
    sample = [d for d in da.dims if d in (*SAMPLE_DIMS, "sample")]
    lo_name, hi_name = interval_columns(prob)
    mean = da.mean(sample)
    lo, mid, hi = sample_quantiles(da, ((1 - prob) / 2, 0.5, 1 - (1 - prob) / 2), sample)
    stats = xr.Dataset(
        {
            "mean": mean,
            "sd": da.std(sample, ddof=1) if da.sizes.get("draw", 2) > 1 or "sample" in da.dims else da.std(sample),
            lo_name: mean.copy(data=lo),
            "q50": mean.copy(data=mid),
            hi_name: mean.copy(data=hi),
        }
    )
    df = stats.to_dataframe().reset_index() if stats["mean"].dims else pd.DataFrame({k: [float(v)] for k, v in stats.items()})
    df.insert(0, "quantity", name or da.name or "value")
    return df


def interval_stats(da: xr.DataArray, prob: float = 0.9, sample: Sequence[str] = ("chain", "draw")) -> xr.DataArray:
    """Mean, sd, median and the equal-tailed ``prob`` interval of a per-draw quantity, on a ``stat`` dim.

    Parameters
    ----------
    da : xarray.DataArray
        Draws with the dims ``sample`` and any others (unit of the quantity).
    prob : float
        Mass of the interval (0.9 gives the stats ``q05`` and ``q95``, see :func:`interval_columns`).
    sample : sequence of str
        The sample dims.

    Returns
    -------
    xarray.DataArray
        Dims (``stat``, the other dims of ``da``); stats ``mean, sd, <lo>, q50, <hi>`` in the unit of ``da``
        (``sd`` with ddof 1; quantiles as :func:`sample_quantiles`, NaN draws skipped).
    """
    da = da.reset_coords(drop=True)
    others = [d for d in da.dims if d not in sample]
    lo_name, hi_name = interval_columns(prob)
    lo, mid, hi = sample_quantiles(da, ((1 - prob) / 2, 0.5, 1 - (1 - prob) / 2), sample)
    mean = da.mean(sample).transpose(*others)
    sd = da.std(sample, ddof=1).transpose(*others)
    values = np.stack([mean.values, sd.values, lo, mid, hi])
    coords = {d: da.coords[d] for d in others if d in da.coords}
    return xr.DataArray(values, dims=("stat", *others), coords={"stat": ["mean", "sd", lo_name, "q50", hi_name], **coords},
                        name=da.name)


def interval_stat_names(stats: Sequence[str]) -> tuple[str, str]:
    """The lower and upper interval stats among ``stats`` (as :func:`interval_stats` names them, e.g. ``q05``, ``q95``).

    Raises
    ------
    ValueError
        When ``stats`` holds no interval besides ``q50``.
    """
    levels = sorted((float(s[1:]), s) for s in stats if s.startswith("q") and s != "q50" and s[1:].replace(".", "", 1).isdigit())
    if len(levels) < 2:
        raise ValueError(f"no interval among the stats {list(stats)}")
    return levels[0][1], levels[-1][1]


def sample_quantiles(da: xr.DataArray, probs: Sequence[float], sample: Sequence[str]) -> list[np.ndarray]:
    """Quantiles over the sample dims of every element of ``da``, NaN draws skipped (as ``da.quantile``).

    The same numbers as ``da.quantile(p, dim=sample)`` (NumPy's linear method, NaNs skipped) for each
    ``p``, but all quantiles from one partition of each element's draws, and NumPy's vectorised quantile
    for the elements without a NaN draw (``np.nanquantile`` handles one element at a time).

    Parameters
    ----------
    da : xarray.DataArray
        Draws with the dims ``sample`` and any others.
    probs : sequence of float
        Quantile levels in [0, 1].
    sample : sequence of str
        The sample dims (e.g. ``chain``, ``draw``).

    Returns
    -------
    list of numpy.ndarray
        One array per level, shaped as ``da`` without the sample dims (in ``da``'s order).
    """
    others = [d for d in da.dims if d not in sample]
    shape = tuple(da.sizes[d] for d in others)
    draws = int(np.prod([da.sizes[d] for d in sample]))
    values = np.asarray(da.transpose(*others, *sample).values, dtype=float).reshape(int(np.prod(shape)), draws)
    q = np.asarray(probs, dtype=float)
    out = np.full((len(q), values.shape[0]), np.nan)
    gaps = np.isnan(values).any(axis=1)
    if (~gaps).any():
        out[:, ~gaps] = np.quantile(values[~gaps], q, axis=1)
    if gaps.any():
        with warnings.catch_warnings():  # an element with no finite draw has NaN quantiles, as in xarray
            warnings.simplefilter("ignore", RuntimeWarning)
            out[:, gaps] = np.nanquantile(values[gaps], q, axis=1)
    return [row.reshape(shape) for row in out]


def default_quantities(ds: xr.Dataset) -> dict[str, Quantity]:
    """Every named flow, process input/output, external input and stock (change and level) of a fit (no sampler
    variables such as ``input_step_log__``)."""
    prefixes = ("flow_", "input_", "output_", "external_", "stock_")
    return {
        str(name): (lambda d, n=name: d[n])
        for name in ds.data_vars
        if str(name).startswith(prefixes) and str(name) not in ("input_log_level", "input_level_z")
        # sampler variables: step scales (``input_step``, and ``input_step_lognormal``... when the step priors mix families)
        and not str(name).startswith(("input_log_", "input_step")) and not str(name).endswith("__")
    }


def summarize(
    idata: az.InferenceData | xr.Dataset,
    quantities: Mapping[str, Quantity] | None = None,
    *,
    prob: float = 0.9,
    group: str = "posterior",
) -> pd.DataFrame:
    """Tidy summary of derived quantities, each computed per draw.

    Parameters
    ----------
    idata : InferenceData or Dataset
        A fit (``group`` is used) or a posterior Dataset.
    quantities : mapping of name -> callable, optional
        Each callable takes the posterior Dataset and returns a DataArray with
        the sample dims; by default every flow and process total.
    prob : float
        Equal-tailed interval mass (default 0.9).
    group : str
        InferenceData group to summarise.

    Returns
    -------
    DataFrame
        Columns ``quantity``, the dims of each quantity (blank where a
        quantity lacks one), ``mean, sd, q05, q50, q95`` (names follow ``prob``).
    """
    ds = idata[group] if isinstance(idata, az.InferenceData) else idata
    quantities = quantities if quantities is not None else default_quantities(ds)
    frames = [summarize_array(fn(ds), prob, name) for name, fn in quantities.items()]
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    lo, hi = interval_columns(prob)
    stat_cols = ["mean", "sd", lo, "q50", hi]
    front = ["quantity"] + [c for c in out.columns if c not in stat_cols and c != "quantity"]
    return out[front + stat_cols]


#: Contraction below which a reported quantity counts as weakly informed by the records: its
#: posterior interval is more than 70% as wide as its prior interval, so what the summary reports
#: about it is mostly the prior's assumption (flagged in ``summary.csv`` as ``weakly_informed``).
WEAKLY_INFORMED = 0.3


def prior_columns(prob: float = 0.9) -> tuple[str, str, str]:
    """Names of the prior quantile columns, e.g. ``prior_q05``, ``prior_q50``, ``prior_q95`` for 0.9."""
    lo, hi = interval_columns(prob)
    return f"prior_{lo}", "prior_q50", f"prior_{hi}"


def contraction(width: np.ndarray | pd.Series, width_prior: np.ndarray | pd.Series) -> np.ndarray:
    """How far the data narrowed an interval: ``1 - width / width_prior``.

    1 means the records pin the quantity down, 0 that its interval is as wide
    as under the prior alone; negative values mean the posterior is wider
    (a conflict between prior and records, or Monte Carlo noise).

    Parameters
    ----------
    width, width_prior : array-like
        Posterior and prior interval widths (same unit, e.g. kt REO).

    Returns
    -------
    ndarray
        NaN where the prior width is 0 or not finite (nothing to contract).
    """
    width = np.asarray(width, dtype=float)
    width_prior = np.asarray(width_prior, dtype=float)
    ok = np.isfinite(width_prior) & (width_prior > 0)
    return np.where(ok, 1.0 - width / np.where(ok, width_prior, 1.0), np.nan)


def interval_contraction(lo, hi, prior_lo, prior_hi) -> np.ndarray:  # noqa: ANN001
    """Contraction of an interval ``[lo, hi]`` against the prior's ``[prior_lo, prior_hi]``.

    For a quantity whose four limits are all positive (flows, consumption, shares), the
    widths are taken on the log scale, ``log(hi / lo)``: random-walk priors of flows have
    long right tails (their 95 % limit can be 10^5 kt), and a linear width would be set by
    that tail alone, so almost every flow would look pinned down. On the log scale the
    ratio compares relative uncertainty (a factor of 3 vs a factor of 30). Elsewhere
    (quantities of either sign, e.g. net exports or stock changes, or a limit at 0) the
    widths are linear, in the quantity's unit. See :func:`contraction`.

    Parameters
    ----------
    lo, hi, prior_lo, prior_hi : array-like
        Posterior and prior interval limits, one per summary row.

    Returns
    -------
    ndarray
    """
    lo, hi, plo, phi = (np.asarray(x, dtype=float) for x in (lo, hi, prior_lo, prior_hi))
    positive = (lo > 0) & (plo > 0) & np.isfinite(hi) & np.isfinite(phi)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_c = contraction(np.log(np.where(positive, hi / lo, 1.0)), np.log(np.where(positive, phi / plo, 1.0)))
    return np.where(positive, log_c, contraction(hi - lo, phi - plo))


def add_prior_columns(summary: pd.DataFrame, prior: pd.DataFrame | None, prob: float = 0.9) -> pd.DataFrame:
    """A posterior summary with the prior's quantiles, the contraction and the weakly-informed flag.

    Parameters
    ----------
    summary : DataFrame
        Posterior summary (:func:`summarize`, :func:`summarize_array`): key
        columns (``quantity`` and dims), then ``mean, sd, <lo>, q50, <hi>``.
    prior : DataFrame or None
        The same summary of the prior draws (same keys); ``None`` when the fit
        has no prior group: the new columns are then NaN (flag False).
    prob : float
        Interval mass of both summaries.

    Returns
    -------
    DataFrame
        ``summary`` (rows in their order) plus ``prior_<lo>, prior_q50,
        prior_<hi>`` (see :func:`prior_columns`), ``contraction`` (see
        :func:`interval_contraction`, of the ``prob`` intervals: log widths for positive quantities) and ``weakly_informed``
        (``contraction < WEAKLY_INFORMED``; False where the contraction is NaN).
    """
    lo, hi = interval_columns(prob)
    names = prior_columns(prob)
    stats = ["mean", "sd", lo, "q50", hi]
    out = summary.copy()
    if prior is None or prior.empty:
        for c in names:
            out[c] = np.nan
    else:
        keys = [c for c in summary.columns if c not in stats]
        if list(prior.columns) != list(summary.columns):
            raise ValueError(f"prior summary columns {list(prior.columns)} differ from the posterior's {list(summary.columns)}")
        right = prior[keys + [lo, "q50", hi]].rename(columns=dict(zip((lo, "q50", hi), names)))
        out = out.merge(right, on=keys, how="left", validate="one_to_one")
    out["contraction"] = interval_contraction(out[lo], out[hi], out[names[0]], out[names[2]])
    out["weakly_informed"] = out["contraction"] < WEAKLY_INFORMED
    return out


def summarize_with_prior(
    idata: az.InferenceData, quantities: Mapping[str, Quantity] | None = None, *, prob: float = 0.9
) -> pd.DataFrame:
    """:func:`summarize` of the posterior with the prior columns of :func:`add_prior_columns`.

    The quantities are computed from the ``prior`` group the same way (NaN
    prior columns when the fit has none); by default the posterior's flows
    and process totals.
    """
    quantities = quantities if quantities is not None else default_quantities(idata.posterior)
    post = summarize(idata, quantities, prob=prob)
    prior = summarize(idata, quantities, prob=prob, group="prior") if "prior" in idata.groups() else None
    return add_prior_columns(post, prior, prob)


def prior_posterior_width(
    idata: az.InferenceData, quantities: Mapping[str, Quantity] | None = None, prob: float = 0.9
) -> pd.DataFrame:
    """Interval width of each quantity under the prior and the posterior, their ratio and the contraction.

    Needs a ``prior`` group (:func:`bayesmfa.inference.sampling.fit` draws one).

    Returns
    -------
    DataFrame
        Key columns, ``width``, ``width_prior``, ``width_ratio`` (NaN where the
        prior width is 0; linear widths), ``contraction`` (see
        :func:`interval_contraction`: from log widths where the quantity is
        positive, else ``1 - width_ratio``) and ``weakly_informed``.
    """
    if "prior" not in idata.groups():
        raise ValueError("the fit has no prior group: fit with prior_draws > 0 or add one with bayesmfa.inference.sampling.sample_prior")
    lo, hi = interval_columns(prob)
    p_lo, _, p_hi = prior_columns(prob)
    merged = summarize_with_prior(idata, quantities, prob=prob)
    keys = [c for c in merged.columns if c not in ("mean", "sd", lo, "q50", hi, *prior_columns(prob), "contraction", "weakly_informed")]
    merged["width"] = merged[hi] - merged[lo]
    merged["width_prior"] = merged[p_hi] - merged[p_lo]
    merged["width_ratio"] = merged["width"] / merged["width_prior"].where(merged["width_prior"] > 0)
    return merged[[*keys, "width", "width_prior", "width_ratio", "contraction", "weakly_informed"]]


# ----------------------------------------------------------------------------- the published layout of summary.csv

#: Columns of the period of a summary row: integers, equal for a yearly row, first and last year
#: of the period for a cumulative row (summed, or a share of sums, over those years per draw).
PERIOD_COLUMNS = ("year_start", "year_end")
#: Dim columns of every case's ``summary.csv`` (blank where a quantity lacks the dim): ``region`` is
#: the reporting region (exporter of exports and of a flow, importer of imports), ``partner`` the other side.
SUMMARY_DIMS = ("region", "partner", "product", "end_use")


@dataclass(frozen=True)
class QuantityInfo:
    """What a reported quantity of interest is: its unit, a plain sentence saying what it measures, and how it is summarised.

    Attributes
    ----------
    unit : str
        E.g. ``"kt REO"``, ``"share (0-1)"``, ``"probability (0-1)"``.
    description : str
        One sentence, with the direction convention (``region`` / ``partner``)
        and, for a share, its numerator and denominator.
    cumulative : bool
        Also report the sum over all years of the fit (per draw, then summarised) as one cumulative period
        (``year_start`` < ``year_end``): true for flows, false for shares, levels and probabilities.
    indicator : bool
        The quantity is 0 or 1 in each draw, so its ``mean`` is a probability and its intervals (0-0, 0-1 or
        1-1) say nothing: the contraction is left NaN (and ``weakly_informed`` False).
    """

    unit: str
    description: str
    cumulative: bool = False
    indicator: bool = False


def summary_columns(prob: float = 0.9, dims: Sequence[str] = SUMMARY_DIMS) -> list[str]:
    """Columns of the published summary, in order.

    ``quantity``, the dims, ``year_start, year_end``, ``unit``, ``description``,
    ``mean, sd, <lo>, q50, <hi>``, ``prior_<lo>, prior_q50, prior_<hi>``,
    ``contraction``, ``weakly_informed`` (interval names follow ``prob``): what a
    row is comes first, its statistics last.
    """
    lo, hi = interval_columns(prob)
    return ["quantity", *dims, *PERIOD_COLUMNS, "unit", "description", "mean", "sd", lo, "q50", hi, *prior_columns(prob),
            "contraction", "weakly_informed"]


def with_period(df: pd.DataFrame, start: int, end: int) -> pd.DataFrame:
    """Rows of a summary with ``year_start``/``year_end`` (integers) in place of ``year``.

    Rows with a ``year`` get it as both; rows without one (a quantity with no
    year dim, e.g. a share of sums over all years) get the period ``start``-``end``.

    Parameters
    ----------
    df : DataFrame
        Output of :func:`summarize_array` or :func:`summarize` (optionally with a ``year`` column).
    start, end : int
        First and last year of the fit.
    """
    out = df.copy()
    year = pd.to_numeric(out["year"], errors="coerce") if "year" in out.columns else pd.Series(np.nan, index=out.index)
    out["year_start"] = year.fillna(start).astype(int)
    out["year_end"] = year.fillna(end).astype(int)
    return out.drop(columns=["year"], errors="ignore")


def publish(
    summary: pd.DataFrame,
    info: Mapping[str, QuantityInfo],
    prob: float = 0.9,
    dims: Sequence[str] = SUMMARY_DIMS,
) -> pd.DataFrame:
    """The published layout of a summary (:func:`summary_columns`): dims, integer periods, unit and description.

    Parameters
    ----------
    summary : DataFrame
        A summary with ``year_start``/``year_end`` (see :func:`with_period`),
        the statistics and, optionally, the prior columns of :func:`add_prior_columns`.
    info : mapping of quantity -> QuantityInfo
        Unit and description of every quantity in ``summary``.
    prob : float
        Interval mass of the summary.
    dims : sequence of str
        Dim columns (blank text where a quantity lacks the dim).

    Raises
    ------
    ValueError
        When a quantity has no entry in ``info`` or a dim column of the
        summary is not in ``dims`` (it would be lost).
    """
    missing = sorted(set(summary["quantity"].astype(str)) - set(info))
    if missing:
        raise ValueError(f"no unit and description for the quantities {missing}")
    cols = summary_columns(prob, dims)
    extra = [c for c in summary.columns if c not in cols]
    if extra:
        raise ValueError(f"summary columns {extra} are not in the published layout {cols}")
    out = summary.copy()
    for col in dims:
        out[col] = out[col].fillna("").astype(str) if col in out else ""
    out = out[~_zero_self_pair(out, prob)]
    out["unit"] = out["quantity"].map(lambda q: info[q].unit)
    out["description"] = out["quantity"].map(lambda q: info[q].description)
    for col in prior_columns(prob):
        if col not in out:
            out[col] = np.nan
    if "contraction" not in out:
        out["contraction"] = interval_contraction(out[interval_columns(prob)[0]], out[interval_columns(prob)[1]],
                                                  out[prior_columns(prob)[0]], out[prior_columns(prob)[2]])
    if "weakly_informed" not in out:
        out["weakly_informed"] = out["contraction"] < WEAKLY_INFORMED
    return out[cols].reset_index(drop=True)


def year_span(da: xr.Dataset | xr.DataArray) -> tuple[int, int]:
    """First and last year of a group or quantity (its ``year`` coord)."""
    years = da["year"].values
    return int(years[0]), int(years[-1])


def quantity_rows(name: str, da: xr.DataArray, prob: float, cumulative: bool, years: tuple[int, int]) -> pd.DataFrame:
    """Summary rows of one quantity per draw: one per year, plus its cumulative row (summed per draw first).

    Parameters
    ----------
    name : str
        The ``quantity`` column.
    da : xarray.DataArray
        Draws (dims ``chain``, ``draw`` and the quantity's, usually ``year``).
    prob : float
        Interval mass.
    cumulative : bool
        Add the sum over the years as one row per coord, with ``year_start``/``year_end`` the first and last year
        (when ``da`` has more than one year).
    years : (int, int)
        The fit's first and last year: the period of a quantity without a ``year`` dim (e.g. a share of sums).
    """
    da = da.reset_coords(drop=True)  # a coord left by a selection (origin="CN") is no dim of the row
    rows = [with_period(summarize_array(da, prob, name), *years)]
    if cumulative and "year" in da.dims and da.sizes["year"] > 1:
        rows.append(with_period(summarize_array(da.sum("year"), prob, name), *year_span(da)))
    return pd.concat(rows, ignore_index=True)


def summarize_quantities(
    idata: az.InferenceData,
    compute: Callable[[xr.Dataset], Mapping[str, xr.DataArray]],
    info: Mapping[str, QuantityInfo],
    prob: float = 0.9,
    dims: Sequence[str] = SUMMARY_DIMS,
) -> pd.DataFrame:
    """The published summary of a case's quantities of interest, each computed per draw from the posterior and the prior.

    Parameters
    ----------
    idata : InferenceData
        A fit; its ``prior`` group, when present, gives the prior columns and the contraction.
    compute : callable
        ``compute(group) -> {name: DataArray}``: every quantity from one group (dims ``chain``, ``draw``, usually
        ``year``, and dims among ``dims``), in the order of the summary.
    info : mapping of name -> QuantityInfo
        Unit, description, cumulative and indicator flags of every quantity ``compute`` returns.
    prob : float
        Interval mass.
    dims : sequence of str
        The summary's dim columns (blank where a quantity lacks one).

    Returns
    -------
    DataFrame
        In the published layout (:func:`summary_columns`): per quantity its yearly rows, then its cumulative ones.

    Raises
    ------
    ValueError
        When a quantity has no entry in ``info``, or a dim not in ``dims``.
    """

    def rows(group: xr.Dataset) -> pd.DataFrame:
        quantities = compute(group)
        missing = sorted(set(quantities) - set(info))
        if missing:
            raise ValueError(f"no unit and description for the quantities {missing}")
        span = year_span(group)
        out = pd.concat([quantity_rows(n, da, prob, info[n].cumulative, span) for n, da in quantities.items()], ignore_index=True)
        extra = [c for c in out.columns if c not in ("quantity", *dims, *PERIOD_COLUMNS, "mean", "sd", *interval_columns(prob), "q50")]
        if extra:
            raise ValueError(f"quantities have dims {extra} that are not summary columns {list(dims)}")
        for col in dims:
            out[col] = out[col].fillna("") if col in out else ""
        lo, hi = interval_columns(prob)
        return out[["quantity", *dims, *PERIOD_COLUMNS, "mean", "sd", lo, "q50", hi]]

    out = rows(idata.posterior)
    prior = rows(idata.prior) if "prior" in idata.groups() else None
    out = add_prior_columns(out, prior, prob)
    indicator = out["quantity"].map(lambda q: info[q].indicator).astype(bool)
    out.loc[indicator, "contraction"] = np.nan
    out.loc[indicator, "weakly_informed"] = False
    return publish(out, info, prob, dims)


def _zero_self_pair(summary: pd.DataFrame, prob: float) -> pd.Series:
    """Rows of a region with itself as partner (e.g. imports of CN from CN) that are 0 in every statistic: structural zeros."""
    if "partner" not in summary.columns or "region" not in summary.columns:
        return pd.Series(False, index=summary.index)
    lo, hi = interval_columns(prob)
    zero = (summary[["mean", lo, "q50", hi]].astype(float) == 0).all(axis=1)
    return (summary["partner"] != "") & (summary["region"] == summary["partner"]) & zero


def read_summary(path: str | Path) -> pd.DataFrame:
    """A ``summary.csv`` as written by ``bayesmfa run``: dims as text (blank, not NaN), periods as integers.

    A file of the earlier layout (one ``year`` column holding ``2010`` or
    ``2000-2022``) is converted: a plain year becomes ``year_start =
    year_end``, a period ``A-B`` becomes ``year_start = A, year_end = B``
    (rows with any other ``year`` are kept with a blank period and dropped by
    the plots).

    Parameters
    ----------
    path : str or Path
        The CSV file.

    Returns
    -------
    DataFrame
        With ``year_start``/``year_end`` as nullable integers when any row
        lacks a period, plain integers otherwise.
    """
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    return normalise_summary(df)


def normalise_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Statistics as numbers, dims as text and ``year_start``/``year_end`` as integers (see :func:`read_summary`)."""
    out = df.copy()
    if "year" in out.columns and not set(PERIOD_COLUMNS) <= set(out.columns):
        text = out.pop("year").astype(str).str.strip()
        parts = text.str.partition("-")
        single = pd.to_numeric(text, errors="coerce")
        first = pd.to_numeric(parts[0], errors="coerce")
        last = pd.to_numeric(parts[2], errors="coerce")
        is_period = single.isna() & first.notna() & last.notna()
        out["year_start"] = single.where(~is_period, first).round().astype("Int64")
        out["year_end"] = single.where(~is_period, last).round().astype("Int64")
    for col in PERIOD_COLUMNS:
        if col in out.columns:
            values = pd.to_numeric(out[col], errors="coerce").round().astype("Int64")
            out[col] = values.astype(int) if values.notna().all() else values
    for col in out.columns:
        if col in PERIOD_COLUMNS or col == "quantity":
            continue
        if _is_numeric_column(col):
            out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
        elif col == "weakly_informed":
            out[col] = out[col].astype(str).str.strip().str.lower() == "true"
        else:
            out[col] = out[col].astype(object).where(out[col].notna(), "").astype(str)
    return out


def _is_numeric_column(col: object) -> bool:
    name = str(col).removeprefix("prior_")
    return name in ("mean", "sd", "contraction") or (name[:1] == "q" and name[1:].replace(".", "").isdigit())


def annual(summary: pd.DataFrame) -> pd.DataFrame:
    """Yearly rows of a summary (``year_start == year_end``) with an integer ``year`` column added.

    Also takes an in-memory summary with a numeric ``year`` column (the output
    of :func:`summarize`): its rows are yearly as they are.
    """
    if set(PERIOD_COLUMNS) <= set(summary.columns):
        start = pd.to_numeric(summary["year_start"], errors="coerce")
        end = pd.to_numeric(summary["year_end"], errors="coerce")
        keep = start.notna() & (start == end)
        out = summary[keep].copy()
        out["year"] = start[keep].astype(int)
        return out
    if "year" not in summary.columns:
        return summary.iloc[0:0].assign(year=pd.Series(dtype=int))
    num = pd.to_numeric(summary["year"], errors="coerce")
    keep = num.notna() & (num == np.floor(num))
    out = summary[keep].copy()
    out["year"] = num[keep].astype(int)
    return out


def cumulative(summary: pd.DataFrame) -> pd.DataFrame:
    """Rows of a summary that cover several years (``year_start < year_end``); empty without period columns."""
    if not set(PERIOD_COLUMNS) <= set(summary.columns):
        return summary.iloc[0:0]
    start = pd.to_numeric(summary["year_start"], errors="coerce")
    end = pd.to_numeric(summary["year_end"], errors="coerce")
    return summary[start.notna() & end.notna() & (start < end)]


def period_label(row: Mapping[str, object] | pd.Series) -> str:
    """``"2010"`` for a yearly row, ``"2000-2022"`` for a cumulative one (for titles and tables, never parsed back)."""
    start, end = int(row["year_start"]), int(row["year_end"])  # type: ignore[call-overload]
    return str(start) if start == end else f"{start}-{end}"


def write_summary_markdown(summary: pd.DataFrame, path: str | Path, *, title: str = "Quantities in summary.csv") -> Path:
    """Write ``summary.md``: one line per quantity of ``summary.csv`` with its unit, dims, years and description.

    Parameters
    ----------
    summary : DataFrame
        The published summary (:func:`publish`; columns ``quantity``, the
        dims, ``year_start, year_end, unit, description``).
    path : str or Path
        The Markdown file to write (usually ``summary.md`` beside ``summary.csv``).
    title : str
        The first heading.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    path.write_text(summary_markdown(summary, title=title), encoding="utf-8")
    return path


def summary_markdown(summary: pd.DataFrame, *, title: str = "Quantities in summary.csv") -> str:
    """The text :func:`write_summary_markdown` writes."""
    lo, hi = _interval_names(summary)
    lines = [
        f"# {title}",
        "",
        f"Each row of `summary.csv` is one quantity at one set of dims over one period: `year_start = year_end` for a "
        f"year, `year_start < year_end` for the total (or the share of totals) over those years, summed per draw. "
        f"`mean, sd, {lo}, q50, {hi}` describe the posterior, `prior_{lo}, prior_q50, prior_{hi}` the prior; "
        "`contraction` = 1 - posterior / prior interval width (log widths for positive quantities), "
        f"`weakly_informed` = contraction < {WEAKLY_INFORMED:g}. Dims are blank where they do not apply; `region` is the "
        "reporting region, `partner` the other side of a trade flow.",
        "",
        "| quantity | unit | dims | years | rows | description |",
        "|---|---|---|---|---:|---|",
    ]
    for quantity, rows in summary.groupby("quantity", sort=False):
        dims = [c for c in SUMMARY_DIMS if c in rows.columns and (rows[c].astype(str).str.strip() != "").any()]
        years = _years_text(rows)
        unit = _first(rows, "unit")
        description = _first(rows, "description").replace("|", "\\|")
        lines.append(f"| `{quantity}` | {unit} | {', '.join(dims) or '-'} | {years} | {len(rows)} | {description} |")
    return "\n".join(lines) + "\n"


def _interval_names(summary: pd.DataFrame) -> tuple[str, str]:
    qs = sorted((float(c[1:]), c) for c in summary.columns
                if isinstance(c, str) and c[:1] == "q" and c != "q50" and c[1:].replace(".", "").isdigit())
    return (qs[0][1], qs[-1][1]) if len(qs) >= 2 else ("q05", "q95")


def _first(rows: pd.DataFrame, col: str) -> str:
    return str(rows[col].iloc[0]) if col in rows.columns and len(rows) else ""


def _years_text(rows: pd.DataFrame) -> str:
    """``"2000-2022 (yearly), 2000-2022 (cumulative)"`` from the rows' periods."""
    if not set(PERIOD_COLUMNS) <= set(rows.columns):
        return ""
    parts = []
    yearly = annual(rows)
    if len(yearly):
        first, last = int(yearly["year"].min()), int(yearly["year"].max())
        n = yearly["year"].nunique()
        span = f"{first}" if first == last else f"{first}-{last}"
        parts.append(span if first == last else f"{span} yearly" if n == last - first + 1 else f"{n} years in {span}")
    spans = cumulative(rows)
    for (start, end), _ in spans.groupby(["year_start", "year_end"]):
        parts.append(f"{int(start)}-{int(end)} total")
    return ", ".join(parts)


# ----------------------------------------------------------------------------- any system: flows and process totals

_PER_YEAR = "per year"


def system_quantity_info(system: System, names: Sequence[str], unit: str | None = None) -> dict[str, QuantityInfo]:
    """Unit and description of each default quantity (:func:`default_quantities`) of a system.

    Crossed flows are reported from ``region`` (their origin) to ``partner``
    (their destination), see :func:`summarize_system`.

    Parameters
    ----------
    system : System
        The system of the fit.
    names : sequence of str
        Quantity names (``flow_<flow>``, ``input_<process>``, ``output_<process>``, ``external_<process>``).
    unit : str, optional
        Unit of every flow (default: the system's).
    """
    unit = unit or system.unit
    out: dict[str, QuantityInfo] = {}
    for name in names:
        kind, _, rest = name.partition("_")
        if kind == "flow" and rest in system.flows:
            f = system.flows[rest]
            product = f" of {f.product}" if f.product else ""
            if f.cross:
                text = (f"Flow `{rest}`{product} from process `{f.source}` in `region` into process `{f.target}` in `partner` "
                        f"(trade: `region` exports, `partner` imports), {_PER_YEAR}.")
            else:
                text = f"Flow `{rest}`{product} from process `{f.source}` to process `{f.target}`, {_PER_YEAR}."
        elif kind in ("input", "output") and rest in system.processes:
            text = f"Total {kind} of process `{rest}`, {_PER_YEAR}."
        elif kind in ("input", "output") and rest in system.groups:
            members = ", ".join(f"`{m}`" for m in system.groups[rest])
            text = f"Total {kind} of the process group `{rest}` ({members}), {_PER_YEAR}."
        elif kind == "external" and rest in system.processes:
            text = f"Input into process `{rest}` from outside the system, {_PER_YEAR}."
        elif kind == "stock" and rest.startswith("change_") and rest[len("change_"):] in system.stocks:
            stock = system.stocks[rest[len("change_"):]]
            text = (f"Change of the stock `{stock.name}` held by process `{stock.process}` (additions less releases, "
                    f"either sign), {_PER_YEAR}.")
        elif kind == "stock" and rest in system.stocks:
            stock = system.stocks[rest]
            start = "its initial level plus the changes" if stock.initial is not None else "the changes since the start of the first year"
            text = f"Level of the stock `{stock.name}` held by process `{stock.process}` at the end of the year: {start}."
        else:
            text = f"`{name}` of the fit, {_PER_YEAR}."
        out[name] = QuantityInfo(unit, text)
    return out


def summarize_system(
    idata: az.InferenceData, system: System, prob: float = 0.9, *, unit: str | None = None
) -> pd.DataFrame:
    """Every flow and process total of a fit in the published layout (:func:`summary_columns`).

    ``origin``/``destination`` of crossed flows become ``region``/``partner``;
    the system's other dims follow ``end_use`` as columns of their own.

    Parameters
    ----------
    idata : InferenceData
        A fit (with a ``prior`` group for the prior columns).
    system : System
        Its system.
    prob : float
        Interval mass.
    unit : str, optional
        The ``unit`` column (default: the system's unit).
    """
    quantities = default_quantities(idata.posterior)
    table = summarize_with_prior(idata, quantities, prob=prob)
    if "origin" in table.columns:  # a crossed flow is reported by its origin (region) towards its destination (partner)
        origin = table.pop("origin")
        table["region"] = table["region"].where(~_blank_text(table["region"]), origin) if "region" in table else origin
    table = table.rename(columns={"destination": "partner"})
    table = with_period(table, int(system.years[0]), int(system.years[-1]))
    extra = [d for d in system.dims if d not in SUMMARY_DIMS and d in table.columns]
    return publish(table, system_quantity_info(system, list(quantities), unit), prob, (*SUMMARY_DIMS, *extra))


def _blank_text(values: pd.Series) -> pd.Series:
    return values.isna() | (values.astype(str).str.strip() == "")
