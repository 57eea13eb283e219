"""Calibration as a public API: simulation, misspecification, the compile-once refit, summaries and SBC runs."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import bayesmfa as bm
from bayesmfa.analysis import calibration
from bayesmfa.analysis.calibration import Misspecification, simulate_values
from bayesmfa.core.model import record_predictions
from bayesmfa.inference.sampling import sample_prior

#: A fixed floor, so that refits of new values keep the template's likelihood constants.
OPTIONS = bm.ModelOptions(floor=1e-3)


# ---------------------------------------------------------------------------- summaries (no sampling)


def _datasets(ranks_a: np.ndarray, rng: np.random.Generator, n_ranks: int = 19) -> xr.Dataset:
    n = len(ranks_a)
    ranks = np.stack([ranks_a, rng.integers(n_ranks + 1, size=n)], axis=1)
    per_q = {"rank": ranks, "n_elements": np.full((n, 2), 10), "inside": np.full((n, 2), 9),
             "sse_posterior": np.full((n, 2), 0.1), "sse_baseline": np.full((n, 2), 0.4), "n_direct": np.full((n, 2), 5)}
    data = {k: (("dataset", "quantity"), v) for k, v in per_q.items()}
    data["divergences"] = ("dataset", np.zeros(n, dtype=int))
    return xr.Dataset(data, coords={"dataset": np.arange(n), "quantity": ["a", "b"]})


def test_summarise_detects_non_uniform_ranks():
    rng = np.random.default_rng(0)
    uniform = calibration.summarise(_datasets(rng.integers(20, size=200), rng), n_ranks=19)
    assert float(uniform["min_pvalue_bonferroni"]) > 0.01
    assert float(uniform["overall_coverage"]) == pytest.approx(0.9)
    assert int(uniform["rank_counts"].sel(quantity="a").sum()) == 200
    assert float(uniform["overall_rmse_posterior"]) == pytest.approx(np.sqrt(0.01))
    assert float(uniform["overall_rmse_baseline"]) == pytest.approx(np.sqrt(0.04))
    assert float(uniform["overall_direct_share"]) == pytest.approx(0.5)
    # an over-confident posterior puts the truth in the tails: ranks pile up at 0 and 19
    tails = calibration.summarise(_datasets(rng.choice([0, 19], size=200), rng), n_ranks=19)
    assert float(tails["chi2_pvalue"].sel(quantity="a")) < 1e-6
    assert float(tails["chi2_pvalue"].sel(quantity="b")) > 1e-3
    assert float(tails["min_pvalue_bonferroni"]) < 1e-6


def test_rank_bins_are_equally_likely_and_capped_by_the_datasets():
    ranks = xr.DataArray(np.arange(20).reshape(20, 1), dims=("dataset", "quantity"), coords={"quantity": ["a"]})
    tests = calibration.rank_uniformity(ranks, n_ranks=19, bins=10)
    assert tests.sizes["rank_bin"] == 4  # at most a fifth of the 20 datasets
    assert tests["rank_counts"].values.tolist() == [[5, 5, 5, 5]]  # every rank once: exactly uniform
    assert float(tests["chi2"].sel(quantity="a")) == 0.0


def test_misspecification_is_validated():
    with pytest.raises(ValueError, match="positive"):
        Misspecification(noise={"customs": 0.0})
    with pytest.raises(ValueError, match="0-1"):
        Misspecification(gross_fraction=1.5)
    spec = Misspecification(noise={"customs": 2.0})
    assert spec.noise_factors(["customs", "survey", "customs"]).tolist() == [2.0, 1.0, 2.0]
    with pytest.raises(ValueError, match="not among"):
        spec.noise_factors(["survey"])
    assert Misspecification().is_none and not spec.is_none


# ---------------------------------------------------------------------------- simulation


@pytest.fixture(scope="module")
def demo_draw(demo_problem):
    return sample_prior(demo_problem, OPTIONS, draws=1, seed=5).prior


def test_noise_factor_scales_each_source_types_residuals_exactly(demo_problem, demo_draw):
    rec = demo_problem.records
    pred = record_predictions(demo_draw, demo_problem, OPTIONS)
    plain = simulate_values(demo_problem, OPTIONS, demo_draw, seed=5)
    doubled = simulate_values(demo_problem, OPTIONS, demo_draw, seed=5, misspecify=Misspecification(noise={"customs": 2.0}))
    floor = pred.lik.floor
    resid_plain = np.log(plain + floor) - pred.model[0]
    resid_doubled = np.log(doubled + floor) - pred.model[0]
    customs = (rec.table["source_type"] == "customs").to_numpy() & ~rec.is_share
    other = ~customs & ~rec.is_share  # shares may be clipped at 1
    assert customs.sum() > 10 and other.sum() > 10
    np.testing.assert_allclose(resid_doubled[customs], 2.0 * resid_plain[customs], rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(doubled[other], plain[other])
    # with no misspecification, the simulation is sample_prior's own replicated records (the same noise stream)
    replicated = sample_prior(demo_problem, OPTIONS, draws=1, seed=5).prior_predictive["records"].isel(chain=0, draw=0)
    pos = [rec.labels.index(label) for label in replicated["obs"].values]
    point = ~rec.is_share[pos]
    np.testing.assert_allclose(np.log(plain[pos] + floor[pos])[point], replicated.values[point], rtol=1e-12)


def test_gross_errors_hit_the_given_fraction_by_the_given_factor(demo_problem, demo_draw):
    plain = simulate_values(demo_problem, OPTIONS, demo_draw, seed=5)
    spec = Misspecification(gross_fraction=0.1, gross_factor=5.0)
    gross = simulate_values(demo_problem, OPTIONS, demo_draw, seed=5, misspecify=spec)
    ratio = gross / plain
    hit = ~np.isclose(ratio, 1.0)
    shares = demo_problem.records.is_share
    assert hit.sum() == round(0.1 * demo_problem.records.n_obs)
    np.testing.assert_allclose(np.sort(np.abs(np.log(ratio[hit & ~shares]))), np.log(5.0), rtol=1e-9)
    assert {True, False} <= set(ratio[hit & ~shares] > 1)  # multiplied and divided
    np.testing.assert_array_equal(simulate_values(demo_problem, OPTIONS, demo_draw, seed=5, misspecify=spec), gross)
    assert not np.array_equal(simulate_values(demo_problem, OPTIONS, demo_draw, seed=6, misspecify=spec), gross)


def test_simulate_records_fixed_noise_has_named_dims(demo_problem):
    types = demo_problem.records.source_types
    noise = {t: 0.05 * (i + 1) for i, t in enumerate(types)}
    truth, table = bm.simulate_records(demo_problem, seed=2, noise=noise)
    assert truth["noise"].dims == ("source_type",)
    assert truth["noise"].sel(source_type=types[-1]).item() == pytest.approx(noise[types[-1]])
    assert list(truth["noise"]["source_type"].values) == types
    assert "dim_0" not in truth.dims
    one, _ = bm.simulate_records(demo_problem, seed=2, noise=0.1)
    assert one["noise"].dims == ("source_type",) and np.allclose(one["noise"].values, 0.1)
    with pytest.raises(ValueError, match="missing"):
        bm.simulate_records(demo_problem, seed=2, noise={types[0]: 0.1})


def test_with_records_takes_values_tables_and_refuses_other_records(demo_problem):
    rec = demo_problem.records
    same = bm.with_records(demo_problem, rec.value, options=OPTIONS)
    assert same.records.digest() == rec.digest()
    scaled = bm.with_records(demo_problem, xr.DataArray(rec.value[::-1] * 1.1, dims="record", coords={"record": rec.labels[::-1]}),
                             options=OPTIONS)
    np.testing.assert_allclose(scaled.records.value, rec.value * 1.1)
    with pytest.raises(ValueError, match="values for"):
        bm.with_records(demo_problem, rec.value[:-1], options=OPTIONS)
    with pytest.raises(ValueError, match="floors"):  # the default floor follows the records
        bm.with_records(demo_problem, rec.value * 3.0)
    with pytest.raises(ValueError, match="not the template"):
        bm.with_records(demo_problem, demo_problem.records.table.iloc[1:])


# ---------------------------------------------------------------------------- the compile-once refit


def test_refit_gives_a_fresh_fits_draws_and_data_groups(tiny_problem):
    pytest.importorskip("nutpie")
    rec = tiny_problem.records
    new = rec.value * np.array([1.3, 0.7, 1.1, 0.9])
    compiled = bm.compile_model(tiny_problem, OPTIONS)
    settings = {"draws": 100, "tune": 150, "chains": 2, "seed": 4}
    refit = compiled.refit(new, **settings)
    fresh = bm.fit(bm.with_records(tiny_problem, new, options=OPTIONS), options=OPTIONS, prior_draws=0, **settings)
    for name in ("input_log_level", "share_logit_level", "noise", "flow_ore_trade"):
        np.testing.assert_array_equal(refit.posterior[name].values, fresh.posterior[name].values)
    np.testing.assert_allclose(refit.constant_data["record_value"].values, new, rtol=1e-15)
    np.testing.assert_allclose(refit.constant_data["record_obs"].values, np.log(new + 1e-3), rtol=1e-12)
    for group in ("constant_data", "observed_data", "log_likelihood"):
        xr.testing.assert_identical(refit[group].drop_attrs(), fresh[group].drop_attrs())
    assert refit.posterior.attrs["records_sha256"] == fresh.posterior.attrs["records_sha256"] != rec.digest()
    # the compiled model is not changed by a refit: the template's values come back
    again = compiled.refit(**settings)
    np.testing.assert_allclose(again.constant_data["record_value"].values, rec.value)


def test_fits_do_not_warn_about_idata_kwargs(tiny_problem):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bm.fit(tiny_problem, backend="pymc", draws=10, tune=10, chains=1, seed=1, prior_draws=0)
    assert not [w for w in caught if "idata_kwargs" in str(w.message)]


# ---------------------------------------------------------------------------- calibration runs


def test_calibrate_reports_per_quantity_and_overall(tiny_problem):
    pytest.importorskip("nutpie")
    res = bm.calibrate(tiny_problem, n=4, seed=10, draws=100, tune=150, chains=2, n_ranks=9, prob=0.8, options=OPTIONS,
                       prior_draws=200)
    d = res.datasets
    assert d.sizes == {"dataset": 4, "quantity": 6} and list(d["dataset"].values) == [10, 11, 12, 13]
    assert not res.failed
    assert ((d["rank"] >= 0) & (d["rank"] <= 9)).all()
    assert (d["inside"] <= d["n_elements"]).all()
    frame = res.to_frame()
    assert list(frame["quantity"])[-1] == "(all)" and len(frame) == 7
    assert res.coverage == pytest.approx(float(d["inside"].sum() / d["n_elements"].sum()))
    assert "coverage_80" in res.to_dict()
    # the direct estimate: mining of A is recorded alone in 2000 (and B's, in tonnes, in 2001)
    assert int(d["n_direct"].sel(quantity="output_mining").max()) == 2


@pytest.mark.slow
def test_calibrate_demo_coverage_and_misspecified_noise(demo_problem):
    """90% intervals hold the truth about 90% of the time; with 2x the noise on every source type, less often."""
    pytest.importorskip("nutpie")
    kw = {"n": 12, "seed": 1000, "draws": 200, "tune": 300, "chains": 2}
    good = bm.calibrate(demo_problem, **kw)
    assert not good.failed
    assert 0.84 <= good.coverage <= 0.96, good.to_frame()
    bad = bm.calibrate(demo_problem, misspecify={"noise": {t: 2.0 for t in demo_problem.records.source_types}}, **kw)
    assert bad.coverage < good.coverage, (good.coverage, bad.coverage)
    rmse = good.to_frame().set_index("quantity")
    # where records measure an element alone the model uses them too: never much worse than the direct estimate
    direct = rmse[rmse["direct_share"] == 1.0]
    assert (direct["rmse_posterior"] <= 1.1 * direct["rmse_baseline"]).all(), direct


@pytest.mark.slow
def test_demo_calibrated_on_100_datasets():
    """The SBC study of benchmarks/sbc.py, through the public API: 100 demo datasets, four quantities."""
    from bayesmfa.cases import demo, project_root

    res = bm.calibrate(demo.load(project_root()), n=100, seed=1000, draws=200, tune=300, chains=2,
                       quantities=("flow_ore_trade", "flow_refined_trade", "output_mining", "output_refining"))
    out = res.to_dict()
    assert out["n_datasets"] == 100 and not out["failed"], out["failed"]
    assert 0.85 <= out["coverage_90"] <= 0.95, out["coverage_90"]
    assert out["min_pvalue_bonferroni"] > 0.01, out["chi2_pvalue"]
