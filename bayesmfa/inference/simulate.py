"""Simulate records from known truth (a draw of the model's prior), for tests, demos and calibration."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from bayesmfa.core.likelihoods import FAMILIES
from bayesmfa.core.model import ModelOptions, build_model
from bayesmfa.core.problem import Problem, make_problem


def simulate_records(
    problem: Problem,
    *,
    seed: int,
    noise: float | Mapping[str, float] | None = None,
    truth: dict[str, np.ndarray] | None = None,
    options: ModelOptions | None = None,
) -> tuple[xr.Dataset, pd.DataFrame]:
    """Draw a true system from the prior and simulate every measurement record.

    Parameters
    ----------
    problem : Problem
        Problem whose records serve as a template (their values are replaced).
    seed : int
        Random seed of the draw.
    noise : float or mapping of str to float, optional
        Fix the learned noise of the records (log-scale sd, i.e. about the
        relative error; an absolute sd in the system unit for normal records)
        instead of drawing it from its prior: one value for every source type,
        or one per source type (``{"production": 0.05, "customs": 0.2}``,
        every source type of ``problem.records.source_types``).
    truth : dict, optional
        Values to fix other free variables to (name -> array, in the shape and
        order of the model variable's dims), e.g. ``yield`` (dim ``yield_node``).
    options : ModelOptions, optional
        Model options; the floor is fixed to 0 unless given.

    Returns
    -------
    truth : xarray.Dataset
        The drawn values of every variable (one draw, no chain/draw dims);
        fixed variables too, with their model dims and coords.
    records : DataFrame
        The template records with simulated ``value`` (bounds keep their value).
    """
    options = options or ModelOptions(floor=1e-9)
    model = build_model(problem, options)
    fixed = dict(truth or {})
    if noise is not None and problem.records.source_types:
        fixed["noise"] = noise_vector(problem.records.source_types, noise)
    dims = {name: model.named_vars_to_dims.get(name, ()) for name in fixed}
    if fixed:
        model = pm.do(model, fixed)
    prior = pm.sample_prior_predictive(draws=1, model=model, random_seed=seed)
    truth_ds = prior.prior.isel(chain=0, draw=0, drop=True)
    for name, value in fixed.items():
        value = np.asarray(value, dtype=float)
        names = dims[name] if len(dims[name]) == value.ndim else tuple(f"{name}_dim_{i}" for i in range(value.ndim))
        coords = {d: list(model.coords[d]) for d in names if d in model.coords}
        truth_ds[name] = xr.DataArray(value, dims=names, coords=coords)
    table = problem.records.table.copy()
    floor = options.floor if options.floor is not None else 0.0
    signed = pd.Series(problem.records.signed, index=table["record_id"])
    for kind, group, dim in FAMILIES:
        if group not in prior.prior_predictive:
            continue
        sim = prior.prior_predictive[group].isel(chain=0, draw=0)
        values = sim.values if kind == "normal" else np.exp(sim.values) - floor
        values = np.where(signed[sim[dim].values].to_numpy(), values, np.clip(values, 0.0, None))
        pos = table.index[table["record_id"].isin(sim[dim].values)]
        order = pd.Series(np.arange(len(table)), index=table["record_id"])[sim[dim].values].values
        assert len(pos) == len(order)
        table.loc[order, "value"] = [f"{v:.6g}" for v in values]
    return truth_ds, table


def noise_vector(source_types: list[str], noise: float | Mapping[str, float]) -> np.ndarray:
    """One value per source type (dim ``source_type``) from one value for all, or a mapping source type -> value.

    Raises
    ------
    ValueError
        A mapping that leaves out a source type or names one that is not there.
    """
    if not isinstance(noise, Mapping):
        return np.full(len(source_types), float(noise))
    missing, unknown = set(source_types) - set(noise), set(noise) - set(source_types)
    if missing or unknown:
        raise ValueError(f"noise needs one value per source type {source_types}; missing {sorted(missing)}, unknown {sorted(unknown)}")
    return np.array([float(noise[s]) for s in source_types])


def resimulated_problem(problem: Problem, records: pd.DataFrame) -> Problem:
    """The same system and priors with new record values."""
    return make_problem(problem.system, problem.priors, records.drop(columns=["file", "row"], errors="ignore"))


def with_noise(options: ModelOptions | None, scale: float) -> ModelOptions:
    """Options with every record noise scale multiplied by ``scale``."""
    return replace(options or ModelOptions(), noise_scale=scale)
