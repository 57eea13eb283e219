"""``<process>.external``: the inflow from outside the system alone, for a boundary input that also receives flows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import assert_fused_equals_reference

import bayesmfa as bm
from bayesmfa.errors import RecordError

YEARS = list(range(2000, 2006))
SYSTEM = {
    "name": "imports",
    "unit": "kt",
    "time": {"dim": "year", "start": YEARS[0], "end": YEARS[-1]},
    "dims": {},
    # the market is a boundary input (imports from outside) and also receives the mine's ore
    "processes": {"mining": {}, "market": {}, "use": {}},
    "boundary": {"inputs": ["mining", "market"], "sinks": ["use"]},
    "flows": {"ore": {"from": "mining", "to": "market"}, "product": {"from": "market", "to": "use"}},
}
PRIORS = {
    "inputs": [{"process": "mining", "dist": "LogNormal", "median": 50, "sigma": 1.0, "source": "test"},
               {"process": "market", "dist": "LogNormal", "median": 20, "sigma": 1.0, "source": "test"}],
    "steps": [{"target": "input", "dist": "Fixed", "value": 0.1, "source": "test"},
              {"target": "share", "dist": "Fixed", "value": 0.1, "source": "test"}],
    "noise": [{"source_type": "stats", "dist": "Fixed", "value": 0.03, "source": "test"}],
}


def _records(quantities: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame([{"quantity": q, "year": str(y), "value": "1", "unit": "kt", "source_type": "stats", "source": "test"}
                         for y in YEARS for q in quantities])


def _problem(quantities: tuple[str, ...] = ("mining", "market.external", "use")) -> bm.Problem:
    return bm.make_problem(bm.system_from_dict(SYSTEM), bm.priors_from_dict(PRIORS), _records(quantities))


def test_external_is_the_input_less_the_entering_flows():
    problem = _problem()
    rec = problem.records
    row = rec.numerator.tocsr()[1].toarray().ravel()  # market.external in the first year
    assert sorted(row[row != 0].tolist()) == [-1.0, 1.0]
    truth, table = bm.simulate_records(problem, seed=4, noise=1e-9)
    external = table[table["quantity"] == "market.external"]["value"].astype(float).to_numpy()
    np.testing.assert_allclose(external, truth["external_market"].values.ravel(), rtol=1e-6)
    assert not np.allclose(external, truth["input_market"].values.ravel(), rtol=0.01)  # not the total input


def test_fused_kernel_and_reference_model_agree_with_weighted_records():
    assert_fused_equals_reference(_problem(), seed=0, scale=0.3)


def test_a_fit_recovers_the_external_inflow_apart_from_the_ore():
    problem = _problem()
    truth, table = bm.simulate_records(problem, seed=11)
    fitted = bm.make_problem(problem.system, problem.priors, table.drop(columns=["file", "row", "record_id"]))
    idata = bm.fit(fitted, draws=500, tune=1000, chains=4, seed=1, progressbar=False, prior_draws=0)
    post = idata.posterior["external_market"]
    lo, hi = post.quantile(0.02, ("chain", "draw")), post.quantile(0.98, ("chain", "draw"))
    inside = ((truth["external_market"] >= lo) & (truth["external_market"] <= hi)).values
    assert inside.mean() >= 5 / 6, inside


def test_external_of_a_process_without_external_inflow_is_refused():
    with pytest.raises(RecordError, match="no external inflow") as err:
        _problem(("use.external",))
    assert err.value.field == "quantity"
