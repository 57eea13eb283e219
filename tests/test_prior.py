"""Prior draws beside every fit, and how far the records moved each quantity (contraction).

The prior group has the posterior's layout and the same seed gives the same draws; the contraction
is ~0 for a quantity no record touches and near 1 for one pinned by a precise record; the summary
columns, the save/load round trip, the figure and the report sentence.
"""

from __future__ import annotations

import json

import arviz as az
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection

import bayesmfa as bm
from bayesmfa.analysis.summaries import WEAKLY_INFORMED, add_prior_columns, contraction, prior_posterior_width, summarize_with_prior
from bayesmfa.cases import demo
from bayesmfa.inference.io import load, save
from bayesmfa.inference.sampling import sample_prior
from bayesmfa.reporting import plots
from bayesmfa.reporting.report import contraction_table, weakly_informed_sentence

# ---------------------------------------------------------------------------
# the prior group of a fit
# ---------------------------------------------------------------------------


def test_fit_stores_a_prior_with_the_posterior_layout(demo_fit, demo_problem):
    assert {"prior", "prior_predictive"} <= set(demo_fit.groups())
    prior, post = demo_fit.prior, demo_fit.posterior
    assert set(prior.data_vars) == set(post.data_vars)
    assert {"flow_ore_trade", "input_mining", "external_mining", "share"} <= set(prior.data_vars)
    assert prior.sizes["chain"] == 1 and prior.sizes["draw"] == 1000
    for name in prior.data_vars:
        assert prior[name].dims[2:] == post[name].dims[2:], name
    # the derived arrays are recomputed from the prior's own parameters: the balance holds in every prior draw
    assert float(bm.balance_residuals(prior, demo_problem.graph).max()) < 1e-9
    # replicated records beside the observed ones, same record labels
    pp = demo_fit.prior_predictive["records"]
    assert list(pp["obs"].values) == list(demo_fit.observed_data["records"]["obs"].values)
    assert np.isfinite(pp.values).all()
    settings = json.loads(post.attrs["settings"])
    assert settings["prior_draws"] == 1000 and settings["prior_s"] >= 0


def test_same_seed_same_prior_draws(demo_fit, demo_problem):
    """The fit's prior is sample_prior with the fit's seed; another seed gives other draws."""
    again = sample_prior(demo_problem, draws=1000, seed=3)
    for name in again.prior.data_vars:
        if name in demo_fit.prior:
            np.testing.assert_array_equal(again.prior[name].values, demo_fit.prior[name].values, err_msg=name)
    np.testing.assert_array_equal(again.prior_predictive["records"].values, demo_fit.prior_predictive["records"].values)
    other = sample_prior(demo_problem, draws=1000, seed=4)
    assert not np.allclose(other.prior["input_log_level"].values, again.prior["input_log_level"].values)


def test_prior_draws_follow_the_priors(demo_problem):
    """Unconstrained copies are the transforms of the drawn values; yields lie in (0, 1)."""
    drawn = sample_prior(demo_problem, draws=400, seed=1)
    y = drawn.prior["yield"].values
    assert ((y > 0) & (y < 1)).all()
    np.testing.assert_allclose(drawn.prior["yield_logodds__"].values, np.log(y / (1 - y)), rtol=1e-9)
    np.testing.assert_allclose(drawn.prior["noise_log__"].values, np.log(drawn.prior["noise"].values), rtol=1e-12)


def test_summary_of_a_fit_without_prior(demo_fit, demo_problem):
    """A fit made with ``prior_draws=0`` (or before prior draws were stored): the columns exist, empty."""
    idata = az.InferenceData(posterior=demo_fit.posterior)
    table = demo.summary_table(idata, demo_problem)
    assert table[["prior_q05", "prior_q50", "prior_q95", "contraction"]].isna().all().all()
    assert not table["weakly_informed"].any()
    with pytest.raises(ValueError, match="no prior group"):
        prior_posterior_width(idata)


# ---------------------------------------------------------------------------
# contraction: a pinned quantity and an untouched one
# ---------------------------------------------------------------------------


def pinned_problem() -> bm.Problem:
    """Two sources A and B; precise records (3% noise) of A only, none of B (log-scale prior sd 0.5)."""
    system = bm.system_from_dict({
        "name": "pinned", "time": {"start": 2000, "end": 2001}, "dims": {"region": ["A", "B"]},
        "processes": {"source": {"dims": ["region"]}, "sink": {"dims": ["region"]}},
        "boundary": {"inputs": ["source"], "sinks": ["sink"]}, "flows": {"f": {"from": "source", "to": "sink"}},
    })
    priors = bm.priors_from_dict({
        "inputs": [{"process": "source", "dist": "LogNormal", "median": 50, "sigma": 0.5, "source": "t"}],
        "steps": [{"target": "input", "dist": "Fixed", "value": 0.1, "source": "t"}],
        "noise": [{"source_type": "s", "dist": "Fixed", "value": 0.03, "source": "t"}],
    })
    records = pd.DataFrame([{"quantity": "f", "region": "A", "year": str(y), "value": "40", "unit": "kt", "source_type": "s",
                             "source": "t"} for y in (2000, 2001)])
    return bm.make_problem(system, priors, records)


@pytest.fixture(scope="module")
def pinned_fit():
    return bm.fit(pinned_problem(), options=bm.ModelOptions(floor=0.0), backend="pymc", draws=500, tune=300, chains=2,
                  seed=1, prior_draws=2000)


def test_contraction_of_pinned_and_untouched_quantities(pinned_fit):
    table = prior_posterior_width(pinned_fit, {"source": lambda d: d["external_source"]})
    a, b = table[table["region"] == "A"], table[table["region"] == "B"]
    # records with 3% noise against a prior sd of 0.5 on the log scale: the interval shrinks ~15-fold
    assert (a["contraction"] > 0.8).all() and not a["weakly_informed"].any()
    # no record touches B: its interval stays the prior's (up to Monte Carlo error)
    assert (b["contraction"].abs() < 0.2).all() and b["weakly_informed"].all()
    # positive flows: widths on the log scale (a linear width would be set by the prior's right tail)
    full = summarize_with_prior(pinned_fit, {"source": lambda d: d["external_source"]})
    log_ratio = np.log(full["q95"] / full["q05"]) / np.log(full["prior_q95"] / full["prior_q05"])
    np.testing.assert_allclose(table["contraction"], 1 - log_ratio)
    linear = 1 - table["width_ratio"]
    assert not np.allclose(table["contraction"], linear)


# ---------------------------------------------------------------------------
# summary columns
# ---------------------------------------------------------------------------


def test_summary_columns_and_flag(demo_fit, demo_problem):
    # every named array with its prior: positive flows and zero self-pairs (A->A trade), so both contraction rules apply
    table = bm.summarize_with_prior(demo_fit)
    stats = ["mean", "sd", "q05", "q50", "q95", "prior_q05", "prior_q50", "prior_q95", "contraction", "weakly_informed"]
    assert list(table.columns[-len(stats):]) == stats
    assert table["weakly_informed"].dtype == bool
    pd.testing.assert_series_equal(table["weakly_informed"], table["contraction"] < WEAKLY_INFORMED, check_names=False)
    positive = (table["q05"] > 0) & (table["prior_q05"] > 0)
    log_width = np.log(table["q95"] / table["q05"]) / np.log(table["prior_q95"] / table["prior_q05"])
    width = (table["q95"] - table["q05"]) / (table["prior_q95"] - table["prior_q05"])
    np.testing.assert_allclose(table["contraction"], np.where(positive, 1 - log_width, 1 - width))
    assert positive.any() and (~positive).any()  # both definitions are exercised
    assert (table["prior_q05"] <= table["prior_q50"]).all() and (table["prior_q50"] <= table["prior_q95"]).all()
    # other interval masses name the prior columns alike
    assert {"prior_q10", "prior_q50", "prior_q90"} <= set(demo.summary_table(demo_fit, demo_problem, prob=0.8).columns)
    published = demo.summary_table(demo_fit, demo_problem)
    assert list(published.columns[-len(stats):]) == stats and published["weakly_informed"].dtype == bool


def test_zero_prior_width_gives_nan_not_a_crash():
    post = pd.DataFrame({"quantity": ["x", "x", "y"], "region": ["A", "B", ""], "mean": [1.0, 0.0, 2.0], "sd": [0.1, 0.0, 0.2],
                         "q05": [0.9, 0.0, 1.5], "q50": [1.0, 0.0, 2.0], "q95": [1.1, 0.0, 2.5]})
    prior = post.assign(q05=[0.0, 0.0, 1.0], q50=[1.0, 0.0, 2.0], q95=[2.0, 0.0, 3.0])
    out = add_prior_columns(post, prior.iloc[::-1])  # matched on the keys, not the row order
    # row 0: prior limit at 0, so linear widths (0.2 vs 2.0); row 2: positive, so log widths
    assert out["contraction"].iloc[0] == pytest.approx(0.9)
    assert out["contraction"].iloc[2] == pytest.approx(1 - np.log(2.5 / 1.5) / np.log(3.0))
    assert np.isnan(out["contraction"].iloc[1]) and not out["weakly_informed"].iloc[1]
    assert list(out["prior_q95"]) == [2.0, 0.0, 3.0]
    assert np.isnan(contraction(np.array([1.0]), np.array([np.inf])))[0]
    assert contraction([3.0], [2.0])[0] == pytest.approx(-0.5)  # a wider posterior: negative, flagged
    with pytest.raises(ValueError, match="columns"):
        add_prior_columns(post, prior.drop(columns="region"))


# ---------------------------------------------------------------------------
# save / load
# ---------------------------------------------------------------------------


def test_save_load_round_trip_keeps_the_prior(tmp_path, demo_fit, demo_problem):
    path = save(demo_fit, tmp_path / "fit.nc")
    raw = az.from_netcdf(str(path))
    assert "flow_ore_trade" not in raw.prior and "input_log_level" in raw.prior  # parameters only on disk
    back = load(path, demo_problem)
    assert set(back.prior.data_vars) == set(demo_fit.prior.data_vars)
    for name in demo_fit.prior.data_vars:
        np.testing.assert_allclose(back.prior[name].values, demo_fit.prior[name].values, rtol=1e-12, err_msg=name)
    np.testing.assert_array_equal(back.prior_predictive["records"].values, demo_fit.prior_predictive["records"].values)
    pd.testing.assert_frame_equal(summarize_with_prior(back), summarize_with_prior(demo_fit))


# ---------------------------------------------------------------------------
# the figure and the report sentence
# ---------------------------------------------------------------------------


def test_plot_has_one_axes_per_quantity(demo_fit, demo_problem):
    table = demo.summary_table(demo_fit, demo_problem)
    panels = plots.default_panels(table, unit="kt")
    assert [p.filters for p in panels[:2]] == [{"region": "A"}, {"region": "B"}]
    cumulative = table[(table["quantity"] == "input_use") & (table["region"] == "A") & (table["year_start"] == 2019)
                       & (table["year_end"] == 2019)]
    panels = [*panels[:4], plots.Panel("input_use", {"region": "A", "year": 2019}, "use A, 2019", "kt")]
    fig = plots.prior_posterior_bands(table, panels, ncols=3)
    assert len(fig.axes) == len(panels) == 5
    assert "90% intervals" in fig._suptitle.get_text()
    series = fig.axes[0]
    assert len([c for c in series.collections if isinstance(c, PolyCollection)]) == 2  # prior and posterior bands
    assert series.get_ylabel().startswith("kt") and "90%" in series.get_ylabel() and series.get_xlabel() == "year"
    assert [t.get_text() for t in fig.axes[4].get_xticklabels()] == ["prior", "posterior"]
    assert len(cumulative) == 1
    log = plots.prior_posterior_bands(table, [plots.Panel("input_mining", {"region": "A"}, unit="kt", log=True)])
    assert log.axes[0].get_yscale() == "log" and len(log.axes) == 1
    with pytest.raises(ValueError, match="prior columns"):
        plots.prior_posterior_bands(table.drop(columns=["prior_q05"]), panels)
    with pytest.raises(ValueError, match="several rows per year"):
        plots.prior_posterior_bands(table, [plots.Panel("input_mining")])


def test_report_sentence_and_table():
    summary = pd.DataFrame({"quantity": ["a", "a", "b", "c", "c"], "contraction": [0.1, 0.9, 0.2, np.nan, 0.95]})
    text = weakly_informed_sentence(summary)
    assert text.startswith("2 of 4 reported quantities are barely informed by the records (contraction < 0.3): ")
    assert "a (1 of 2 rows)" in text and "b (1 of 1 rows)" in text and "c (" not in text
    table = contraction_table(summary)
    assert list(table["quantity"]) == ["b", "a", "c"] and list(table["weakly_informed_rows"]) == [1, 1, 0]
    assert weakly_informed_sentence(pd.DataFrame({"quantity": ["a"]})) == ""
