"""Model criticism: predictive checks per record group, value of information of record groups.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from bayesmfa.analysis.powerscaling import (
    OBSERVED,
    SAMPLE,
    Quantity,
    _elements,
    _flat,
    k_threshold,
    log_likelihood_by_group,
    psis_weights,
    record_groups,
)
from bayesmfa.core.model import ModelOptions, build_model
from bayesmfa.core.problem import Problem
from bayesmfa.inference.io import fit_options

# ============================================================================ model criticism


def _record_moments(idata_group: xr.Dataset, problem: Problem, options: ModelOptions | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per draw location and scale (log scale) of each observed record variable: name -> (mu, sigma), (sample, obs)."""
    from pymc.model.transform.conditioning import remove_value_transforms

    model = remove_value_transforms(build_model(problem, options))
    present = [(name, dim) for name, dim in OBSERVED if name in model.named_vars]
    outs = []
    for name, _ in present:
        rv = model[name]
        params = rv.owner.op.dist_params(rv.owner)
        outs.extend(params[-2:])  # (mu, sigma) for Normal and StudentT
    outs = model.replace_rvs_by_values(outs)  # in terms of the value variables, not fresh random draws
    fn = model.compile_fn(outs=outs, inputs=model.value_vars, on_unused_input="ignore")
    free = [v.name for v in model.value_vars]
    stacked = {n: np.asarray(idata_group[n].transpose(*SAMPLE, ...).values) for n in free}
    n = idata_group.sizes["chain"] * idata_group.sizes["draw"]
    flat = {k: v.reshape(n, *v.shape[2:]) for k, v in stacked.items()}
    res: list[list[np.ndarray]] = [[] for _ in outs]
    for i in range(n):
        vals = fn({k: flat[k][i] for k in free})
        for j, v in enumerate(vals):
            res[j].append(np.array(np.broadcast_to(np.asarray(v, dtype=float), np.shape(vals[j - j % 2]))))
    out = {}
    for j, (name, _) in enumerate(present):
        mu, sd = np.array(res[2 * j]), np.array(res[2 * j + 1])
        out[name] = (mu, np.broadcast_to(sd, mu.shape))
    return out


def predictive_checks(
    idata: az.InferenceData,
    problem: Problem,
    *,
    seed: int,
    by: str = "source_type",
    options: ModelOptions | None = None,
    groups: Sequence[str] = ("posterior", "prior"),
) -> pd.DataFrame:
    """Posterior (and prior) predictive checks per record group.

    Replicated records are drawn with :func:`pymc.sample_posterior_predictive`
    from the draws of each InferenceData group present (``posterior``; ``prior``
    when the fit has one). Two discrepancies per record group, each for the
    observed and the replicated records of every draw:

    * ``mean_log_residual``: mean of ``log(record) - log(model value)`` (bias);
    * ``max_abs_z``: max over the group of ``|log residual| / noise`` (outliers).

    The Bayesian p-value is ``P(T(replicated) >= T(observed))``; values near 0
    or 1 (below 0.05 or above 0.95) flag a misfit.

    Parameters
    ----------
    idata : InferenceData
        A fit with ``observed_data``.
    problem : Problem
        Its problem.
    seed : int
        Seed of the replicated records.
    by : str
        Record grouping (``source_type`` or ``family``).
    options : ModelOptions, optional
        Options of the fit (default: those stored with it; others are refused, see
        :func:`bayesmfa.inference.io.fit_options`).
    groups : sequence of str
        InferenceData groups of parameter draws to check (those present).

    Returns
    -------
    DataFrame
        Columns ``check`` (posterior/prior), ``group``, ``n_records``,
        ``statistic``, ``observed`` (mean over draws of T(observed)),
        ``replicated`` (mean of T(replicated)), ``p_value`` and ``flag``.
    """
    options = fit_options(idata, options)
    model = build_model(problem, options)
    rgroups = record_groups(problem, by)
    rows = []
    for check in groups:
        if check not in idata:
            continue
        draws = idata[check]
        var_names = [n for n, _ in OBSERVED if n in model.named_vars]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pp = pm.sample_posterior_predictive(draws, model=model, var_names=var_names, random_seed=seed, progressbar=False,
                                                return_inferencedata=True).posterior_predictive
        moments = _record_moments(draws, problem, options)
        for name, dim in OBSERVED:
            if name not in moments:
                continue
            mu, sd = moments[name]
            rep = np.asarray(pp[name].transpose(*SAMPLE, dim).values).reshape(mu.shape)
            obs = np.asarray(idata.observed_data[name].values)[None, :]
            labels = pp[name][dim].values.astype(str)
            member = rgroups.reindex(labels).to_numpy()
            for g in pd.unique(member):
                idx = np.flatnonzero(member == g)
                r_obs, r_rep = obs[:, idx] - mu[:, idx], rep[:, idx] - mu[:, idx]
                stats = {
                    "mean_log_residual": (r_obs.mean(1), r_rep.mean(1)),
                    "max_abs_z": (np.abs(r_obs / sd[:, idx]).max(1), np.abs(r_rep / sd[:, idx]).max(1)),
                }
                for stat, (t_obs, t_rep) in stats.items():
                    p = float(np.mean(t_rep >= t_obs))
                    rows.append({"check": check, "group": str(g), "variable": name, "n_records": len(idx), "statistic": stat,
                                 "observed": float(t_obs.mean()), "replicated": float(t_rep.mean()), "p_value": p})
    out = pd.DataFrame(rows)
    if len(out):
        out["flag"] = (out["p_value"] < 0.05) | (out["p_value"] > 0.95)
    return out


def plot_predictive_checks(checks: pd.DataFrame, path: str | Path | None = None):
    """Dot plot of the Bayesian p-values per record group and statistic (a matplotlib Figure; no backend is chosen).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure  # a Figure of its own: no pyplot state, no backend chosen here

    stats = list(dict.fromkeys(checks["statistic"])) or ["-"]
    fig = Figure(figsize=(4.5 * len(stats) + 1.5, 0.4 * max(4, checks["group"].nunique() * 2) + 1), layout="constrained")
    axes = fig.subplots(1, len(stats), squeeze=False, sharey=True)
    for ax, stat in zip(axes[0], stats):
        sub = checks[checks["statistic"] == stat]
        for marker, check in zip("os", ("posterior", "prior")):
            part = sub[sub["check"] == check]
            if len(part):
                ax.scatter(part["p_value"], part["group"] + " (" + part["variable"] + ")", marker=marker, label=check)
        ax.axvspan(0, 0.05, color="red", alpha=0.1)
        ax.axvspan(0.95, 1, color="red", alpha=0.1)
        ax.set_xlim(0, 1)
        ax.set_xlabel("Bayesian p-value")
        ax.set_title(stat)
    handles, names = axes[0][0].get_legend_handles_labels()
    if handles:  # outside the data, below the panels
        fig.legend(handles, names, loc="outside lower center", ncols=len(names), fontsize="small", frameon=False)
    if path is not None:
        fig.savefig(path, dpi=110, bbox_inches="tight")
    return fig


def _weighted_quantile(x: np.ndarray, w: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    order = np.argsort(x)
    xs, ws = x[order], w[order]
    cdf = np.cumsum(ws) - 0.5 * ws
    cdf /= ws.sum()
    return np.interp(qs, cdf, xs)


def value_of_information(
    idata: az.InferenceData,
    problem: Problem,
    quantities: Mapping[str, Quantity],
    *,
    by: str = "source_type",
    prob: float = 0.9,
) -> pd.DataFrame:
    """Rank record groups by how much each narrows the intervals of the quantities.

    Cheap leave-group-out: the posterior is importance-weighted by
    ``exp(-log-likelihood of the group)`` (Pareto-smoothed) to approximate the
    fit without that group; interval widths with and without are compared.

    Returns
    -------
    DataFrame
        One row per group, best first: ``group``, ``n_records``,
        ``narrowing`` (median over quantity elements of
        ``1 - width with / width without``; 0.3 means the group removes 30% of
        the interval), ``max_narrowing``, ``pareto_k`` and ``reliable``
        (k below :func:`k_threshold`; otherwise refit with :func:`drop_group`).
    """
    post = idata.posterior
    n_chains = post.sizes["chain"]
    lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
    elements = [_elements(name, fn(post)) for name, fn in quantities.items()]
    values = np.concatenate([v for _, v in elements], axis=0)
    values = values[np.all(np.isfinite(values), axis=1)]
    width_with = np.quantile(values, hi, axis=1) - np.quantile(values, lo, axis=1)
    counts = record_groups(problem, by).value_counts()
    rows = []
    for g, logl in log_likelihood_by_group(idata, problem, by).items():
        x = _flat(logl)
        w, k = psis_weights(-x, n_chains)
        width_without = np.array([np.diff(_weighted_quantile(v, w, [lo, hi]))[0] for v in values])
        with np.errstate(divide="ignore", invalid="ignore"):
            narrowing = np.where(width_without > 0, 1.0 - width_with / width_without, 0.0)
        rows.append({"group": g, "n_records": int(counts.get(g, 0)), "narrowing": float(np.median(narrowing)),
                     "max_narrowing": float(np.max(narrowing)), "pareto_k": k, "reliable": bool(k < k_threshold(x.size))})
    return pd.DataFrame(rows).sort_values("narrowing", ascending=False, ignore_index=True)


