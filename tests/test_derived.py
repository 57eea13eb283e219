"""Derived quantities as an xarray Dataset: built from a summary, exported back row for row, read by the plots."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayesmfa as bm
from bayesmfa.analysis import derived
from bayesmfa.analysis.summaries import read_summary, summary_columns
from bayesmfa.cases import demo
from bayesmfa.reporting import plots

STATS = ["mean", "sd", "q05", "q50", "q95", "prior_q05", "prior_q50", "prior_q95", "contraction"]
REGIONS = ["CN", "US", "RoW"]


def _row(quantity: str, start: int, end: int, rng: np.random.Generator, **dims: str) -> dict:
    values = np.sort(rng.gamma(2.0, 3.0, size=3))
    prior = np.sort(rng.gamma(2.0, 9.0, size=3))
    row = {"quantity": quantity, "region": "", "partner": "", "product": "", "end_use": "", **dims,
           "year_start": start, "year_end": end, "unit": "kt", "description": f"{quantity} per year.",
           "mean": values[1] * 1.01, "sd": values[1] / 3, "q05": values[0], "q50": values[1], "q95": values[2],
           "prior_q05": prior[0], "prior_q50": prior[1], "prior_q95": prior[2],
           "contraction": float(rng.uniform(-0.2, 1.0))}
    return row


def synthetic_summary() -> pd.DataFrame:
    """A summary in the published layout as the cases write it, with every shape they produce.

    - ``consumption``: region x end use, yearly rows (region-major, year fastest), then the cumulative rows;
    - ``exports``: region x partner with the self pairs left out (a grid with holes), year-major;
    - ``share``: one cumulative row per region only, no yearly rows;
    - ``world``: no dims at all, one row per year, one of them with no finite statistic (kept as a row);
    - ``mining``: regions in an order of their own (World first), so the shared ``region`` dim is a union.
    """
    rng = np.random.default_rng(7)
    years = (2000, 2001, 2002)
    rows = []
    for r in REGIONS:
        for use in ("magnets", "catalysts"):
            rows += [_row("consumption", y, y, rng, region=r, end_use=use) for y in years]
    rows += [_row("consumption", 2000, 2002, rng, region=r, end_use=use) for r in REGIONS for use in ("magnets", "catalysts")]
    for y in years:
        rows += [_row("exports", y, y, rng, region=a, partner=b, product="oxide") for a in REGIONS for b in REGIONS if a != b]
    rows += [_row("share", 2000, 2002, rng, region=r) for r in REGIONS]
    rows += [_row("world", y, y, rng) for y in years]
    rows += [_row("mining", y, y, rng, region=r) for r in ["World", *REGIONS] for y in years]
    df = pd.DataFrame(rows)
    df.loc[(df["quantity"] == "world") & (df["year_start"] == 2001), STATS] = np.nan
    df["weakly_informed"] = df["contraction"] < 0.3
    return df[summary_columns(0.9)]


def _csv(df: pd.DataFrame) -> str:
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    return buf.getvalue()


def test_the_export_gives_back_the_summary_row_for_row():
    summary = synthetic_summary()
    ds = derived.summary_dataset(summary)
    back = derived.summary_frame(ds)
    assert _csv(back) == _csv(summary)
    # through the CSV text (what `bayesmfa report` reads from a folder written before derived.nc) too
    again = derived.summary_frame(derived.summary_dataset(read_summary(io.StringIO(_csv(summary)))))
    assert _csv(again) == _csv(summary)


def test_one_variable_per_quantity_with_named_dims_stats_and_periods():
    ds = derived.summary_dataset(synthetic_summary())
    assert list(ds.data_vars) == ["consumption", "exports", "share", "world", "mining"]
    assert ds["consumption"].dims == ("stat", "region", "end_use", "period")
    assert ds["exports"].dims == ("stat", "period", "region", "partner", "product")
    assert ds["world"].dims == ("stat", "period")
    assert list(ds["stat"].values) == STATS
    # periods: the years, then the cumulative period; integer bounds on the period dim, nothing to parse
    assert list(ds["period"].values) == ["2000", "2001", "2002", "2000-2002"]
    assert ds["year_start"].values.tolist() == [2000, 2001, 2002, 2000] and ds["year_end"].values.tolist() == [2000, 2001, 2002, 2002]
    assert ds["consumption"].attrs["unit"] == "kt" and ds["consumption"].attrs["description"] == "consumption per year."
    # a value is where its row put it
    summary = synthetic_summary()
    row = summary[(summary["quantity"] == "consumption") & (summary["region"] == "US") & (summary["end_use"] == "catalysts")
                  & (summary["year_start"] == 2000) & (summary["year_end"] == 2002)].iloc[0]
    cell = ds["consumption"].sel(region="US", end_use="catalysts", period="2000-2002")
    np.testing.assert_array_equal(cell.values, row[STATS].to_numpy(dtype=float))
    # the shared region dim is the union of the quantities' regions; own() keeps a quantity's own, in its order
    assert set(ds["region"].values) == {"CN", "US", "RoW", "World"}
    assert list(derived.own(ds["mining"])["region"].values) == ["World", *REGIONS]
    assert list(derived.own(ds["consumption"])["region"].values) == REGIONS
    assert np.isnan(ds["consumption"].sel(region="World")).all()
    # the grid with holes got its order back: each region's partners in the regions' order, the self pair NaN
    assert list(derived.own(ds["exports"])["partner"].values) == REGIONS
    assert np.isnan(ds["exports"].sel(region="US", partner="US")).all()
    # a quantity with only cumulative rows has NaN in every year
    assert np.isnan(ds["share"].sel(period=["2000", "2001", "2002"])).all()
    assert np.isfinite(ds["share"].sel(period="2000-2002", stat="q50")).sel(region=REGIONS).all()


def test_yearly_and_cumulative_views():
    ds = derived.summary_dataset(synthetic_summary())
    yearly = derived.yearly(ds["consumption"])
    assert yearly.dims == ("stat", "region", "end_use", "year") and yearly["year"].values.tolist() == [2000, 2001, 2002]
    assert yearly["year"].dtype.kind == "i"
    total = derived.cumulative(ds["consumption"])
    assert total["period"].values.tolist() == ["2000-2002"]
    np.testing.assert_array_equal(yearly.sel(year=2001).values, ds["consumption"].sel(period="2001").values)


def test_a_selected_quantity_is_its_rows():
    summary = synthetic_summary()
    ds = derived.summary_dataset(summary)
    cn = derived.quantity_frame(ds["consumption"].sel(region="CN"))
    expected = summary[(summary["quantity"] == "consumption") & (summary["region"] == "CN")]
    assert len(cn) == len(expected) == 8
    cols = ["region", "end_use", "year_start", "year_end", *STATS]
    pd.testing.assert_frame_equal(cn[cols].reset_index(drop=True), expected[cols].reset_index(drop=True), check_dtype=False)
    # a yearly() view converts back to its periods
    years = derived.quantity_frame(derived.yearly(ds["consumption"]).sel(year=[2000, 2002]))
    assert sorted(set(years["year_start"])) == [2000, 2002] and (years["year_start"] == years["year_end"]).all()
    with pytest.raises(ValueError, match="no 'stat' dim"):
        derived.quantity_frame(ds["consumption"].sel(stat="q50"))
    with pytest.raises(ValueError, match="no quantity 'nope'.*consumption"):
        derived.quantity_frame(ds, "nope")


def test_netcdf_round_trip_and_a_foreign_file(tmp_path):
    summary = synthetic_summary()
    ds = derived.summary_dataset(summary)
    path = bm.write_derived(ds, tmp_path / "derived.nc")
    back = bm.read_derived(path)
    xr.testing.assert_identical(back, ds)
    assert _csv(bm.summary_frame(back)) == _csv(summary)
    xr.Dataset({"x": ("a", [1.0])}).to_netcdf(tmp_path / "other.nc", engine="h5netcdf")
    with pytest.raises(ValueError, match="other.nc: not a bayesmfa derived Dataset"):
        bm.read_derived(tmp_path / "other.nc")


def test_load_derived_reads_a_folder_written_before_derived_nc(tmp_path):
    summary = synthetic_summary()
    summary.to_csv(tmp_path / "summary.csv", index=False)
    ds = bm.load_derived(tmp_path)
    assert _csv(bm.summary_frame(ds)) == _csv(summary)
    with pytest.raises(FileNotFoundError, match="no derived.nc or summary.csv"):
        bm.load_derived(tmp_path / "missing")


def test_bad_summaries_are_refused_with_the_quantity_named():
    summary = synthetic_summary()
    twice = pd.concat([summary, summary.iloc[[4]]], ignore_index=True)
    with pytest.raises(ValueError, match="quantity 'consumption' has two rows for"):
        derived.summary_dataset(twice)
    units = summary.copy()
    units.loc[units.index[:2], "unit"] = "t"
    with pytest.raises(ValueError, match="quantity 'consumption' has several units"):
        derived.summary_dataset(units)
    no_period = summary.drop(columns="year_end")
    with pytest.raises(ValueError, match="no column 'year_end'"):
        derived.summary_dataset(no_period)


def test_the_demo_summary_goes_through_the_dataset_unchanged(demo_fit, demo_problem):
    summary = demo.summary_table(demo_fit, demo_problem)
    ds = derived.summary_dataset(summary)
    assert _csv(derived.summary_frame(ds)) == _csv(summary)
    # a flow's statistics are those of its draws
    draws = demo_fit.posterior["flow_ore_domestic"].sel(region="B", year=2012).values.ravel()
    cell = ds["flow_ore_domestic"].sel(region="B", period="2012")
    np.testing.assert_allclose(cell.sel(stat=["q05", "q50", "q95"]).values, np.quantile(draws, [0.05, 0.5, 0.95]), rtol=1e-9)


def test_bands_take_a_quantity_as_a_dataarray():
    ds = derived.summary_dataset(synthetic_summary())
    fig = plots.bands(ds["consumption"].sel(region="US"), by="end_use")
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert set(lines) == {"magnets", "catalysts"}
    expected = derived.yearly(ds["consumption"]).sel(region="US", end_use="catalysts", stat="q50")
    np.testing.assert_array_equal(lines["catalysts"].get_xdata(), [2000, 2001, 2002])
    np.testing.assert_array_equal(lines["catalysts"].get_ydata(), expected.values)
    # the Dataset and a name draw the same lines
    again = plots.bands(ds, "consumption", by="end_use", filters={"region": "US"})
    np.testing.assert_array_equal(again.axes[0].get_lines()[1].get_ydata(), expected.values)
    with pytest.raises(ValueError, match="quantity passed is 'consumption', not 'mining'"):
        plots.select_rows(ds["consumption"], "mining")
    assert plots.quantity_values(ds, "mining", "region") == ["World", *REGIONS]
    assert plots.has_quantity(ds, "share") and not plots.has_quantity(ds, "nope")


def test_attrs_say_what_each_variable_holds():
    ds = derived.summary_dataset(synthetic_summary())
    assert ds.attrs["layout"] == derived.LAYOUT
    assert json.loads(ds.attrs["dim_columns"]) == ["region", "partner", "product", "end_use"]
    assert json.loads(ds["exports"].attrs["absent"]) == [
        {"period": p, "region": r, "partner": r, "product": "oxide"} for p in ("2000", "2001", "2002") for r in REGIONS
    ]
