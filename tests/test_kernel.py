"""The fused likelihood kernel and the after-sampling arrays agree with the reference PyMC model.

The reference model (a plain PyTensor graph) is the definition; the fused
model (one compiled kernel with a hand-written gradient) and the NumPy
recomputation of the named arrays and of the pointwise log-likelihood must
give the same numbers at arbitrary parameter values, not only at the prior
mean.
"""

from __future__ import annotations

import json
from pathlib import Path

import arviz as az
import numpy as np
import pymc as pm
import pytest

import bayesmfa as bm
from bayesmfa.cases import demo, ree
from bayesmfa.core import forward
from bayesmfa.core.graph import Graph
from bayesmfa.core.model import pointwise_loglik
from bayesmfa.inference.io import load, save

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ree_problem():
    return ree.load(REPO)


def _random_points(model: pm.Model, n: int, seed: int, scale: float) -> list[dict]:
    rng = np.random.default_rng(seed)
    base = model.initial_point()
    return [{k: v + rng.normal(0.0, scale, np.shape(v)) for k, v in base.items()} for _ in range(n)]


@pytest.mark.parametrize("case", ["demo", "ree"])
def test_fused_log_density_and_gradient_equal_reference(case, ree_problem):
    problem = ree_problem if case == "ree" else demo.load(REPO)
    options = ree.options() if case == "ree" else bm.ModelOptions()
    ref = bm.build_model(problem, options)
    fused = bm.build_model(problem, options, fused=True)
    assert [v.name for v in ref.value_vars] == [v.name for v in fused.value_vars]
    logp_ref, logp_fused = ref.compile_logp(), fused.compile_logp()
    grad_ref, grad_fused = ref.compile_dlogp(), fused.compile_dlogp()
    for point in _random_points(ref, 4, seed=11, scale=0.5):
        a, b = logp_ref(point), logp_fused(point)
        assert np.isfinite(a)
        assert b == pytest.approx(a, rel=1e-10, abs=1e-8)
        ga, gb = grad_ref(point), grad_fused(point)
        np.testing.assert_allclose(gb, ga, rtol=1e-8, atol=1e-8 * np.abs(ga).max())


def test_fused_model_with_noise_scale_and_forced_likelihood_equals_reference(ree_problem):
    options = bm.ModelOptions(share_knots_every=4, floor=0.1, centred_inputs=("mining",), likelihood="studentt", noise_scale=1.7)
    ref, fused = bm.build_model(ree_problem, options), bm.build_model(ree_problem, options, fused=True)
    point = _random_points(ref, 1, seed=5, scale=0.3)[0]
    assert fused.compile_logp()(point) == pytest.approx(ref.compile_logp()(point), rel=1e-10)
    np.testing.assert_allclose(fused.compile_dlogp()(point), ref.compile_dlogp()(point), rtol=1e-8, atol=1e-6)


@pytest.fixture(scope="module")
def ree_prior(ree_problem):
    model = bm.build_model(ree_problem, ree.options())
    return model, pm.sample_prior_predictive(draws=40, model=model, random_seed=3)


def test_named_arrays_recomputed_with_numpy_equal_model_deterministics(ree_problem, ree_prior):
    _, idata = ree_prior
    options = ree.options()
    layout = forward.Layout.from_options(ree_problem.graph, options)
    derived = forward.derived_arrays(idata.prior, layout)
    assert {"share", "flow_smuggled", "input_separation", "output_mining", "external_mining"} <= set(derived.data_vars)
    for name in derived.data_vars:
        expected = idata.prior[name].transpose(*derived[name].dims).values
        np.testing.assert_allclose(derived[name].values, expected, rtol=1e-10, atol=1e-12, err_msg=name)


def test_pointwise_loglik_equals_pymc_log_likelihood(ree_problem, ree_prior):
    model, idata = ree_prior
    post = idata.prior.isel(draw=slice(0, 10))
    fake = az.InferenceData(posterior=post)
    expected = pm.compute_log_likelihood(fake, model=model, extend_inferencedata=False, progressbar=False)
    got = pointwise_loglik(post, ree_problem, ree.options())
    assert set(got.data_vars) == set(expected.data_vars) == {"records", "records_t"}
    for name in got.data_vars:
        assert list(got[name].coords[got[name].dims[-1]].values) == list(expected[name].coords[expected[name].dims[-1]].values)
        np.testing.assert_allclose(got[name].values, expected[name].transpose(*got[name].dims).values, rtol=1e-9, atol=1e-9)


def test_saved_file_holds_parameters_and_load_restores_named_arrays(tmp_path, ree_problem, ree_prior):
    _, idata = ree_prior
    posterior = idata.prior.copy()
    options = ree.options()
    posterior.attrs.update({"system_yaml": ree_problem.system.to_yaml(), "model_options": json.dumps(options.as_dict())})
    fit = az.InferenceData(posterior=posterior)
    path = save(fit, tmp_path / "posterior.nc")
    raw = az.from_netcdf(str(path))
    assert "flow_smuggled" not in raw.posterior and "share" not in raw.posterior
    assert "share_logit_innovation" in raw.posterior and "input_log_level" in raw.posterior
    back = load(path)
    for name in ("flow_smuggled", "output_separation", "external_mining_unregistered", "share"):
        np.testing.assert_allclose(back.posterior[name].values, posterior[name].transpose(*back.posterior[name].dims).values,
                                   rtol=1e-12, err_msg=name)
    assert "derived_arrays" not in back.posterior.attrs


def test_fused_option_refuses_cyclic_systems():
    doc = {
        "name": "loop", "unit": "kt", "time": {"dim": "year", "start": 2000, "end": 2001},
        "dims": {}, "processes": {"a": {}, "b": {}, "c": {}},
        "boundary": {"inputs": ["a"], "sinks": ["c"]},
        "flows": {"ab": {"from": "a", "to": "b"}, "ba": {"from": "b", "to": "a"}, "bc": {"from": "b", "to": "c"}},
    }
    system = bm.system_from_dict(doc)
    graph = Graph(system)
    assert graph.depth is None
    problem = type("P", (), {"graph": graph})()
    with pytest.raises(ValueError, match="acyclic"):
        bm.build_model(problem, fused=True)


def test_centred_share_walks_are_a_reparametrisation(ree_problem):
    """Centring share walks changes the parameters, not the model: same prior on the shares, same fused/reference density."""
    from dataclasses import replace

    from scipy import stats

    base = ree.options()
    centred = replace(base, centred_shares=("cracking", "separation"))
    ref = bm.build_model(ree_problem, centred)
    assert "share_logit_walk" in {v.name for v in ref.free_RVs}
    point = _random_points(ref, 1, seed=2, scale=0.3)[0]
    fused = bm.build_model(ree_problem, centred, fused=True)
    assert fused.compile_logp()(point) == pytest.approx(ref.compile_logp()(point), rel=1e-10)
    a = pm.sample_prior_predictive(draws=3000, model=bm.build_model(ree_problem, base), random_seed=8, var_names=["share"]).prior
    b = pm.sample_prior_predictive(draws=3000, model=ref, random_seed=9, var_names=["share"]).prior
    few = pm.sample_prior_predictive(draws=20, model=ref, random_seed=1).prior
    derived = forward.derived_arrays(few, forward.Layout.from_options(ree_problem.graph, centred))
    edge = "salt_trade[origin=CN,destination=US]"
    for year in (2000, 2011, 2022):
        x, y = (d["share"].sel(edge=edge, year=year).values.ravel() for d in (a, b))
        assert stats.ks_2samp(x, y).pvalue > 0.01, year
    for name in ("share", "flow_salt_trade", "output_separation"):
        np.testing.assert_allclose(derived[name].values, few[name].transpose(*derived[name].dims).values, rtol=1e-10)


def test_centred_shares_must_name_processes_that_split():
    problem = demo.load(REPO)
    with pytest.raises(ValueError, match="centred_shares"):
        bm.build_model(problem, bm.ModelOptions(centred_shares=("no_such_process",)))


def test_centred_shares_and_inputs_take_process_instances(ree_problem):
    """An instance label centres that instance's walks only; an unknown label is refused with the processes that split."""
    graph = ree_problem.graph
    layout = forward.Layout(graph, 4, centred_inputs=("mining[region=CN]",), centred_shares=("use[region=US]", "mining"))
    sources = [graph.nodes[graph.edges[e].source] for e in graph.free_edges]
    expected = [n.label == "use[region=US]" or n.process == "mining" for n in sources]
    assert layout.centred_share.tolist() == expected
    assert any(n.process == "use" and n.label != "use[region=US]" for n in sources)  # the other regions' use stays non-centred
    assert layout.centred.tolist() == [n.label == "mining[region=CN]" for n in graph.input_nodes]
    assert layout.centred.sum() == 1
    model = bm.build_model(ree_problem, bm.ModelOptions(share_knots_every=4, centred_shares=("use[region=US]",)))
    assert "share_logit_walk" in {v.name for v in model.free_RVs}
    with pytest.raises(ValueError, match=r"centred_shares \['use\[region=XX\]'\]"):
        bm.build_model(ree_problem, bm.ModelOptions(centred_shares=("use[region=XX]",)))
    with pytest.raises(ValueError, match="centred_inputs"):
        bm.build_model(ree_problem, bm.ModelOptions(centred_inputs=("consumption[region=US]",)))
