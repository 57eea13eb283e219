"""Stocks: a process that holds a stock whose yearly change takes either sign.

A stock ``S`` on process ``p`` is two non-negative latent flows (additions
``p -> S`` and releases ``S_withdrawal -> p``); its change is their difference.
The tests check the expansion, the errors, exact balance in every draw, and
recovery of a known stock path with both signs from records of mining and use.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

import bayesmfa as bm
from bayesmfa.core.graph import Graph
from bayesmfa.errors import SpecError

YEARS = list(range(2000, 2010))
#: true yearly stock change of the market (kt/yr): builds up, draws down, builds up again
TRUE_CHANGE = np.array([2.0, 3.0, 3.0, 1.0, 0.0, -1.0, -3.0, -4.0, -2.0, 1.5])
TRUE_MINING = 10.0 + np.arange(len(YEARS), dtype=float)

SYSTEM = {
    "name": "stocked",
    "unit": "kt",
    "time": {"dim": "year", "start": YEARS[0], "end": YEARS[-1]},
    "dims": {},
    "processes": {"mining": {}, "market": {}, "use": {}},
    "boundary": {"inputs": ["mining"], "sinks": ["use"]},
    "flows": {"ore": {"from": "mining", "to": "market"}, "product": {"from": "market", "to": "use"}},
    "stocks": {"reserve": {"process": "market", "description": "stockpile"}},
}

PRIORS = {
    "inputs": [
        {"process": "mining", "dist": "LogNormal", "median": 10, "sigma": 1.0, "source": "test"},
        {"process": "reserve_withdrawal", "dist": "LogNormal", "median": 1, "sigma": 1.5, "source": "test"},
    ],
    "steps": [
        {"target": "input", "dist": "Fixed", "value": 0.3, "source": "test"},
        {"target": "input", "process": "reserve_withdrawal", "dist": "Fixed", "value": 1.0, "source": "test"},
        {"target": "share", "dist": "Fixed", "value": 1.0, "source": "test"},
    ],
    "shares": [{"process": "market", "shares": {"product": 0.9, "reserve_addition": 0.1}, "sd_logit": 1.5, "source": "test"}],
    "noise": [{"source_type": "stats", "dist": "Fixed", "value": 0.02, "source": "test"}],
}


def _records() -> pd.DataFrame:
    use = TRUE_MINING - TRUE_CHANGE
    rows = []
    for i, year in enumerate(YEARS):
        for quantity, value in (("mining", TRUE_MINING[i]), ("use", use[i])):
            rows.append({"quantity": quantity, "year": str(year), "value": f"{value:.6g}", "unit": "kt",
                         "source_type": "stats", "source": "known truth"})
    return pd.DataFrame(rows)


def _problem(system: dict | None = None) -> bm.Problem:
    return bm.make_problem(bm.system_from_dict(system or SYSTEM), bm.priors_from_dict(PRIORS), _records())


def test_a_stock_expands_into_a_sink_an_input_and_two_flows():
    system = bm.system_from_dict(SYSTEM)
    stock = system.stocks["reserve"]
    assert (stock.addition, stock.release, stock.withdrawal) == ("reserve_addition", "reserve_release", "reserve_withdrawal")
    assert "reserve" in system.sinks and "reserve_withdrawal" in system.inputs
    assert (system.flows["reserve_addition"].source, system.flows["reserve_addition"].target) == ("market", "reserve")
    assert (system.flows["reserve_release"].source, system.flows["reserve_release"].target) == ("reserve_withdrawal", "market")


def test_a_stock_restricted_to_some_coords_connects_only_those_instances(tiny_system_dict):
    tiny_system_dict["stocks"] = {"hoard": {"process": "refining", "coords": {"region": ["B"]}}}
    graph = Graph(bm.system_from_dict(tiny_system_dict))
    labels = [e.label for e in graph.edges if e.flow.startswith("hoard")]
    assert labels == ["hoard_addition[region=B]", "hoard_release[region=B]"]
    assert [n.label for n in graph.nodes if n.process.startswith("hoard")] == ["hoard[region=B]", "hoard_withdrawal[region=B]"]


@pytest.mark.parametrize(
    ("stocks", "field", "message"),
    [
        ({"s": {"process": "nowhere"}}, "stocks.s.process", "unknown process"),
        ({"s": {"process": "use"}}, "stocks.s.process", "cannot also hold a stock"),
        ({"s": {"process": "refining", "coords": {"region": ["Z"]}}}, "stocks.s.coords.region", "unknown coords"),
        ({"s": {"process": "refining", "coords": {"colour": ["red"]}}}, "stocks.s.coords.colour", "no dim"),
        ({"ore": {"process": "refining"}}, "stocks.ore", "already taken"),
        ({"s": {"process": "refining", "size": 3}}, "stocks.s", "unknown keys"),
    ],
)
def test_bad_stock_declarations_name_the_field(tiny_system_dict, stocks, field, message):
    tiny_system_dict["stocks"] = stocks
    with pytest.raises(SpecError, match=message) as err:
        bm.system_from_dict(tiny_system_dict, file="system.yaml")
    assert err.value.field == field
    assert "system.yaml" in str(err.value)


def test_stock_arrays_are_the_difference_and_running_sum_in_every_prior_draw():
    problem = _problem()
    import pymc as pm

    from bayesmfa.core.forward import Layout, derived_arrays

    model = bm.build_model(problem)
    prior = pm.sample_prior_predictive(draws=200, model=model, random_seed=5).prior
    ds = derived_arrays(prior, Layout.from_options(problem.graph, bm.ModelOptions()))
    change = ds["flow_reserve_addition"] - ds["flow_reserve_release"]
    np.testing.assert_allclose(ds["stock_change_reserve"], change, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ds["stock_reserve"], change.cumsum("year"), rtol=0, atol=1e-9)
    assert float((ds["stock_change_reserve"] < 0).mean()) > 0.1  # both signs are reachable a priori
    assert float((ds["stock_change_reserve"] > 0).mean()) > 0.1
    # market balance: ore + release = product + addition, exactly
    lhs = ds["flow_ore"] + ds["flow_reserve_release"]
    rhs = ds["flow_product"] + ds["flow_reserve_addition"]
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12)


@pytest.mark.slow
def test_fit_recovers_a_stock_path_of_both_signs():
    problem = _problem()
    idata = bm.fit(problem, draws=500, tune=700, chains=2, seed=11)
    post = idata.posterior
    change = post["stock_change_reserve"].stack(s=("chain", "draw")).values  # (year, sample)
    lo, hi = np.quantile(change, [0.05, 0.95], axis=1)
    covered = (TRUE_CHANGE >= lo) & (TRUE_CHANGE <= hi)
    assert covered.mean() >= 0.8, (lo, hi)
    clear = np.abs(TRUE_CHANGE) >= 1.0
    median = np.median(change, axis=1)
    assert np.all(np.sign(median[clear]) == np.sign(TRUE_CHANGE[clear])), median
    level = post["stock_reserve"].isel(year=-1).values.ravel()
    assert abs(np.median(level) - TRUE_CHANGE.sum()) < 2.0
    assert float(bm.balance_residuals(post, problem.graph).max()) < 1e-9


def test_a_system_without_stocks_is_unchanged(tiny_system_dict):
    system = bm.system_from_dict(copy.deepcopy(tiny_system_dict))
    assert system.stocks == {}
    assert list(system.processes) == ["mining", "refining", "use"]
