"""Power-scaling sensitivity without refitting (priorsense's idea, Kallioinen et al. 2023).

How much each quantity would move if one prior section or one group of records
were power-scaled, from the draws at hand with Pareto-smoothed importance weights.
Record groups are the ``source_type`` of each record or its ``family`` (the
``family`` column when the table has one, else the part of ``record_id`` before
the first ``:``). Censored (bound) records have no pointwise log-likelihood and
are left out of likelihood power-scaling.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from bayesmfa.core.likelihoods import FAMILIES
from bayesmfa.core.model import ModelOptions, build_model, flow_prior_logp
from bayesmfa.core.problem import Problem
from bayesmfa.inference.io import fit_options

Quantity = Callable[[xr.Dataset], xr.DataArray]
SAMPLE = ("chain", "draw")
#: priorsense's threshold on the power-scaling sensitivity.
THRESHOLD = 0.05
#: Free variables of the model by prior section (base names; a variable whose
#: elements follow several distributions is split into ``<base>_<dist>``).
PRIOR_SECTIONS: dict[str, tuple[str, ...]] = {
    "inputs": ("input_level_z",),
    "steps": ("input_step", "share_step"),
    "shares": ("share_logit_z", "share_logit_summed"),  # the summed groups' (ModelOptions.share_sums) whole walks
    "yields": ("yield",),
    "noise": ("noise",),
    "factors": ("record_factor",),
    "flows": (),  # a potential (bayesmfa.core.flowpriors), not a free variable: see log_prior_by_section
}
OBSERVED = tuple((name, dim) for _, name, dim in FAMILIES)


# ============================================================================ record groups


def record_groups(problem: Problem, by: str = "source_type") -> pd.Series:
    """Group of every record, indexed by ``record_id``.

    Parameters
    ----------
    problem : Problem
        The problem whose records are grouped.
    by : {"source_type", "family"} or a column of the record table
        ``family`` falls back to the ``record_id`` prefix before ``:``.

    Returns
    -------
    Series
        Group name per record id (dim ``record``).
    """
    table = problem.records.table
    if by == "family" and "family" not in table:
        values = table["record_id"].astype(str).str.split(":").str[0]
    else:
        values = table[by].astype(str)
    return pd.Series(values.to_numpy(), index=table["record_id"].astype(str).to_numpy(), name=by)


def log_likelihood_by_group(idata: az.InferenceData, problem: Problem, by: str = "source_type") -> dict[str, xr.DataArray]:
    """Pointwise log-likelihood summed over the records of each group.

    Returns
    -------
    dict
        Group -> DataArray (chain, draw), in nats.
    """
    groups = record_groups(problem, by)
    out: dict[str, xr.DataArray] = {}
    ll = idata.log_likelihood
    for var, dim in OBSERVED:
        if var not in ll:
            continue
        labels = ll[var][dim].values.astype(str)
        member = groups.reindex(labels).to_numpy()
        for g in pd.unique(member):
            part = ll[var].isel({dim: np.flatnonzero(member == g)}).sum(dim)
            out[str(g)] = out[str(g)] + part if str(g) in out else part
    return {g: out[g].reset_coords(drop=True) for g in sorted(out)}


def log_prior_by_section(idata: az.InferenceData, problem: Problem, options: ModelOptions | None = None) -> dict[str, xr.DataArray]:
    """Log prior density of each prior section per draw (untransformed values, no Jacobian).

    The input levels and share logits are non-centred (``z ~ Normal(0, 1)``);
    the log density of ``z`` equals that of the level under its declared prior
    up to a constant, so power-scaling either is the same.

    Returns
    -------
    dict
        Section -> DataArray (chain, draw), in nats; sections without free
        variables are left out.
    """
    options = fit_options(idata, options)
    model = build_model(problem, options)
    free = [rv.name for rv in model.free_RVs]
    owner: dict[str, str] = {}
    for section, bases in PRIOR_SECTIONS.items():
        for name in free:
            if any(name == b or (name.startswith(b + "_") and name[len(b) + 1 :].isalpha()) for b in bases):
                owner[name] = section
    names = [n for n in free if n in owner]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lp = pm.compute_log_prior(idata, var_names=names, model=model, extend_inferencedata=False, progressbar=False)
    out: dict[str, xr.DataArray] = {}
    for name in names:
        da = lp[name]
        da = da.sum([d for d in da.dims if d not in SAMPLE]) if da.ndim > 2 else da
        sec = owner[name]
        out[sec] = out[sec] + da if sec in out else da
    flows = flow_prior_logp(idata.posterior, problem, options)
    if flows is not None:
        out["flows"] = flows
    return {s: out[s].reset_coords(drop=True) for s in PRIOR_SECTIONS if s in out}


# ============================================================================ weights and distances


def _flat(da: xr.DataArray) -> np.ndarray:
    """Draws of a (chain, draw) array, flattened to (sample,)."""
    return np.asarray(da.transpose(*SAMPLE).values, dtype=float).reshape(-1)


def _reff(x: np.ndarray, n_chains: int) -> float:
    """Relative effective sample size of ``exp(x)`` (the importance ratios), in (0, 1]."""
    ratios = np.exp(x - x.max()).reshape(n_chains, -1)
    if np.allclose(ratios, ratios.flat[0]):
        return 1.0
    ess = float(az.ess(ratios, method="mean"))
    return float(np.clip(ess / ratios.size, 0.05, 1.0)) if np.isfinite(ess) else 1.0


def psis_weights(log_ratios: np.ndarray, n_chains: int = 1) -> tuple[np.ndarray, float]:
    """Pareto-smoothed normalised importance weights and the Pareto k.

    Parameters
    ----------
    log_ratios : ndarray
        Log importance ratios, dim (sample,), chains concatenated.
    n_chains : int
        Number of chains (for the relative effective sample size).

    Returns
    -------
    weights : ndarray
        Dim (sample,), summing to 1.
    k : float
        Pareto shape estimate; above ``min(1 - 1/log10(S), 0.7)`` the weights are unreliable.
    """
    x = np.asarray(log_ratios, dtype=float)
    x = np.where(np.isfinite(x), x, -np.inf)
    if np.ptp(x[np.isfinite(x)]) == 0:
        return np.full(len(x), 1.0 / len(x)), -np.inf
    with warnings.catch_warnings():  # a large k is returned and reported, not warned about
        warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto distribution", category=UserWarning)
        lw, k = az.psislw(x - x[np.isfinite(x)].max(), reff=_reff(np.where(np.isfinite(x), x, x[np.isfinite(x)].min()), n_chains))
    w = np.exp(np.asarray(lw) - np.max(lw))
    return w / w.sum(), float(np.asarray(k))


def k_threshold(n_samples: int) -> float:
    """Sample-size dependent Pareto k threshold, ``min(1 - 1/log10(S), 0.7)``."""
    return float(min(1.0 - 1.0 / math.log10(max(n_samples, 11)), 0.7))


def _cjs_one(x: np.ndarray, w: np.ndarray) -> float:
    """Normalised cumulative Jensen-Shannon distance between equal-weight and ``w``-weighted ECDFs of ``x``."""
    order = np.argsort(x, kind="stable")
    xs, ws = x[order], w[order]
    n = len(xs)
    width = np.diff(xs)
    p = np.arange(1, n) / n
    q = np.cumsum(ws / ws.sum())[:-1]
    p_int, q_int = float(p @ width), float(q @ width)
    bound = p_int + q_int
    if not np.isfinite(bound) or bound <= 0:
        return 0.0
    mid = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        lp = np.where(p > 0, np.log2(p), 0.0)
        lq = np.where(q > 0, np.log2(q), 0.0)
        lm = np.where(mid > 0, np.log2(mid), 0.0)
    pq = float(np.sum(width * p * (lp - lm))) + 0.5 / np.log(2) * (q_int - p_int)
    qp = float(np.sum(width * q * (lq - lm))) + 0.5 / np.log(2) * (p_int - q_int)
    return float(np.sqrt(max(pq, 0.0) + max(qp, 0.0)) / np.sqrt(bound))


def cjs_distance(x: np.ndarray, weights: np.ndarray) -> float:
    """Unsigned CJS distance between the draws ``x`` and the same draws weighted by ``weights``.

    The maximum over ``x`` and ``-x`` (the CJS is asymmetric in the tails), as in priorsense;
    0 means identical distributions, 1 disjoint ones.
    """
    x = np.asarray(x, dtype=float)
    ok = np.isfinite(x)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0:
        return 0.0
    return max(_cjs_one(x[ok], weights[ok]), _cjs_one(-x[ok], weights[ok]))


# ============================================================================ power-scaling


def _elements(name: str, da: xr.DataArray) -> tuple[pd.DataFrame, np.ndarray]:
    """Coord table and draws (element, sample) of a per-draw quantity."""
    other = [d for d in da.dims if d not in SAMPLE]
    da = da.transpose(*SAMPLE, *other)
    values = np.asarray(da.values, dtype=float).reshape(da.sizes["chain"] * da.sizes["draw"], -1).T
    if other:
        index = pd.MultiIndex.from_product([da[d].values for d in other], names=other).to_frame(index=False)
    else:
        index = pd.DataFrame(index=[0])
    index.insert(0, "quantity", name)
    return index, values


def power_scaling(
    idata: az.InferenceData,
    problem: Problem,
    quantities: Mapping[str, Quantity],
    *,
    alpha: tuple[float, float] = (0.99, 1.01),
    groups: Sequence[str] | None = None,
    by: str = "source_type",
    options: ModelOptions | None = None,
    threshold: float = THRESHOLD,
) -> pd.DataFrame:
    """Power-scaling sensitivity of each quantity to each prior section and record group.

    For a component ``c`` (a prior section's log density or a record group's
    log-likelihood) and each power ``a`` in ``alpha``, the posterior with
    ``p(c)^a`` in place of ``p(c)`` is reached by importance-weighting the draws
    with Pareto-smoothed ``(a - 1) log p(c)``. The sensitivity is the mean over
    ``alpha`` of the cumulative Jensen-Shannon distance between base and
    weighted draws divided by ``|log2 a|`` (priorsense's local derivative);
    above ``threshold`` (0.05) the quantity is flagged.

    Parameters
    ----------
    idata : InferenceData
        A fit with ``posterior`` and ``log_likelihood`` groups.
    problem : Problem
        The problem of the fit.
    quantities : mapping
        Name -> callable taking the posterior Dataset and returning a per-draw
        DataArray (dims chain, draw, ...; any unit).
    alpha : (float, float)
        Powers below and above 1.
    groups : sequence of str, optional
        Components to scale, named ``prior:<section>`` or
        ``likelihood:<group>``, plus ``prior:all`` and ``likelihood:all``;
        default every one.
    by : str
        How records are grouped (``source_type`` or ``family``).
    options : ModelOptions, optional
        Options of the fit (the model is rebuilt to evaluate the priors; default: those
        stored with it; others are refused, see :func:`bayesmfa.inference.io.fit_options`).
    threshold : float
        Sensitivity above which a row is flagged.

    Returns
    -------
    DataFrame
        Columns ``component`` (prior/likelihood), ``group``, ``quantity``, the
        quantity's dims, ``sensitivity`` (dimensionless), ``pareto_k`` (worst
        of the two powers), ``flag`` (sensitivity > threshold) and
        ``diagnosis`` on the ``all`` rows (``prior-data conflict`` when both
        prior and likelihood are sensitive, ``strong prior / weak likelihood``
        when only the prior is).
    """
    post = idata.posterior
    n_chains = post.sizes["chain"]
    comps: dict[tuple[str, str], np.ndarray] = {}
    if groups is None or any(g.startswith("prior:") for g in groups):
        lp = {s: _flat(v) for s, v in log_prior_by_section(idata, problem, options).items()}
        comps.update({("prior", s): v for s, v in lp.items()})
        if lp:
            comps[("prior", "all")] = np.sum(list(lp.values()), axis=0)
    if groups is None or any(g.startswith("likelihood:") for g in groups):
        ll = {g: _flat(v) for g, v in log_likelihood_by_group(idata, problem, by).items()}
        comps.update({("likelihood", g): v for g, v in ll.items()})
        if ll:
            comps[("likelihood", "all")] = np.sum(list(ll.values()), axis=0)
    if groups is not None:
        wanted = set(groups)
        comps = {k: v for k, v in comps.items() if f"{k[0]}:{k[1]}" in wanted}
    elements = [_elements(name, fn(post)) for name, fn in quantities.items()]
    frames = []
    for (component, group), logc in comps.items():
        weights, ks = [], []
        for a in alpha:
            w, k = psis_weights((a - 1.0) * logc, n_chains)
            weights.append(w)
            ks.append(k)
        for index, values in elements:
            sens = np.array(
                [np.mean([cjs_distance(v, w) / abs(np.log2(a)) for w, a in zip(weights, alpha)]) for v in values]
            )
            df = index.copy()
            df.insert(0, "group", group)
            df.insert(0, "component", component)
            df["sensitivity"] = sens
            df["pareto_k"] = max(ks)
            frames.append(df)
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    out["flag"] = out["sensitivity"] > threshold
    out["diagnosis"] = ""
    dims = [c for c in out.columns if c not in ("component", "group", "sensitivity", "pareto_k", "flag", "diagnosis")]
    alls = out[out["group"] == "all"]
    if {"prior", "likelihood"} <= set(alls["component"]):
        key = alls[dims].apply(lambda r: "|".join(map(str, r)), axis=1)
        prior_flag = dict(zip(key[alls["component"] == "prior"], alls.loc[alls["component"] == "prior", "flag"]))
        lik_flag = dict(zip(key[alls["component"] == "likelihood"], alls.loc[alls["component"] == "likelihood", "flag"]))
        diag = {
            k: ("prior-data conflict" if p and lik_flag.get(k) else "strong prior / weak likelihood" if p else "")
            for k, p in prior_flag.items()
        }
        rows = out["group"] == "all"
        out.loc[rows, "diagnosis"] = key.map(diag).fillna("").to_numpy()
    return out


