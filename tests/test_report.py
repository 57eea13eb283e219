"""The HTML report of a result folder, built from hand-made files (no sampling)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml
from conftest import three_region_system

from bayesmfa.cases import ree_figures
from bayesmfa.core.graph import Graph
from bayesmfa.core.system import system_from_dict
from bayesmfa.drivers.runner import case_figures, case_labels, report_case
from bayesmfa.reporting import plots
from bayesmfa.reporting.report import key_intervals, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

SYSTEM = three_region_system(2018, 2020)


def posterior(graph: Graph, draws: int = 100, seed: int = 0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    coords = graph.system.all_coords()
    years = list(graph.system.years)
    data = {}
    for fname in graph.system.flows:
        dims = graph.system.flow_dims(fname)
        arr = np.zeros((2, draws, len(years), *(len(coords[d]) for d in dims)))
        for e in graph.edges_of(fname):
            idx = tuple(coords[d].index(v) for d, v in e.coords)
            arr[(slice(None), slice(None), slice(None), *idx)] = rng.lognormal(np.log(3.0 + e.index), 0.3, (2, draws, len(years)))
        data[f"flow_{fname}"] = (("chain", "draw", "year", *dims), arr)
    return xr.Dataset(data, coords={"chain": [0, 1], "draw": range(draws), **coords})


def summary_table(legacy: bool = False) -> pd.DataFrame:
    """A REE-like summary in the published layout (or, ``legacy``, the earlier one with a text ``year``)."""
    rows = []

    def add(quantity, year, value, spread=0.2, start=None, **dims):
        rows.append({"quantity": quantity, **dims, "year_start": year if start is None else start, "year_end": year,
                     "mean": value, "sd": spread * value, "q05": value * (1 - spread), "q50": value, "q95": value * (1 + spread)})

    for y in (2018, 2019, 2020):
        for r, base in (("CN", 120.0), ("US", 12.0), ("RoW", 40.0), ("World", 172.0)):
            add("mining", y, base, region=r)
            for u, share in (("magnets", 0.5), ("catalysts", 0.3), ("other", 0.2)):
                add("consumption", y, base * share, region=r, end_use=u)
            for p in ("oxide", "metal"):
                add("net_export", y, base * 0.1, spread=0.8, region=r, product=p)
            add("p_net_exporter", y, 0.7, region=r)
        for r, share in (("CN", 0.7), ("US", 0.1), ("RoW", 0.2)):
            add("mining_share", y, share, spread=0.1, region=r)
        add("unregistered_mining", y, 20.0, spread=0.5, region="CN")
    for r, base in (("CN", 120.0), ("US", 12.0), ("RoW", 40.0)):
        add("mining", 2020, 3 * base, start=2018, region=r)
        for u, share in (("magnets", 0.5), ("catalysts", 0.3), ("other", 0.2)):
            add("no_trade_consumption", 2020, base * share * 0.6, spread=0.3, region=r, end_use=u)
    df = pd.DataFrame(rows)
    df["unit"] = np.where(df["quantity"].isin(["mining_share"]), "share (0-1)",
                          np.where(df["quantity"] == "p_net_exporter", "probability (0-1)", "kt REO"))
    df["description"] = "a test quantity"
    if legacy:
        df["year"] = [f"{a}-{b}" if a != b else str(a) for a, b in zip(df["year_start"], df["year_end"])]
        cols = ["quantity", "region", "partner", "product", "end_use", "year", "mean", "sd", "q05", "q50", "q95"]
    else:
        cols = ["quantity", "region", "partner", "product", "end_use", "year_start", "year_end", "unit", "description",
                "mean", "sd", "q05", "q50", "q95"]
    return df.reindex(columns=cols)


DIAGNOSTICS = {
    "max_rhat": 1.004, "min_ess_bulk": 812.0, "min_ess_tail": 640.0, "divergences": 0, "worst_rhat": "flow_ore",
    "worst_ess": "flow_smuggling", "wall_s": 12.5, "settings": {"draws": 1000, "chains": 4}, "passed": True, "failures": [],
}


@pytest.fixture
def result_dir(tmp_path: Path) -> Path:
    out = tmp_path / "run"
    out.mkdir()
    summary_table().to_csv(out / "summary.csv", index=False)
    (out / "diagnostics.json").write_text(json.dumps(DIAGNOSTICS))
    graph = Graph(system_from_dict(SYSTEM))
    ds = posterior(graph)
    ds.attrs["system_yaml"] = yaml.safe_dump(SYSTEM, sort_keys=False)
    az.InferenceData(posterior=ds).to_netcdf(str(out / "posterior.nc"))
    pd.DataFrame({"table": ["mine_production", "us_trade"], "rows": [230, 1200], "years": ["2000-2022", "2002-2022"]}).to_csv(
        out / "data_coverage.csv", index=False)
    return out


def embedded_pngs(text: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)]


def test_full_report(result_dir):
    path = write_report(result_dir, figures=ree_figures.summary_figures)
    assert path == result_dir / "report.html"
    text = path.read_text(encoding="utf-8")
    pngs = embedded_pngs(text)
    assert text.count("<img ") == len(pngs) >= 8
    assert all(p.startswith(PNG_MAGIC) and len(p) > 5000 for p in pngs)
    files = sorted(p.name for p in (result_dir / "figures").glob("*.png"))
    assert len(files) == len(pngs)
    assert {"consumption_World.png", "mining_share.png", "unregistered_mining.png", "p_net_exporter.png",
            "counterfactual_2020.png", "trade_triangle_2020.png", "net_export_CN.png"} <= set(files)
    assert not [f for f in files if f.startswith("net_trade_")]  # one name per figure
    # the key-interval table: cumulative mining rows, formatted like the figures, with their unit
    key = text[text.index('class="key-intervals"'):]
    key = key[: key.index("</table>")]
    assert "2018\u20112020" in key and plots.format_number(360.0) in key and "p_net_exporter" in key  # a non-breaking hyphen
    assert "<th>unit</th>" in key and "<td>kt REO</td>" in key and "<th>median</th>" in key
    # the title is the case's, not the folder's; the verdict opens the report with exact numbers
    assert "<h1>Results of the tri case</h1>" in text and "<h1>run" not in text
    banner = text[text.index('id="verdict"'):]
    banner = banner[: banner.index("</div>")]
    assert text.index('id="verdict"') < text.index('id="methods"') < text.index('id="key"')
    assert "Diagnostics passed" in banner and "1.004" in banner and "812" in banner and "640" in banner
    assert "divergences <strong>0</strong>" in banner
    # the Sankeys with plotly.js inlined (offline), no CDN
    assert text.count('class="sankey"') == 2
    assert not re.search(r"<script[^>]+src=", text)
    assert len(text) > 1_000_000  # plotly.js is inside
    assert "Plotly.newPlot" in text
    # diagnostics and data coverage
    assert 'class="banner pass"' in text and "flow_smuggling" in text
    assert 'class="coverage"' in text and "mine_production" in text
    # dependence shares are not in the summary: noted, not fatal
    assert "Dependence shares" in text and "import_share_from not in the summary" in text
    # written atomically: no temporary files left behind
    assert not [p for p in result_dir.rglob("*.tmp")]


def test_report_without_posterior_or_diagnostics(tmp_path):
    out = tmp_path / "bare"
    out.mkdir()
    summary_table().query("quantity in ['mining', 'mining_share']").to_csv(out / "summary.csv", index=False)
    labels = case_labels("ree")  # its default regions name the consumption figure that is then skipped
    text = write_report(out, figures=ree_figures.summary_figures, labels=labels).read_text(encoding="utf-8")
    assert len(embedded_pngs(text)) == 1  # the mining share only
    assert "posterior.nc not found" in text and "diagnostics.json not found" in text
    assert "figure &#x27;Consumption by end use, World&#x27; skipped: consumption not in the summary" in text
    assert 'class="sankey"' not in text and "No diagnostics" in text
    # a second run replaces the report
    assert write_report(out, figures=ree_figures.summary_figures, labels=labels).read_text(encoding="utf-8") == text


def test_report_of_a_demo_like_summary(tmp_path):
    out = tmp_path / "demo"
    out.mkdir()
    rows = [{"quantity": q, "region": r, "year": y, "mean": 1.0, "sd": 0.1, "q05": 0.8, "q50": 1.0, "q95": 1.2}
            for q in ("input_mining", "input_refining", "output_refining") for r in "AB" for y in range(2010, 2015)]
    # a sampler variable without a year makes pandas write the years as floats (2014.0)
    rows.append({"quantity": "input_step_log__", "input_step_log___dim_0": 0, "mean": -1.9, "sd": 0.2, "q05": -2.2, "q50": -1.9,
                 "q95": -1.5})
    pd.DataFrame(rows).to_csv(out / "summary.csv", index=False)
    assert "2014.0" in (out / "summary.csv").read_text()
    text = write_report(out).read_text(encoding="utf-8")
    assert len(embedded_pngs(text)) == 2  # input_mining, input_refining
    assert "process inputs drawn instead" in text
    key = text[text.index('class="key-intervals"'):]
    key = key[: key.index("</table>")]
    assert "input_mining" in key and "output_refining" in key and "<td>2014</td>" in key
    assert "input_step_log__" not in key and "2014.0" not in key


def test_case_figures_come_from_the_case_not_the_summary(result_dir):
    """An REE-shaped summary of a case with no figure module (here 'tri') gets the generic figures, not the REE ones."""
    from bayesmfa.cases import ree

    assert case_figures("ree") is ree.report_figures  # the case's own list, through its contract
    assert case_figures("tri") is None and case_figures("demo") is None and case_figures("../ree") is None
    report_case(result_dir)
    files = sorted(p.name for p in (result_dir / "figures").glob("*.png"))
    assert "consumption_World.png" not in files and "trade_triangle_2020.png" in files  # the triangle is generic


def test_key_table_follows_the_labels_key_quantities(result_dir, monkeypatch):
    """key_quantities of labels.yaml choose the key table's rows and their order; without them every quantity, capped."""
    labels = plots.Labels(key_quantities=("p_net_exporter", "no_such_quantity", "mining"))
    text = write_report(result_dir, labels=labels).read_text(encoding="utf-8")
    key = text[text.index('class="key-intervals"'):]
    key = key[: key.index("</table>")]
    shown = re.findall(r"<tr><td>([a-z_]+)</td>", key)
    assert shown == ["p_net_exporter"] * 4 + ["mining"] * 3  # the last year of each region, then the cumulative rows
    every = key_intervals(summary_table())
    assert list(dict.fromkeys(every["quantity"])) == list(dict.fromkeys(summary_table()["quantity"]))
    capped = key_intervals(summary_table(), max_rows=5)
    assert len(capped) == 5 and capped.attrs["rows_total"] == len(every) > 5
    monkeypatch.setattr("bayesmfa.reporting.report.MAX_KEY_ROWS", 5)
    text = write_report(result_dir, labels=plots.Labels()).read_text(encoding="utf-8")
    key = text[text.index('class="key-intervals"'):]
    assert key[: key.index("</table>")].count("<tr><td>") == 5
    assert f"The first 5 of {len(every)} rows" in text


@pytest.mark.parametrize("legacy", [False, True])
def test_key_intervals_prefers_cumulative_rows(legacy):
    key = key_intervals(summary_table(legacy))
    mining = key[key["quantity"] == "mining"]
    assert set(mining["period"]) == {"2018-2020"}
    consumption = key[key["quantity"] == "consumption"]
    assert set(consumption["period"]) == {"2020"} and len(consumption) == 4 * 3
    assert "partner" not in key.columns  # blank for every key quantity
    if not legacy:
        assert set(consumption["unit"]) == {"kt REO"}


def test_failed_diagnostics_open_the_report_with_the_exact_numbers(result_dir):
    failed = {**DIAGNOSTICS, "max_rhat": 1.0231, "divergences": 3, "passed": False,
              "failures": ["max R-hat 1.0231 > 1.01", "3 divergences > 0"],
              "thresholds": {"max_rhat": 1.01, "min_ess_bulk": 400, "min_ess_tail": 400, "max_divergences": 0}}
    (result_dir / "diagnostics.json").write_text(json.dumps(failed))
    text = write_report(result_dir).read_text(encoding="utf-8")
    banner = text[text.index('id="verdict"'):]
    banner = banner[: banner.index("</div>")]
    assert text.index('class="banner fail"') < text.index("<h2")  # before any section
    assert "FAILED" in banner and "1.0231" in banner and "(required ≤ 1.01)" in banner
    assert "divergences <strong>3</strong>" in banner and "3 divergences &gt; 0" in banner


def test_case_labels_title_sources_and_caveats(result_dir):
    labels = plots.Labels(names={"region": {"CN": "China"}, "quantity": {"mining": "Mine output"}}, title="Three regions",
                          unit="kt X", methods="How it is modelled.", sources=("Source one",), caveats=("Caveat one",))
    text = write_report(result_dir, labels=labels).read_text(encoding="utf-8")
    assert "<h1>Three regions</h1>" in text and "How it is modelled." in text
    assert "<li>Source one</li>" in text and "<li>Caveat one</li>" in text
    key = text[text.index('class="key-intervals"'):]
    key = key[: key.index("</table>")]
    assert "<td>Mine output</td>" in key and "<td>China</td>" in key


def test_shipped_ree_labels_are_found_by_case_name():
    assert case_labels("ree").title.startswith("Rare earth") and case_labels("ree")("region", "CN") == "China"
    assert case_labels("no_such_case")("region", "CN") == "CN"


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_report(tmp_path / "nope")


def test_report_flags_weakly_informed_rows_and_draws_prior_vs_posterior(tmp_path):
    out = tmp_path / "prior"
    out.mkdir()
    rows = []
    for q in ("input_mining", "input_refining"):
        for r in "AB":
            for y in range(2010, 2015):
                weak = q == "input_refining" and r == "B"
                rows.append({"quantity": q, "region": r, "year": y, "mean": 1.0, "sd": 0.1, "q05": 0.8, "q50": 1.0, "q95": 1.2,
                             "prior_q05": 0.5, "prior_q50": 1.0, "prior_q95": 1.0 if weak else 2.0})
    df = pd.DataFrame(rows)
    df["contraction"] = 1 - (df["q95"] - df["q05"]) / (df["prior_q95"] - df["prior_q05"])
    df["weakly_informed"] = df["contraction"] < 0.3
    df.to_csv(out / "summary.csv", index=False)
    text = write_report(out).read_text(encoding="utf-8")
    sentence = "5 of 20 reported quantities are barely informed by the records (contraction &lt; 0.3): input_refining (5 of 10 rows)."
    assert sentence in text
    assert text.index('class="informed"') < text.index('id="key"')  # near the top
    assert 'id="contraction"' in text and 'id="fig-prior_posterior"' in text
    assert (out / "figures" / "prior_posterior.png").is_file()
    key = text[text.index('class="key-intervals"'):]
    assert "contraction" in key[: key.index("</thead>")]


def test_report_without_contraction_says_so(result_dir):
    text = write_report(result_dir).read_text(encoding="utf-8")
    assert "no contraction column" in text and 'class="informed"' not in text


def test_record_checks_print_file_names_and_rounded_numbers(result_dir):
    pd.DataFrame({"record_id": ["mine_production:244", "us_trade:12"], "file": ["/abs/data/ree/mine_production.csv", "/abs/us_trade.csv"],
                  "row": ["244", "12"], "family": ["mine_production", "us_trade"], "quantity": ["mining", "use.input"],
                  "year": ["2017", "2012"], "observed": [5.0, 15.0], "model_q05": [20.123456789, 1.0], "model_q50": [25.0, 5.0],
                  "model_q95": [30.0, 9.0], "z": [-4.5152279940180373, 1.0], "misfit": [True, False]}).to_csv(
        result_dir / "record_checks.csv", index=False)
    pd.DataFrame({"family": ["mine_production"], "n_records": [240], "mean_z": [-0.13028943472032656],
                  "p_value": [0.09000000000000008]}).to_csv(result_dir / "record_families.csv", index=False)
    text = write_report(result_dir).read_text(encoding="utf-8")
    misfits = text[text.index('class="misfits"'):]
    misfits = misfits[: misfits.index("</table>")]
    assert "<td>mine_production.csv</td>" in misfits and "/abs/" not in misfits and "us_trade:12" not in misfits
    assert ">-4.52<" in misfits and ">20.1<" in misfits
    families = text[text.index('class="families"'):]
    families = families[: families.index("</table>")]
    assert ">240<" in families and ">-0.13<" in families and ">0.09<" in families and "0000000" not in families
