"""Summaries on hand-built posteriors: values match numpy, intervals ordered, prob configurable."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayesmfa as bm
from bayesmfa.analysis.summaries import (
    QuantityInfo,
    annual,
    cumulative,
    interval_columns,
    publish,
    read_summary,
    sample_quantiles,
    summarize_array,
    summary_columns,
    with_period,
    write_summary_markdown,
)


@pytest.fixture
def posterior():
    rng = np.random.default_rng(0)
    x = rng.lognormal(size=(2, 500, 3, 2))
    ds = xr.Dataset(
        {"flow_x": (("chain", "draw", "year", "region"), x)},
        coords={"chain": [0, 1], "draw": np.arange(500), "year": [2000, 2001, 2002], "region": ["A", "B"]},
    )
    return az.InferenceData(posterior=ds)


def test_summary_matches_numpy(posterior):
    df = bm.summarize(posterior)
    x = posterior.posterior["flow_x"].values.reshape(1000, 3, 2)
    row = df[(df.year == 2001) & (df.region == "B")].iloc[0]
    assert row["mean"] == pytest.approx(x[:, 1, 1].mean())
    assert row["sd"] == pytest.approx(x[:, 1, 1].std(ddof=1))
    assert row["q05"] == pytest.approx(np.quantile(x[:, 1, 1], 0.05))
    assert row["q95"] == pytest.approx(np.quantile(x[:, 1, 1], 0.95))
    assert (df["q05"] <= df["q50"]).all() and (df["q50"] <= df["q95"]).all()
    assert list(df.columns) == ["quantity", "year", "region", "mean", "sd", "q05", "q50", "q95"]


def test_derived_quantity_aggregates_per_draw_before_quantiles(posterior):
    total = bm.summarize(posterior, {"total": lambda d: d["flow_x"].sum("region")}, prob=0.5)
    x = posterior.posterior["flow_x"].values.reshape(1000, 3, 2).sum(-1)
    assert set(total.columns) >= {"q25", "q75"}
    assert total["q25"].tolist() == pytest.approx(np.quantile(x, 0.25, axis=0).tolist())
    # the sum of quantiles is not the quantile of the sum
    parts = bm.summarize(posterior, prob=0.5).groupby("year")["q75"].sum().values
    assert not np.allclose(parts, total["q75"].values)


def test_interval_names():
    assert interval_columns(0.9) == ("q05", "q95")
    assert interval_columns(0.8) == ("q10", "q90")
    with pytest.raises(ValueError):
        bm.summarize_array(xr.DataArray(np.ones((1, 3)), dims=("chain", "draw")), prob=1.5)


# ---------------------------------------------------------------------------
# the published layout of summary.csv, and summary.md
# ---------------------------------------------------------------------------


def _published(posterior) -> pd.DataFrame:
    """A yearly quantity and a cumulative one (summed per draw) in the published layout."""
    da = posterior.posterior["flow_x"]
    yearly = with_period(summarize_array(da, 0.9, "x"), 2000, 2002)
    total = with_period(summarize_array(da.sum("year"), 0.9, "x"), 2000, 2002)
    share = with_period(summarize_array(da.sum("year") / da.sum(("year", "region")), 0.9, "x_share"), 2000, 2002)
    info = {"x": QuantityInfo("kt", "Flow x of `region`, per year."),
            "x_share": QuantityInfo("share (0-1)", "Flow x of `region` over all years divided by that of all regions.")}
    return publish(pd.concat([yearly, total, share], ignore_index=True), info)


def test_published_layout_has_integer_periods_units_and_descriptions(posterior, tmp_path):
    table = _published(posterior)
    assert list(table.columns) == summary_columns(0.9)
    assert list(table.columns[:9]) == ["quantity", "region", "partner", "product", "end_use", "year_start", "year_end", "unit",
                                       "description"]
    assert table["year_start"].dtype.kind == "i" and table["year_end"].dtype.kind == "i"
    assert (table["unit"] != "").all() and (table["description"].str.len() > 10).all()
    yearly = annual(table)
    assert sorted(set(yearly["year"])) == [2000, 2001, 2002] and len(yearly) == 6
    totals = cumulative(table)
    assert set(zip(totals["year_start"], totals["year_end"])) == {(2000, 2002)} and len(totals) == 4
    # a written file reads back with the same integer periods, blank dims as text
    table.to_csv(tmp_path / "summary.csv", index=False)
    back = read_summary(tmp_path / "summary.csv")
    assert back["year_start"].dtype.kind == "i" and (back["partner"] == "").all()
    pd.testing.assert_frame_equal(back[["year_start", "year_end"]], table[["year_start", "year_end"]])
    with pytest.raises(ValueError, match="no unit and description"):
        publish(table.drop(columns=["unit", "description"]).assign(quantity="y"), {})


def test_self_pairs_that_are_zero_are_dropped():
    rows = pd.DataFrame({"quantity": ["imports"] * 3, "region": ["CN", "CN", "US"], "partner": ["CN", "US", "US"],
                         "year_start": 2000, "year_end": 2000, "mean": [0.0, 1.0, 0.5], "sd": [0.0, 0.1, 0.1],
                         "q05": [0.0, 0.8, 0.3], "q50": [0.0, 1.0, 0.5], "q95": [0.0, 1.2, 0.7]})
    out = publish(rows, {"imports": QuantityInfo("kt", "Imports into `region` from `partner`.")})
    # CN from CN (a structural zero) goes; US from US is kept because it is not zero (a real flow would never be hidden)
    assert list(zip(out["region"], out["partner"])) == [("CN", "US"), ("US", "US")]


def test_earlier_layout_is_converted_without_losing_rows(tmp_path):
    (tmp_path / "old.csv").write_text("quantity,region,year,mean,sd,q05,q50,q95\n"
                                      "x,CN,2010,1,0.1,0.8,1,1.2\nx,CN,2000-2022,9,1,7,9,11\nx,CN,2010.0,1,0.1,0.8,1,1.2\n")
    old = read_summary(tmp_path / "old.csv")
    assert "year" not in old.columns
    assert list(zip(old["year_start"], old["year_end"])) == [(2010, 2010), (2000, 2022), (2010, 2010)]
    assert old["q50"].dtype.kind == "f"


def test_summary_markdown_lists_every_quantity(posterior, tmp_path):
    table = _published(posterior)
    path = write_summary_markdown(table, tmp_path / "summary.md")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Quantities in summary.csv")
    assert "| `x` | kt | region | 2000-2002 yearly, 2000-2002 total | 8 | Flow x of `region`, per year. |" in text
    assert "| `x_share` | share (0-1) | region | 2000-2002 total | 2 |" in text
    assert "year_start = year_end" in text  # the period convention is explained


def test_system_summary_reports_trade_from_region_to_partner(demo_problem):
    from bayesmfa.cases import demo

    rng = np.random.default_rng(1)
    system = demo_problem.system
    coords = {"chain": [0], "draw": np.arange(50), "year": list(system.years), "origin": ["A", "B"], "destination": ["A", "B"],
              "region": ["A", "B"]}
    trade = rng.lognormal(size=(1, 50, len(system.years), 2, 2))
    trade[..., 0, 0] = trade[..., 1, 1] = 0.0  # no trade of a region with itself
    post = xr.Dataset({"flow_ore_trade": (("chain", "draw", "year", "origin", "destination"), trade),
                       "input_mining": (("chain", "draw", "year", "region"), rng.lognormal(size=(1, 50, len(system.years), 2))),
                       "input_step_log__": (("chain", "draw", "input_step_log___dim_0"), np.zeros((1, 50, 2)))}, coords=coords)
    table = demo.summary_table(az.InferenceData(posterior=post), demo_problem)
    assert list(table.columns) == summary_columns(0.9)
    assert set(table["quantity"]) == {"flow_ore_trade", "input_mining"}  # no sampler variables
    ab = table[(table["quantity"] == "flow_ore_trade") & (table["region"] == "A")]
    assert set(ab["partner"]) == {"B"} and len(ab) == len(system.years)  # the A->A zeros are gone
    assert ab["q50"].tolist() == pytest.approx(np.median(trade[0, :, :, 0, 1], axis=0).tolist())
    assert "from process `mining` in `region` into process `refining` in `partner`" in ab["description"].iloc[0]
    assert (table["unit"] == "kt").all() and table["year_start"].dtype.kind == "i"


def test_sample_quantiles_equal_xarray_quantile():
    """One vectorised quantile call gives exactly xarray's ``quantile`` per level: NaN draws skipped, an element with no
    finite draw NaN, ties and dims in any order."""
    rng = np.random.default_rng(6)
    values = np.round(rng.lognormal(size=(3, 2, 40, 5)), 2)
    values[0, 1, 3, 2] = np.nan
    values[1, 0, :, 4] = np.nan  # no finite draw
    da = xr.DataArray(values, dims=("region", "chain", "draw", "year"))
    probs = (0.05, 0.5, 0.95)
    for got, p in zip(sample_quantiles(da, probs, ["chain", "draw"]), probs):
        expected = da.quantile(p, dim=["chain", "draw"]).drop_vars("quantile")
        np.testing.assert_array_equal(got, expected.values)


def test_summarize_quantities_adds_cumulative_rows_and_leaves_indicators_uncontracted(demo_fit):
    from bayesmfa.analysis.summaries import QuantityInfo, summarize_quantities

    def compute(group):
        mining = group["output_mining"]
        return {"mining_total": mining.sum("region"),
                "mining_share": mining / mining.sum("region"),
                "a_leads": (mining.sel(region="A") > mining.sel(region="B")).astype(float)}

    info = {"mining_total": QuantityInfo("kt", "World mining, per year.", cumulative=True),
            "mining_share": QuantityInfo("share (0-1)", "Mining of `region` over world mining."),
            "a_leads": QuantityInfo("probability (0-1)", "Whether A mines more than B.", indicator=True)}
    table = summarize_quantities(demo_fit, compute, info, prob=0.9)
    years = demo_fit.posterior["year"].values
    total = table[table["quantity"] == "mining_total"]
    # one row per year, then the sum over the years, summed per draw before the quantiles
    assert list(total["year_start"]) == [*years, years[0]] and list(total["year_end"]) == [*years, years[-1]]
    draws = demo_fit.posterior["output_mining"].sum(("region", "year")).values.ravel()
    np.testing.assert_allclose(total[["q05", "q50", "q95"]].to_numpy()[-1], np.quantile(draws, [0.05, 0.5, 0.95]), rtol=1e-9)
    # a share is not summed over the years; the indicator keeps its probability but no contraction
    share = table[table["quantity"] == "mining_share"]
    assert (share["year_start"] == share["year_end"]).all() and set(share["region"]) == {"A", "B"}
    leads = table[table["quantity"] == "a_leads"]
    assert leads["contraction"].isna().all() and not leads["weakly_informed"].any()
    assert table.loc[table["quantity"] != "a_leads", "contraction"].notna().all()
    assert list(table["unit"].unique()) == ["kt", "share (0-1)", "probability (0-1)"]
    with pytest.raises(ValueError, match=r"no unit and description for the quantities \['a_leads'\]"):
        summarize_quantities(demo_fit, compute, {k: v for k, v in info.items() if k != "a_leads"})
    with pytest.raises(ValueError, match=r"dims \['chain_pair'\] that are not summary columns"):
        summarize_quantities(demo_fit, lambda g: {"mining_total": g["output_mining"].sum("region").expand_dims(chain_pair=[1])},
                             info)
