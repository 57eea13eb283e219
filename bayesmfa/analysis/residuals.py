"""Record-level model criticism of a fit: which records the fit cannot reproduce, and which conflict.

For every record, replicated values are drawn from the fitted model (posterior
draws of the flows, factors and noise scales, plus fresh lognormal or
Student-t noise, on the log scale). From them:

* a **standardised residual** ``z = (log observed - mean replicated) / sd replicated``
  (for bounds, signed so that ``z < 0`` means the fit lies on the wrong side);
* a two-sided **posterior predictive p-value** ``2 min(P(rep >= obs), P(rep <= obs))``;
* per record family (or source type), a predictive check of the mean
  standardised residual (bias of the family as a whole) and the count of
  records with ``|z| > 3``;
* **conflicting records**: two measurements of the same quantity (same
  expression, coords, year, factor) that the fit misses on opposite sides,
  both by more than 2 sd.

Computed with the fused kernel from the stored parameters, without compiling
the PyMC model (acyclic systems).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from bayesmfa.core.model import ModelOptions, record_predictions, replicate_records
from bayesmfa.core.problem import Problem
from bayesmfa.inference.io import stored_options

#: |z| above this: the fit cannot reproduce the record
MISFIT_Z = 3.0
#: two records of one quantity missed on opposite sides by more than this many sd conflict
CONFLICT_Z = 2.0
#: columns of the record table that identify what a record measures
KEY_COLUMNS = ("quantity", "region", "origin", "destination", "end_use", "year", "share_of", "denominator", "factor")
BOUND_NAMES = {0: "", 1: "upper", -1: "lower"}


@dataclass(frozen=True)
class RecordChecks:
    """Record-level criticism of one fit.

    Attributes
    ----------
    records : DataFrame
        One row per record: its id, file, row, family, source type, what it
        measures, ``observed`` and ``model_q05/q50/q95`` (system unit, or a
        fraction for shares; model values include the record's factors),
        ``z``, ``p_value`` and ``misfit`` (``|z| > 3``; for bounds ``z < -3``).
    families : DataFrame
        Per family: ``n_records``, ``n_misfit``, ``mean_z``, ``rms_z`` and the
        predictive p-value of the mean standardised residual (``p_value``,
        two-sided; ``flag`` when below 0.05).
    conflicts : DataFrame
        Pairs of records of one quantity missed on opposite sides
        (``record_id_high``: observed above the fit, ``record_id_low``: below),
        with their z and the log ratio of their observed values.
    """

    records: pd.DataFrame
    families: pd.DataFrame
    conflicts: pd.DataFrame

    @property
    def misfits(self) -> pd.DataFrame:
        """Records the fit cannot reproduce, worst first."""
        bad = self.records[self.records["misfit"]]
        return bad.reindex(bad["z"].abs().sort_values(ascending=False).index)


def stack_draws(post: xr.Dataset) -> xr.Dataset:
    """``chain`` x ``draw`` stacked into ``sample``, also for variables with an empty dim.

    (xarray cannot stack a variable of size 0, such as the year-on-year innovations
    of a system with one year; those come back as empty arrays with a ``sample`` dim.)
    """
    empty = [name for name, da in post.data_vars.items() if 0 in da.shape]
    stacked = post.drop_vars(empty).stack(sample=("chain", "draw"))
    n = post.sizes["chain"] * post.sizes["draw"]
    for name in empty:
        da = post[name]
        dims = [d for d in da.dims if d not in ("chain", "draw")]
        stacked[name] = (tuple(dims) + ("sample",), np.zeros([da.sizes[d] for d in dims] + [n]))
    return stacked


def check_records(
    idata: az.InferenceData,
    problem: Problem,
    options: ModelOptions | None = None,
    *,
    seed: int = 0,
    max_draws: int = 1000,
    by: str = "family",
) -> RecordChecks:
    """Standardised residuals, predictive p-values and conflicts of every record of a fit.

    Parameters
    ----------
    idata : InferenceData
        A fit of ``problem`` (its posterior holds the parameters).
    problem : Problem
        The fitted problem (acyclic system).
    options : ModelOptions, optional
        The fit's model options (default: those stored in the fit, else the defaults).
    seed : int
        Seed of the replicated noise and of the draw subset.
    max_draws : int
        At most this many posterior draws are used (evenly spaced).
    by : str
        Record column to group families by: ``family`` (the column, or else the
        table in the record id, ``mine_production:12`` -> ``mine_production``)
        or another column such as ``source_type``.

    Returns
    -------
    RecordChecks
    """
    options = options or stored_options(idata)
    post = stack_draws(idata.posterior)
    n = post.sizes["sample"]
    post = post.isel(sample=np.unique(np.linspace(0, n - 1, min(n, max_draws)).astype(int)))
    post = post.drop_vars(["sample", "chain", "draw"], errors="ignore").assign_coords(sample=np.arange(post.sizes["sample"]))
    pred = record_predictions(post, problem, options, sample_dims=("sample",))
    log_obs = pred.obs  # each record on its likelihood's scale (log, or natural for normal records)
    rep = replicate_records(pred.model, pred.scale, pred.kind, pred.nu, np.random.default_rng(seed))
    rec = problem.records
    sd = rep.std(axis=0)
    sd = np.where(sd > 0, sd, np.nan)
    bound = np.asarray(rec.bound)
    z = (log_obs - rep.mean(axis=0)) / sd
    z_signed = np.where(bound == 0, z, bound * z)  # upper bound (+1): observed cap above the fit is fine
    above = (rep >= log_obs).mean(axis=0)
    p = np.where(bound == 0, 2 * np.minimum(above, 1 - above), np.where(bound == 1, 1 - above, above))
    q05, q50, q95 = np.quantile(pred.natural(pred.model), [0.05, 0.5, 0.95], axis=0)
    table = rec.table.reset_index(drop=True)
    if by in table:
        groups = table[by].astype(str)
    elif by == "family":  # the table a record was read from: the part of its id before the first ':'
        groups = table["record_id"].astype(str).str.split(":").str[0]
    else:
        raise ValueError(f"records have no column {by!r}")
    out = pd.DataFrame({
        "record_id": table["record_id"],
        "file": _relative_files(table["file"]) if "file" in table else "",
        "row": table.get("row", ""),
        "family": groups,
        "source_type": table["source_type"],
        **{c: table[c].astype(str) if c in table else "" for c in KEY_COLUMNS},
        "bound": [BOUND_NAMES[int(b)] for b in bound],
        "observed": np.asarray(rec.value, dtype=float),
        "model_q05": q05, "model_q50": q50, "model_q95": q95,
        "z": z_signed,
        "p_value": p,
    })
    out["misfit"] = np.where(bound == 0, np.abs(z_signed) > MISFIT_Z, z_signed < -MISFIT_Z)
    families = _family_checks(out, rep, log_obs, sd, bound)
    return RecordChecks(out, families, _conflicts(out))


def _family_checks(out: pd.DataFrame, rep: np.ndarray, log_obs: np.ndarray, sd: np.ndarray, bound: np.ndarray) -> pd.DataFrame:
    """Predictive check of each family's mean standardised residual (measurements only)."""
    rows = []
    for fam, idx in out.groupby("family").indices.items():
        meas = idx[(bound[idx] == 0) & np.isfinite(sd[idx])]
        row = {"family": fam, "n_records": len(idx), "n_misfit": int(out["misfit"].iloc[idx].sum())}
        if len(meas):
            mean_rep = rep[:, meas].mean(axis=0)
            z_obs = (log_obs[meas] - mean_rep) / sd[meas]
            t_rep = ((rep[:, meas] - mean_rep) / sd[meas]).mean(axis=1)
            t_obs = float(z_obs.mean())
            above = float((t_rep >= t_obs).mean())
            row |= {"mean_z": t_obs, "rms_z": float(np.sqrt((z_obs**2).mean())), "p_value": 2 * min(above, 1 - above)}
        else:
            row |= {"mean_z": np.nan, "rms_z": np.nan, "p_value": np.nan}
        rows.append(row)
    fams = pd.DataFrame(rows, columns=["family", "n_records", "n_misfit", "mean_z", "rms_z", "p_value"])
    fams["flag"] = fams["p_value"] < 0.05
    return fams


def _log_ratio(high: float, low: float) -> float:
    """``log(high / low)`` of two record values, with the limits where one is zero (+inf, -inf; NaN when both are)."""
    if high > 0 and low > 0:
        return float(np.log(high / low))
    if high > 0:
        return float(np.inf)
    return float(-np.inf) if low > 0 else float("nan")


def _conflicts(out: pd.DataFrame) -> pd.DataFrame:
    """Measurements of one quantity that the fit misses on opposite sides by more than CONFLICT_Z sd each."""
    meas = out[(out["bound"] == "") & np.isfinite(out["z"])]
    # only records missed by more than CONFLICT_Z take part; their quantities keep the order of first appearance
    # among all measurements (as a groupby of every measurement lists them)
    group = meas.groupby(list(KEY_COLUMNS), sort=False).ngroup()
    missed = ((meas["z"] > CONFLICT_Z) | (meas["z"] < -CONFLICT_Z)) & (group >= 0)  # -1: a key is NaN (dropped)
    candidates = meas[missed].assign(_group=group[missed])
    rows = []
    for _, grp in candidates.groupby("_group", sort=True):
        high, low = grp[grp["z"] > CONFLICT_Z], grp[grp["z"] < -CONFLICT_Z]
        if high.empty or low.empty:
            continue
        for _, h in high.iterrows():
            for _, lo in low.iterrows():
                rows.append({
                    "quantity": h["quantity"], "year": h["year"],
                    "record_id_high": h["record_id"], "observed_high": h["observed"], "z_high": h["z"],
                    "record_id_low": lo["record_id"], "observed_low": lo["observed"], "z_low": lo["z"],
                    "log_ratio": _log_ratio(float(h["observed"]), float(lo["observed"])),
                    "model_q50": h["model_q50"],
                })
    cols = ["quantity", "year", "record_id_high", "observed_high", "z_high", "record_id_low", "observed_low", "z_low",
            "log_ratio", "model_q50"]
    return pd.DataFrame(rows, columns=cols)


def _relative_files(files: pd.Series) -> pd.Series:
    """Record files relative to the folder that holds them all (``mine_production.csv``), so a shared
    result does not carry the paths of the machine it was fitted on."""
    names = files.fillna("").astype(str)
    paths = [p for p in names.unique() if p]
    if not paths:
        return names
    root = os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in paths])
    return names.map(lambda p: os.path.relpath(os.path.abspath(p), root) if p else p)

