"""Fitting: NUTS with a chosen backend, diagnostics after every fit, provenance in the attrs."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import time
import warnings
from dataclasses import dataclass, replace
from typing import Any

import arviz as az
import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from bayesmfa.core.forward import Layout, derived_arrays, is_derived
from bayesmfa.core.likelihoods import FAMILIES
from bayesmfa.core.model import (
    ModelOptions,
    build_model,
    pointwise_loglik,
    record_likelihoods,
    record_predictions,
    replicate_records,
)
from bayesmfa.core.problem import Problem
from bayesmfa.inference.diagnostics import Thresholds, check_diagnostics, compute_diagnostics

BACKENDS = ("pymc", "nutpie", "numpyro")
#: Ways to fit: NUTS (publishable), or the PSIS-corrected Laplace approximation (seconds; for iteration).
METHODS = ("nuts", "laplace")


def available_backends() -> list[str]:
    """Backends whose packages are installed (``pymc`` always is)."""
    mods = {"pymc": "pymc", "nutpie": "nutpie", "numpyro": "numpyro"}
    return [b for b in BACKENDS if importlib.util.find_spec(mods[b]) is not None]


def _default_backend() -> str:
    return "nutpie" if "nutpie" in available_backends() else "pymc"


def fit(
    problem: Problem,
    *,
    options: ModelOptions | None = None,
    backend: str = "auto",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int = 0,
    target_accept: float = 0.9,
    min_tree_depth: int | None = None,
    max_tree_depth: int | None = None,
    thin: int = 1,
    progressbar: bool = False,
    thresholds: Thresholds | None = None,
    strict: bool = False,
    model: pm.Model | None = None,
    prior_draws: int = 1000,
    method: str = "nuts",
) -> az.InferenceData:
    """Fit the model of ``problem`` with NUTS (or approximately), and draw from its prior.

    Parameters
    ----------
    problem : Problem
        System, priors and records.
    options : ModelOptions, optional
        Model options (likelihood, floors, noise scale).
    backend : {"auto", "pymc", "nutpie", "numpyro"}
        NUTS implementation; ``auto`` takes nutpie (with low-rank mass-matrix
        adaptation) when installed, else PyMC.
    draws, tune, chains : int
        Draws kept and tuning steps per chain, number of chains.
    seed : int
        Random seed; the same seed gives the same draws on the same machine.
    target_accept : float
        NUTS target acceptance rate.
    min_tree_depth : int, optional
        Minimum NUTS tree depth (at least ``2**min_tree_depth - 1`` leapfrog
        steps per draw; nutpie only, other backends warn and ignore it).
        Longer trajectories than the U-turn criterion picks let the sampler
        travel along weakly identified ridges (e.g. flows seen only through
        their sum) in one draw; the REE case uses 8.
    max_tree_depth : int, optional
        Maximum NUTS tree depth (at most ``2**max_tree_depth - 1`` leapfrog
        steps per draw; nutpie's default 10 where not given; nutpie and
        PyMC, numpyro warns and ignores it). Equal to ``min_tree_depth``, every draw
        takes the same number of steps: the cost is fixed, and a higher
        ``target_accept`` (a smaller step) costs no extra steps. The REE case
        uses 8 and 8 with target_accept 0.95.
    thin : int
        Keep every ``thin``-th draw (``draws`` are drawn, ``draws // thin``
        kept per chain). Cheaper than forcing long trajectories when a few
        weakly identified quantities mix slowly: short trajectories and more
        draws, thinned to a shareable file.
    progressbar : bool
        Show the sampler's progress bar.
    thresholds : Thresholds, optional
        Diagnostic limits; failures warn (or raise when ``strict``).
    strict : bool
        Raise :class:`~bayesmfa.errors.DiagnosticsError` on failed diagnostics.
    model : pymc.Model, optional
        A model already built from ``problem`` and ``options`` (by default the
        fused model is built for acyclic systems with the nutpie and pymc
        backends, the reference model otherwise; nutpie compilations are
        cached in the process by content hash).
    prior_draws : int
        Draws from the prior of the same model, with the same ``seed``
        (:func:`sample_prior`), stored as the ``prior`` and
        ``prior_predictive`` groups; 0 draws none. The prior tells how far the
        records moved each quantity (:func:`bayesmfa.analysis.summaries.prior_posterior_width`).
    method : {"nuts", "laplace"}
        ``nuts`` samples the posterior (publishable when the diagnostics
        pass). ``laplace`` approximates it in seconds, for iterating on priors
        and records in a notebook (:func:`bayesmfa.inference.approx.laplace`): a Gaussian
        at the mode in the unconstrained space, corrected by Pareto-smoothed
        importance sampling. Its Pareto ``k`` (``diagnostics["pareto_k"]`` in
        the attrs) says whether to trust it: above 0.7 the fit warns (or raises
        when ``strict``) and the draws are not to be used. ``backend``, ``tune``,
        ``target_accept``, ``min_tree_depth``, ``max_tree_depth`` and ``thin`` do not apply.

    Returns
    -------
    arviz.InferenceData
        Groups ``posterior``, ``sample_stats``, ``log_likelihood``,
        ``observed_data``, ``constant_data`` and (with ``prior_draws``)
        ``prior`` (the posterior's variables, one chain) and
        ``prior_predictive``; the posterior's attrs hold the system, priors,
        options, package version, content hash, backend, seed, prior draws
        and diagnostics.
    """
    options = options or ModelOptions()
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {METHODS}")
    if method == "laplace":
        return _fit_laplace(problem, options, draws=draws, chains=chains, seed=seed, thresholds=thresholds, strict=strict,
                            model=model, prior_draws=prior_draws)
    backend = _default_backend() if backend == "auto" else backend
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose from {BACKENDS}")
    if backend not in available_backends():
        raise ImportError(f"backend {backend!r} is not installed: pip install 'bayesmfa[fast]'")
    fused = model is None and backend != "numpyro" and problem.graph.depth is not None
    if min_tree_depth is not None and backend != "nutpie":
        warnings.warn(f"min_tree_depth is a nutpie setting; the {backend} backend ignores it", UserWarning, stacklevel=2)
    if max_tree_depth is not None and backend == "numpyro":
        warnings.warn("max_tree_depth is a nutpie and pymc setting; the numpyro backend ignores it", UserWarning, stacklevel=2)
    check_tree_depths(min_tree_depth, max_tree_depth)
    start = time.perf_counter()
    compile_s = float("nan")
    compile_cache: dict[str, str] = {}
    if backend == "nutpie":
        compiled, compile_s = compiled_nutpie(problem, options, fused=fused, model=model, status=compile_cache)
        idata = _sample_nutpie(compiled, draws=draws, tune=tune, chains=chains, seed=seed, target_accept=target_accept,
                               progressbar=progressbar, min_tree_depth=min_tree_depth, max_tree_depth=max_tree_depth)
        if not fused:  # the fused fit needs no model after sampling (its log-likelihood comes from the kernel)
            model = model or build_model(problem, options)
    else:
        model = model or build_model(problem, options, fused=fused)
        with model:
            idata = pm.sample(
                var_names=sampled_names(model), draws=draws, tune=tune, chains=chains, cores=min(chains, os.cpu_count() or 1),
                random_seed=seed, nuts_sampler=backend, target_accept=target_accept, progressbar=progressbar,
                compute_convergence_checks=False, **({} if fused else {"idata_kwargs": {"log_likelihood": True}}),
                **({"max_treedepth": int(max_tree_depth)} if max_tree_depth is not None and backend == "pymc" else {}),
            )
    if thin > 1:
        idata = _thinned(idata, thin)
    settings = {"method": "nuts", "backend": backend, "draws": draws, "tune": tune, "chains": chains, "seed": seed,
                "target_accept": target_accept, "min_tree_depth": min_tree_depth, "max_tree_depth": max_tree_depth, "thin": thin,
                "fused_kernel": fused,
                "compile_s": round(compile_s, 2), "compile_cache": compile_cache.get("compile_cache")}
    return _finish(idata, problem, options, model, fused=fused, start=start, settings=settings, prior_draws=prior_draws,
                   seed=seed, thresholds=thresholds, strict=strict)


def _sample_nutpie(compiled: Any, *, draws: int, tune: int, chains: int, seed: int, target_accept: float, progressbar: bool,
                   min_tree_depth: int | None, max_tree_depth: int | None = None) -> az.InferenceData:
    """nutpie's NUTS with the settings of every fit (low-rank mass matrix, no warmup kept): :func:`fit` and
    :meth:`CompiledFit.refit` both sample here, so the same seed gives the same draws."""
    import nutpie

    return nutpie.sample(
        compiled, draws=draws, tune=tune, chains=chains, cores=min(chains, os.cpu_count() or 1), seed=seed,
        target_accept=target_accept, progress_bar=progressbar, low_rank_modified_mass_matrix=True, save_warmup=False,
        **({"mindepth": int(min_tree_depth)} if min_tree_depth is not None else {}),
        **({"maxdepth": int(max_tree_depth)} if max_tree_depth is not None else {}),
    )


#: nutpie's and PyMC's maximum NUTS tree depth where none is given.
DEFAULT_MAX_TREE_DEPTH = 10


def check_tree_depths(min_tree_depth: int | None, max_tree_depth: int | None, owner: str = "") -> None:
    """Refuse a minimum tree depth above the maximum (nutpie would silently stop at the maximum).

    ``owner`` prefixes the field names in the message (e.g. ``"RunSettings."``).
    """
    top = DEFAULT_MAX_TREE_DEPTH if max_tree_depth is None else max_tree_depth
    if min_tree_depth is not None and min_tree_depth > top:
        raise ValueError(f"{owner}min_tree_depth {min_tree_depth} is above max_tree_depth {top}")


def _finish(idata: az.InferenceData, problem: Problem, options: ModelOptions, model: pm.Model | None, *, fused: bool,
            start: float, settings: dict[str, Any], prior_draws: int, seed: int, thresholds: Thresholds | None,
            strict: bool, pareto_k: float = float("nan"), importance_ess: float | None = None,
            check: bool = True) -> az.InferenceData:
    """Everything after the draws, the same for every method: log-likelihood, named arrays, data groups,
    diagnostics, prior, provenance."""
    if fused:
        idata.add_groups({"log_likelihood": pointwise_loglik(idata.posterior, problem, options)})
    elif "log_likelihood" not in idata:
        pm.compute_log_likelihood(idata, model=model, extend_inferencedata=True, progressbar=False)
    layout = Layout.from_options(problem.graph, options)
    add_derived(idata, layout)
    wall = time.perf_counter() - start
    _complete_groups(idata, build_model(problem, options) if fused else model, replace=fused)
    diag = compute_diagnostics(idata, wall_s=wall)
    if importance_ess is not None:  # resampled or independent draws: ESS is the importance sample's, not arviz's
        diag = replace(diag, min_ess_bulk=min(diag.min_ess_bulk, importance_ess), min_ess_tail=min(diag.min_ess_tail, importance_ess))
    diag = replace(diag, pareto_k=pareto_k)
    prior_s = _add_prior(idata, problem, options, draws=prior_draws, seed=seed, model=model)
    add_derived(idata, layout, groups=("prior",))
    attach_provenance(idata, problem, options, {**settings, "prior_draws": prior_draws, "prior_s": round(prior_s, 2)},
                      diagnostics=diag.to_json())
    if check:
        check_diagnostics(diag, thresholds or Thresholds(), strict=strict)
    return idata


def _fit_laplace(problem: Problem, options: ModelOptions, *, draws: int, chains: int, seed: int, thresholds: Thresholds | None,
                 strict: bool, model: pm.Model | None, prior_draws: int) -> az.InferenceData:
    """:func:`fit` with ``method="laplace"`` (see :mod:`bayesmfa.inference.approx`)."""
    from bayesmfa.inference.approx import laplace

    start = time.perf_counter()
    fused = model is None and problem.graph.depth is not None
    built = model or build_model(problem, options, fused=fused)
    posterior, stats, info = laplace(built, sampled_names(built), draws=draws, chains=chains, seed=seed)
    idata = az.InferenceData(posterior=posterior, sample_stats=stats)
    settings = {"method": "laplace", "draws": draws, "chains": chains, "seed": seed, "fused_kernel": fused,
                "laplace": {k: (round(v, 3) if isinstance(v, float) else v) for k, v in info.__dict__.items()}}
    return _finish(idata, problem, options, None if fused else built, fused=fused, start=start, settings=settings,
                   prior_draws=prior_draws, seed=seed, thresholds=thresholds, strict=strict, pareto_k=info.pareto_k,
                   importance_ess=info.ess if info.corrected else None)


#: Compiled nutpie models of this process, by (content hash, fused): a refit of the same model in a
#: notebook or a sweep skips compilation; across processes :mod:`bayesmfa.inference.compilecache` keeps them on disk.
_COMPILED: dict[tuple[str, bool], Any] = {}


def compiled_nutpie(problem: Problem, options: ModelOptions, *, fused: bool, model: pm.Model | None = None,
                    status: dict[str, str] | None = None) -> tuple[Any, float]:
    """The nutpie-compiled model of ``problem`` (cached in this process and on disk) and the seconds compiling took.

    Parameters
    ----------
    problem : Problem
        System, priors and records.
    options : ModelOptions
        Model options.
    fused : bool
        Whether to build the fused model (see :func:`bayesmfa.core.model.build_model`).
    model : pymc.Model, optional
        A model already built from ``problem`` and ``options``; it is compiled
        as given and not cached (its contents are not covered by the hash).
    status : dict, optional
        Filled with ``compile_cache``: ``"memory"`` (this process had it),
        ``"hit"`` (loaded from the on-disk cache, :mod:`bayesmfa.inference.compilecache`),
        ``"miss"`` (compiled, and stored when it can be) or ``"off"`` (compiled,
        not cached: a given ``model``, or the cache turned off).

    Returns
    -------
    compiled : nutpie compiled model
    seconds : float
        Compile time, building the model included (0 when this process had it).
    """
    import nutpie

    from bayesmfa.inference import compilecache

    status = {} if status is None else status
    start = time.perf_counter()
    if model is not None:
        status["compile_cache"] = "off"
        return nutpie.compile_pymc_model(model, var_names=sampled_names(model)), time.perf_counter() - start
    key = (problem.content_hash(options.as_dict()), fused)
    if key in _COMPILED:
        status["compile_cache"] = "memory"
        return _COMPILED[key], 0.0
    built = build_model(problem, options, fused=fused)
    names = sampled_names(built)
    _COMPILED[key], status["compile_cache"] = compilecache.compiled_model(
        built, key[0], fused=fused, var_names=names, compile_fn=lambda: nutpie.compile_pymc_model(built, var_names=names))
    return _COMPILED[key], time.perf_counter() - start


@dataclass(frozen=True, eq=False)
class CompiledFit:
    """A model compiled once by nutpie, to be refitted on new values of the same records.

    Made by :func:`compile_model`. Only the records' values change between
    fits: the system, priors, options and every record's structure (what it
    measures, its source type, factors, bound, likelihood family, floor and
    own sd) are those of :attr:`problem`. The observed values reach the
    compiled log density through one data container, ``record_obs`` (dim
    ``record``: each record on its likelihood's scale, ``log(value + floor)``
    or the value itself for normal records).

    Attributes
    ----------
    problem : Problem
        The problem the model was compiled from (its records are the template).
    options : ModelOptions
        Model options.
    compiled : nutpie compiled model
        The compiled model, with data container ``record_obs``.
    fused : bool
        Whether it is the fused model (acyclic systems), as :func:`fit` samples it.
    compile_s : float
        Seconds that building and compiling took.
    """

    problem: Problem
    options: ModelOptions
    compiled: Any
    fused: bool
    compile_s: float

    def refit(
        self,
        records: Any = None,
        *,
        seed: int = 0,
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        target_accept: float = 0.9,
        min_tree_depth: int | None = None,
        max_tree_depth: int | None = None,
        thin: int = 1,
        progressbar: bool = False,
        thresholds: Thresholds | None = None,
        strict: bool = False,
        check_diagnostics: bool = True,
        prior_draws: int = 0,
    ) -> az.InferenceData:
        """Sample the compiled model on new record values, without compiling again.

        The result is what :func:`fit` (nutpie backend) gives for the problem
        with the new values and the same settings: the same draws for the
        same seed, and ``observed_data``, ``constant_data``,
        ``log_likelihood`` and the provenance attrs of the new values.

        Parameters
        ----------
        records : DataFrame, Problem, array-like or xarray.DataArray, optional
            The new values (see :func:`with_records`); ``None`` refits the
            template's own records.
        seed, draws, tune, chains, target_accept, min_tree_depth, max_tree_depth, thin, progressbar, thresholds, strict
            As for :func:`fit`.
        check_diagnostics : bool
            Warn (or raise, with ``strict``) when the diagnostics fail
            ``thresholds``; ``False`` only stores them in the attrs (for
            calibration studies, which judge many short fits together).
        prior_draws : int
            Prior draws to add (:func:`sample_prior`); 0 (default) adds none.

        Returns
        -------
        arviz.InferenceData
            As :func:`fit` returns it; the settings in the posterior's attrs
            say ``"refit": true``.
        """
        check_tree_depths(min_tree_depth, max_tree_depth)
        problem = self.problem if records is None else with_records(self.problem, records, options=self.options)
        start = time.perf_counter()
        obs = np.asarray(record_likelihoods(problem, self.options).obs, dtype=float)
        idata = _sample_nutpie(self.compiled.with_data(record_obs=obs), draws=draws, tune=tune, chains=chains, seed=seed,
                               target_accept=target_accept, progressbar=progressbar, min_tree_depth=min_tree_depth,
                               max_tree_depth=max_tree_depth)
        if thin > 1:
            idata = _thinned(idata, thin)
        settings = {"method": "nuts", "backend": "nutpie", "draws": draws, "tune": tune, "chains": chains, "seed": seed,
                    "target_accept": target_accept, "min_tree_depth": min_tree_depth, "max_tree_depth": max_tree_depth,
                    "thin": thin, "fused_kernel": self.fused,
                    "compile_s": round(self.compile_s, 2), "compile_cache": "refit", "refit": True}
        model = None if self.fused else build_model(problem, self.options)
        return _finish(idata, problem, self.options, model, fused=self.fused, start=start, settings=settings,
                       prior_draws=prior_draws, seed=seed, thresholds=thresholds, strict=strict, check=check_diagnostics)


def compile_model(problem: Problem, options: ModelOptions | None = None) -> CompiledFit:
    """Build and compile the model of ``problem`` once with nutpie, for refits on new record values.

    The model is the one :func:`fit` samples (the fused model for acyclic
    systems, else the reference model), with the observed record values in
    the data container ``record_obs`` instead of constants. Compiled models
    with data containers are not kept in the on-disk cache
    (:mod:`bayesmfa.inference.compilecache`): keep the returned object for as many
    refits as needed.

    Parameters
    ----------
    problem : Problem
        System, priors and template records.
    options : ModelOptions, optional
        Model options. Fix ``floor`` when the new values will differ much
        from the template's: its default (1e-3 times the median positive
        mass record) follows the records, and a refit refuses values that
        would change it.

    Returns
    -------
    CompiledFit
    """
    import nutpie

    options = options or ModelOptions()
    start = time.perf_counter()
    fused = problem.graph.depth is not None
    model = build_model(problem, options, fused=fused)
    if fused:
        _observed_as_data(model, problem, options)
    compiled = nutpie.compile_pymc_model(model, var_names=sampled_names(model))
    return CompiledFit(problem, options, compiled, fused, time.perf_counter() - start)


def _observed_as_data(model: pm.Model, problem: Problem, options: ModelOptions) -> None:
    """Make the fused model read its observed values from a data container ``record_obs`` (in place).

    The fused kernel (:mod:`bayesmfa.core.fusedop`) takes its record arrays as
    inputs; here the constant ``obs`` input of the records' kernel node is
    replaced by a ``pm.Data`` holding the same values, so nutpie's
    ``with_data`` can swap them. Nothing else changes (variables, their
    order, the arithmetic), so the same seed gives the draws of :func:`fit`.
    """
    from bayesmfa.core.fusedop import FusedLikelihood
    from bayesmfa.core.kernel import KernelData

    potential = next(v for v in model.potentials if v.name == "records_loglik")
    node = potential.owner
    if not isinstance(node.op, FusedLikelihood):
        raise TypeError("records_loglik is not the fused likelihood kernel")
    k = 6 + list(KernelData.__dataclass_fields__).index("obs")  # after (u, logits, yields, sigma, factor, free_edges)
    obs = np.asarray(record_likelihoods(problem, options).obs, dtype=float)
    if not np.array_equal(np.asarray(node.inputs[k].data), obs):
        raise RuntimeError("the fused kernel's inputs are not in the order KernelData lists them")
    with model:
        data = pm.Data("record_obs", obs, dims="record")
    node.inputs[k] = data


def with_records(problem: Problem, records: Any, *, options: ModelOptions | None = None) -> Problem:
    """``problem`` with new values of its records, everything else the same.

    Parameters
    ----------
    problem : Problem
        The template.
    records : DataFrame, Problem, array-like or xarray.DataArray
        A record table (the template's rows with new ``value``, e.g. from
        :func:`bayesmfa.inference.simulate.simulate_records`; validated and checked
        like any record file), a problem built from such a table, or the new
        values themselves in the system unit (fractions for shares), one per
        record in the order of ``problem.records.labels`` (a DataArray with
        dim ``record`` is aligned by its labels). Bound records take their
        new value as the bound.
    options : ModelOptions, optional
        The model options the values are fitted under: with them the new
        records must resolve to the same likelihood constants as the
        template's (family, floor, own sd).

    Returns
    -------
    Problem

    Raises
    ------
    ValueError
        The new records differ from the template's in anything but their
        values (other records, another structure, a floor that moved).
    """
    from dataclasses import replace as dc_replace

    from bayesmfa.core.problem import make_problem
    from bayesmfa.core.records import SHARE_UNITS

    rec = problem.records
    if isinstance(records, Problem):
        new = records
    elif hasattr(records, "columns"):  # a record table
        new = make_problem(problem.system, problem.priors, records.drop(columns=["file", "row"], errors="ignore"))
    else:
        if isinstance(records, xr.DataArray):
            records = records.sel(record=rec.labels)
        values = np.asarray(records, dtype=float).reshape(-1)
        if values.shape != rec.value.shape:
            raise ValueError(f"{values.size} values for {rec.n_obs} records")
        if not np.isfinite(values).all():
            raise ValueError("record values must be finite")
        table = rec.table.copy()
        units = table["unit"].astype(str).str.strip()
        to_system = np.array([SHARE_UNITS[u] if s else problem.system.units[u] for u, s in zip(units, rec.is_share, strict=True)])
        table["value"] = [t if v == old else repr(float(v / f))  # unchanged values keep their text (and the records' hash)
                          for t, v, old, f in zip(table["value"], values, rec.value, to_system, strict=True)]
        new = dc_replace(problem, records=dc_replace(rec, value=values, table=table))
    _check_same_structure(problem, new, options or ModelOptions())
    return new


def _check_same_structure(old: Problem, new: Problem, options: ModelOptions) -> None:
    """Raise ValueError unless ``new`` differs from ``old`` in its record values only."""
    a, b = old.records, new.records
    if a.labels != b.labels:
        raise ValueError("the new records are not the template's records (other ids or order)")
    if old.system.to_yaml() != new.system.to_yaml() or old.priors.text != new.priors.text:
        raise ValueError("the new problem has another system or other priors")
    same = {
        "quantity operators": (a.numerator != b.numerator).nnz == 0 and (a.denominator != b.denominator).nnz == 0,
        "factors": a.factors == b.factors and np.array_equal(a.factor_matrix, b.factor_matrix),
        "source types": a.source_types == b.source_types and np.array_equal(a.source_index, b.source_index),
        "bounds": np.array_equal(a.bound, b.bound),
        "offsets": np.array_equal(a.offset, b.offset),
    }
    la, lb = record_likelihoods(old, options), record_likelihoods(new, options)
    same["likelihood families"] = np.array_equal(la.kind, lb.kind) and np.array_equal(la.nu, lb.nu)
    same["floors (fix ModelOptions.floor: its default follows the records)"] = np.array_equal(la.floor, lb.floor)
    same["own sds"] = np.array_equal(la.fixed_sd, lb.fixed_sd, equal_nan=True)
    differ = [name for name, ok in same.items() if not ok]
    if differ:
        raise ValueError("the new records differ from the template's in more than their values: " + ", ".join(differ))


def _thinned(idata: az.InferenceData, thin: int) -> az.InferenceData:
    """Every ``thin``-th draw of every group with a ``draw`` dim, renumbered 0, 1, ..."""
    groups = {}
    for g in idata.groups():
        ds = idata[g]
        if "draw" in ds.dims:
            ds = ds.isel(draw=slice(None, None, thin))
            ds = ds.assign_coords(draw=np.arange(ds.sizes["draw"]))
        groups[g] = ds
    return az.InferenceData(**groups)


def sampled_names(model: pm.Model) -> list[str]:
    """Model variables the sampler stores: every parameter and small deterministic, not the named arrays.

    The named arrays (``flow_*``, ``input_*``, ``output_*``, ``external_*``,
    ``share``) are recomputed after sampling from the parameters, vectorised
    over all draws (:func:`add_derived`), so the sampler neither evaluates nor
    stores them per draw.
    """
    return [v.name for v in (*model.free_RVs, *model.deterministics) if not is_derived(v.name)]


def add_derived(idata: az.InferenceData, layout: Layout, groups: tuple[str, ...] = ("posterior", "prior")) -> None:
    """Add the named arrays, recomputed from the parameters, to the ``groups`` of ``idata`` (those present)."""
    for group in groups:
        if group in idata.groups() and "input_log_level" in idata[group]:
            ds = idata[group]
            missing = derived_arrays(ds, layout)
            missing = missing[[v for v in missing.data_vars if v not in ds]]
            if missing.data_vars:
                merged = ds.assign({k: v.assign_coords({d: ds[d] for d in v.dims if d in ds.coords}) for k, v in missing.items()})
                merged.attrs = ds.attrs
                setattr(idata, group, merged)


def sample_prior(
    problem: Problem,
    options: ModelOptions | None = None,
    *,
    draws: int = 1000,
    seed: int = 0,
    model: pm.Model | None = None,
) -> az.InferenceData:
    """Draws from the prior of the model of ``problem``: its parameters and replicated records.

    The parameters come from :func:`pymc.sample_prior_predictive` on
    ``model`` (by default the fused model, the reference model for cyclic
    systems), restricted to what the sampler stores (:func:`sampled_names`)
    plus their unconstrained values (``*_log__``, ``*_logodds__``, as nutpie
    stores them). The named arrays are not drawn: add them with
    :func:`add_derived`. The replicated records (on the log scale of
    ``observed_data``) are the model's observed variables when it has them,
    else (fused model) the fused kernel's record values with fresh lognormal
    or Student-t noise.

    Parameters
    ----------
    problem : Problem
        System, priors and records.
    options : ModelOptions, optional
        Model options.
    draws : int
        Number of prior draws (one chain).
    seed : int
        Random seed; the same seed gives the same draws.
    model : pymc.Model, optional
        A model already built from ``problem`` and ``options`` (fused or
        reference); its observed variables, if any, are drawn too.

    Returns
    -------
    arviz.InferenceData
        Groups ``prior`` (dims chain=1, draw, parameter dims) and
        ``prior_predictive`` (``records`` over ``obs``, ``records_t`` over
        ``obs_t``: log of record value + floor, system unit or fraction;
        ``records_n`` over ``obs_n``: normal records' values).
    """
    options = options or ModelOptions()
    acyclic = problem.graph.depth is not None
    model = model or build_model(problem, options, fused=acyclic)
    observed = [v.name for v in model.observed_RVs]
    forward_log = logging.getLogger("pymc.sampling.forward")
    level = forward_log.level
    forward_log.setLevel(logging.WARNING)  # not the "Sampling: [...]" line on every fit
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*Potentials.*", category=UserWarning)
            drawn = pm.sample_prior_predictive(draws=draws, model=model, var_names=sampled_names(model) + observed, random_seed=seed)
    finally:
        forward_log.setLevel(level)
    prior = drawn.prior.assign(_unconstrained(model, drawn.prior))
    groups = {"prior": prior}
    if observed:
        groups["prior_predictive"] = drawn.prior_predictive
    elif acyclic:
        groups["prior_predictive"] = _replicated_records(prior, problem, options, seed)
    return az.InferenceData(**groups)


def _unconstrained(model: pm.Model, prior: xr.Dataset) -> dict[str, xr.DataArray]:
    """The transformed (unconstrained) value of every drawn free variable whose transform needs no other variable."""
    from pytensor.graph.basic import Constant

    try:
        from pytensor.graph.traversal import graph_inputs
    except ImportError:  # older pytensor
        from pytensor.graph.basic import graph_inputs

    out = {}
    for rv in model.free_RVs:
        transform = model.rvs_to_transforms.get(rv)
        if transform is None or rv.name not in prior:
            continue
        x = prior[rv.name]
        value = transform.forward(pt.as_tensor_variable(x.values), *rv.owner.inputs)
        if all(isinstance(v, Constant) for v in graph_inputs([value])):
            out[model.rvs_to_values[rv].name] = x.copy(data=np.asarray(value.eval(), dtype=x.dtype))
    return out


def _replicated_records(prior: xr.Dataset, problem: Problem, options: ModelOptions, seed: int) -> xr.Dataset:
    """Replicated point records of each prior draw, from the fused kernel plus fresh noise (acyclic systems)."""
    rec = problem.records
    pred = record_predictions(prior, problem, options)
    kind = pred.kind
    rng = np.random.default_rng([seed, 1])  # a stream of its own, apart from the parameters'
    rep = replicate_records(pred.model, pred.scale, kind, pred.nu, rng).reshape(prior.sizes["chain"], prior.sizes["draw"], -1)
    coords = {d: prior[d].values for d in ("chain", "draw")}
    out = {}
    for flag, (_, name, dim) in enumerate(FAMILIES):
        idx = np.flatnonzero((np.asarray(rec.bound) == 0) & (kind == flag))
        if len(idx):
            out[name] = xr.DataArray(rep[..., idx], dims=("chain", "draw", dim), coords=coords | {dim: [rec.labels[i] for i in idx]})
    return xr.Dataset(out)


def _add_prior(
    idata: az.InferenceData, problem: Problem, options: ModelOptions, *, draws: int, seed: int, model: pm.Model | None
) -> float:
    """Add :func:`sample_prior`'s groups to a fit, the prior restricted to the posterior's variables; seconds taken."""
    if draws <= 0:
        return 0.0
    start = time.perf_counter()
    drawn = sample_prior(problem, options, draws=draws, seed=seed, model=model)
    post = idata.posterior
    prior = xr.Dataset({v: _dims_like(da, post[v]) for v, da in drawn.prior.data_vars.items() if v in post}, attrs=drawn.prior.attrs)
    idata.add_groups({"prior": prior, **({"prior_predictive": drawn.prior_predictive} if "prior_predictive" in drawn else {})})
    return time.perf_counter() - start


def _dims_like(da: xr.DataArray, like: xr.DataArray) -> xr.DataArray:
    """``da`` (chain, draw, ...) with the non-sample dims and coords of ``like`` (nutpie names the dims of
    unconstrained values ``<name>_dim_0``, where the model has named ones)."""
    dims = like.dims[2:]
    if da.dims[2:] == dims or da.shape[2:] != like.shape[2:]:
        return da
    coords = {d: like[d].values for d in dims if d in like.coords}
    return xr.DataArray(da.values, dims=(*da.dims[:2], *dims), coords={**{d: da[d].values for d in da.dims[:2]}, **coords}, attrs=da.attrs)


def _complete_groups(idata: az.InferenceData, model: pm.Model, replace: bool = False) -> None:
    """Add observed_data / constant_data of ``model`` when a backend left them out (or always, with ``replace``).

    A fit of the fused model takes them from the reference model, which has the observed records.
    """
    missing = [g for g in ("observed_data", "constant_data") if replace or g not in idata]
    for group in missing:
        if group in idata.groups():
            delattr(idata, group)  # InferenceData.__delattr__ also drops it from the group list
    if not missing:
        return
    from pymc.backends.arviz import coords_and_dims_for_inferencedata, dict_to_dataset, find_constants, find_observations

    coords, dims = coords_and_dims_for_inferencedata(model)
    found = {"observed_data": find_observations(model), "constant_data": find_constants(model)}
    for group in missing:
        if found[group]:
            idata.add_groups({group: dict_to_dataset(found[group], library=pm, coords=coords, dims=dims, default_dims=[])})


def attach_provenance(
    idata: az.InferenceData, problem: Problem, options: ModelOptions, settings: dict[str, Any], diagnostics: str = ""
) -> None:
    """Store what the fit was built from in ``idata.posterior.attrs``."""
    from bayesmfa._version import __version__

    idata.posterior.attrs.update(
        {
            "bayesmfa_version": __version__,
            "content_hash": problem.content_hash(options.as_dict()),
            "system_yaml": problem.system.to_yaml(),
            "priors_yaml": problem.priors.text,
            "records_sha256": problem.records.digest(),
            "model_options": json.dumps(options.as_dict()),
            "settings": json.dumps(settings),
            "diagnostics": diagnostics,
        }
    )
