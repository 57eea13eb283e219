"""The Laplace approximation with Pareto-smoothed importance sampling (``fit(method="laplace")``)."""

from __future__ import annotations

import warnings

import numpy as np
import pymc as pm
import pytest

import bayesmfa as bm
from bayesmfa.analysis.balance import balance_residuals
from bayesmfa.drivers.runner import RunSettings
from bayesmfa.inference.approx import MAX_PARETO_K, laplace
from bayesmfa.inference.diagnostics import ConvergenceWarning, Diagnostics, Thresholds
from bayesmfa.inference.sampling import sampled_names


def test_gaussian_posterior_is_recovered_with_small_k():
    """Normal mean with known sd, and a log-scale parameter: a posterior Gaussian in mu (closed form), so k is small
    and the corrected draws match the analytic mean and sd of mu."""
    rng = np.random.default_rng(3)
    y = rng.normal(2.0, 1.0, size=25)
    with pm.Model() as model:
        mu = pm.Normal("mu", 0.0, 10.0)
        pm.Normal("y", mu, 1.0, observed=y)
        pm.LogNormal("scale", 0.0, 0.5)  # no data: its log is exactly Gaussian, so q is exact there too
    post, stats, info = laplace(model, ["mu", "scale"], draws=1000, chains=2, seed=1)
    prec = 1 / 10.0**2 + len(y)
    mean, sd = y.sum() / prec, prec**-0.5
    assert info.pareto_k < 0.5 and info.corrected and info.converged
    draws = post["mu"].values.ravel()
    assert abs(draws.mean() - mean) < 4 * sd / np.sqrt(info.ess)
    assert abs(draws.std() - sd) / sd < 0.1
    log_scale = np.log(post["scale"].values.ravel())
    assert abs(log_scale.std() - 0.5) < 0.05 and abs(np.median(log_scale)) < 0.05
    np.testing.assert_allclose(np.log(post["scale"].values), post["scale_log__"].values)  # stored values match their draws
    assert post["mu"].dims == ("chain", "draw") and stats["lp"].shape == (2, 1000)


def test_heavy_tailed_posterior_is_flagged_and_left_uncorrected():
    """A Cauchy posterior: the Gaussian at its mode misses the tails, k > 0.7, and the draws are the plain Gaussian ones."""
    with pm.Model() as model:
        pm.Cauchy("x", 0.0, 1.0)
    post, _, info = laplace(model, ["x"], draws=500, chains=2, seed=0)
    assert info.pareto_k > MAX_PARETO_K and not info.corrected
    x = post["x"].values.ravel()
    assert abs(x.std() - np.sqrt(0.5)) < 0.05  # the Laplace Gaussian of a Cauchy at 0: curvature 2, sd 1/sqrt(2)


def test_pareto_k_fails_the_gate_above_limit():
    base = Diagnostics(1.0, 1000.0, 1000.0, 0, "", "")
    assert base.failures(Thresholds()) == []  # NUTS: no k, no check
    from dataclasses import replace

    assert replace(base, pareto_k=0.5).failures(Thresholds()) == []
    failed = replace(base, pareto_k=1.3).failures(Thresholds())
    assert len(failed) == 1 and "Pareto k 1.30 > 0.7" in failed[0] and "method='nuts'" in failed[0]


def test_fit_laplace_has_the_layout_of_a_nuts_fit(demo_problem, demo_fit):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        idata = bm.fit(demo_problem, method="laplace", draws=200, chains=2, seed=0, prior_draws=50)
    assert set(demo_fit.groups()) <= set(idata.groups())
    nuts_vars = set(demo_fit.posterior.data_vars)
    assert nuts_vars <= set(idata.posterior.data_vars), nuts_vars - set(idata.posterior.data_vars)
    for name in nuts_vars:
        assert idata.posterior[name].shape[2:] == demo_fit.posterior[name].shape[2:], name
        if not name.endswith("__"):  # nutpie names the dims of unconstrained values <name>_dim_0; the model's dims here
            assert idata.posterior[name].dims[2:] == demo_fit.posterior[name].dims[2:], name
    assert idata.posterior.sizes["chain"] == 2 and idata.posterior.sizes["draw"] == 200
    # balance holds exactly in every draw (the named arrays come from the parameters)
    assert float(np.abs(balance_residuals(idata.posterior, demo_problem.graph)).max()) < 1e-8
    import json

    settings = json.loads(idata.posterior.attrs["settings"])
    diag = json.loads(idata.posterior.attrs["diagnostics"])
    assert settings["method"] == "laplace" and settings["laplace"]["pool"] == 4 * 2 * 200
    k = diag["pareto_k"]
    assert np.isfinite(k)
    warned = any(issubclass(w.category, ConvergenceWarning) and "Pareto k" in str(w.message) for w in caught)
    assert warned == (k > MAX_PARETO_K)
    # the fit moved the parameters from the prior toward the records, as NUTS does
    nuts = demo_fit.posterior["noise"].median(("chain", "draw")).values
    lap = idata.posterior["noise"].median(("chain", "draw")).values
    prior = demo_fit.prior["noise"].median(("chain", "draw")).values
    assert np.all(np.abs(np.log(lap / nuts)) <= np.abs(np.log(prior / nuts)) + 0.5)


def test_laplace_stores_what_the_sampler_stores(demo_problem):
    model = bm.build_model(demo_problem, fused=True)
    post, _, _ = laplace(model, sampled_names(model), draws=20, chains=1, seed=0)
    assert set(sampled_names(model)) <= set(post.data_vars)
    transformed = {v.name for v in model.value_vars} - set(sampled_names(model))
    assert transformed and transformed <= set(post.data_vars)


def test_unknown_method_is_refused(demo_problem):
    with pytest.raises(ValueError, match="unknown method 'vi'"):
        bm.fit(demo_problem, method="vi")
    with pytest.raises(ValueError, match="RunSettings.method"):
        RunSettings(method="vi")



def test_an_undefined_pareto_k_counts_as_untrustworthy(monkeypatch):
    """When PSIS cannot fit a tail (k NaN), the fit must not pass as if it had no k: k is infinite, the draws uncorrected."""
    import arviz as az

    from bayesmfa.inference import approx

    monkeypatch.setattr(az, "psislw", lambda log_w: (log_w - log_w.max(), np.nan))
    _, k = approx._psis(np.array([0.0, -1.0, -2.0]))
    assert k == np.inf
    with pm.Model() as model:
        pm.Normal("x", 0.0, 1.0)
    _, _, info = laplace(model, ["x"], draws=50, chains=1, seed=0)
    assert info.pareto_k == np.inf and not info.corrected
    failed = Diagnostics(1.0, 1000.0, 1000.0, 0, "", "", pareto_k=info.pareto_k).failures(Thresholds())
    assert failed and "undefined" in failed[0]
