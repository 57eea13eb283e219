"""Scenarios on a saved fit from the command line: parsing, tables by sink dims, figures, refusals, atomic output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayesmfa as bm
from bayesmfa.analysis import scenarios
from bayesmfa.analysis.scenarios import parse_restriction
from bayesmfa.cases import demo
from bayesmfa.drivers.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def saved_fit(demo_fit, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fit")
    bm.save(demo_fit, folder / "posterior.nc")
    return folder


def test_parse_restriction_reads_every_part():
    spec = parse_restriction("CN:oxide_trade, metal_trade:0.5:2010")
    assert (spec.region, spec.flows, spec.cap_share, spec.from_year) == ("CN", ("oxide_trade", "metal_trade"), 0.5, 2010)
    assert spec.kind == "export_restriction" and spec.name == "CN_oxide_trade+metal_trade_cap0.5_from2010"


@pytest.mark.parametrize(
    ("text", "part"),
    [("CN:oxide_trade:0.5", "4 parts"), (":oxide_trade:0.5:2010", "region"), ("CN:oxide_trade:half:2010", "CAP"),
     ("CN:oxide_trade:1.5:2010", "CAP"), ("CN:oxide_trade:0.5:soon", "FROM_YEAR")],
)
def test_parse_restriction_names_the_malformed_part(text, part):
    with pytest.raises(ValueError, match=part):
        parse_restriction(text)


def test_sink_arrays_add_up_to_consumption_by_region(demo_fit, demo_problem):
    ds = scenarios.export_restriction(demo_fit, demo_problem, region="A", flow_names=["ore_trade"], cap_share=0.0,
                                      from_year=2015)
    assert ds["sink_final"].dims == ("chain", "draw", "year", "region", "end_use")
    np.testing.assert_allclose(ds["sink_final"].sum("end_use"), ds["consumption"], rtol=1e-12)
    np.testing.assert_allclose(ds["baseline_sink_final"].sum("end_use"), ds["baseline_consumption"], rtol=1e-12)
    np.testing.assert_allclose(ds["change_sink_final"], ds["sink_final"] - ds["baseline_sink_final"])
    # the baseline is the fit itself: final consumption by region and end use as the posterior has it
    np.testing.assert_allclose(ds["baseline_sink_final"].transpose("chain", "draw", "year", "region", "end_use"),
                               demo_fit.posterior["input_final"].transpose("chain", "draw", "year", "region", "end_use"))


def test_scenario_command_writes_tables_and_figures(saved_fit, tmp_path):
    out = tmp_path / "scen"
    rc = main(["scenario", "demo", "--fit", str(saved_fit), "--out", str(out), "--no-trade",
               "--restrict", "A:ore_trade:0.5:2015", "--root", str(ROOT)])
    assert rc == 0
    table = pd.read_csv(out / "scenarios.csv")
    name = "A_ore_trade_cap0.5_from2015"
    assert set(table["scenario"]) == {"no_trade", name}
    assert {"consumption", "change", "sink_final", "baseline_sink_final", "change_sink_final"} <= set(table["quantity"])
    sink = table[(table["quantity"] == "sink_final") & (table["scenario"] == name)]
    assert set(sink["end_use"]) == set(demo.load(ROOT).system.dims["end_use"])
    # two outputs of the table agree: a region's consumption is the sum of its sink's end uses (means add up)
    total = sink.groupby(["region", "year"])["mean"].sum()
    cons = table[(table["quantity"] == "consumption") & (table["scenario"] == name)].set_index(["region", "year"])["mean"]
    np.testing.assert_allclose(total.sort_index().to_numpy(), cons.loc[total.sort_index().index].to_numpy(), rtol=1e-9)
    before = table[(table["quantity"] == "change") & (table["scenario"] == name) & (table["year"] < 2015)]
    np.testing.assert_allclose(before[["mean", "q05", "q95"]].to_numpy(), 0.0, atol=1e-9)
    for png in ("no_trade.png", f"{name}.png"):
        assert (out / png).stat().st_size > 5000


def test_scenario_command_refuses_bad_input_and_keeps_earlier_output(saved_fit, tmp_path, capsys):
    out = tmp_path / "scen"
    assert main(["scenario", "demo", "--fit", str(saved_fit), "--out", str(out), "--no-trade", "--root", str(ROOT)]) == 0
    before = (out / "scenarios.csv").read_bytes()
    for args, message in (
        (["--restrict", "A:no_such_flow:0.5:2015"], "unknown flows"),
        (["--restrict", "Z:ore_trade:0.5:2015"], "'Z'"),
        (["--restrict", "A:ore_trade:0.5:1990"], "outside"),
        ([], "no scenario"),
    ):
        rc = main(["scenario", "demo", "--fit", str(saved_fit), "--out", str(out), "--root", str(ROOT), *args])
        assert rc == 2
        assert message in capsys.readouterr().err
        assert (out / "scenarios.csv").read_bytes() == before
    rc = main(["scenario", "demo", "--fit", str(tmp_path / "nothing"), "--out", str(out), "--no-trade", "--root", str(ROOT)])
    assert rc == 2 and "no fit here" in capsys.readouterr().err


def test_scenario_command_refuses_a_fit_of_other_inputs(demo_fit, tmp_path, capsys):
    other = demo_fit.copy()
    other.posterior.attrs["content_hash"] = "0" * 64
    bm.save(other, tmp_path / "posterior.nc")
    rc = main(["scenario", "demo", "--fit", str(tmp_path), "--out", str(tmp_path / "scen"), "--no-trade", "--root", str(ROOT)])
    assert rc == 2 and "different inputs" in capsys.readouterr().err
    assert not (tmp_path / "scen").exists()
