"""The README results block: generated from summary.csv and diagnostics.json, never typed."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from bayesmfa.cases.contract import KeyRow
from bayesmfa.drivers.resultstable import END, START, update_readme

DIAG = {
    "max_rhat": 1.004, "min_ess_bulk": 812.0, "min_ess_tail": 650.0, "divergences": 0, "wall_s": 300.2,
    "settings": {"backend": "nutpie", "chains": 4, "draws": 1000, "tune": 1000, "target_accept": 0.95, "seed": 0},
    "bayesmfa_version": "0.1.0", "passed": True, "failures": [], "case": "ree",
}


def _write(tmp_path, diag, legacy: bool = False):
    """A summary.csv in the published layout (integer year_start/year_end), or the earlier one (a text ``year``)."""
    rows = [
        {"quantity": "unregistered_mining", "region": "CN", "partner": "", "product": "", "end_use": "", "year_start": 2000,
         "year_end": 2022, "unit": "kt REO", "mean": 700.0, "sd": 100.0, "q05": 500.0, "q50": 690.0, "q95": 900.0},
        {"quantity": "unregistered_mining", "region": "CN", "partner": "", "product": "", "end_use": "", "year_start": 2022,
         "year_end": 2022, "unit": "kt REO", "mean": 7.0, "sd": 1.0, "q05": 5.0, "q50": 6.9, "q95": 9.0},
        {"quantity": "p_net_exporter", "region": "US", "partner": "", "product": "", "end_use": "", "year_start": 2022,
         "year_end": 2022, "unit": "probability (0-1)", "mean": 0.97, "sd": 0.1, "q05": 1.0, "q50": 1.0, "q95": 1.0},
    ]
    df = pd.DataFrame(rows)
    if legacy:
        df.insert(5, "year", [f"{a}-{b}" if a != b else str(a) for a, b in zip(df["year_start"], df["year_end"])])
        df = df.drop(columns=["year_start", "year_end", "unit"])
    df.to_csv(tmp_path / "summary.csv", index=False)
    (tmp_path / "diagnostics.json").write_text(json.dumps(diag))
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n\n{START}\nold table\n{END}\n\nafter\n")
    return readme


def test_block_is_rebuilt_from_the_run(tmp_path):
    readme = _write(tmp_path, DIAG)
    update_readme(tmp_path / "summary.csv", readme)
    text = readme.read_text()
    assert "old table" not in text and text.startswith("# x\n\nbefore") and text.endswith("after\n")
    assert "| Unregistered mining, China, cumulative (kt REO) | 690 | 500 – 900 | 700 |" in text
    assert "| Unregistered mining, China, 2022 (kt REO) | 6.9 | 5.0 – 9.0 | 7.0 |" in text  # the year, not the period
    assert "| P(US is a net exporter), 2022 | | | 0.97 |" in text
    assert "Diagnostics pass" in text and "max R-hat 1.004" in text and "wall 300 s" in text


def test_summary_of_the_earlier_layout_gives_the_same_block(tmp_path):
    readme = _write(tmp_path, DIAG)
    update_readme(tmp_path / "summary.csv", readme)
    new = readme.read_text()
    readme = _write(tmp_path, DIAG, legacy=True)
    assert "2000-2022" in (tmp_path / "summary.csv").read_text()
    update_readme(tmp_path / "summary.csv", readme)
    assert readme.read_text() == new


def test_failed_diagnostics_are_stated(tmp_path):
    readme = _write(tmp_path, {**DIAG, "passed": False, "divergences": 2, "failures": ["2 divergences > 0"]})
    update_readme(tmp_path / "summary.csv", readme)
    text = readme.read_text()
    assert "do not meet" in text and "2 divergences > 0" in text and "provisional" in text


def test_readme_without_markers_is_refused(tmp_path):
    _write(tmp_path, DIAG)
    (tmp_path / "other.md").write_text("no markers\n")
    with pytest.raises(ValueError, match="markers"):
        update_readme(tmp_path / "summary.csv", tmp_path / "other.md")
    assert (tmp_path / "other.md").read_text() == "no markers\n"


def test_prior_interval_contraction_and_flag_columns(tmp_path):
    readme = _write(tmp_path, DIAG)
    summary = pd.read_csv(tmp_path / "summary.csv")
    summary["prior_q05"], summary["prior_q50"], summary["prior_q95"] = [100.0, 1.0, 0.0], [600.0, 10.0, 1.0], [1100.0, 100.0, 1.0]
    summary["contraction"], summary["weakly_informed"] = [0.6, 0.8, None], [False, False, False]
    weak = summary.iloc[[0]].assign(quantity="unregistered_mining", region="RoW", prior_q95=500.0, contraction=0.0,
                                    weakly_informed=True)
    pd.concat([summary, weak]).to_csv(tmp_path / "summary.csv", index=False)
    update_readme(tmp_path / "summary.csv", readme)
    text = readme.read_text()
    assert "| quantity | median | 90% interval | mean | prior 90% interval | contraction | weakly informed |" in text
    assert "| Unregistered mining, China, cumulative (kt REO) | 690 | 500 – 900 | 700 | 100 – 1,100 | 0.60 | no |" in text
    assert "| Unregistered mining, RoW, cumulative (kt REO) | 690 | 500 – 900 | 700 | 100 – 500 | 0.00 | **yes** |" in text
    assert "| P(US is a net exporter), 2022 | | | 0.97 | | | |" in text
    assert "contraction below 0.3" in text


def test_rows_come_from_the_case_named_in_diagnostics_or_from_the_caller(tmp_path):
    readme = _write(tmp_path, {k: v for k, v in DIAG.items() if k != "case"})
    with pytest.raises(ValueError, match="names no case"):
        update_readme(tmp_path / "summary.csv", readme)
    mine = [KeyRow("My row (kt)", "unregistered_mining", {"region": "CN"}, (2022, 2022))]
    update_readme(tmp_path / "summary.csv", readme, rows=mine)
    text = readme.read_text()
    assert "| My row (kt) | 6.9 | 5.0 – 9.0 | 7.0 |" in text and "Unregistered mining, China" not in text
    assert "bayesmfa run CASE" in text  # no case named: the paragraph does not pretend one
