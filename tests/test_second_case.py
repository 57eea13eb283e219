"""Proof of the seam: a second commodity, written as files in a temporary folder, runs end to end with no core change.

Not the demo and not REE: a cobalt chain in tonnes over countries (``country``, the trade dim) and
applications (``application``), with its own processes, flows and quantities. Its records are
simulated from a truth drawn from its priors. It goes through ``bayesmfa check``, ``run``,
``report``, ``scenario`` and (slow) ``sensitivity --quick``, as a user would run them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import bayesmfa as bm
from bayesmfa.core.records import mirror_trade_rows
from bayesmfa.drivers import cli

COUNTRIES = ("COD", "CHN", "FIN")
APPLICATIONS = ("batteries", "superalloys")
YEARS = range(2016, 2022)
SEED = 4242

SYSTEM = {
    "name": "cobalt",
    "description": "A cobalt chain: mine hydroxide, refine it to metal and chemicals, fabricate by application",
    "unit": "t",
    "time": {"dim": "year", "start": YEARS[0], "end": YEARS[-1]},
    "dims": {"country": list(COUNTRIES), "application": list(APPLICATIONS)},
    "trade_dim": "country",
    "processes": {
        "extraction": {"dims": ["country"]},
        "refining": {"dims": ["country"], "yield": True},
        "fabrication": {"dims": ["country"]},
        "application_use": {"dims": ["country", "application"]},
    },
    "boundary": {"inputs": ["extraction"], "sinks": ["application_use"]},
    "flows": {
        "hydroxide_domestic": {"from": "extraction", "to": "refining", "product": "hydroxide"},
        "hydroxide_trade": {"from": "extraction", "to": "refining", "cross": "country", "product": "hydroxide"},
        "refined_domestic": {"from": "refining", "to": "fabrication", "product": "refined"},
        "refined_trade": {"from": "refining", "to": "fabrication", "cross": "country", "product": "refined"},
        "to_application": {"from": "fabrication", "to": "application_use", "product": "refined"},
    },
}

SRC = {"source": "test: illustrative"}
PRIORS = {
    "inputs": [{"process": "extraction", "dist": "LogNormal", "median": 30000, "sigma": 1.0, **SRC}],
    "steps": [{"target": "input", "dist": "Fixed", "value": 0.1, **SRC}, {"target": "share", "dist": "Fixed", "value": 0.2, **SRC}],
    "shares": [
        {"process": "extraction", "shares": {"hydroxide_domestic": 0.4, "hydroxide_trade": 0.6}, "sd_logit": 1.0, **SRC},
        {"process": "refining", "shares": {"refined_domestic": 0.6, "refined_trade": 0.4}, "sd_logit": 1.0, **SRC},
        {"process": "fabrication", "shares": {"batteries": 0.6, "superalloys": 0.4}, "sd_logit": 1.0, **SRC},
    ],
    "yields": [{"process": "refining", "dist": "Beta", "alpha": 18, "beta": 2, **SRC}],
    "noise": [
        {"source_type": "production", "dist": "LogNormal", "median": 0.05, "sigma": 0.5, **SRC},
        {"source_type": "customs", "dist": "LogNormal", "median": 0.1, "sigma": 0.5, **SRC},
        {"source_type": "survey", "dist": "LogNormal", "median": 0.15, "sigma": 0.5, **SRC},
    ],
    "factors": [{"name": "exporter_reporting", "dist": "LogNormal", "median": 1.0, "sigma": 0.2, **SRC}],
}


def _template() -> pd.DataFrame:
    """Which records the cobalt case has: production by country, mirror trade, fabrication by application."""
    rows: list[dict[str, object]] = []
    pairs = [(a, b) for a in COUNTRIES for b in COUNTRIES if a != b]
    for y in YEARS:
        for c in COUNTRIES:
            rows.append({"quantity": "extraction", "country": c, "year": y, "source_type": "production"})
            rows.append({"quantity": "refining", "country": c, "year": y, "source_type": "production"})
            for a in APPLICATIONS:
                rows.append({"quantity": "to_application", "country": c, "application": a, "year": y, "source_type": "survey"})
        rows.extend(mirror_trade_rows(("hydroxide_trade", "refined_trade"), pairs, y))
    df = pd.DataFrame(rows)
    df["unit"], df["value"], df["source"] = "t", 1.0, f"synthetic: simulated from the priors (seed {SEED})"
    return df.fillna("").astype(str)


@pytest.fixture(scope="module")
def cobalt(tmp_path_factory) -> Path:
    """The case folder: system.yaml, priors/priors.yaml and records.csv simulated from the priors."""
    folder = tmp_path_factory.mktemp("cases") / "cobalt"
    (folder / "priors").mkdir(parents=True)
    (folder / "system.yaml").write_text(yaml.safe_dump(SYSTEM, sort_keys=False))
    (folder / "priors" / "priors.yaml").write_text(yaml.safe_dump(PRIORS, sort_keys=False))
    problem = bm.make_problem(bm.system_from_dict(SYSTEM), bm.load_priors(folder / "priors"), _template())
    _, table = bm.simulate_records(problem, seed=SEED)
    table.drop(columns=["file", "row", "record_id"]).to_csv(folder / "records.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def cobalt_run(cobalt, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("results") / "cobalt"
    assert cli.main(["run", str(cobalt), "--quick", "--no-progress", "--seed", "1", "--out", str(out)]) == 0
    return out


def test_check_accepts_the_second_case(cobalt):
    assert cli.main(["check", str(cobalt)]) == 0


def test_run_fits_the_second_case_with_its_own_dims_and_quantities(cobalt, cobalt_run):
    diag = json.loads((cobalt_run / "diagnostics.json").read_text())
    assert diag["case"] == "cobalt"
    summary = pd.read_csv(cobalt_run / "summary.csv", keep_default_na=False)
    use = summary[summary["quantity"] == "input_application_use"]
    assert set(use["country"]) == set(COUNTRIES) and set(use["application"]) == set(APPLICATIONS)
    assert set(summary["unit"]) <= {"t", ""}
    # what each country's fabrication receives is what its applications use, in every draw
    idata = bm.load(cobalt_run / "posterior.nc")
    post = idata.posterior
    np.testing.assert_allclose(post["input_application_use"].sum("application").values,
                               post["output_fabrication"].transpose(*post["input_application_use"].dims[:-1]).values, rtol=1e-9)


def test_report_of_the_second_case(cobalt_run):
    assert cli.main(["report", str(cobalt_run)]) == 0
    html = (cobalt_run / "report.html").read_text(encoding="utf-8")
    assert "cobalt" in html and "application_use" in html
    assert list((cobalt_run / "figures").glob("*.png"))


def test_scenarios_on_the_second_case(cobalt, cobalt_run, tmp_path):
    out = tmp_path / "scen"
    assert cli.main(["scenario", str(cobalt), "--fit", str(cobalt_run), "--out", str(out), "--no-trade",
                     "--restrict", "COD:hydroxide_trade:0.5:2018"]) == 0
    table = pd.read_csv(out / "scenarios.csv", keep_default_na=False)
    assert {"no_trade", "COD_hydroxide_trade_cap0.5_from2018"} <= set(table["scenario"])
    # the consumption rows are by country (the system's trade dim), not lumped into one "all" row
    rows = table[(table["scenario"] == "no_trade") & (table["quantity"] == "consumption")]
    assert set(rows["country"]) == set(COUNTRIES)
    # the baseline is the fit's own consumption by country; without trade, what the world uses cannot exceed what it
    # mined (yields <= 1; means of sums are sums of means)
    post = bm.load(cobalt_run / "posterior.nc").posterior
    base = table[(table["scenario"] == "no_trade") & (table["quantity"] == "baseline_consumption")]
    fitted = post["input_application_use"].sum("application").mean(("chain", "draw"))
    for _, r in base.iterrows():
        assert r["mean"] == pytest.approx(float(fitted.sel(year=int(r["year"]), country=r["country"])), rel=1e-9)
    world = rows.groupby(rows["year"].astype(int))["mean"].sum()
    mined = post["output_extraction"].sum("country").mean(("chain", "draw")).to_series()
    assert (world <= mined.loc[world.index] * (1 + 1e-9)).all()


@pytest.mark.slow
def test_sensitivity_quick_on_the_second_case(cobalt, tmp_path):
    out = tmp_path / "sens"
    assert cli.main(["sensitivity", str(cobalt), "--quick", "--out", str(out), "--only", "noise_x2"]) == 0
    table = pd.read_csv(out / "sweeps.csv", keep_default_na=False)
    assert set(table["sweep"]) == {"baseline", "noise_x2"}
    assert (out / "key_sensitivity.png").is_file() and (out / "scenarios" / "scenarios.csv").is_file()
