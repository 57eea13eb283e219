"""Per-record uncertainty (``sd``, ``cv``), the additive normal likelihood and signed record algebra.

A record may carry its own absolute ``sd`` (then its likelihood is normal, on the record's own scale) or a
relative ``cv``; a source type may have ``likelihood: normal`` (a learned absolute sd). Quantities are
linear combinations with signed coefficients (``a - b``, ``2*a + b``), stock changes and stock levels.
The tests check the parser, the compiled operators, the errors, the log density against closed forms
(scipy), the fused kernel against the reference model, and that a fit follows signed records.
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
from bayesmfa.core import expressions
from bayesmfa.core.likelihoods import NORMAL, resolve_likelihoods
from bayesmfa.core.model import pointwise_loglik
from bayesmfa.errors import RecordError, SpecError

YEARS = list(range(2000, 2006))

SYSTEM = {
    "name": "signed",
    "unit": "kt",
    "time": {"dim": "year", "start": YEARS[0], "end": YEARS[-1]},
    "dims": {},
    "processes": {"mining": {}, "market": {}, "use": {}, "export": {}},
    "boundary": {"inputs": ["mining"], "sinks": ["use", "export"]},
    "flows": {"ore": {"from": "mining", "to": "market"}, "product": {"from": "market", "to": "use"},
              "shipped": {"from": "market", "to": "export"}},
    "stocks": {"reserve": {"process": "market", "initial": 20.0}},
}

PRIORS = {
    "inputs": [
        {"process": "mining", "dist": "LogNormal", "median": 10, "sigma": 1.0, "source": "test"},
        {"process": "reserve_withdrawal", "dist": "LogNormal", "median": 1, "sigma": 1.5, "source": "test"},
    ],
    "steps": [
        {"target": "input", "dist": "Fixed", "value": 0.3, "source": "test"},
        {"target": "input", "process": "reserve_withdrawal", "dist": "Fixed", "value": 1.0, "source": "test"},
        {"target": "share", "dist": "Fixed", "value": 0.5, "source": "test"},
    ],
    "shares": [{"process": "market", "shares": {"product": 0.6, "shipped": 0.3, "reserve_addition": 0.1}, "sd_logit": 1.5,
                "source": "test"}],
    "noise": [
        {"source_type": "stats", "dist": "LogNormal", "median": 0.1, "sigma": 0.3, "source": "test"},
        {"source_type": "survey", "likelihood": "normal", "dist": "LogNormal", "median": 1.0, "sigma": 0.3, "source": "test"},
        {"source_type": "robust", "likelihood": "studentt", "nu": 3, "dist": "LogNormal", "median": 0.2, "sigma": 0.3,
         "source": "test"},
    ],
}

#: quantity, year, value, source_type, sd, cv, bound
ROWS = [
    ("mining", 2000, 10.0, "stats", "", "", ""),
    ("mining", 2003, 12.0, "stats", "", "0.05", ""),  # its own cv on a lognormal source type
    ("use", 2001, 6.0, "robust", "", "", ""),
    ("use", 2004, 7.0, "robust", "", "0.1", ""),  # its own cv on a Student-t source type
    ("shipped", 2002, 3.0, "survey", "", "", ""),  # learned absolute sd (normal source type)
    ("shipped", 2005, 3.5, "survey", "", "0.2", ""),  # cv on a normal source type: sd = 0.2 x 3.5
    ("product", 2003, 6.5, "census", "0.4", "", ""),  # own sd: normal; 'census' has no noise prior
    ("ore - product - shipped", 2002, 0.5, "census", "0.3", "", ""),  # = stock change, signed
    ("reserve.change", 2004, -1.0, "census", "0.5", "", ""),
    ("reserve.level", 2005, 21.0, "census", "1.0", "", ""),
    ("2*product + shipped", 2001, 15.0, "stats", "", "", ""),
    ("reserve.change", 2005, 4.0, "census", "0.5", "", "upper"),
]


def _records(rows: list[tuple] = ROWS) -> pd.DataFrame:
    return pd.DataFrame([{"quantity": q, "year": str(y), "value": f"{v:g}", "unit": "kt", "source_type": s, "source": "test",
                          "sd": sd, "cv": cv, "bound": b} for q, y, v, s, sd, cv, b in rows])


def _problem(rows: list[tuple] = ROWS, system: dict | None = None) -> bm.Problem:
    return bm.make_problem(bm.system_from_dict(system or SYSTEM), bm.priors_from_dict(PRIORS), _records(rows))


# ----------------------------------------------------------------------------- parsing and compiling


@pytest.mark.parametrize("text, terms", [
    ("a", [(1.0, "a")]),
    ("a + b", [(1.0, "a"), (1.0, "b")]),
    ("a - b", [(1.0, "a"), (-1.0, "b")]),
    ("-a+b", [(-1.0, "a"), (1.0, "b")]),
    ("2*a + 0.5 * b.input - 1e-1*c.change", [(2.0, "a"), (0.5, "b.input"), (-0.1, "c.change")]),
])
def test_expressions_parse_signed_linear_combinations(text, terms):
    assert expressions.parse(text) == terms


@pytest.mark.parametrize("text", ["", "a +", "a * b", "a / b", "(a + b)", "2 a", "0*a", "a -- b", "+"])
def test_malformed_expressions_say_what_is_supported(text):
    with pytest.raises(expressions.ExpressionError, match="malformed quantity expression"):
        expressions.parse(text)


def test_signed_terms_compile_into_weighted_operator_rows_and_offsets():
    problem = _problem()
    rec, graph = problem.records, problem.graph
    from bayesmfa.core.records import StateIndex

    state = StateIndex(graph)
    row = rec.numerator.getrow(7).toarray().ravel()  # ore - product - shipped, 2002
    t = YEARS.index(2002)
    edges = {e.label: e.index for e in graph.edges}
    expected = np.zeros(state.size)
    expected[state.edge(t, edges["ore"])] = 1.0
    expected[state.edge(t, edges["product"])] = -1.0
    expected[state.edge(t, edges["shipped"])] = -1.0
    np.testing.assert_array_equal(row, expected)
    row = rec.numerator.getrow(10).toarray().ravel()  # 2*product + shipped, 2001
    assert row[state.edge(1, edges["product"])] == 2.0 and row[state.edge(1, edges["shipped"])] == 1.0
    level = rec.numerator.getrow(9).toarray().ravel()  # reserve.level 2005: additions - releases of every year so far
    assert np.count_nonzero(level) == 2 * len(YEARS)
    np.testing.assert_array_equal(rec.offset, [20.0 if i == 9 else 0.0 for i in range(len(ROWS))])
    np.testing.assert_array_equal(rec.signed, [q.startswith(("ore -", "reserve.")) for q, *_ in ROWS])
    assert rec.source_types == ["robust", "stats", "survey"]  # 'census' records all have their own sd
    assert list(rec.source_index[6:10]) == [-1, -1, -1, -1]
    np.testing.assert_array_equal(np.isfinite(rec.cv), [r[5] != "" for r in ROWS])


def test_likelihood_families_scales_and_observed_values():
    problem = _problem()
    lik = resolve_likelihoods(problem.priors, problem.records)
    assert list(lik.kind) == [0, 0, 1, 1, 2, 2, 2, 2, 2, 2, 0, 2]
    np.testing.assert_allclose(lik.fixed_sd[[1, 3]], np.sqrt(np.log1p(np.array([0.05, 0.1]) ** 2)))
    assert lik.fixed_sd[5] == pytest.approx(0.2 * 3.5)
    np.testing.assert_array_equal(lik.fixed_sd[6:10], [0.4, 0.3, 0.5, 1.0])
    assert np.isnan(lik.fixed_sd[[0, 2, 4, 10]]).all()
    normal = lik.kind == NORMAL
    np.testing.assert_array_equal(lik.obs[normal], problem.records.value[normal])  # natural scale, negative allowed
    np.testing.assert_array_equal(lik.floor[normal], 0.0)
    np.testing.assert_allclose(lik.obs[~normal], np.log(problem.records.value[~normal] + lik.floor[~normal]))
    forced = resolve_likelihoods(problem.priors, problem.records, likelihood="studentt")
    np.testing.assert_array_equal(forced.kind, np.where(normal, NORMAL, 1))  # normal records stay normal


@pytest.mark.parametrize("row, field, message", [
    (("ore - product", 2001, 1.0, "stats", "", "", ""), "quantity", "either sign"),
    (("reserve.change", 2001, 1.0, "stats", "", "0.1", ""), "quantity", "either sign"),
    (("product", 2001, -1.0, "census", "0.4", "", ""), "value", "only a quantity that can take either sign"),
    (("product", 2001, 1.0, "census", "0.4", "0.1", ""), "cv", "not both"),
    (("product", 2001, 1.0, "census", "-2", "", ""), "sd", "positive"),
    (("product", 2001, 1.0, "census", "x", "", ""), "sd", "not a number"),
    (("product * shipped", 2001, 1.0, "census", "1", "", ""), "quantity", "supported: names joined"),
    (("reserve.level", "2001-2003", 1.0, "census", "1", "", ""), "year", "one year"),
])
def test_bad_signed_or_uncertain_records_name_file_line_and_field(row, field, message):
    with pytest.raises(RecordError, match=message) as err:
        _problem([ROWS[0], row])
    assert err.value.field == field and err.value.row == 3


def test_a_stock_level_needs_an_initial_level():
    system = copy.deepcopy(SYSTEM)
    del system["stocks"]["reserve"]["initial"]
    with pytest.raises(RecordError, match="no initial level") as err:
        _problem([ROWS[0], ROWS[9]], system)
    assert err.value.field == "quantity"
    system["stocks"]["reserve"]["initial"] = -3
    with pytest.raises(SpecError, match="initial level must be a non-negative number"):
        bm.system_from_dict(system)


def test_a_share_denominator_must_not_subtract():
    row = ("product", 2001, 0.5, "census", "0.1", "", "")
    table = _records([ROWS[0], row])
    table["unit"] = ["kt", "share"]
    table["denominator"] = ["", "ore - shipped"]
    with pytest.raises(RecordError, match="denominator must be a sum of non-negative"):
        bm.make_problem(bm.system_from_dict(SYSTEM), bm.priors_from_dict(PRIORS), table)


# ----------------------------------------------------------------------------- densities


@pytest.fixture(scope="module")
def problem():
    return _problem()


def _point_and_arrays(model: pm.Model, seed: int) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    point = {k: v + rng.normal(0.0, 0.3, np.shape(v)) for k, v in model.initial_point().items()}
    names = [v.name for v in model.deterministics] + [v.name for v in model.free_RVs]
    outs = model.replace_rvs_by_values([model[n] for n in names])
    values = pytensor.function(model.value_vars, outs, on_unused_input="ignore")(**point)
    return point, dict(zip(names, values, strict=True))


def test_reference_record_density_equals_the_closed_forms(problem):
    model = bm.build_model(problem)
    point, arr = _point_and_arrays(model, seed=1)
    t = {y: i for i, y in enumerate(YEARS)}
    flow = {f: arr[f"flow_{f}"] for f in ("ore", "product", "shipped", "reserve_addition", "reserve_release")}
    mining = arr["output_mining"]
    use = arr["input_use"]
    change = flow["reserve_addition"] - flow["reserve_release"]
    noise = dict(zip(["robust", "stats", "survey"], arr["noise"], strict=True))
    floor = 1e-3 * np.median([r[2] for r in ROWS if r[2] > 0])

    def lognormal(x, value, sd):
        return stats.norm.logpdf(np.log(value + floor), np.log(x + floor), sd)

    expected = [
        lognormal(mining[t[2000]], 10.0, noise["stats"]),
        lognormal(mining[t[2003]], 12.0, np.sqrt(np.log1p(0.05**2))),
        stats.t.logpdf(np.log(6.0 + floor), 3, np.log(use[t[2001]] + floor), noise["robust"]),
        stats.t.logpdf(np.log(7.0 + floor), 3, np.log(use[t[2004]] + floor), np.sqrt(np.log1p(0.1**2))),
        stats.norm.logpdf(3.0, flow["shipped"][t[2002]], noise["survey"]),
        stats.norm.logpdf(3.5, flow["shipped"][t[2005]], 0.2 * 3.5),
        stats.norm.logpdf(6.5, flow["product"][t[2003]], 0.4),
        stats.norm.logpdf(0.5, (flow["ore"] - flow["product"] - flow["shipped"])[t[2002]], 0.3),
        stats.norm.logpdf(-1.0, change[t[2004]], 0.5),
        stats.norm.logpdf(21.0, 20.0 + change.cumsum()[t[2005]], 1.0),
        lognormal(2 * flow["product"][t[2001]] + flow["shipped"][t[2001]], 15.0, noise["stats"]),
        stats.norm.logcdf((4.0 - change[t[2005]]) / 0.5),  # upper bound, censored normal
    ]
    got = model.compile_logp(vars=[*model.observed_RVs, *model.potentials], sum=False)(point)
    assert sum(float(np.sum(g)) for g in got) == pytest.approx(float(np.sum(expected)), rel=1e-10)
    # the stock level in the posterior is the initial level plus the running sum
    np.testing.assert_allclose(arr["stock_reserve"], 20.0 + change.cumsum(), rtol=1e-12)
    np.testing.assert_allclose(arr["stock_change_reserve"], change, rtol=1e-12)


def test_fused_density_gradient_and_pointwise_equal_the_reference(problem):
    assert_fused_equals_reference(problem, seed=4)
    ref = bm.build_model(problem)
    prior = pm.sample_prior_predictive(draws=5, model=ref, random_seed=2).prior
    pw = pointwise_loglik(prior, problem, bm.ModelOptions())
    assert set(pw.data_vars) == {"records", "records_t", "records_n"}
    logps = {rv.name: ref.compile_logp(vars=[rv], sum=False) for rv in ref.observed_RVs}
    for draw in range(5):
        point = value_point(ref, prior, draw)
        for name, f in logps.items():
            np.testing.assert_allclose(pw[name].isel(chain=0, draw=draw).values, f(point)[0], rtol=1e-9)


def test_simulated_records_keep_the_sign_of_signed_quantities(problem):
    truth, table = bm.simulate_records(problem, seed=3)
    values = table["value"].astype(float).to_numpy()
    assert (values[~problem.records.signed] >= 0).all()
    change = (truth["flow_reserve_addition"] - truth["flow_reserve_release"]).values if "flow_reserve_addition" in truth else None
    assert change is not None
    # the simulated stock-change record scatters around the true change with its own sd 0.5
    assert abs(values[8] - change[YEARS.index(2004)]) < 5 * 0.5


# ----------------------------------------------------------------------------- a fit


@pytest.mark.slow
def test_a_fit_follows_stock_change_records_of_both_signs():
    """Known stock changes observed with sd 0.2 (and mining with cv 2 %): the posterior finds each sign."""
    true_change = np.array([2.0, 3.0, -1.5, -3.0, 1.0, -2.0])
    mining = 10.0 + np.arange(len(YEARS))
    rows = [("mining", y, mining[i], "census", "", "0.02", "") for i, y in enumerate(YEARS)]
    rows += [("reserve.change", y, true_change[i], "census", "0.2", "", "") for i, y in enumerate(YEARS)]
    rows += [("reserve.level", YEARS[-1], 20.0 + true_change.sum(), "census", "0.5", "", "")]
    problem = _problem(rows)
    idata = bm.fit(problem, draws=400, tune=600, chains=2, seed=5)
    change = idata.posterior["stock_change_reserve"].stack(s=("chain", "draw")).values
    lo, hi = np.quantile(change, [0.01, 0.99], axis=1)
    assert ((true_change >= lo) & (true_change <= hi)).all(), (lo, hi)
    assert np.all(np.sign(np.median(change, axis=1)) == np.sign(true_change))
    assert float(bm.balance_residuals(idata.posterior, problem.graph).max()) < 1e-9
