"""Sensitivity, scenarios and model criticism of a fit.

* :func:`power_scaling` -- how much each quantity would move if one prior
  section or one group of records were power-scaled (priorsense's idea,
  Kallioinen et al. 2023), from the draws at hand with Pareto-smoothed
  importance weights: no refit.
* :class:`Sweep` and :func:`run_sweep` -- refit-based studies (leave a record
  group out, noise or prior widths multiplied, another likelihood), each
  result written to disk as it finishes.
* :func:`export_restriction`, :func:`no_trade` -- counterfactual flows per
  posterior draw, with intervals.
* :func:`predictive_checks`, :func:`value_of_information` -- posterior
  predictive p-values per record group, and which record groups narrow the
  key intervals.
* :func:`run_sensitivity` -- all of it for a case, into one folder.

Record groups are the ``source_type`` of each record or its ``family`` (the
``family`` column when the table has one, else the part of ``record_id``
before the first ``:``, which is how the REE records name their family).
Censored (bound) records enter through a ``pm.Potential`` and have no
pointwise log-likelihood; they are left out of likelihood power-scaling and of
the importance-weighted leave-group-out.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from bayesmfa.balance import edge_values, node_values
from bayesmfa.graph import Graph
from bayesmfa.model import ModelOptions, build_model
from bayesmfa.priors import Priors
from bayesmfa.problem import Problem, make_problem
from bayesmfa.summaries import summarize_array
from bayesmfa.sweeps import Executor, LocalExecutor, TaskReport, run_tasks, write_dataset

Quantity = Callable[[xr.Dataset], xr.DataArray]
SAMPLE = ("chain", "draw")
#: priorsense's threshold on the power-scaling sensitivity.
THRESHOLD = 0.05
#: Free variables of the model by prior section (base names; a variable whose
#: elements follow several distributions is split into ``<base>_<dist>``).
PRIOR_SECTIONS: dict[str, tuple[str, ...]] = {
    "inputs": ("input_level_z",),
    "steps": ("input_step", "share_step"),
    "shares": ("share_logit_z",),
    "yields": ("yield",),
    "noise": ("noise",),
    "factors": ("record_factor",),
}
OBSERVED = (("records", "obs"), ("records_t", "obs_t"))


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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
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
        Options of the fit (the model is rebuilt to evaluate the priors).
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


# ============================================================================ refit-based sweeps


def scale_prior_widths(priors: Priors, factor: float) -> Priors:
    """New priors with every ``sigma`` (HalfNormal, LogNormal, Normal) and ``sd_logit`` multiplied by ``factor``.

    Parameters
    ----------
    priors : Priors
        Original priors (not modified).
    factor : float
        Width multiplier (> 0).

    Returns
    -------
    Priors
        Same entries with scaled widths; ``text`` records the scaling so the
        content hash of a problem built from them differs.
    """
    if factor <= 0:
        raise ValueError(f"factor must be positive, got {factor}")
    entries = {}
    for section, items in priors.entries.items():
        new = []
        for e in items:
            dist = e.dist
            if dist is not None and "sigma" in dist.kwargs:
                dist = replace(dist, params=tuple((k, v * factor if k == "sigma" else v) for k, v in dist.params))
            extra = tuple((k, v * factor if k == "sd_logit" else v) for k, v in e.extra)
            new.append(replace(e, dist=dist, extra=extra))
        entries[section] = new
    return Priors(entries=entries, text=f"{priors.text}\n# prior widths x {factor:g}\n")


@dataclass(frozen=True)
class Sweep:
    """One refit-based variant of a baseline.

    Attributes
    ----------
    name : str
        File-name-safe key (the result is ``<out_dir>/<name>.nc``).
    modify : callable
        ``modify(problem, options) -> (problem, options)``; must be picklable
        (or cloudpickle-able) for process or dask executors.
    description : str
        What the variant changes, for tables and plots.
    """

    name: str
    modify: Callable[[Problem, ModelOptions], tuple[Problem, ModelOptions]]
    description: str = ""


def _identity(problem: Problem, options: ModelOptions) -> tuple[Problem, ModelOptions]:
    return problem, options


def _drop_records(problem: Problem, options: ModelOptions, *, by: str, values: tuple[str, ...]) -> tuple[Problem, ModelOptions]:
    groups = record_groups(problem, by)
    table = problem.records.table
    keep = ~groups.isin(values).to_numpy()
    if keep.all():
        raise ValueError(f"no record has {by} in {list(values)}")
    rows = table.loc[keep].drop(columns=["file", "row"], errors="ignore").reset_index(drop=True)
    return make_problem(problem.system, problem.priors, rows), options


def _set_options(problem: Problem, options: ModelOptions, *, noise_factor: float = 1.0, **changes: Any) -> tuple[Problem, ModelOptions]:
    changes["noise_scale"] = options.noise_scale * noise_factor
    return problem, replace(options, **changes)


def _widen_priors(problem: Problem, options: ModelOptions, *, factor: float) -> tuple[Problem, ModelOptions]:
    priors = scale_prior_widths(problem.priors, factor)
    rows = problem.records.table.drop(columns=["file", "row"], errors="ignore")
    return make_problem(problem.system, priors, rows), options


def baseline_sweep() -> Sweep:
    """The fit itself (every sweep is compared with it)."""
    return Sweep("baseline", _identity, "baseline")


def drop_group(value: str | Sequence[str], by: str = "source_type", name: str | None = None) -> Sweep:
    """Leave out the records of one (or several) groups."""
    values = (value,) if isinstance(value, str) else tuple(value)
    return Sweep(name or f"drop_{by}_{'+'.join(values)}", partial(_drop_records, by=by, values=values),
                 f"without {by} {', '.join(values)}")


def leave_one_out(problem: Problem, by: str = "source_type") -> list[Sweep]:
    """One sweep per record group (``source_type`` or ``family``), each leaving that group out."""
    return [drop_group(g, by) for g in sorted(record_groups(problem, by).unique())]


def noise_multiplier(factor: float) -> Sweep:
    """Every record noise scale multiplied by ``factor`` (``ModelOptions.noise_scale``)."""
    return Sweep(f"noise_x{factor:g}", partial(_set_options, noise_factor=factor), f"record noise x {factor:g}")


def prior_width_multiplier(factor: float) -> Sweep:
    """Every prior ``sigma``/``sd_logit`` multiplied by ``factor`` (:func:`scale_prior_widths`)."""
    return Sweep(f"prior_width_x{factor:g}", partial(_widen_priors, factor=factor), f"prior widths x {factor:g}")


def likelihood_sweep(likelihood: str = "studentt", nu: float = 4.0) -> Sweep:
    """Another default likelihood of measurement records."""
    return Sweep(f"likelihood_{likelihood}", partial(_set_options, likelihood=likelihood, nu=nu), f"{likelihood} likelihood")


def _stat_dataset(quantities: Mapping[str, xr.DataArray], prob: float = 0.9) -> xr.Dataset:
    """Mean, sd and quantiles of each per-draw quantity, stacked on a ``stat`` dim."""
    lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
    out = {}
    for name, da in quantities.items():
        da = da.reset_coords(drop=True)
        stats = [
            da.mean(SAMPLE),
            da.std(SAMPLE, ddof=1),
            da.quantile(lo, SAMPLE).drop_vars("quantile"),
            da.quantile(0.5, SAMPLE).drop_vars("quantile"),
            da.quantile(hi, SAMPLE).drop_vars("quantile"),
        ]
        out[name] = xr.concat(stats, dim=pd.Index(["mean", "sd", "q05", "q50", "q95"], name="stat"))
    return xr.Dataset(out)


def sweep_summary(idata: az.InferenceData, quantities: Mapping[str, Quantity], description: str = "") -> xr.Dataset:
    """The per-sweep summary :func:`run_sweep` writes, from a fit at hand.

    Writing it to ``<out_dir>/baseline.nc`` lets :func:`run_sweep` reuse an
    existing baseline fit instead of refitting it.

    Returns
    -------
    xarray.Dataset
        One variable per quantity, dims (stat, quantity dims...), stats
        ``mean, sd, q05, q50, q95`` in the quantity's unit.
    """
    ds = _stat_dataset({k: fn(idata.posterior) for k, fn in quantities.items()})
    ds.attrs["description"] = description or "baseline"
    return ds


@dataclass(frozen=True)
class _SweepTask:
    """Everything one refit needs (picklable when the callables are)."""

    problem: Problem
    options: ModelOptions
    quantities: Mapping[str, Quantity]
    fit_kwargs: Mapping[str, Any]

    def __call__(self, sweep: Sweep) -> xr.Dataset:
        from bayesmfa.inference import fit

        problem, options = sweep.modify(self.problem, self.options)
        kwargs = {"progressbar": False, **dict(self.fit_kwargs)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            idata = fit(problem, options=options, **kwargs)
        ds = _stat_dataset({k: fn(idata.posterior) for k, fn in self.quantities.items()})
        ds.attrs.update(
            {
                "sweep": sweep.name,
                "description": sweep.description,
                "n_records": int(problem.records.n_obs),
                "model_options": json.dumps(options.as_dict()),
                "diagnostics": idata.posterior.attrs.get("diagnostics", ""),
            }
        )
        return ds


def sweep_table(ds: xr.Dataset, baseline: str = "baseline") -> pd.DataFrame:
    """How each quantity moves against the baseline, one row per sweep, quantity and coord.

    Returns
    -------
    DataFrame
        Columns ``sweep, quantity``, the quantity dims, ``mean, q05, q50, q95``
        (unit of the quantity), ``shift_in_sd`` ((mean - baseline mean) /
        baseline sd) and ``width_ratio`` (90% interval width / baseline width).
    """
    frames = []
    ds = ds.drop_vars("description", errors="ignore")
    for name, da in ds.data_vars.items():
        wide = da.to_dataset(dim="stat")
        base = wide.sel(sweep=baseline)
        shift = (wide["mean"] - base["mean"]) / base["sd"].where(base["sd"] > 0)
        ratio = (wide["q95"] - wide["q05"]) / (base["q95"] - base["q05"]).where(base["q95"] > base["q05"])
        table = xr.Dataset(
            {"mean": wide["mean"], "q05": wide["q05"], "q50": wide["q50"], "q95": wide["q95"], "shift_in_sd": shift,
             "width_ratio": ratio}
        )
        table = table.dropna("sweep", how="all", subset=["mean"]) if "sweep" in table.dims else table
        df = table.to_dataframe().reset_index()
        df = df.dropna(subset=["mean"])
        df.insert(1, "quantity", str(name))
        frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    front = ["sweep", "quantity"]
    stats = ["mean", "q05", "q50", "q95", "shift_in_sd", "width_ratio"]
    return out[front + [c for c in out.columns if c not in front + stats] + stats]


def run_sweep(
    problem: Problem,
    sweeps: Sequence[Sweep],
    quantities: Mapping[str, Quantity],
    *,
    fit_kwargs: Mapping[str, Any] | None = None,
    out_dir: str | Path,
    executor: Executor | None = None,
    options: ModelOptions | None = None,
) -> tuple[xr.Dataset, pd.DataFrame]:
    """Refit the problem under each sweep and compare the quantities with the baseline.

    Parameters
    ----------
    problem : Problem
        The baseline problem.
    sweeps : sequence of Sweep
        Variants; a ``baseline`` sweep is added first when missing.
    quantities : mapping
        Name -> callable of the posterior Dataset returning a per-draw DataArray.
    fit_kwargs : mapping, optional
        Passed to :func:`bayesmfa.inference.fit` (draws, tune, chains, seed, backend...).
    out_dir : str or Path
        Each sweep's summary goes to ``<out_dir>/<sweep>.nc`` as it finishes
        (sweeps already there are not refitted); then ``sweeps.nc`` and ``sweeps.csv``.
    executor : Executor, optional
        Where the fits run (default: one after another here).
    options : ModelOptions, optional
        Baseline model options.

    Returns
    -------
    dataset : xarray.Dataset
        One variable per quantity with dims (sweep, stat, quantity dims...);
        ``attrs["failed"]`` (JSON) lists sweeps that failed after their retries.
    table : DataFrame
        :func:`sweep_table` of the dataset.
    """
    sweeps = list(sweeps)
    if not any(s.name == "baseline" for s in sweeps):
        sweeps.insert(0, baseline_sweep())
    names = [s.name for s in sweeps]
    if len(set(names)) != len(names):
        raise ValueError(f"sweep names must be unique, got {names}")
    task = _SweepTask(problem, options or ModelOptions(), dict(quantities), dict(fit_kwargs or {}))
    out_dir = Path(out_dir)
    report: TaskReport = run_tasks(task, {s.name: s for s in sweeps}, out_dir, executor=executor or LocalExecutor(1))
    if "baseline" not in report.results:
        raise RuntimeError(f"the baseline fit failed: {report.failed.get('baseline')}")
    done = [n for n in names if n in report.results]
    ds = xr.concat([report.results[n].assign_attrs({}) for n in done], dim=pd.Index(done, name="sweep"), join="outer",
                   combine_attrs="drop")
    ds["description"] = xr.DataArray([report.results[n].attrs.get("description", n) for n in done], dims="sweep")
    ds = ds.set_coords("description")
    ds.attrs["failed"] = json.dumps(report.failed)
    table = sweep_table(ds)
    write_dataset(ds, out_dir / "sweeps.nc")
    table.to_csv(out_dir / "sweeps.csv", index=False)
    return ds, table


# ============================================================================ scenarios


def _posterior_arrays(idata: az.InferenceData | xr.Dataset, graph: Graph) -> dict[str, np.ndarray]:
    post = idata.posterior if isinstance(idata, az.InferenceData) else idata
    external = node_values(post, graph, "external_")
    inputs = node_values(post, graph, "input_")
    outputs = node_values(post, graph, "output_")
    with np.errstate(divide="ignore", invalid="ignore"):
        yields = np.where(inputs > 0, outputs / inputs, 1.0)
    share = np.asarray(post["share"].transpose(*SAMPLE, "year", "edge").values)
    return {"external": external, "yield": yields, "share": share, "flows": edge_values(post, graph), "inputs": inputs}


def counterfactual_flows(
    idata: az.InferenceData | xr.Dataset,
    problem: Problem,
    restricted: np.ndarray,
    cap_share: float,
    *,
    iterations: int | None = None,
) -> dict[str, np.ndarray]:
    """Re-run the balance per draw with some flow instances capped; the excess stays at home.

    Each capped edge carries at most ``cap_share`` times its posterior value;
    what its source node can no longer send goes to the source node's
    domestic (not crossed) edges in proportion to their shares (to its other
    uncapped edges when it has no domestic edge). Shares, yields and external
    inputs stay as estimated in each draw; throughputs are propagated again.

    Parameters
    ----------
    idata : InferenceData or Dataset
        A fit (its posterior) with ``share``, ``flow_*``, ``input_*``,
        ``output_*``, ``external_*``.
    problem : Problem
        The problem of the fit.
    restricted : ndarray of bool
        Dims (year, edge): which flow instances are capped in which year.
    cap_share : float
        Cap as a fraction (0-1) of the posterior value of the flow.
    iterations : int, optional
        Propagation steps (default: the graph depth + 1, or 200 with cycles).

    Returns
    -------
    dict
        ``flows`` (chain, draw, year, edge), ``throughput`` and ``loss`` (chain, draw, year, node),
        ``external`` (same), system unit.
    """
    graph = problem.graph
    arr = _posterior_arrays(idata, graph)
    share, yields, external, base = arr["share"], arr["yield"], arr["external"], arr["flows"]
    src = graph.source_index
    crossed = np.array([graph.system.flows[e.flow].cross is not None for e in graph.edges])
    restricted = np.broadcast_to(np.asarray(restricted, dtype=bool), share.shape[-2:])
    # receivers of the excess: domestic, uncapped edges of the same source node (else any uncapped edge)
    recv = (~restricted) & (~crossed)[None, :]
    has_dom = (recv.astype(float) @ graph.source_matrix)[:, src] > 0
    recv = np.where(has_dom, recv, ~restricted)
    weight = share * recv
    total = weight @ graph.source_matrix
    with np.errstate(divide="ignore", invalid="ignore"):
        wnorm = np.where(total[..., src] > 0, weight / total[..., src], 0.0)
    cap = cap_share * base
    steps = iterations or ((graph.depth + 1) if graph.depth is not None else 200)
    throughput = external.copy()
    flows = base
    for _ in range(steps):
        raw = (throughput * yields)[..., src] * share
        capped = np.where(restricted, np.minimum(raw, cap), raw)
        excess = (raw - capped) @ graph.source_matrix
        flows = capped + excess[..., src] * wnorm
        throughput = external + flows @ graph.target_matrix
    loss = throughput * (1.0 - yields)
    return {"flows": flows, "throughput": throughput, "loss": loss, "external": external}


def _sink_by_region(values: np.ndarray, problem: Problem, post: xr.Dataset, region_dim: str) -> xr.DataArray:
    """Sum node values (chain, draw, year, node) of sink nodes by their region coord."""
    graph = problem.graph
    sinks = [n for n in graph.nodes if n.process in graph.system.sinks]
    regions = list(dict.fromkeys(dict(n.coords).get(region_dim, "all") for n in sinks))
    mat = np.zeros((graph.n_nodes, len(regions)))
    for n in sinks:
        mat[n.index, regions.index(dict(n.coords).get(region_dim, "all"))] = 1.0
    coords = {"chain": post["chain"].values, "draw": post["draw"].values, "year": list(graph.system.years), region_dim: regions}
    return xr.DataArray(values @ mat, dims=(*SAMPLE, "year", region_dim), coords=coords)


def _scenario(idata: az.InferenceData, problem: Problem, restricted: np.ndarray, cap_share: float, region_dim: str) -> xr.Dataset:
    post = idata.posterior
    cf = counterfactual_flows(idata, problem, restricted, cap_share)
    base = _posterior_arrays(idata, problem.graph)
    consumption = _sink_by_region(cf["throughput"], problem, post, region_dim)
    baseline = _sink_by_region(base["inputs"], problem, post, region_dim)
    coords = {"chain": post["chain"].values, "draw": post["draw"].values, "year": list(problem.system.years)}
    ds = xr.Dataset(
        {
            "consumption": consumption,
            "baseline_consumption": baseline,
            "change": consumption - baseline,
            "flows": xr.DataArray(cf["flows"], dims=(*SAMPLE, "year", "edge"), coords={**coords, "edge": problem.graph.edge_labels()}),
            "throughput": xr.DataArray(cf["throughput"], dims=(*SAMPLE, "year", "node"),
                                       coords={**coords, "node": problem.graph.node_labels()}),
            "loss": xr.DataArray(cf["loss"], dims=(*SAMPLE, "year", "node"), coords={**coords, "node": problem.graph.node_labels()}),
            "external": xr.DataArray(cf["external"], dims=(*SAMPLE, "year", "node"),
                                     coords={**coords, "node": problem.graph.node_labels()}),
        }
    )
    ds.attrs["unit"] = problem.system.unit
    return ds


def export_restriction(
    idata: az.InferenceData,
    problem: Problem,
    *,
    region: str,
    flow_names: Sequence[str],
    cap_share: float,
    from_year: int,
    region_dim: str = "region",
) -> xr.Dataset:
    """A region's exports on some trade flows capped at a share of their value from a year on.

    Parameters
    ----------
    idata : InferenceData
        A fit.
    problem : Problem
        Its problem.
    region : str
        Exporting region (a coord of ``region_dim``; the flows' ``origin``).
    flow_names : sequence of str
        Crossed flows whose exports are capped.
    cap_share : float
        Fraction (0-1) of the posterior value each capped flow keeps.
    from_year : int
        First year of the restriction.
    region_dim : str
        The crossed dim.

    Returns
    -------
    xarray.Dataset
        Per draw: ``consumption`` (input of sink processes by region, chain, draw,
        year, region; system unit), ``baseline_consumption``, ``change``,
        counterfactual ``flows`` (edge), ``throughput``, ``loss`` and ``external`` (node).
        Summarise with :func:`summarize_scenario`.
    """
    graph = problem.graph
    origin = graph.system.cross_dim_names(region_dim)[0]
    unknown = [f for f in flow_names if f not in graph.system.flows]
    if unknown:
        raise ValueError(f"unknown flows {unknown}")
    edge_mask = np.array([e.flow in flow_names and dict(e.coords).get(origin) == region for e in graph.edges])
    if not edge_mask.any():
        raise ValueError(f"no flow instance of {list(flow_names)} leaves {region_dim} {region!r}")
    years = np.array(graph.system.years)
    restricted = (years >= from_year)[:, None] & edge_mask[None, :]
    return _scenario(idata, problem, restricted, cap_share, region_dim)


def no_trade(idata: az.InferenceData, problem: Problem, *, region_dim: str = "region") -> xr.Dataset:
    """Every crossed flow removed in every year; exports handed to domestic destinations in proportion.

    Returns
    -------
    xarray.Dataset
        As :func:`export_restriction`.
    """
    graph = problem.graph
    crossed = np.array([graph.system.flows[e.flow].cross is not None for e in graph.edges])
    restricted = np.broadcast_to(crossed, (len(graph.system.years), graph.n_edges))
    return _scenario(idata, problem, restricted, 0.0, region_dim)


def summarize_scenario(ds: xr.Dataset, prob: float = 0.9) -> pd.DataFrame:
    """Tidy intervals of a scenario's ``consumption``, ``baseline_consumption`` and ``change`` (system unit)."""
    return pd.concat([summarize_array(ds[v], prob, v) for v in ("consumption", "baseline_consumption", "change")],
                     ignore_index=True)


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
        Options of the fit.
    groups : sequence of str
        InferenceData groups of parameter draws to check (those present).

    Returns
    -------
    DataFrame
        Columns ``check`` (posterior/prior), ``group``, ``n_records``,
        ``statistic``, ``observed`` (mean over draws of T(observed)),
        ``replicated`` (mean of T(replicated)), ``p_value`` and ``flag``.
    """
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
    """Dot plot of the Bayesian p-values per record group and statistic (matplotlib, Agg-safe).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    stats = list(dict.fromkeys(checks["statistic"])) or ["-"]
    fig, axes = plt.subplots(1, len(stats), figsize=(4.5 * len(stats), 0.4 * max(4, checks["group"].nunique() * 2) + 1),
                             squeeze=False, sharey=True)
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
    axes[0][0].legend(loc="best", fontsize="small")
    fig.tight_layout()
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


# ============================================================================ case driver


def _case_quantities(case: str) -> tuple[dict[str, Quantity], Quantity, str]:
    """Quantities swept for a case, the key cumulative quantity of the plot, and its label."""
    if case == "ree":
        qs: dict[str, Quantity] = {
            "unregistered_mining_cum": partial(_cum_unregistered, region=None),
            "unregistered_mining": lambda p: p["output_mining_unregistered"],
            "mining": lambda p: p["output_mining"] + p["output_mining_unregistered"],
            "consumption_total": lambda p: p["flow_end_use"].sum("end_use"),
        }
        return qs, partial(_cum_unregistered, region="CN"), "cumulative unregistered mining, CN (kt REO)"
    qs = {
        "mining_cum": lambda p: p["output_mining"].sum("year"),
        "flow_ore_trade": lambda p: p["flow_ore_trade"],
        "flow_refined_trade": lambda p: p["flow_refined_trade"],
        "consumption": lambda p: p["input_final"].sum("end_use"),
    }
    return qs, lambda p: p["output_mining"].isel(region=0).sum("year"), "cumulative mining, first region (kt)"


def _cum_unregistered(post: xr.Dataset, region: str | None) -> xr.DataArray:
    da = post["output_mining_unregistered"].sum("year")
    return da.sel(region=region) if region is not None else da


def plot_sweep_intervals(values: pd.DataFrame, label: str, path: str | Path | None = None):
    """Horizontal intervals (q05-q95, median) of one scalar quantity per sweep.

    Parameters
    ----------
    values : DataFrame
        Columns ``sweep``, ``q05``, ``q50``, ``q95`` (and optional ``description``).
    label : str
        Axis label with unit.
    path : str or Path, optional
        Where to save the PNG.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.45 * len(values) + 1.2))
    y = np.arange(len(values))[::-1]
    names = values.get("description", values["sweep"]).astype(str).to_numpy()
    base = values["sweep"].to_numpy() == "baseline"
    ax.hlines(y, values["q05"], values["q95"], color=np.where(base, "black", "tab:blue"), lw=3)
    ax.plot(values["q50"], y, "o", color="white", mec="black")
    if base.any():
        b = values[base].iloc[0]
        ax.axvspan(b["q05"], b["q95"], color="grey", alpha=0.15)
    ax.set_yticks(y, names)
    ax.set_xlabel(label + " (90% interval, median)")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110, bbox_inches="tight")
    return fig


def run_sensitivity(case: str, out: Path, *, scheduler: str | None = None, quick: bool = False, seed: int = 0,
                    root: Path | None = None, max_workers: int = 1) -> Path:
    """Fit a case and write its sensitivity study into ``out``.

    Writes ``posterior.nc`` (the baseline fit), ``power_scaling.csv``,
    ``predictive_checks.csv`` (+ PNG), ``value_of_information.csv``, each
    sweep's ``<sweep>.nc``, ``sweeps.nc``, ``sweeps.csv`` and
    ``unregistered_mining_sensitivity.png`` (the key cumulative quantity per
    sweep). Sweeps: leave one record family out (source type for cases
    without families), literature dropped (REE: ``unregistered_estimates``),
    China's customs dropped (REE: ``china_trade``), noise x2, prior widths x2,
    Student-t likelihood. Rerunning resumes: sweeps already on disk are kept.

    Parameters
    ----------
    case : str
        ``demo`` or ``ree``.
    out : Path
        Result folder.
    scheduler : str, optional
        dask.distributed scheduler address; default: fits run here.
    quick : bool
        Short chains (smoke runs, not for publication).
    seed : int
        Random seed of every fit.
    root : Path, optional
        Folder with ``data/`` and ``priors/``.
    max_workers : int
        Worker processes when no scheduler is given.

    Returns
    -------
    Path
        ``out``.
    """
    from bayesmfa.cases import get_case, project_root
    from bayesmfa.inference import fit
    from bayesmfa.io import save
    from bayesmfa.sweeps import make_executor

    module = get_case(case)
    root = project_root(root)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    problem = module.load(root)
    options = module.options() if hasattr(module, "options") else ModelOptions()
    fit_kwargs = {"draws": 200, "tune": 300, "chains": 2} if quick else {"draws": 1000, "tune": 1000, "chains": 4}
    fit_kwargs["seed"] = seed
    quantities, key, label = _case_quantities(case)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = fit(problem, options=options, **fit_kwargs)
    save(idata, out / "posterior.nc")
    by = "family" if case == "ree" else "source_type"
    power_scaling(idata, problem, quantities, by=by, options=options).to_csv(out / "power_scaling.csv", index=False)
    checks = predictive_checks(idata, problem, seed=seed, by=by, options=options)
    checks.to_csv(out / "predictive_checks.csv", index=False)
    if len(checks):
        import matplotlib.pyplot as plt

        plt.close(plot_predictive_checks(checks, out / "predictive_checks.png"))
    value_of_information(idata, problem, quantities, by=by).to_csv(out / "value_of_information.csv", index=False)
    sweeps: list[Sweep] = leave_one_out(problem, by)
    if case == "ree":  # the two questions of the plot, under names that say so
        renamed = {"unregistered_estimates": "literature_dropped", "china_trade": "china_customs_dropped"}
        sweeps = [drop_group(s.name.removeprefix("drop_family_"), "family", name=renamed[s.name.removeprefix("drop_family_")])
                  if s.name.removeprefix("drop_family_") in renamed else s for s in sweeps]
    sweeps += [noise_multiplier(2.0), prior_width_multiplier(2.0), likelihood_sweep("studentt")]
    swept = {**quantities, "key": key}
    executor = make_executor(scheduler, max_workers=max_workers)
    try:
        ds, _ = run_sweep(problem, sweeps, swept, fit_kwargs=fit_kwargs, out_dir=out, executor=executor, options=options)
    finally:
        if hasattr(executor, "close"):
            executor.close()
    key_df = ds["key"].to_dataset(dim="stat").to_dataframe().reset_index()
    import matplotlib.pyplot as plt

    plt.close(plot_sweep_intervals(key_df, label, out / "unregistered_mining_sensitivity.png"))
    return out
