"""Simulate records from known truth (a draw of the model's prior), for tests, demos and calibration."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from bayesmfa.likelihoods import FAMILIES
from bayesmfa.model import ModelOptions, build_model
from bayesmfa.problem import Problem, make_problem


def simulate_records(
    problem: Problem,
    *,
    seed: int,
    noise: float | None = None,
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
    noise : float, optional
        Fix every source type's relative error (log-scale sd) to this value
        instead of drawing it from its prior.
    truth : dict, optional
        Values to fix other free variables to (name -> array), e.g. ``yield``.
    options : ModelOptions, optional
        Model options; the floor is fixed to 0 unless given.

    Returns
    -------
    truth : xarray.Dataset
        The drawn values of every variable (one draw, no chain/draw dims).
    records : DataFrame
        The template records with simulated ``value`` (bounds keep their value).
    """
    options = options or ModelOptions(floor=1e-9)
    model = build_model(problem, options)
    fixed = dict(truth or {})
    if noise is not None and problem.records.source_types:
        fixed["noise"] = np.full(len(problem.records.source_types), float(noise))
    if fixed:
        model = pm.do(model, fixed)
    prior = pm.sample_prior_predictive(draws=1, model=model, random_seed=seed)
    truth_ds = prior.prior.isel(chain=0, draw=0, drop=True)
    for name, value in fixed.items():
        truth_ds[name] = xr.DataArray(np.asarray(value), dims=truth_ds[name].dims if name in truth_ds else None)
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


def resimulated_problem(problem: Problem, records: pd.DataFrame) -> Problem:
    """The same system and priors with new record values."""
    return make_problem(problem.system, problem.priors, records.drop(columns=["file", "row"], errors="ignore"))


def with_noise(options: ModelOptions | None, scale: float) -> ModelOptions:
    """Options with every record noise scale multiplied by ``scale``."""
    return replace(options or ModelOptions(), noise_scale=scale)
