"""The worked example of the docs (docs/examples/onecycle): a one-year national cycle with stocks, per-record sds,
a difference record and flow priors, checked and fitted end to end as a user would (``bayesmfa`` on the folder)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayesmfa as bm
from bayesmfa.cases import load_case
from bayesmfa.core import datacheck

ROOT = Path(__file__).resolve().parents[1]
CASE = ROOT / "docs" / "examples" / "onecycle"


def test_the_example_passes_its_checks_and_uses_every_new_feature():
    assert datacheck.check_data(CASE) == []
    problem = load_case(CASE)
    rec = problem.records
    assert problem.system.years == (2020,)
    assert rec.fixed_noise.all() and rec.source_types == []  # every record has its own sd or cv: no noise priors
    assert rec.signed.sum() == 3  # the difference, the stock change and the stock level
    assert problem.system.stocks["stockpile"].initial == 60.0
    assert problem.flow_priors is not None and problem.flow_priors[0].n_obs == 2
    done = subprocess.run([sys.executable, "-m", "bayesmfa.drivers.cli", "check", str(CASE)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_the_example_fits_end_to_end_from_the_command_line(tmp_path):
    out = tmp_path / "onecycle"
    cmd = [sys.executable, "-m", "bayesmfa.drivers.cli", "run", str(CASE), "--target-accept", "0.99", "--out", str(out), "--seed", "0",
           "--no-progress"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    diag = json.loads((out / "diagnostics.json").read_text())
    assert diag["divergences"] == 0 and diag["max_rhat"] <= 1.01 and diag["min_ess_bulk"] >= 400
    problem = load_case(CASE)
    idata = bm.load(out / "posterior.nc", problem)
    post = idata.posterior
    assert float(bm.balance_residuals(post, problem.graph).max()) < 1e-9
    change = post["stock_change_stockpile"].sel(year=2020)
    np.testing.assert_allclose(post["stock_stockpile"].sel(year=2020), 60.0 + change, rtol=1e-12)
    # the stockpile records (change -15 +- 10, level 45 +- 5) pin a drawdown: the whole 90 % interval is below zero
    assert float(change.quantile(0.95)) < 0
    summary = pd.read_csv(out / "summary.csv")
    assert {"stock_change_stockpile", "stock_stockpile", "stock_change_in_use"} <= set(summary["quantity"])
    checks = pd.read_csv(out / "record_checks.csv")
    assert len(checks) == problem.records.n_obs and not checks["misfit"].any()
