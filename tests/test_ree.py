"""The REE case end to end on the shipped data: the model builds, a quick fit balances in every
draw, every reported quantity exists with sane ranges, and posterior predictive checks per family."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pymc as pm
import pytest

import bayesmfa as bm
from bayesmfa.cases import ree
from bayesmfa.cases.ree_records import FAMILIES, build_records

ROOT = Path(__file__).resolve().parents[1]

REQUIRED = [
    "mining", "unregistered_mining", "mining_share", "refining", "refining_share", "unregistered_refining_share",
    "consumption", "consumption_share", "imports", "exports", "net_export", "p_net_exporter", "import_share_from",
    "mined_refined_in_cn_share", "smuggling", "no_trade_consumption",
]
SHARES = ["mining_share", "refining_share", "unregistered_refining_share", "consumption_share", "import_share_from",
          "mined_refined_in_cn_share", "p_net_exporter", "unregistered_mining_share"]


@pytest.fixture(scope="module")
def problem():
    return ree.load(ROOT)


@pytest.fixture(scope="module")
def quick_fit(problem):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = bm.fit(problem, options=ree.OPTIONS, draws=100, tune=150, chains=2, seed=5)
    ree.annotate(idata, ROOT)
    return idata


def test_every_row_is_a_record_or_listed_unused():
    records, unused = build_records(ROOT / "data" / "ree")
    total = sum(len(pd.read_csv(f)) for f in (ROOT / "data" / "ree").glob("*.csv"))
    used_rows = sum(len(str(r).split(":")[1].split("+")) for r in records["record_id"])
    assert used_rows + len(unused) == total
    assert set(records["family"]) <= set(FAMILIES)
    assert (unused["reason"].str.len() > 0).all()


def test_model_builds_with_named_dims(problem):
    model = bm.build_model(problem, ree.OPTIONS)
    assert model.named_vars_to_dims["flow_smuggled"] == ("year", "origin", "destination")
    assert model.named_vars_to_dims["flow_end_use"] == ("year", "region", "end_use")
    assert list(model.coords["region"]) == ["CN", "US", "RoW"]
    assert len(model.coords["year"]) == 23
    point = model.initial_point()
    logp = model.compile_logp()(point)
    grad = model.compile_dlogp()(point)
    assert np.isfinite(logp) and np.all(np.isfinite(grad))


def test_quick_fit_balances_in_every_draw(quick_fit, problem):
    resid = bm.balance_residuals(quick_fit.posterior, problem.graph)
    assert float(resid.max()) < 1e-9
    # smuggling exists only out of China, unregistered RoW ore only goes to China
    post = quick_fit.posterior
    assert float(post["flow_smuggled"].sel(origin=["US", "RoW"]).max()) == 0.0
    assert float(post["flow_concentrate_unregistered_trade"].sel(destination=["US", "RoW"]).max()) == 0.0


def test_summary_has_every_quantity_with_sane_ranges(quick_fit, problem):
    table = ree.summary_table(quick_fit, problem)
    assert list(table.columns) == ["quantity", "region", "partner", "product", "end_use", "year_start", "year_end", "unit",
                                   "description", "mean", "sd", "q05", "q50", "q95", "prior_q05", "prior_q50", "prior_q95",
                                   "contraction", "weakly_informed"]
    # integer periods, never text; every quantity has a unit and a sentence
    assert table["year_start"].dtype.kind == "i" and table["year_end"].dtype.kind == "i"
    assert (table["year_start"] <= table["year_end"]).all()
    assert set(table["year_start"]) | set(table["year_end"]) <= set(range(2000, 2023))
    assert (table["unit"].isin(["kt REO", "share (0-1)", "probability (0-1)"])).all()
    assert table.groupby("quantity")["description"].nunique().eq(1).all() and (table["description"].str.len() > 30).all()
    assert set(table.loc[table["quantity"].isin(SHARES) & (table["quantity"] != "p_net_exporter"), "unit"]) == {"share (0-1)"}
    # no zero self-pairs (imports of CN from CN)
    assert not ((table["partner"] != "") & (table["partner"] == table["region"])).any()
    assert set(REQUIRED) <= set(table["quantity"])
    num = table[["q05", "q50", "q95"]].astype(float)
    assert (num["q05"] <= num["q50"] + 1e-12).all() and (num["q50"] <= num["q95"] + 1e-12).all()
    shares = table[table["quantity"].isin(SHARES)]
    assert shares[["mean", "q05", "q95"]].astype(float).stack().between(0, 1).all()
    masses = table[table["quantity"].isin(["mining", "refining", "consumption", "smuggling", "unregistered_mining"])]
    assert (masses["q05"].astype(float) >= 0).all()
    cumulative = table[(table["quantity"] == "unregistered_mining") & (table["year_start"] == 2000) & (table["year_end"] == 2022)]
    assert set(cumulative["region"]) == {"CN", "RoW", "World"}
    assert set(table.loc[table["quantity"] == "exports", "product"]) == {"concentrate", "salt", "oxide", "metal"}
    no_trade = table[table["quantity"] == "no_trade_consumption"]
    assert set(no_trade["year_start"]) == set(no_trade["year_end"]) == {2022}
    # world mining is the sum of the regions in every draw, hence in the mean
    m = table[(table["quantity"] == "mining") & (table["year_start"] == 2010) & (table["year_end"] == 2010)].set_index("region")["mean"]
    assert m["World"] == pytest.approx(m[["CN", "US", "RoW"]].sum(), rel=1e-9)


def test_no_trade_rows_and_the_scenario_command_share_one_engine(quick_fit, problem):
    """summary.csv's no-trade rows are the last year of ``bayesmfa scenario --no-trade`` (one rule, one engine)."""
    from bayesmfa.analysis.scenarios import no_trade, summarize_scenario

    table = ree.summary_table(quick_fit, problem, 0.9)
    rows = table[table["quantity"] == "no_trade_consumption"].set_index(["region", "end_use"])
    scen = summarize_scenario(no_trade(quick_fit, problem))
    scen = scen[(scen["quantity"] == "sink_consumption") & (scen["year"] == 2022)].set_index(["region", "end_use"])
    assert len(rows) == len(scen) > 0
    for col in ("mean", "q05", "q50", "q95"):
        np.testing.assert_allclose(rows[col].sort_index().to_numpy(float), scen[col].sort_index().to_numpy(float), rtol=1e-9)
    # without trade, every region's consumption comes from its own mines and stocks: the world total cannot exceed
    # what the world mined and drew from stocks in 2022 (yields <= 1)
    post = quick_fit.posterior.sel(year=2022)
    world = ree.quantities(quick_fit.posterior, problem=problem)["no_trade_consumption"].sum(("region", "end_use", "year"))
    supply = (post["output_mining"].sum("region") + post["output_mining_unregistered"].sum("region")
              + sum(post[v].sum([d for d in post[v].dims if d not in ("chain", "draw")]) for v in post.data_vars
                    if str(v).startswith("external_stockpile_withdrawal")))
    assert (world <= supply * (1 + 1e-9)).all()


def test_cumulative_shares_and_trade_by_product(quick_fit):
    """Period shares are ratios of sums (not means of yearly shares); trade by product sums over partners."""
    post = quick_fit.posterior
    q = ree.quantities(post)
    # the period share is the yearly shares weighted by world mining, which is not their plain mean
    world = q["mining"].sel(region="World") if "World" in q["mining"]["region"] else None
    yearly = q["mining_share"].sel(region=list(ree.REGIONS))
    weights = (post["output_mining"] + post["output_mining_unregistered"]).sum("region")
    if world is not None:
        np.testing.assert_allclose(world.transpose(*weights.dims).values, weights.values, rtol=1e-12)
    weighted = (yearly * weights).sum("year") / weights.sum("year")
    got = q["cumulative_mining_share"].sel(region=list(ree.REGIONS))
    np.testing.assert_allclose(got.transpose(*weighted.dims).values, weighted.values, rtol=1e-10)
    assert float(abs(got - yearly.mean("year")).max()) > 1e-3  # world mining grew 2000-2022: the weights matter
    for name in ("cumulative_mining_share", "cumulative_refining_share", "cumulative_consumption_share"):
        assert q[name].dims == ("chain", "draw", "region")
    use = post["input_use"].sum("year")
    got = q["cumulative_consumption_share"]
    np.testing.assert_allclose(got.values, (use / use.sum("region")).transpose(*got.dims).values, rtol=1e-12)
    for side in ("exports", "imports"):
        by_product = q[f"{side}_by_product"]
        assert set(by_product.dims) == {"chain", "draw", "product", "year", "region"}
        np.testing.assert_allclose(by_product.sum("product").transpose(*q[f"{side}_total"].dims).values, q[f"{side}_total"].values,
                                   rtol=1e-10)
    # China's oxide exports include the smuggled oxides; the US's oxide imports include those smuggled to the US
    cn_oxide = q["exports_by_product"].sel(region="CN", product="oxide")
    recorded = post["flow_oxide_trade"].sel(origin="CN").sum("destination")
    np.testing.assert_allclose(cn_oxide.values, (recorded + post["flow_smuggled"].sel(origin="CN").sum("destination")).values)
    us_oxide = q["imports_by_product"].sel(region="US", product="oxide")
    into_us = post["flow_oxide_trade"].sel(destination="US").sum("origin") + post["flow_smuggled"].sel(origin="CN", destination="US")
    np.testing.assert_allclose(us_oxide.values, into_us.values)


def test_summary_names_the_new_rows_and_compares_with_the_prior(quick_fit, problem):
    table = ree.summary_table(quick_fit, problem)
    shares = table[table["quantity"].str.startswith("cumulative_")]
    assert set(shares["quantity"]) == set(ree.CUMULATIVE_SHARES)
    assert set(zip(shares["year_start"], shares["year_end"])) == {(2000, 2022)} and set(shares["region"]) == {"CN", "US", "RoW"}
    assert (shares[["partner", "product", "end_use"]] == "").all().all()
    trade = table[table["quantity"] == "imports_by_product"]
    assert set(trade["product"]) == {"concentrate", "salt", "oxide", "metal"} and (trade["partner"] == "").all()
    assert len(trade) == 3 * 4 * 24  # region x product x (23 years + the cumulative row)
    # indicators have no meaningful interval contraction
    p = table[table["quantity"] == "p_net_exporter"]
    assert p["contraction"].isna().all() and not p["weakly_informed"].any()
    defined = table["contraction"].notna()
    assert (table.loc[defined, "weakly_informed"] == (table.loc[defined, "contraction"] < 0.3)).all()
    fig = ree.prior_posterior_figure(table)
    assert len(fig.axes) == len(ree.PRIOR_POSTERIOR_PANELS)
    assert "kt REO" in fig.axes[0].get_ylabel() and "90%" in fig.axes[0].get_ylabel()


def test_every_quantity_has_a_unit_and_a_description_with_its_convention():
    from bayesmfa.cases.ree import QUANTITY_INFO

    for name, info in QUANTITY_INFO.items():
        assert info.unit and info.description.endswith("."), name
        if "share" in name:
            assert "divided by" in info.description, name  # numerator and denominator named
    assert "into `region` from `partner`" in QUANTITY_INFO["imports"].description
    assert "out of `region` into `partner`" in QUANTITY_INFO["exports"].description


def test_figures_one_file_each_with_units(quick_fit, problem, tmp_path):
    table = ree.summary_table(quick_fit, problem)
    written = ree.write_figures(table, quick_fit, problem, tmp_path)
    names = sorted(p.name for p in written)
    assert len(names) == len(set(names)) and all(p.is_file() for p in written)
    assert "net_export_CN.png" in names and not [n for n in names if n.startswith("net_trade_")]
    assert {"consumption_World.png", "counterfactual_2022.png", "dependence_US.png", "prior_posterior.png"} <= set(names)


def test_posterior_predictive_check_per_family(quick_fit, problem):
    model = bm.build_model(problem, ree.OPTIONS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ppc = pm.sample_posterior_predictive(quick_fit, model=model, var_names=["records", "records_t"], random_seed=2, progressbar=False)
    table = problem.records.table.set_index("record_id")
    families = table["note"].str.split(" row ").str[0]
    checked = 0
    for var, dim in (("records", "obs"), ("records_t", "obs_t")):
        rep = ppc.posterior_predictive[var]
        obs = quick_fit.observed_data[var]
        fam = families.loc[rep[dim].values].values
        for name in np.unique(fam):
            sel = fam == name
            # the median log-record of the family: robust to the outliers a Student-t family is allowed
            stat_rep = rep.isel({dim: sel}).median(dim)
            stat_obs = float(obs.isel({dim: sel}).median(dim))
            p = float((stat_rep >= stat_obs).mean())
            assert 0.0 <= p <= 1.0
            # the replicated family medians bracket the observed one (no gross misfit of a family)
            assert 0.001 < p < 0.999, (var, name, p)
            checked += 1
    assert checked >= 6


def test_ree_model_compiles_to_jax(problem):
    """The numpyro (JAX) backend can fit the REE case: every op of its log density has a JAX
    implementation (the censored bounds once used erfcx, which has none) and the value matches PyMC's."""
    pytest.importorskip("jax")
    from pymc.sampling.jax import get_jaxified_logp

    model = bm.build_model(problem, ree.OPTIONS)
    point = model.initial_point()
    logp_jax = get_jaxified_logp(model)
    value = float(logp_jax([point[v.name] for v in model.value_vars]))
    assert np.isfinite(value)
    assert value == pytest.approx(float(model.compile_logp()(point)), rel=1e-6)
