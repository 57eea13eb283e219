"""The command line as a user runs it: data check, the demo run, the report."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayesmfa as bm
from bayesmfa.drivers.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_data_check_passes_on_shipped_data(capsys):
    assert main(["data", "check", str(ROOT / "data" / "ree")]) == 0
    assert "No data problems found" in capsys.readouterr().out


def test_data_check_fails_on_corrupted_copy(tmp_path, capsys):
    copy = tmp_path / "ree"
    shutil.copytree(ROOT / "data" / "ree", copy, ignore=shutil.ignore_patterns("raw", "build"))
    df = pd.read_csv(copy / "lynas.csv", dtype=str, keep_default_na=False)
    df.loc[3, "value"] = "-2"
    df.to_csv(copy / "lynas.csv", index=False)
    assert main(["data", "check", str(copy)]) == 1
    out = capsys.readouterr().out
    assert "lynas.csv" in out and "line 5" in out and "'value'" in out


def test_run_demo_quick_and_report(tmp_path):
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "bayesmfa.drivers.cli", "run", "demo", "--out", str(out), "--quick", "--no-progress",
           "--draws", "100", "--tune", "150", "--seed", "1"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "max R-hat" in proc.stdout
    diag = json.loads((out / "diagnostics.json").read_text())
    assert {"max_rhat", "min_ess_bulk", "min_ess_tail", "divergences", "wall_s", "content_hash", "settings"} <= set(diag)
    assert diag["settings"]["seed"] == 1 and diag["settings"]["draws"] == 100
    summary = pd.read_csv(out / "summary.csv")
    # summary.csv is the saved posterior's: a row's quantiles are those of the draws bm.load gives back
    row = summary[(summary["quantity"] == "flow_ore_domestic") & (summary["region"] == "B") & (summary["year_start"] == 2011)]
    draws = bm.load(out / "posterior.nc").posterior["flow_ore_domestic"].sel(region="B", year=2011).values.ravel()
    assert len(row) == 1 and len(draws) == 2 * 100
    np.testing.assert_allclose(row[["q05", "q50", "q95"]].to_numpy()[0], np.quantile(draws, [0.05, 0.5, 0.95]), rtol=1e-9)
    # every record is checked against the fit, with its file and line
    checks = pd.read_csv(out / "record_checks.csv", keep_default_na=False)
    records = pd.read_csv(ROOT / "data" / "demo" / "records.csv")
    assert len(checks) == len(records) and checks["file"].str.endswith("records.csv").all()
    assert {"z", "p_value", "misfit", "model_q50"} <= set(checks.columns)
    families = pd.read_csv(out / "record_families.csv")
    assert families["n_records"].sum() == len(records)
    assert (out / "record_conflicts.csv").is_file()
    # a second run that fails leaves the first result intact
    before = (out / "summary.csv").read_bytes()
    bad = subprocess.run([*cmd[:-2], "--seed", "x"], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode != 0
    assert (out / "summary.csv").read_bytes() == before
    assert main(["report", str(out)]) == 0
    html = (out / "report.html").read_text()
    assert "<img" in html and "data:image/png;base64," in html
    assert "Records the fit cannot reproduce" in html and "Predictive checks per record family" in html


def test_run_refuses_unknown_case():
    with pytest.raises(SystemExit):
        main(["run", "copper", "--out", "x"])
