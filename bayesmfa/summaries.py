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


def prior_posterior_width(idata: az.InferenceData, quantities: Mapping[str, Quantity], prob: float = 0.9) -> pd.DataFrame:
    """Interval width of each quantity under the prior and the posterior, and their ratio.

    Needs a ``prior`` group (``pm.sample_prior_predictive``).
    """
    lo, hi = interval_columns(prob)
    post = summarize(idata, quantities, prob=prob, group="posterior")
    prior = summarize(idata, quantities, prob=prob, group="prior")
    keys = [c for c in post.columns if c not in ("mean", "sd", "q50", lo, hi)]
    merged = post.merge(prior, on=keys, suffixes=("", "_prior"))
    merged["width"] = merged[hi] - merged[lo]
    merged["width_prior"] = merged[f"{hi}_prior"] - merged[f"{lo}_prior"]
    merged["width_ratio"] = merged["width"] / merged["width_prior"].replace(0, np.nan)
    return merged[[*keys, "width", "width_prior", "width_ratio"]]
