"""A system of one year: no year-on-year steps, so no step priors are needed (a given one is unused)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayesmfa as bm

SYSTEM = {
    "name": "one_year",
    "unit": "kt",
    "time": {"dim": "year", "start": 2020, "end": 2020},
    "dims": {},
    "processes": {"mining": {}, "market": {}, "use": {}, "waste": {}},
    "boundary": {"inputs": ["mining"], "sinks": ["use", "waste"]},
    "flows": {"ore": {"from": "mining", "to": "market"}, "product": {"from": "market", "to": "use"},
              "scrap": {"from": "market", "to": "waste"}},
}
PRIORS = {
    "inputs": [{"process": "mining", "dist": "LogNormal", "median": 100, "sigma": 1.0, "source": "test"}],
    "shares": [{"process": "market", "shares": {"product": 0.8, "scrap": 0.2}, "sd_logit": 1.0, "source": "test"}],
    "noise": [{"source_type": "stats", "dist": "Fixed", "value": 0.05, "source": "test"}],
}
RECORDS = pd.DataFrame([
    {"quantity": "mining", "year": "2020", "value": "120", "unit": "kt", "source_type": "stats", "source": "test"},
    {"quantity": "use", "year": "2020", "value": "90", "unit": "kt", "source_type": "stats", "source": "test"},
])


def _problem(priors: dict) -> bm.Problem:
    return bm.make_problem(bm.system_from_dict(SYSTEM), bm.priors_from_dict(priors), RECORDS)


def test_no_step_priors_are_needed_and_a_given_one_changes_nothing():
    bare = bm.build_model(_problem(PRIORS))
    with_steps = bm.build_model(_problem({**PRIORS, "steps": [
        {"target": "input", "dist": "LogNormal", "median": 0.1, "sigma": 0.5, "source": "test"},
        {"target": "share", "dist": "LogNormal", "median": 0.2, "sigma": 0.5, "source": "test"}]}))
    # the same free parameters and the same log density at the same point: the steps are not in the model
    assert sorted(v.name for v in bare.free_RVs) == sorted(v.name for v in with_steps.free_RVs)
    point = bare.initial_point()
    point = {k: v + 0.3 for k, v in point.items()}
    assert bare.compile_logp()(point) == pytest.approx(with_steps.compile_logp()(point), abs=1e-12)


def test_one_year_fits_with_exact_balance_and_follows_the_records():
    problem = _problem(PRIORS)
    idata = bm.fit(problem, draws=1000, tune=1000, chains=4, seed=3, progressbar=False, prior_draws=0)
    post = idata.posterior
    assert post.sizes["year"] == 1
    assert float(bm.balance_residuals(post, problem.graph).max()) < 1e-9
    # 5% records: mining within a few percent of 120, use of 90, so scrap ~ 30
    assert float(post["output_mining"].median()) == pytest.approx(120, rel=0.05)
    assert float(post["flow_scrap"].median()) == pytest.approx(30, rel=0.2)
    np.testing.assert_allclose(post["flow_product"] + post["flow_scrap"], post["output_market"], rtol=1e-12)
