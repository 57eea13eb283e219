"""Calibration: simulate records from the prior, refit, and see whether the posterior holds the truth as often as it says.

For each of ``n`` datasets (seeds ``seed .. seed + n - 1``), :func:`calibrate`
draws a true system from the prior (:func:`bayesmfa.inference.sampling.sample_prior`),
simulates every point record from it with the model's own noise (optionally
misspecified: :class:`Misspecification`), refits the model compiled once
(:meth:`bayesmfa.inference.sampling.CompiledFit.refit`) and compares the truth with the
posterior, quantity by quantity:

* **interval coverage** -- the fraction of true elements (every coord and
  year; structural zeros left out) inside their central ``prob`` interval
  (0-1; target ``prob``);
* **rank uniformity** -- per quantity and dataset, one element is picked by a
  generator seeded independently of the data, and the truth's rank among
  ``n_ranks`` evenly thinned posterior draws is kept. Across datasets these
  ranks are independent and, for a calibrated model and sampler, uniform on
  ``0 .. n_ranks`` (Talts et al. 2018); each quantity gets a chi-square test,
  and the smallest p-value its Bonferroni correction. Thin to roughly the
  effective sample size: ranks among autocorrelated draws are over-dispersed
  even when the posterior is exact;
* **error** -- the root mean square error, on the records' log scale
  ``log(x + floor)`` (about a relative error), of the posterior median and of
  a deterministic baseline: the **direct estimate** of each element, i.e. the
  geometric mean of the simulated point records that measure that element
  alone (one flow or process total of one year, no factor, not a share, not
  a bound), and the element's prior median where no record does. That is what
  a reader of the records takes at face value without any balance; the model
  should beat it where records overlap or conflict, and match it where one
  record is all there is.

Every dataset's simulation depends on its own seed only, so results do not
depend on how datasets are split into blocks (each block compiles the model
once, in the process or worker that runs it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from bayesmfa.core.model import ModelOptions
from bayesmfa.core.problem import Problem

#: Named arrays checked by default: every flow and every process output.
DEFAULT_PREFIXES = ("flow_", "output_")


@dataclass(frozen=True)
class Misspecification:
    """How the simulated records depart from the fitted model.

    Parameters
    ----------
    noise : float or mapping of str to float
        Factor on the sd of each record's noise (on its likelihood's scale),
        one for every record, or per source type (``{"customs": 2.0}``; source
        types not named keep factor 1). Source types are those of the records'
        ``source_type`` column.
    gross_fraction : float
        Fraction (0-1) of the point records given a gross error, chosen at
        random per dataset.
    gross_factor : float
        A gross error multiplies the record by this factor or divides it by it
        (each with probability 1/2); > 0.
    """

    noise: float | Mapping[str, float] = 1.0
    gross_fraction: float = 0.0
    gross_factor: float = 3.0

    def __post_init__(self) -> None:
        factors = self.noise.values() if isinstance(self.noise, Mapping) else [self.noise]
        if any(not np.isfinite(f) or f <= 0 for f in factors):
            raise ValueError(f"noise factors must be positive, got {self.noise!r}")
        if not 0.0 <= self.gross_fraction <= 1.0:
            raise ValueError(f"gross_fraction must lie in 0-1, got {self.gross_fraction}")
        if not self.gross_factor > 0:
            raise ValueError(f"gross_factor must be positive, got {self.gross_factor}")

    def noise_factors(self, source_types: Sequence[str]) -> np.ndarray:
        """The noise factor of each record, given each record's source type."""
        if not isinstance(self.noise, Mapping):
            return np.full(len(source_types), float(self.noise))
        unknown = set(self.noise) - set(source_types)
        if unknown:
            raise ValueError(f"misspecified source types {sorted(unknown)} are not among the records' {sorted(set(source_types))}")
        return np.array([float(self.noise.get(s, 1.0)) for s in source_types])

    @property
    def is_none(self) -> bool:
        """Whether nothing is misspecified."""
        noise = self.noise.values() if isinstance(self.noise, Mapping) else [self.noise]
        return all(f == 1.0 for f in noise) and self.gross_fraction == 0.0


@dataclass(frozen=True)
class Calibration:
    """What :func:`calibrate` found.

    Attributes
    ----------
    datasets : xarray.Dataset
        Per dataset (dim ``dataset``, coord = its seed) and quantity (dim
        ``quantity``): ``rank`` (truth's rank among ``n_ranks`` thinned draws,
        0..n_ranks), ``n_elements`` (true elements checked), ``inside``
        (how many lie in their central ``prob`` interval), ``sse_posterior``
        and ``sse_baseline`` (summed squared log-scale errors of the posterior
        median and of the direct estimate), ``n_direct`` (elements with a
        direct record); per dataset ``divergences`` and ``max_rhat``.
    summary : xarray.Dataset
        :func:`summarise` of ``datasets``: per quantity ``coverage``,
        ``rmse_posterior``, ``rmse_baseline``, ``direct_share``,
        ``rank_counts`` (quantity, rank_bin), ``chi2``, ``chi2_pvalue``; and
        the same over all quantities as scalars ``coverage``... plus
        ``min_pvalue``, ``min_pvalue_bonferroni``, ``divergences``.
    failed : mapping of int to str
        Seed -> error of each dataset that could not be simulated or fitted.
    settings : mapping
        The arguments of the run (JSON-ready) and ``wall_s``.
    """

    datasets: xr.Dataset
    summary: xr.Dataset
    failed: Mapping[int, str] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def coverage(self) -> float:
        """Fraction (0-1) of all true elements inside their central ``prob`` interval."""
        return float(self.summary["overall_coverage"])

    def to_frame(self) -> pd.DataFrame:
        """One row per quantity and a last row ``(all)``: coverage, RMSEs, direct share, chi-square and p-value.

        The ``(all)`` row's ``chi2_pvalue`` is the smallest per-quantity p-value times the number of
        quantities (Bonferroni, capped at 1); its ``chi2`` is blank.
        """
        s = self.summary
        cols = ["coverage", "rmse_posterior", "rmse_baseline", "direct_share", "chi2", "chi2_pvalue"]
        frame = pd.DataFrame({c: s[c].values for c in cols}, index=pd.Index(s["quantity"].values, name="quantity"))
        overall = {c: float(s[f"overall_{c}"]) for c in cols[:4]} | {"chi2": np.nan,
                                                                     "chi2_pvalue": float(s["min_pvalue_bonferroni"])}
        frame.loc["(all)"] = overall
        frame.insert(0, "n_datasets", int(s["n_datasets"]))
        frame.insert(1, "n_elements", [*self.datasets["n_elements"].sum("dataset").values.tolist(),
                                       int(self.datasets["n_elements"].sum())])
        return frame.reset_index()

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain JSON-ready values (``benchmarks/sbc.py`` writes this with ``--out``)."""
        s = self.summary
        prob = float(self.settings.get("prob", 0.9))
        names = [str(q) for q in s["quantity"].values]
        return {
            "n_datasets": int(s["n_datasets"]),
            "n_ranks": int(s["n_ranks"]),
            f"coverage_{round(100 * prob)}": float(s["overall_coverage"]),
            "coverage": dict(zip(names, s["coverage"].values.tolist(), strict=True)),
            "rmse_posterior": float(s["overall_rmse_posterior"]),
            "rmse_baseline": float(s["overall_rmse_baseline"]),
            "rank_counts": {q: s["rank_counts"].sel(quantity=q).values.tolist() for q in names},
            "chi2": dict(zip(names, s["chi2"].values.tolist(), strict=True)),
            "chi2_pvalue": dict(zip(names, s["chi2_pvalue"].values.tolist(), strict=True)),
            "min_pvalue": float(s["min_pvalue"]),
            "min_pvalue_bonferroni": float(s["min_pvalue_bonferroni"]),
            "divergences": int(s["divergences"]),
            "failed": {str(k): v for k, v in self.failed.items()},
            "settings": dict(self.settings),
        }


def rank_uniformity(ranks: xr.DataArray, n_ranks: int, bins: int = 10) -> xr.Dataset:
    """Chi-square tests of uniform ranks, per quantity.

    Parameters
    ----------
    ranks : xarray.DataArray
        Ranks (dims ``dataset``, ``quantity``), integers in ``0 .. n_ranks``.
    n_ranks : int
        The largest possible rank.
    bins : int
        Histogram bins (at most ``n_ranks + 1`` and a fifth of the datasets, at least 2), of equal
        width over the ``n_ranks + 1`` possible ranks.

    Returns
    -------
    xarray.Dataset
        ``rank_counts`` (quantity, rank_bin), ``chi2`` and ``chi2_pvalue`` (quantity).
    """
    n = ranks.sizes["dataset"]
    bins = max(2, min(bins, n_ranks + 1, n // 5 or 2))
    edges = np.linspace(0, n_ranks + 1, bins + 1).round()  # integer edges keep the bins equally likely
    expected = n * np.diff(edges) / (n_ranks + 1)
    counts, chi2, pvalue = [], [], []
    for q in ranks["quantity"].values:
        hist = np.histogram(ranks.sel(quantity=q).values, bins=edges)[0]
        counts.append(hist)
        c, p = stats.chisquare(hist, expected)
        chi2.append(float(c))
        pvalue.append(float(p))
    quantity = ranks["quantity"].values
    return xr.Dataset({
        "rank_counts": (("quantity", "rank_bin"), np.array(counts, dtype=int).reshape(len(quantity), bins)),
        "chi2": ("quantity", np.array(chi2)),
        "chi2_pvalue": ("quantity", np.array(pvalue)),
    }, coords={"quantity": quantity, "rank_bin": edges[:-1].astype(int)})


def summarise(datasets: xr.Dataset, n_ranks: int, bins: int = 10) -> xr.Dataset:
    """Coverage, RMSEs and rank-uniformity tests per quantity and over all of them.

    Parameters
    ----------
    datasets : xarray.Dataset
        Per-dataset results as :attr:`Calibration.datasets` holds them.
    n_ranks : int
        The largest possible rank.
    bins : int
        Rank histogram bins (see :func:`rank_uniformity`).

    Returns
    -------
    xarray.Dataset
        Per quantity: ``coverage`` (0-1), ``rmse_posterior`` and ``rmse_baseline`` (log scale),
        ``direct_share`` (0-1: elements whose baseline is a direct record), ``rank_counts``, ``chi2``,
        ``chi2_pvalue``. Scalars: ``overall_coverage``, ``overall_rmse_posterior``,
        ``overall_rmse_baseline``, ``overall_direct_share`` (pooled over every element of every
        quantity), ``min_pvalue`` and ``min_pvalue_bonferroni`` (times the number of quantities,
        capped at 1), ``divergences`` (total), ``n_datasets``, ``n_ranks``.
    """
    d = datasets
    n = d["n_elements"].sum("dataset")
    out = rank_uniformity(d["rank"], n_ranks, bins)
    out["coverage"] = d["inside"].sum("dataset") / n
    out["rmse_posterior"] = np.sqrt(d["sse_posterior"].sum("dataset") / n)
    out["rmse_baseline"] = np.sqrt(d["sse_baseline"].sum("dataset") / n)
    out["direct_share"] = d["n_direct"].sum("dataset") / n
    total = float(n.sum())
    out["overall_coverage"] = float(d["inside"].sum()) / total
    out["overall_rmse_posterior"] = np.sqrt(float(d["sse_posterior"].sum()) / total)
    out["overall_rmse_baseline"] = np.sqrt(float(d["sse_baseline"].sum()) / total)
    out["overall_direct_share"] = float(d["n_direct"].sum()) / total
    pmin = float(out["chi2_pvalue"].min())
    out["min_pvalue"] = pmin
    out["min_pvalue_bonferroni"] = min(1.0, pmin * out.sizes["quantity"])
    out["divergences"] = int(d["divergences"].sum()) if "divergences" in d else 0
    out["n_datasets"] = d.sizes["dataset"]
    out["n_ranks"] = int(n_ranks)
    return out


def calibrate(
    problem: Problem,
    *,
    n: int = 20,
    seed: int = 0,
    misspecify: Misspecification | Mapping[str, Any] | None = None,
    quantities: Sequence[str] | None = None,
    prob: float = 0.9,
    n_ranks: int = 19,
    bins: int = 10,
    draws: int = 200,
    tune: int = 300,
    chains: int = 2,
    target_accept: float = 0.9,
    options: ModelOptions | None = None,
    fit_options: ModelOptions | None = None,
    fit_priors: Any = None,
    prior_draws: int = 500,
    executor: Any = None,
    block: int | None = None,
) -> Calibration:
    """Simulation-based calibration of the model of ``problem`` (see the module docstring).

    Parameters
    ----------
    problem : Problem
        System, priors and template records: the simulated records are these
        records with new values (bound records keep theirs).
    n : int
        Number of simulated datasets; their seeds are ``seed .. seed + n - 1``.
    seed : int
        First dataset's seed (truth, record noise, gross errors, ranked
        element and sampler all follow from it).
    misspecify : Misspecification or mapping, optional
        How the simulated records depart from the model (a mapping is passed
        to :class:`Misspecification`: ``{"noise": {"customs": 2.0},
        "gross_fraction": 0.05}``). Noise factors other than 1 need an acyclic
        system.
    quantities : sequence of str, optional
        Named arrays to check (``flow_*``, ``input_*``, ``output_*``,
        ``external_*``); default every ``flow_*`` and ``output_*``.
    prob : float
        Probability mass of the central intervals whose coverage is counted (0-1).
    n_ranks : int
        Thinned posterior draws the truth is ranked among (capped at
        ``draws * chains - 1``).
    bins : int
        Rank histogram bins of the chi-square tests.
    draws, tune, chains, target_accept : int, int, int, float
        Sampler settings of each refit (nutpie, as :func:`bayesmfa.fit`).
    options : ModelOptions, optional
        Options of the model that simulates (and, by default, fits). A
        ``floor`` of ``None`` is fixed at the template's default (1e-3 times
        its median positive mass record), so that every dataset is fitted on
        the same scale.
    fit_options : ModelOptions, optional
        Options of the fitted model, when it is not the simulating one (e.g.
        ``likelihood="studentt"`` against lognormal data).
    fit_priors : Priors, optional
        Priors of the fitted model, when they are not the simulating ones
        (e.g. a wider noise prior). The truth is always drawn from
        ``problem.priors``.
    prior_draws : int
        Prior draws of the fitted model whose median is the baseline where
        no record measures an element alone.
    executor : Executor, optional
        Where blocks of datasets run (:class:`bayesmfa.LocalExecutor`,
        :class:`bayesmfa.DaskExecutor`); default this process.
    block : int, optional
        Datasets per task, each task compiling the model once; default ``n``
        divided by the executor's ``max_workers`` (1 when it has none).

    Returns
    -------
    Calibration
        Per-dataset results, their summary, failed datasets and the settings.

    Notes
    -----
    The check is exact when the prior draws are exact: potentials (``flows``
    priors, bounds) are left out of prior predictive draws, so with flow
    priors the truth is drawn from the prior without them, and a bound record
    keeps its template value even where the truth lies beyond it.
    """
    from bayesmfa.analysis.executors import LocalExecutor
    from bayesmfa.core.likelihoods import default_floor

    start = time.perf_counter()
    if isinstance(misspecify, Mapping):
        misspecify = Misspecification(**misspecify)
    misspecify = misspecify or Misspecification()
    if not 0.0 < prob < 1.0:
        raise ValueError(f"prob must lie strictly between 0 and 1, got {prob}")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if problem.graph.depth is None and np.any(misspecify.noise_factors(list(problem.records.table["source_type"].astype(str))) != 1.0):
        raise ValueError("misspecified noise needs an acyclic system (its records are simulated with the fused kernel)")
    rec = problem.records
    options = options or ModelOptions()
    if options.floor is None:
        mass = default_floor(rec, None, options.share_floor)[~rec.is_share]
        options = replace(options, floor=float(mass[0]) if len(mass) else 1e-3)
    fit_options = fit_options or options
    if fit_options.floor is None:
        fit_options = replace(fit_options, floor=options.floor)
    fit_problem = problem if fit_priors is None else replace(problem, priors=fit_priors)
    names = list(quantities) if quantities is not None else _default_quantities(problem)
    n_ranks = min(n_ranks, draws * chains - 1)
    baseline = _baseline(fit_problem, fit_options, names, prior_draws, seed)
    task = CalibrationTask(problem, options, fit_problem, fit_options, misspecify, tuple(names), prob, n_ranks, draws, tune,
                           chains, target_accept, baseline)
    executor = executor or LocalExecutor(max_workers=1)
    block = block or -(-n // max(1, int(getattr(executor, "max_workers", 1))))
    blocks = [tuple(range(s, min(s + block, seed + n))) for s in range(seed, seed + n, block)]
    rows, failed = [], {}
    for item, res in executor.map(task, blocks):
        if isinstance(res, BaseException):  # the whole block failed (e.g. compilation)
            failed.update({s: repr(res) for s in item})
            continue
        for r in res:
            if "error" in r:
                failed[r["seed"]] = r["error"]
            else:
                rows.append(r)
    if not rows:
        raise RuntimeError(f"every dataset failed; first error: {next(iter(failed.values()), 'none')}")
    datasets = _assemble(sorted(rows, key=lambda r: r["seed"]), names)
    settings = {"n": n, "seed": seed, "prob": prob, "n_ranks": n_ranks, "draws": draws, "tune": tune, "chains": chains,
                "target_accept": target_accept, "quantities": names, "options": options.as_dict(),
                "fit_options": fit_options.as_dict(), "fit_priors": fit_priors is not None,
                "misspecify": {"noise": dict(misspecify.noise) if isinstance(misspecify.noise, Mapping) else misspecify.noise,
                               "gross_fraction": misspecify.gross_fraction, "gross_factor": misspecify.gross_factor},
                "wall_s": round(time.perf_counter() - start, 1)}
    return Calibration(datasets, summarise(datasets, n_ranks, bins), dict(sorted(failed.items())), settings)


def _default_quantities(problem: Problem) -> list[str]:
    system = problem.system
    return [f"flow_{f}" for f in system.flows] + [f"output_{p}" for p in system.processes]


def simulate_values(problem: Problem, options: ModelOptions, prior: xr.Dataset, seed: int,
                    misspecify: Misspecification | None = None) -> np.ndarray:
    """Record values (system unit, fractions for shares; dim ``record``) simulated from one prior draw.

    Parameters
    ----------
    problem : Problem
        The template records.
    options : ModelOptions
        Options of the simulating model (floors, likelihood).
    prior : xarray.Dataset
        One prior draw (dims chain=1, draw=1 and the parameters' dims), as
        :func:`bayesmfa.inference.sampling.sample_prior` gives it.
    seed : int
        Seed of the record noise (stream ``[seed, 1]``, as ``sample_prior``
        replicates records) and of the gross errors (stream ``[seed, 2]``).
    misspecify : Misspecification, optional
        Noise factors and gross errors.

    Returns
    -------
    ndarray
        One value per record: point records drawn from their likelihood around
        the truth, clipped at 0 unless signed and at 1 for shares; bound
        records keep their template value.
    """
    from bayesmfa.core.likelihoods import NORMAL
    from bayesmfa.core.model import record_predictions, replicate_records

    rec = problem.records
    misspecify = misspecify or Misspecification()
    pred = record_predictions(prior, problem, options)
    factors = misspecify.noise_factors(list(rec.table["source_type"].astype(str)))
    x = replicate_records(pred.model, pred.scale * factors, pred.kind, pred.nu, np.random.default_rng([seed, 1]))[0]
    values = np.where(pred.kind == NORMAL, x, np.exp(x) - pred.lik.floor)
    point = rec.bound == 0
    if misspecify.gross_fraction > 0:
        rng = np.random.default_rng([seed, 2])
        idx = np.flatnonzero(point)
        hit = rng.choice(idx, size=int(round(misspecify.gross_fraction * len(idx))), replace=False)
        values[hit] *= misspecify.gross_factor ** rng.choice([-1.0, 1.0], size=len(hit))
    values = np.where(rec.signed, values, np.clip(values, 0.0, None))
    values = np.where(rec.is_share, np.minimum(values, 1.0), values)  # a lognormal share can exceed 1; record checks refuse it
    return np.where(point, values, rec.value)


def _simulate_cyclic(problem: Problem, options: ModelOptions, drawn: Any) -> np.ndarray:
    """Record values from the reference model's prior predictive draw (cyclic systems, no misspecified noise)."""
    from bayesmfa.core.likelihoods import FAMILIES, NORMAL
    from bayesmfa.core.model import record_likelihoods

    rec = problem.records
    lik = record_likelihoods(problem, options)
    pos = {label: i for i, label in enumerate(rec.labels)}
    x = np.full(rec.n_obs, np.nan)
    for _, group, dim in FAMILIES:
        if group in drawn.prior_predictive:
            sim = drawn.prior_predictive[group].isel(chain=0, draw=0)
            x[[pos[label] for label in sim[dim].values]] = sim.values
    values = np.where(lik.kind == NORMAL, x, np.exp(x) - lik.floor)
    values = np.where(rec.signed, values, np.clip(values, 0.0, None))
    values = np.where(rec.is_share, np.minimum(values, 1.0), values)
    return np.where(rec.bound == 0, values, rec.value)


@dataclass(frozen=True)
class _Baseline:
    """Per quantity: flat element -> records that measure it alone, and the prior median (flattened)."""

    direct: dict[str, list[list[int]]]
    prior_median: dict[str, np.ndarray]
    floor: float


def _baseline(problem: Problem, options: ModelOptions, names: list[str], prior_draws: int, seed: int) -> _Baseline:
    """What the direct estimate needs: which records measure each element alone, and the prior medians."""
    from bayesmfa.core.forward import Layout, derived_arrays
    from bayesmfa.inference.sampling import sample_prior

    layout = Layout.from_options(problem.graph, options)
    prior_seed = int(np.random.SeedSequence([seed, 3]).generate_state(1)[0])
    prior = sample_prior(problem, options, draws=max(1, prior_draws), seed=prior_seed).prior
    named = derived_arrays(prior, layout)
    missing = [q for q in names if q not in named]
    if missing:
        raise ValueError(f"unknown quantities {missing}; named arrays: {sorted(named.data_vars)}")
    medians = {q: np.median(named[q].values.reshape(-1, int(np.prod(named[q].shape[2:]))), axis=0) for q in names}
    positions = _state_positions(problem, names)
    rec = problem.records
    num = rec.numerator.tocsr()
    factored = np.any(rec.factor_matrix != 0, axis=1) if rec.factors else np.zeros(rec.n_obs, dtype=bool)
    alone = (np.diff(num.indptr) == 1) & ~rec.is_share & (rec.bound == 0) & (rec.offset == 0) & ~factored
    by_state: dict[int, list[int]] = {}
    for r in np.flatnonzero(alone):
        if num.data[num.indptr[r]] == 1.0:
            by_state.setdefault(int(num.indices[num.indptr[r]]), []).append(int(r))
    direct = {q: [by_state.get(int(s), []) if s >= 0 else [] for s in positions[q]] for q in names}
    return _Baseline(direct, medians, float(options.floor))


def _state_positions(problem: Problem, names: list[str]) -> dict[str, np.ndarray]:
    """Per named array, the model state entry of each flat element (-1 where it is none, or a sum of several).

    The named arrays are scattered from the state by :func:`bayesmfa.core.forward.named_dataset`; scattering
    two probes (index + 1 and its square) tells which element is which single entry.
    """
    from bayesmfa.core.forward import named_dataset
    from bayesmfa.core.records import StateIndex

    graph = problem.graph
    idx = StateIndex(graph)
    years = np.arange(idx.n_years)[:, None]
    edge = idx.edge(years, np.arange(graph.n_edges)[None, :]).astype(float)
    out = idx.output(years, np.arange(graph.n_nodes)[None, :]).astype(float)
    thr = idx.input(years, np.arange(graph.n_nodes)[None, :]).astype(float)
    post = xr.Dataset(coords={"chain": [0], "draw": [0]})
    n_in = len(graph.input_nodes)

    def probe(f: Any) -> xr.Dataset:
        pad = lambda a: f(a)[None, None]  # noqa: E731
        return named_dataset(graph, post, ("chain", "draw"), pad(edge + 1), pad(thr + 1), pad(out + 1),
                             np.zeros((1, 1, idx.n_years, n_in)), np.zeros((1, 1, idx.n_years, graph.n_edges)))

    one, two = probe(lambda a: a), probe(lambda a: a**2)
    result = {}
    for q in names:
        a, b = one[q].values.reshape(-1), two[q].values.reshape(-1)
        single = (a > 0) & np.isclose(b, a**2, rtol=0, atol=0.5)
        result[q] = np.where(single, np.round(a) - 1, -1).astype(int)
    return result


_COMPILED: dict[tuple[str, str], Any] = {}


def _compiled(problem: Problem, options: ModelOptions) -> Any:
    """:func:`bayesmfa.inference.sampling.compile_model`, once per problem and options in this process."""
    from bayesmfa.inference.sampling import compile_model

    key = (problem.content_hash(options.as_dict()), "refit")
    if key not in _COMPILED:
        _COMPILED[key] = compile_model(problem, options)
    return _COMPILED[key]


@dataclass(frozen=True)
class CalibrationTask:
    """Simulate and fit one block of datasets (picklable, for worker processes); one result dict per seed."""

    problem: Problem
    options: ModelOptions
    fit_problem: Problem
    fit_options: ModelOptions
    misspecify: Misspecification
    quantities: tuple[str, ...]
    prob: float
    n_ranks: int
    draws: int
    tune: int
    chains: int
    target_accept: float
    baseline: _Baseline

    def __call__(self, seeds: Sequence[int]) -> list[dict]:
        compiled = _compiled(self.fit_problem, self.fit_options)
        out = []
        for seed in seeds:
            try:
                out.append(self.one(compiled, int(seed)))
            except Exception as err:  # noqa: BLE001 - one failed dataset is reported, never fatal to its block
                out.append({"seed": int(seed), "error": repr(err)})
        return out

    def one(self, compiled: Any, seed: int) -> dict:
        """Simulate dataset ``seed``, refit it and compare."""
        from bayesmfa.core.forward import Layout, derived_arrays
        from bayesmfa.inference.sampling import sample_prior

        drawn = sample_prior(self.problem, self.options, draws=1, seed=seed)
        if self.problem.graph.depth is None:
            values = _simulate_cyclic(self.problem, self.options, drawn)
        else:
            values = simulate_values(self.problem, self.options, drawn.prior, seed, self.misspecify)
        truth = derived_arrays(drawn.prior, Layout.from_options(self.problem.graph, self.options)).isel(chain=0, draw=0)
        idata = compiled.refit(values, seed=seed, draws=self.draws, tune=self.tune, chains=self.chains,
                               target_accept=self.target_accept, check_diagnostics=False)
        max_rhat = json.loads(idata.posterior.attrs["diagnostics"]).get("max_rhat")  # computed by the refit
        res = {"seed": seed, "divergences": int(idata.sample_stats["diverging"].sum()),
               "max_rhat": float("nan") if max_rhat is None else float(max_rhat)}
        res.update(self._compare(seed, truth, idata.posterior, values))
        return res

    def _compare(self, seed: int, truth: xr.Dataset, post: xr.Dataset, values: np.ndarray) -> dict:
        """Rank, coverage and squared errors per quantity for one dataset."""
        pick = np.random.default_rng([seed, 7919])  # element choice independent of the simulated data
        n_samples = post.sizes["chain"] * post.sizes["draw"]
        thin = np.linspace(0, n_samples - 1, self.n_ranks).round().astype(int)
        lo_q, hi_q = (1 - self.prob) / 2, (1 + self.prob) / 2
        floor = self.baseline.floor
        out: dict[str, list] = {k: [] for k in ("rank", "n_elements", "inside", "sse_posterior", "sse_baseline", "n_direct")}
        for name in self.quantities:
            true = np.asarray(truth[name].values, dtype=float).reshape(-1)
            draws = np.asarray(post[name].stack(sample=("chain", "draw")).transpose("sample", ...).values).reshape(-1, true.size)
            keep = np.flatnonzero(true > 0)  # structural zeros (a region trading with itself) carry no information
            j = keep[pick.integers(len(keep))]
            lo, med, hi = np.quantile(draws[:, keep], [lo_q, 0.5, hi_q], axis=0)
            direct = self.baseline.direct[name]
            base = self.baseline.prior_median[name][keep].copy()
            n_direct = 0
            for i, k in enumerate(keep):
                vals = values[direct[k]] if direct[k] else np.array([])
                vals = vals[vals > 0]
                if len(vals):
                    base[i] = np.exp(np.mean(np.log(vals)))
                    n_direct += 1
            log_true = np.log(true[keep] + floor)
            out["rank"].append(int(np.sum(draws[thin, j] < true[j])))
            out["n_elements"].append(len(keep))
            out["inside"].append(int(np.sum((true[keep] >= lo) & (true[keep] <= hi))))
            out["sse_posterior"].append(float(np.sum((np.log(med + floor) - log_true) ** 2)))
            out["sse_baseline"].append(float(np.sum((np.log(base + floor) - log_true) ** 2)))
            out["n_direct"].append(n_direct)
        return out


def _assemble(rows: list[dict], names: list[str]) -> xr.Dataset:
    """Per-dataset result dicts as one Dataset (dataset, quantity)."""
    coords = {"dataset": [r["seed"] for r in rows], "quantity": names}
    per_q = {k: (("dataset", "quantity"), np.array([r[k] for r in rows]))
             for k in ("rank", "n_elements", "inside", "sse_posterior", "sse_baseline", "n_direct")}
    per_d = {k: ("dataset", np.array([r[k] for r in rows])) for k in ("divergences", "max_rhat")}
    ds = xr.Dataset(per_q | per_d, coords=coords)
    ds["dataset"].attrs["description"] = "the dataset's seed"
    return ds
