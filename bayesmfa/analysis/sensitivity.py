"""Sensitivity studies of a fit: refit sweeps and the plan of a study.

* :class:`Sweep` and :func:`run_sweep` -- refit-based studies (leave a record
  group out, noise or prior widths multiplied, another likelihood), each
  result written to disk as it finishes, locally or on a Dask cluster.
* :class:`SensitivityPlan`, :func:`default_plan`, :func:`case_sweeps` -- what a
  case's study sweeps; the study itself is run by
  :func:`bayesmfa.drivers.sensitivityrun.run_sensitivity` (``bayesmfa sensitivity``).

Scenarios live in :mod:`bayesmfa.analysis.scenarios`; they are re-exported here.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from bayesmfa.analysis.executors import Executor, LocalExecutor, TaskReport, run_tasks, write_dataset
from bayesmfa.analysis.powerscaling import SAMPLE, Quantity, record_groups
from bayesmfa.analysis.summaries import interval_stat_names, interval_stats
from bayesmfa.core.model import ModelOptions
from bayesmfa.core.priors import Priors
from bayesmfa.core.problem import Problem, make_problem
from bayesmfa.inference.diagnostics import ConvergenceWarning

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


#: How a step-scale prior is multiplied: the scale parameter of each distribution.
_SCALE_PARAMS = {"Fixed": "value", "HalfNormal": "sigma", "Exponential": None, "Uniform": None, "Gamma": None}


def scale_step_priors(priors: Priors, factor: float) -> Priors:
    """New priors whose random-walk step scales are ``factor`` times larger.

    A Fixed step's ``value`` and a HalfNormal's ``sigma`` are multiplied; a
    LogNormal's ``mu`` is shifted by ``log(factor)`` (its median multiplied,
    its spread kept). Other step distributions raise ``ValueError``.

    Parameters
    ----------
    priors : Priors
        Original priors (not modified).
    factor : float
        Step multiplier (> 0): > 1 lets every series and transfer coefficient vary faster.
    """
    if factor <= 0:
        raise ValueError(f"factor must be positive, got {factor}")
    new = []
    for e in priors.entries.get("steps", []):
        dist = e.dist
        if dist.dist == "LogNormal":
            params = tuple((k, v + float(np.log(factor)) if k == "mu" else v) for k, v in dist.params)
        elif _SCALE_PARAMS.get(dist.dist):
            key = _SCALE_PARAMS[dist.dist]
            params = tuple((k, v * factor if k == key else v) for k, v in dist.params)
        else:
            raise ValueError(f"cannot scale a {dist.dist} step prior; use Fixed, HalfNormal or LogNormal")
        new.append(replace(e, dist=replace(dist, params=params)))
    entries = {**priors.entries, "steps": new}
    return Priors(entries=entries, text=f"{priors.text}\n# step scales x {factor:g}\n")


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
    return _new_priors(problem, options, scale=partial(scale_prior_widths, factor=factor))


def _new_priors(problem: Problem, options: ModelOptions, *, scale: Callable[[Priors], Priors]) -> tuple[Problem, ModelOptions]:
    rows = problem.records.table.drop(columns=["file", "row"], errors="ignore")
    return make_problem(problem.system, scale(problem.priors), rows), options


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


def step_multiplier(factor: float) -> Sweep:
    """Every random-walk step scale multiplied by ``factor`` (:func:`scale_step_priors`): less smoothing."""
    return Sweep(f"steps_x{factor:g}", partial(_new_priors, scale=partial(scale_step_priors, factor=factor)), f"step scales x {factor:g}")


def likelihood_sweep(likelihood: str = "studentt", nu: float = 4.0) -> Sweep:
    """Another default likelihood of measurement records."""
    return Sweep(f"likelihood_{likelihood}", partial(_set_options, likelihood=likelihood, nu=nu), f"{likelihood} likelihood")


def _stat_dataset(quantities: Mapping[str, xr.DataArray], prob: float = 0.9) -> xr.Dataset:
    """Mean, sd, median and ``prob`` interval of each per-draw quantity, stacked on a ``stat`` dim (:func:`interval_stats`)."""
    ds = xr.Dataset({name: interval_stats(da, prob, SAMPLE) for name, da in quantities.items()})
    ds.attrs["prob"] = prob
    return ds


def sweep_summary(idata: az.InferenceData, quantities: Mapping[str, Quantity], description: str = "",
                  prob: float = 0.9) -> xr.Dataset:
    """The per-sweep summary :func:`run_sweep` writes, from a fit at hand.

    Writing it to ``<out_dir>/baseline.nc`` lets :func:`run_sweep` reuse an
    existing baseline fit instead of refitting it.

    Returns
    -------
    xarray.Dataset
        One variable per quantity, dims (stat, quantity dims...), stats
        ``mean, sd, <lo>, q50, <hi>`` in the quantity's unit (``q05``, ``q95`` for ``prob`` 0.9).
    """
    ds = _stat_dataset({k: fn(idata.posterior) for k, fn in quantities.items()}, prob)
    ds.attrs["description"] = description or "baseline"
    return ds


@dataclass(frozen=True)
class _SweepTask:
    """Everything one refit needs (picklable when the callables are)."""

    problem: Problem
    options: ModelOptions
    quantities: Mapping[str, Quantity]
    fit_kwargs: Mapping[str, Any]
    prob: float = 0.9

    def __call__(self, sweep: Sweep) -> xr.Dataset:
        from bayesmfa.inference.sampling import fit

        problem, options = sweep.modify(self.problem, self.options)
        # a refit keeps only its quantities' statistics: no prior draws (seconds per refit) unless asked for
        kwargs = {"progressbar": False, "prior_draws": 0, **dict(self.fit_kwargs)}
        with warnings.catch_warnings():  # a refit's failed gate is kept in its attrs ("diagnostics"), not warned about
            warnings.filterwarnings("ignore", category=ConvergenceWarning)
            idata = fit(problem, options=options, **kwargs)
        ds = _stat_dataset({k: fn(idata.posterior) for k, fn in self.quantities.items()}, self.prob)
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
        Columns ``sweep, quantity``, the quantity dims, ``mean, <lo>, q50, <hi>``
        (unit of the quantity; ``q05``, ``q95`` for 90% intervals), ``shift_in_sd``
        ((mean - baseline mean) / baseline sd) and ``width_ratio`` (interval width /
        baseline width).
    """
    frames = []
    ds = ds.drop_vars("description", errors="ignore")
    lo, hi = interval_stat_names([str(s) for s in ds["stat"].values])
    for name, da in ds.data_vars.items():
        wide = da.to_dataset(dim="stat")
        base = wide.sel(sweep=baseline)
        shift = (wide["mean"] - base["mean"]) / base["sd"].where(base["sd"] > 0)
        ratio = (wide[hi] - wide[lo]) / (base[hi] - base[lo]).where(base[hi] > base[lo])
        table = xr.Dataset(
            {"mean": wide["mean"], lo: wide[lo], "q50": wide["q50"], hi: wide[hi], "shift_in_sd": shift,
             "width_ratio": ratio}
        )
        table = table.dropna("sweep", how="all", subset=["mean"]) if "sweep" in table.dims else table
        df = table.to_dataframe().reset_index()
        df = df.dropna(subset=["mean"])
        df.insert(1, "quantity", str(name))
        frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    front = ["sweep", "quantity"]
    stats = ["mean", lo, "q50", hi, "shift_in_sd", "width_ratio"]
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
    prob: float = 0.9,
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
        Passed to :func:`bayesmfa.inference.sampling.fit` (draws, tune, chains, seed, backend...).
    out_dir : str or Path
        Each sweep's summary goes to ``<out_dir>/<sweep>.nc`` as it finishes
        (sweeps already there are not refitted); then ``sweeps.nc`` and ``sweeps.csv``.
    executor : Executor, optional
        Where the fits run (default: one after another here).
    options : ModelOptions, optional
        Baseline model options.
    prob : float
        Mass of the intervals kept per sweep (stats named as :func:`~bayesmfa.analysis.summaries.interval_columns`).

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
    task = _SweepTask(problem, options or ModelOptions(), dict(quantities), dict(fit_kwargs or {}), prob)
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
    ds.attrs["prob"] = prob
    table = sweep_table(ds)
    write_dataset(ds, out_dir / "sweeps.nc")
    table.to_csv(out_dir / "sweeps.csv", index=False)
    return ds, table


# ============================================================================ case driver


@dataclass(frozen=True)
class SensitivityPlan:
    """What a case's sensitivity study sweeps and plots.

    Attributes
    ----------
    quantities : mapping of str to Quantity
        Per-draw quantities every refit summarises (name -> function of the posterior).
    key : Quantity
        The scalar quantity of the plot (one value per draw).
    key_label : str
        Its axis label, with unit.
    key_file : str
        File name of the plot (PNG).
    group_by : str
        Record column whose groups are left out one at a time (``source_type`` or ``family``).
    renamed : mapping of str to str
        Group -> name of its leave-out sweep, for groups whose sweep answers a question by name.
    """

    quantities: Mapping[str, Quantity]
    key: Quantity
    key_label: str
    key_file: str
    group_by: str = "source_type"
    renamed: Mapping[str, str] = field(default_factory=dict)


def case_sweeps(plan: SensitivityPlan, problem: Problem) -> list[Sweep]:
    """The refits of a case's study: leave one group out, noise/prior/step scales x2, both likelihoods.

    Groups are the values of ``plan.group_by`` in the records; a group named in
    ``plan.renamed`` gets its sweep under that name.
    """
    sweeps: list[Sweep] = leave_one_out(problem, plan.group_by)
    prefix = f"drop_{plan.group_by}_"
    sweeps = [drop_group(s.name.removeprefix(prefix), plan.group_by, name=plan.renamed[s.name.removeprefix(prefix)])
              if s.name.removeprefix(prefix) in plan.renamed else s for s in sweeps]
    return sweeps + [noise_multiplier(2.0), prior_width_multiplier(2.0), step_multiplier(2.0), likelihood_sweep("studentt"),
                     likelihood_sweep("lognormal")]


def default_plan(problem: Problem) -> SensitivityPlan:
    """The sensitivity plan of a case that names none: what its system declares.

    Sweeps the cumulative output of every boundary input, the input of every
    sink, and every trade flow (a flow that crosses a dim); the key is the first
    boundary input's cumulative output, summed over every dim (system unit).
    Source types are left out one at a time.
    """
    system = problem.system
    time = system.time_dim
    qs: dict[str, Quantity] = {f"{p}_cum": (lambda d, p=p: d[f"output_{p}"].sum(time)) for p in system.inputs}
    qs.update({f"input_{s}": (lambda d, s=s: d[f"input_{s}"]) for s in system.sinks})
    qs.update({f"flow_{f}": (lambda d, f=f: d[f"flow_{f}"]) for f, spec in system.flows.items() if spec.cross})
    first = system.inputs[0]
    years = f"{system.years[0]}-{system.years[-1]}"

    def key(d: xr.Dataset) -> xr.DataArray:
        da = d[f"output_{first}"]
        return da.sum([dim for dim in da.dims if dim not in SAMPLE])

    return SensitivityPlan(qs, key, f"{first}, cumulative {years}, total ({system.unit})", "key_sensitivity.png")


def plot_sweep_intervals(values: pd.DataFrame, label: str, path: str | Path | None = None):
    """Horizontal intervals (q05-q95, median) of one scalar quantity per sweep.

    Parameters
    ----------
    values : DataFrame
        Columns ``sweep``, ``q50``, the interval's bounds (``q05``, ``q95`` for 90%) and
        optionally ``description``.
    label : str
        Axis label with unit.
    path : str or Path, optional
        Where to save the PNG.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure  # a Figure of its own: no pyplot state, no backend chosen here

    fig = Figure(figsize=(7, 0.45 * len(values) + 1.2), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(values))[::-1]
    names = values.get("description", values["sweep"]).astype(str).to_numpy()
    base = values["sweep"].to_numpy() == "baseline"
    lo, hi = interval_stat_names([str(c) for c in values.columns])
    ax.hlines(y, values[lo], values[hi], color=np.where(base, "black", "tab:blue"), lw=3)
    ax.plot(values["q50"], y, "o", color="white", mec="black")
    if base.any():
        b = values[base].iloc[0]
        ax.axvspan(b[lo], b[hi], color="grey", alpha=0.15)
    ax.set_yticks(y, names)
    mass = round(float(hi[1:]) - float(lo[1:]))
    ax.set_xlabel(label + f" ({mass}% interval, median)")
    if path is not None:
        fig.savefig(path, dpi=110, bbox_inches="tight")
    return fig
