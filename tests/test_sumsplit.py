"""Share logits sampled as a group's log-sum-exp and split (``ModelOptions.share_sums``): a reparametrisation, not a new model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pymc as pm
import pytest
from scipy import stats

import bayesmfa as bm
from bayesmfa.cases import demo
from bayesmfa.core import forward
from bayesmfa.core.priors import resolve_priors

REPO = Path(__file__).resolve().parents[1]
PAIRS = bm.ModelOptions(share_sums=(("ore_trade", "refined_trade"),))


@pytest.fixture(scope="module")
def problem() -> bm.Problem:
    return demo.load(REPO)


def _split(sizes: list[int]) -> forward.SumSplit:
    return forward.SumSplit(np.repeat(np.arange(len(sizes)), sizes), np.cumsum([0, *sizes[:-1]]).astype(int))


@pytest.mark.parametrize("sizes", [[2], [3], [2, 3]])
def test_sum_split_is_a_volume_preserving_bijection(sizes):
    """Round trip, tau = logsumexp of the group's logits, delta = differences to the first, and |det J| = 1."""
    split = _split(sizes)
    rng = np.random.default_rng(0)
    n = sum(sizes)
    logits = rng.normal(0.0, 2.0, (n, 1))
    coords = split.to_coords(forward.NUMPY, logits)
    np.testing.assert_allclose(split.to_logits(forward.NUMPY, coords), logits, atol=1e-12)
    start = 0
    for size in sizes:
        members = logits[start:start + size, 0]
        assert coords[start, 0] == pytest.approx(np.log(np.exp(members).sum()))
        np.testing.assert_allclose(coords[start + 1:start + size, 0], members[1:] - members[0], atol=1e-12)
        start += size
    h = 1e-6
    jac = np.empty((n, n))
    for j in range(n):
        up, down = coords.copy(), coords.copy()
        up[j, 0] += h
        down[j, 0] -= h
        jac[:, j] = (split.to_logits(forward.NUMPY, up) - split.to_logits(forward.NUMPY, down))[:, 0] / (2 * h)
    assert abs(np.linalg.det(jac)) == pytest.approx(1.0, abs=1e-6)


def test_groups_pair_flow_types_by_coords_and_bad_entries_are_refused(problem):
    graph = problem.graph
    layout = forward.Layout.from_options(graph, PAIRS)
    labels = graph.edge_labels(graph.free_edges)
    groups = [[labels[i] for i in g] for g in layout.share_groups]
    assert sorted(groups) == sorted([["ore_trade[origin=A,destination=B]", "refined_trade[origin=A,destination=B]"],
                                     ["ore_trade[origin=B,destination=A]", "refined_trade[origin=B,destination=A]"]])
    assert layout.summed_share.sum() == 4
    explicit = forward.Layout(graph, share_sums=(("ore_trade[origin=A,destination=B]", "refined_trade[origin=B,destination=A]"),))
    assert [[labels[i] for i in g] for g in explicit.share_groups] == [["ore_trade[origin=A,destination=B]",
                                                                        "refined_trade[origin=B,destination=A]"]]
    with pytest.raises(ValueError, match=r"\['no_such_flow'\] are neither flow types nor free share edges"):
        forward.Layout(graph, share_sums=(("ore_trade", "no_such_flow"),))
    with pytest.raises(ValueError, match="no two free share edges"):
        forward.Layout(graph, share_sums=(("end_use",),))
    with pytest.raises(ValueError, match="already in another group"):
        forward.Layout(graph, share_sums=(("ore_trade", "refined_trade"), ("ore_trade[origin=A,destination=B]",
                                                                             "refined_trade[origin=A,destination=B]")))


def test_model_density_is_the_random_walk_density_of_the_logits(problem):
    """The prior term of the summed logits in the sampler's coordinates (Jacobian included) is the Gaussian random-walk log
    density of the logits they map to, up to a constant: the transform adds no Jacobian term."""
    model = bm.build_model(problem, PAIRS)
    names = {v.name for v in model.value_vars}
    assert "share_logit_summed_sumsplit__" in names
    layout = forward.Layout.from_options(problem.graph, PAIRS)
    resolved = resolve_priors(problem.priors, problem.graph)
    summed = layout.summed_edges
    mean, sd = resolved.share_mean[summed], resolved.share_sd[summed]
    logp = model.compile_logp(vars=[model["share_logit_summed"]], jacobian=True)  # the prior term, transform included
    rng = np.random.default_rng(3)
    base = model.initial_point()
    step = np.exp(base["share_step_log__"])[layout.share_step_index[summed]]  # the demo learns its share steps: held fixed here

    def walk_logp(eta: np.ndarray) -> float:
        return float(stats.norm.logpdf(eta[:, 0], mean, sd).sum() + stats.norm.logpdf(np.diff(eta, axis=1), 0.0, step[:, None]).sum())

    values = []
    for _ in range(3):
        point = dict(base)
        point["share_logit_summed_sumsplit__"] = rng.normal(0.0, 1.5, base["share_logit_summed_sumsplit__"].shape)
        eta = layout.sum_split.to_logits(forward.NUMPY, point["share_logit_summed_sumsplit__"])
        values.append((float(logp(point)), walk_logp(eta)))
    for (a, wa), (b, wb) in zip(values, values[1:]):
        assert a - b == pytest.approx(wa - wb, rel=1e-9, abs=1e-9)


def test_same_prior_same_named_arrays_and_fused_density(problem):
    """The prior on the shares is unchanged; stored logits give the model's named arrays in NumPy; fused = reference."""
    ref = bm.build_model(problem, PAIRS)
    fused = bm.build_model(problem, PAIRS, fused=True)
    point = ref.initial_point()
    rng = np.random.default_rng(5)
    point = {k: v + rng.normal(0.0, 0.3, np.shape(v)) for k, v in point.items()}
    assert fused.compile_logp()(point) == pytest.approx(ref.compile_logp()(point), rel=1e-10)
    np.testing.assert_allclose(fused.compile_dlogp()(point), ref.compile_dlogp()(point), rtol=1e-7, atol=1e-9)
    a = pm.sample_prior_predictive(draws=3000, model=bm.build_model(problem), random_seed=8, var_names=["share"]).prior
    b = pm.sample_prior_predictive(draws=3000, model=ref, random_seed=9, var_names=["share"]).prior
    few = pm.sample_prior_predictive(draws=20, model=ref, random_seed=1).prior
    for edge in ("ore_trade[origin=A,destination=B]", "refined_trade[origin=B,destination=A]"):
        for year in (2010, 2019):
            x, y = (d["share"].sel(edge=edge, year=year).values.ravel() for d in (a, b))
            assert stats.ks_2samp(x, y).pvalue > 0.01, (edge, year)
    derived = forward.derived_arrays(few, forward.Layout.from_options(problem.graph, PAIRS))
    for name in ("share", "flow_ore_trade", "flow_refined_trade", "output_refining"):
        np.testing.assert_allclose(derived[name].values, few[name].transpose(*derived[name].dims).values, rtol=1e-10)


def test_saved_fit_with_summed_groups_loads_its_options_and_named_arrays(tmp_path, problem):
    """posterior.nc keeps the summed logits (not the named arrays); load() rebuilds the options (tuples of tuples) and arrays."""
    import json

    import arviz as az

    from bayesmfa.inference.io import load, save, stored_options

    prior = pm.sample_prior_predictive(draws=30, model=bm.build_model(problem, PAIRS), random_seed=4).prior
    posterior = prior.copy()
    posterior.attrs.update({"system_yaml": problem.system.to_yaml(), "model_options": json.dumps(PAIRS.as_dict())})
    path = save(az.InferenceData(posterior=posterior), tmp_path / "posterior.nc")
    raw = az.from_netcdf(str(path))
    assert "share_logit_summed" in raw.posterior and "flow_ore_trade" not in raw.posterior
    back = load(path)
    assert stored_options(back) == PAIRS
    for name in ("flow_ore_trade", "flow_refined_trade", "share"):
        np.testing.assert_allclose(back.posterior[name].values, posterior[name].transpose(*back.posterior[name].dims).values,
                                   rtol=1e-12, err_msg=name)
