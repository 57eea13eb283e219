"""Agreement with the closed-form posterior of a linear-Gaussian case.

One source feeding one sink over 6 years; the log input follows a Gaussian
random walk with known step; records observe the log output with known noise.
The posterior of the log input is Gaussian with a closed form (a Kalman
smoother written as one linear solve).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayesmfa as bm

M0, S0, TAU, SIGMA = np.log(50.0), 0.5, 0.2, 0.1
YEARS = list(range(2000, 2006))
OBSERVED = {2000: 40.0, 2001: 47.0, 2003: 60.0, 2005: 52.0}


def _problem(step: dict | None = None):
    system = bm.system_from_dict(
        {
            "name": "lingauss",
            "time": {"start": YEARS[0], "end": YEARS[-1]},
            "dims": {},
            "processes": {"source": {}, "sink": {}},
            "boundary": {"inputs": ["source"], "sinks": ["sink"]},
            "flows": {"f": {"from": "source", "to": "sink"}},
        }
    )
    priors = bm.priors_from_dict(
        {
            "inputs": [{"process": "source", "dist": "LogNormal", "mu": M0, "sigma": S0, "source": "t"}],
            "steps": [step or {"target": "input", "dist": "Fixed", "value": TAU, "source": "t"}],
            "noise": [{"source_type": "s", "dist": "Fixed", "value": SIGMA, "source": "t"}],
        }
    )
    records = pd.DataFrame(
        [{"quantity": "f", "year": str(y), "value": str(v), "unit": "kt", "source_type": "s", "source": "t"} for y, v in OBSERVED.items()]
    )
    return bm.make_problem(system, priors, records)


def closed_form():
    t = np.arange(len(YEARS))
    cov = S0**2 + TAU**2 * np.minimum.outer(t, t)
    h = np.zeros((len(OBSERVED), len(YEARS)))
    for i, y in enumerate(OBSERVED):
        h[i, YEARS.index(y)] = 1.0
    y = np.log(list(OBSERVED.values()))
    prec = np.linalg.inv(cov) + h.T @ h / SIGMA**2
    post_cov = np.linalg.inv(prec)
    mean = post_cov @ (np.linalg.solve(cov, np.full(len(YEARS), M0)) + h.T @ y / SIGMA**2)
    return mean, np.sqrt(np.diag(post_cov))


@pytest.mark.parametrize("centred", [(), ("source",)], ids=["noncentred", "centred"])
def test_matches_closed_form_posterior(centred):
    """Either parametrisation of the input walk gives the same (closed-form) posterior."""
    problem = _problem()
    options = bm.ModelOptions(floor=0.0, centred_inputs=centred)
    idata = bm.fit(problem, options=options, backend="pymc", draws=2000, tune=1000, chains=2, seed=11)
    assert ("input_log_walk" in idata.posterior) == bool(centred)
    log_u = np.log(idata.posterior["external_source"])
    mean, sd = closed_form()
    ess = np.asarray([float(v) for v in __import__("arviz").ess(log_u.to_dataset(name="x"))["x"].values])
    got_mean = log_u.mean(("chain", "draw")).values
    got_sd = log_u.std(("chain", "draw")).values
    mc_err = sd / np.sqrt(ess)
    assert np.all(np.abs(got_mean - mean) < 4 * mc_err), (got_mean, mean, mc_err)
    # the sd of a sample sd is ~ sd / sqrt(2 ess)
    assert np.all(np.abs(got_sd - sd) < 4 * sd / np.sqrt(2 * ess) + 1e-3), (got_sd, sd)
    # and the posterior is much narrower than the prior where there are records
    assert sd[0] < S0 / 3


def test_centred_inputs_must_name_input_processes():
    with pytest.raises(ValueError, match="sink"):
        bm.build_model(_problem(), bm.ModelOptions(centred_inputs=("sink",)))


@pytest.mark.parametrize("innovations", ["normal", "studentt"])
def test_centred_and_noncentred_walks_have_the_same_prior(innovations):
    """The two parametrisations are one prior: quantiles of prior draws of the log input agree."""
    import pymc as pm

    problem = _problem({"target": "input", "dist": "Fixed", "value": TAU, "source": "t", "innovations": innovations, "nu": 3})
    draws = {}
    for centred in ((), ("source",)):
        with bm.build_model(problem, bm.ModelOptions(floor=0.0, centred_inputs=centred)):
            prior = pm.sample_prior_predictive(draws=20000, random_seed=3, var_names=["external_source"]).prior
        draws[bool(centred)] = np.log(prior["external_source"].values.reshape(-1, len(YEARS)))
    q = [0.05, 0.25, 0.5, 0.75, 0.95]
    a, b = np.quantile(draws[False], q, axis=0), np.quantile(draws[True], q, axis=0)
    spread = draws[False].std(0)
    assert np.all(np.abs(a - b) < 0.05 * spread), (a, b)
    # the walk spreads: the last year is wider than the first by the accumulated steps
    assert spread[-1] > spread[0]


def test_normal_logcdf_matches_scipy_with_finite_gradients():
    """The censored-bound likelihood's log-cdf (built without erfcx, which JAX lacks)."""
    import pytensor
    import pytensor.tensor as pt
    from scipy import stats

    from bayesmfa.core.model import normal_logcdf

    z = pt.dvector("z")
    out = normal_logcdf(z)
    f = pytensor.function([z], [out, pytensor.grad(out.sum(), z)])
    x = np.array([-60.0, -20.0, -7.0, -5.0001, -5.0, -4.9, -1.0, 0.0, 1.5, 6.0])
    value, grad = f(x)
    ref = stats.norm.logcdf(x)
    assert np.all(np.abs(value - ref) <= 1e-4 * np.abs(ref) + 1e-12)
    ref_grad = np.exp(stats.norm.logpdf(x) - ref)  # d/dz log Phi = phi / Phi
    assert np.all(np.isfinite(grad)) and np.all(np.abs(grad - ref_grad) <= 1e-3 * ref_grad + 1e-12)
