"""Priors on flows (the ``flows`` section, a soft constraint) and a per-edge ``sd_logit``.

Checks: which instances and years an entry selects and its errors; the potential equals the lognormal
density of each selected flow (closed form); fused = reference in log density and gradient; power-scaling
sees a ``flows`` prior section; with wide structural priors the flow's prior is close to the stated
lognormal (what the soft constraint means); per-edge widths reach the model and bad keys are refused.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytest
from conftest import assert_fused_equals_reference, value_point
from scipy import stats

import bayesmfa as bm
from bayesmfa.core.flowpriors import flow_prior_rows
from bayesmfa.core.priors import resolve_priors
from bayesmfa.errors import PriorError

YEARS = [2000, 2001, 2002]

SYSTEM = {
    "name": "twoland",
    "unit": "kt",
    "time": {"dim": "year", "start": YEARS[0], "end": YEARS[-1]},
    "dims": {"region": ["north", "south"]},
    "processes": {"mining": {"dims": ["region"]}, "use": {"dims": ["region"]}, "scrap": {"dims": ["region"]}},
    "boundary": {"inputs": ["mining"], "sinks": ["use", "scrap"]},
    "flows": {
        "ore": {"from": "mining", "to": "use"},
        "waste": {"from": "mining", "to": "scrap"},
        "ore_trade": {"from": "mining", "to": "use", "cross": "region"},
    },
}

PRIORS = {
    "inputs": [{"process": "mining", "dist": "LogNormal", "median": 100, "sigma": 1.5, "source": "test"}],
    "steps": [{"target": "input", "dist": "Fixed", "value": 0.2, "source": "test"},
              {"target": "share", "dist": "Fixed", "value": 0.3, "source": "test"}],
    "shares": [{"process": "mining", "sd_logit": {"*": 1.5, "waste": 2.5}, "source": "test"}],
    "noise": [{"source_type": "*", "dist": "Fixed", "value": 0.1, "source": "test"}],
    "flows": [
        {"flow": "waste", "dist": "LogNormal", "median": 20, "sigma": 0.4, "source": "expert"},
        {"flow": "waste", "region": "south", "year": "2001-2002", "dist": "LogNormal", "median": 8, "sigma": 0.2, "source": "survey"},
        {"flow": "ore_trade", "origin": "north", "year": 2000, "dist": "LogNormal", "median": 5, "sigma": 0.5, "source": "customs"},
    ],
}

RECORDS = pd.DataFrame([{"quantity": "mining", "region": "north", "year": "2000", "value": "120", "unit": "kt",
                         "source_type": "stats", "source": "test"}])


def _problem(priors: dict | None = None) -> bm.Problem:
    return bm.make_problem(bm.system_from_dict(SYSTEM), bm.priors_from_dict(priors or PRIORS), RECORDS)


def test_entries_select_flow_instances_and_years_later_entries_win():
    problem = _problem()
    rows = flow_prior_rows(problem.priors, problem.graph)
    key = {(r.quantity, r.region or r.origin, r.year): (float(r.value), r.sigma)
           for r in rows.fillna("").itertuples()}
    assert len(rows) == 2 * 3 + 1  # waste in both regions and years, one ore_trade instance
    assert key[("waste", "north", "2001")] == (pytest.approx(20.0), 0.4)
    assert key[("waste", "south", "2000")] == (pytest.approx(20.0), 0.4)
    assert key[("waste", "south", "2002")] == (pytest.approx(8.0), 0.2)  # the later, specific entry wins
    assert key[("ore_trade", "north", "2000")] == (pytest.approx(5.0), 0.5)
    assert problem.flow_priors[0].n_obs == len(rows)
    assert problem.records.n_obs == 1  # flow priors are not records


@pytest.mark.parametrize("entry, field, message", [
    ({"flow": "slag"}, "flows[0].flow", "unknown flow 'slag'"),
    ({"flow": "waste", "origin": "north"}, "flows[0].origin", "has no dim 'origin'"),
    ({"flow": "waste", "region": "east"}, "flows[0].region", "has no region 'east'"),
    ({"flow": "waste", "year": 1999}, "flows[0].year", "not a year or range"),
    ({"dist": "LogNormal"}, "flows[0].flow", "needs 'flow'"),
])
def test_bad_flow_priors_name_file_and_key(entry, field, message):
    priors = copy.deepcopy(PRIORS)
    priors["flows"] = [{"dist": "LogNormal", "median": 5, "sigma": 0.5, "source": "x", **entry}]
    with pytest.raises(PriorError, match=message) as err:
        _problem(priors)
    assert err.value.field == field


def _arrays(model: pm.Model, point: dict) -> dict:
    names = [v.name for v in model.deterministics]
    outs = model.replace_rvs_by_values([model[n] for n in names])
    return dict(zip(names, pytensor.function(model.value_vars, outs, on_unused_input="ignore")(**point), strict=True))


def test_the_potential_is_the_lognormal_density_of_each_selected_flow():
    problem = _problem()
    model = bm.build_model(problem)
    rng = np.random.default_rng(0)
    point = {k: v + rng.normal(0, 0.3, np.shape(v)) for k, v in model.initial_point().items()}
    arr = _arrays(model, point)
    waste, trade = arr["flow_waste"], arr["flow_ore_trade"]  # (year, region), (year, origin, destination)
    expected = sum(stats.lognorm.logpdf(waste[t, r], 0.4, scale=20.0) for t in range(3) for r in range(2)
                   if not (r == 1 and t >= 1))
    expected += sum(stats.lognorm.logpdf(waste[t, 1], 0.2, scale=8.0) for t in (1, 2))
    expected += stats.lognorm.logpdf(trade[0, 0, 1], 0.5, scale=5.0)
    # a lognormal density in the flow has a -log(flow) Jacobian term the soft constraint on log(flow) leaves out
    jacobian = np.log(waste).sum() + np.log(trade[0, 0, 1])
    got = model.compile_logp(vars=[model["flow_priors"]])(point)
    assert got == pytest.approx(expected + jacobian, rel=1e-10)


def test_fused_flow_priors_equal_the_reference():
    assert_fused_equals_reference(_problem(), seed=1)


def test_flow_prior_log_density_per_draw_matches_the_model():
    from bayesmfa.core.model import flow_prior_logp

    problem = _problem()
    model = bm.build_model(problem)
    prior = pm.sample_prior_predictive(draws=4, model=model, random_seed=2).prior
    lp = flow_prior_logp(prior, problem, bm.ModelOptions())
    assert lp.dims == ("chain", "draw")
    term = model.compile_logp(vars=[model["flow_priors"]])
    for d in range(4):
        assert float(lp.isel(chain=0, draw=d)) == pytest.approx(term(value_point(model, prior, d)), rel=1e-9)


def test_per_edge_sd_logit_reaches_the_model_and_bad_keys_are_refused():
    problem = _problem()
    res = resolve_priors(problem.priors, problem.graph)
    labels = problem.graph.edge_labels(problem.graph.free_edges)
    widths = dict(zip(labels, res.share_sd, strict=True))
    assert {k: v for k, v in widths.items() if k.startswith("waste")} and all(
        v == 2.5 for k, v in widths.items() if k.startswith("waste"))
    assert all(v == 1.5 for k, v in widths.items() if not k.startswith("waste"))
    for sd, message in (({"slag": 1.0, "*": 1.0}, "matches no flow"), ({"waste": 1.0}, "does not cover"),
                        ({"waste": -1}, "must be a positive number"), ("wide", "positive number or a mapping")):
        priors = copy.deepcopy(PRIORS)
        priors["shares"][0]["sd_logit"] = sd
        with pytest.raises(PriorError, match=message) as err:
            resolve_priors(bm.priors_from_dict(priors), problem.graph)
        assert err.value.field.startswith("shares[0].sd_logit")


@pytest.mark.slow
def test_with_wide_structural_priors_a_flow_prior_is_nearly_the_flow_s_prior():
    """No records on the flow: its posterior is its prior, structural prior x soft constraint. With an input prior of
    log-sd 1.5 and logit sd 2.5 around the waste flow, the stated LogNormal(20, 0.2) should dominate."""
    priors = copy.deepcopy(PRIORS)
    priors["flows"] = [{"flow": "waste", "region": "south", "year": 2001, "dist": "LogNormal", "median": 20, "sigma": 0.2,
                        "source": "test"}]
    problem = _problem(priors)
    idata = bm.fit(problem, draws=1000, tune=1000, chains=2, seed=3)
    x = np.log(idata.posterior["flow_waste"].sel(year=2001, region="south").values.ravel())
    assert abs(np.median(x) - np.log(20)) < 0.05
    assert 0.17 < x.std() < 0.21
