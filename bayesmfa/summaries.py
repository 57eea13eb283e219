"""Derived quantities computed per draw, summarised into tidy tables.

Aggregate per draw first, then summarise: never add up quantiles.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

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
    stats = xr.Dataset(
        {
            "mean": da.mean(sample),
            "sd": da.std(sample, ddof=1) if da.sizes.get("draw", 2) > 1 or "sample" in da.dims else da.std(sample),
            lo_name: da.quantile((1 - prob) / 2, dim=sample).drop_vars("quantile"),
            "q50": da.quantile(0.5, dim=sample).drop_vars("quantile"),
            hi_name: da.quantile(1 - (1 - prob) / 2, dim=sample).drop_vars("quantile"),
        }
    )
    df = stats.to_dataframe().reset_index() if stats["mean"].dims else pd.DataFrame({k: [float(v)] for k, v in stats.items()})
    df.insert(0, "quantity", name or da.name or "value")
    return df


def default_quantities(ds: xr.Dataset) -> dict[str, Quantity]:
    """Every named flow, process input/output and external input of a fit."""
    prefixes = ("flow_", "input_", "output_", "external_")
    return {
        str(name): (lambda d, n=name: d[n])
        for name in ds.data_vars
        if str(name).startswith(prefixes) and str(name) not in ("input_log_level", "input_level_z", "input_step")
        and not str(name).startswith("input_log_")
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

    Needs a ``prior`` group (:func:`bayesmfa.inference.fit` draws one).

    Returns
    -------
    DataFrame
        Key columns, ``width``, ``width_prior``, ``width_ratio`` (NaN where the
        prior width is 0; linear widths), ``contraction`` (see
        :func:`interval_contraction`: from log widths where the quantity is
        positive, else ``1 - width_ratio``) and ``weakly_informed``.
    """
    if "prior" not in idata.groups():
        raise ValueError("the fit has no prior group: fit with prior_draws > 0 or add one with bayesmfa.inference.sample_prior")
    lo, hi = interval_columns(prob)
    p_lo, _, p_hi = prior_columns(prob)
    merged = summarize_with_prior(idata, quantities, prob=prob)
    keys = [c for c in merged.columns if c not in ("mean", "sd", lo, "q50", hi, *prior_columns(prob), "contraction", "weakly_informed")]
    merged["width"] = merged[hi] - merged[lo]
    merged["width_prior"] = merged[p_hi] - merged[p_lo]
    merged["width_ratio"] = merged["width"] / merged["width_prior"].where(merged["width_prior"] > 0)
    return merged[[*keys, "width", "width_prior", "width_ratio", "contraction", "weakly_informed"]]
