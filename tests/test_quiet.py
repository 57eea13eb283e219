"""Quiet fits: a fit warns only about what is the user's business (failed diagnostics, a bad Pareto k), and the
diagnostics skip elements whose R-hat is undefined (constant draws) instead of failing them or warning about them."""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pymc as pm
import pytensor.tensor as pt
import pytest
import xarray as xr
from test_single_year import PRIORS, _problem

import bayesmfa as bm
from bayesmfa.inference import approx
from bayesmfa.inference.diagnostics import ConvergenceWarning, Thresholds, check_diagnostics, compute_diagnostics, diagnostics_table

QUICK = {"draws": 150, "tune": 200, "chains": 2, "seed": 3}  # the demo_fit fixture's settings (its nutpie compilation is shared)


def _noise(caught: list[warnings.WarningMessage]) -> list[str]:
    """Recorded warnings that are not the user's business: all but ConvergenceWarning (failed diagnostics, bad Pareto k)."""
    return [f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in caught
            if not issubclass(w.category, ConvergenceWarning)]


def _fit_recorded(problem: bm.Problem, **kwargs) -> tuple[az.InferenceData, list[warnings.WarningMessage]]:  # noqa: ANN003
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        idata = bm.fit(problem, progressbar=False, **kwargs)
    return idata, caught


@pytest.mark.slow
def test_quick_fit_of_the_demo_is_quiet(demo_problem):
    """As ``bayesmfa run demo --quick`` fits (short chains, the prior drawn too); about 25 s with the compilation."""
    idata, caught = _fit_recorded(demo_problem, prior_draws=100, **QUICK)
    assert _noise(caught) == []
    assert "posterior" in idata and "prior" in idata


@pytest.mark.slow
def test_quick_fit_of_a_tiny_system_is_quiet(tiny_problem):
    _, caught = _fit_recorded(tiny_problem, prior_draws=100, **QUICK)
    assert _noise(caught) == []


@pytest.fixture(scope="module")
def one_year_fit() -> tuple[az.InferenceData, list[warnings.WarningMessage]]:
    """A quick fit of a one-year system with a gate it cannot pass (so it warns), and the warnings it gave."""
    return _fit_recorded(_problem(PRIORS), thresholds=Thresholds(min_ess_bulk=1e9), prior_draws=100, **QUICK)


def test_one_year_fit_is_quiet_and_skips_its_constant_elements(one_year_fit):
    """A one-year system: the share of a one-edge group is 1 in every draw; its R-hat is undefined, so it is skipped
    (counted, NaN in the table) and the gate judges the rest, which has finite diagnostics."""
    idata, caught = one_year_fit
    assert _noise(caught) == []
    diag = compute_diagnostics(idata)
    assert diag.constant > 0 and diag.nonfinite == 0
    assert np.isfinite([diag.max_rhat, diag.min_ess_bulk, diag.min_ess_tail]).all()
    table = diagnostics_table(idata.posterior)
    constant = table[table["status"] == "constant"]
    assert len(constant) == diag.constant and constant[["rhat", "ess_bulk", "ess_tail"]].isna().all().all()
    assert table.loc[table["status"] == "ok", ["rhat", "ess_bulk", "ess_tail"]].notna().all().all()
    checked = set(table.loc[table["status"] == "ok", "variable"])
    assert diag.worst_rhat in checked and diag.worst_ess in checked


def test_one_year_laplace_fit_is_quiet():
    _, caught = _fit_recorded(_problem(PRIORS), method="laplace", draws=100, chains=2, seed=3)
    assert _noise(caught) == []


def _posterior(values: dict[str, np.ndarray]) -> az.InferenceData:
    post = xr.Dataset({k: (("chain", "draw", *[f"{k}_dim_{i}" for i in range(v.ndim - 2)]), v) for k, v in values.items()})
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros(post.sizes["chain"] * post.sizes["draw"], bool).reshape(
        post.sizes["chain"], post.sizes["draw"]))})
    return az.InferenceData(posterior=post, sample_stats=stats)


def test_constant_elements_are_skipped_not_failed():
    """Structural zeros, exact ones and ones with rounding jitter are reported as constant (NaN), without a warning;
    the well-mixed rest passes the gate with finite values; a non-finite element is counted apart."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(4, 500, 5))
    x[..., 1] = 0.0  # a structural zero
    x[..., 2] = 1.0 + np.finfo(float).eps * rng.integers(0, 2, size=(4, 500))  # a share of 1, recomputed with jitter
    x[0, 7, 4] = np.nan
    idata = _posterior({"flow": x, "scale": np.exp(rng.normal(size=(4, 500))), "zero": np.zeros((4, 500, 3))})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither ArviZ's 0/0 nor a ConvergenceWarning
        table = diagnostics_table(idata.posterior)
        diag = compute_diagnostics(idata)
        assert check_diagnostics(diag, Thresholds()) == []
    assert table.set_index(["variable", "element"])["status"].to_dict() == {
        ("flow", 0): "ok", ("flow", 1): "constant", ("flow", 2): "constant", ("flow", 3): "ok", ("flow", 4): "nonfinite",
        ("scale", 0): "ok", ("zero", 0): "constant", ("zero", 1): "constant", ("zero", 2): "constant"}
    skipped = table["status"] != "ok"
    assert table.loc[skipped, ["rhat", "ess_bulk", "ess_tail"]].isna().all().all()
    assert table.loc[~skipped, ["rhat", "ess_bulk", "ess_tail"]].notna().all().all()
    assert diag.constant == 5 and diag.nonfinite == 1
    assert 1.0 <= diag.max_rhat < 1.01 and diag.min_ess_bulk > 1000 and diag.min_ess_tail > 1000
    assert diag.worst_rhat in ("flow", "scale") and diag.worst_ess in ("flow", "scale")
    assert '"constant": 5' in diag.to_json()


def test_constant_elements_do_not_hide_a_failing_one():
    """Skipping constants must not skip a badly mixed element: two chains stuck at different values fail R-hat."""
    rng = np.random.default_rng(5)
    stuck = rng.normal(size=(4, 300)) * 0.01 + np.array([0.0, 0.0, 1.0, 1.0])[:, None]
    idata = _posterior({"zero": np.zeros((4, 300, 2)), "stuck": stuck})
    diag = compute_diagnostics(idata)
    assert diag.constant == 2 and diag.worst_rhat == "stuck"
    assert any("R-hat" in f for f in diag.failures(Thresholds()))


def test_a_failed_gate_warns_once_at_the_callers_line(one_year_fit):
    """The ConvergenceWarning names the user's line (a script's, a notebook cell's), not a line inside bayesmfa."""
    _, caught = one_year_fit
    convergence = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert len(convergence) == 1 and convergence[0].filename == __file__


def _overflowing_model() -> pm.Model:
    """A wide prior (its precision is below the Laplace floor) and a density that is NaN where exp(x) overflows:
    the Gaussian's tails reach x > 709, where NumPy's cumulative sum meets inf - inf."""
    with pm.Model() as model:
        x = pm.Normal("x", 0.0, 1e4)
        pm.Potential("nan_beyond_709", pt.cumsum(pt.stack([pt.exp(x), -pt.exp(x)]))[-1])
    return model


def test_laplace_handles_an_overflowing_density_quietly():
    model = _overflowing_model()
    logp_grad, _, _ = approx._flat_logp(model, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert not np.isfinite(logp_grad(np.array([800.0]))[0])  # an undefined density, handled by value, not warned about
        post, stats, info = approx.laplace(model, ["x"], draws=200, chains=2, seed=1)
    assert 0.0 < info.finite_share < 1.0  # some of the pool lies beyond the overflow
    assert np.isfinite(stats["lp"].values).all() and (post["x"].values < 709).all()  # none of those is stored


@pytest.mark.parametrize("n_finite", [0, 3, 10])
def test_plain_draws_prefer_a_finite_density(n_finite):
    finite = np.zeros(20, bool)
    finite[np.arange(n_finite) * 2] = True
    picked = approx._plain_draws(finite, 6, np.random.default_rng(0))
    assert picked.shape == (6,)
    if n_finite == 0:
        np.testing.assert_array_equal(picked, np.arange(6))  # nothing finite to prefer: the plain first draws
    else:
        assert finite[picked].all()
        assert set(np.flatnonzero(finite)[:6]) <= set(picked)  # every finite draw up to n, in pool order, is kept


def test_numpy_shares_of_extreme_logits_are_finite_and_quiet(tiny_problem):
    """Draws far in a tail (logits of +-800) give shares summing to 1 per node, without overflow warnings."""
    from bayesmfa.core import forward

    layout = forward.Layout(tiny_problem.graph)
    g = tiny_problem.graph
    row = np.where(np.arange(len(g.free_edges)) % 2 == 0, 800.0, -800.0)
    logits = np.tile(row, (len(layout.years), 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        share = forward.shares(forward.NUMPY, layout, logits[None])
    assert np.isfinite(share).all()
    total = np.zeros((1, len(layout.years), g.n_nodes))
    np.add.at(np.moveaxis(total, -1, 0), g.source_index, np.moveaxis(share, -1, 0))
    np.testing.assert_allclose(total[..., [n for n in range(g.n_nodes) if n in set(g.source_index)]], 1.0, rtol=1e-12)
