"""Cyclic systems (recycling loops): the compiled per-year solve, its gradient, exact balance and nutpie compilation.

The system is the synthetic aluminium-like cycle of ``benchmarks/bench_cyclic.py`` with two regions
(21 processes, 36 flows: new and old scrap loop back to casting through remelting, trade between regions).
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import bayesmfa as bm
from bayesmfa.core import cyclic, forward
from bayesmfa.core.forward import NUMPY, Layout

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_cyclic.py"
YEARS = (2018, 2020)


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_cyclic", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load()


@pytest.fixture(scope="module")
def problem() -> bm.Problem:
    return bench.synthetic_problem(2, YEARS, seed=0)


def _random_point(graph: bm.Graph, rng: np.random.Generator, n_years: int = 3) -> tuple[np.ndarray, ...]:
    """External inputs (year, node), shares (year, edge) and yields (node,) at a random point."""
    layout = Layout(graph)
    external = np.zeros((n_years, graph.n_nodes))
    external[:, [n.index for n in graph.input_nodes]] = rng.lognormal(3.0, 1.0, (n_years, len(graph.input_nodes)))
    share = forward.shares(NUMPY, layout, rng.normal(0.0, 2.0, (n_years, len(graph.free_edges))))
    yields = np.ones(graph.n_nodes)
    yields[[n.index for n in graph.yield_nodes]] = rng.uniform(0.3, 1.0, len(graph.yield_nodes))
    return external, share, yields


def _dense_solve(graph: bm.Graph, external: np.ndarray, share: np.ndarray, yields: np.ndarray) -> np.ndarray:
    """The reference: M = I - (S^T diag(share) T)^T diag(y) from the dense incidence matrices, np.linalg.solve per year."""
    a = np.einsum("en,te,em->tnm", graph.source_matrix, share, graph.target_matrix)
    m = np.eye(graph.n_nodes) - np.swapaxes(a, -1, -2) * yields[None, None, :]
    return np.linalg.solve(m, external[..., None])[..., 0]


def test_system_is_cyclic_and_large_enough_in_the_benchmark() -> None:
    graph = bm.Graph(bm.system_from_dict(bench.system_dict(5)))
    assert graph.depth is None
    assert graph.n_nodes == 51 and graph.n_edges == 165  # 10 N + 1 processes, 13 N + 5 N (N - 1) flows
    template = bench.record_template(5)
    assert (template["unit"] == "share").sum() == 4 * 5 + 3 * 5 * 3


def test_propagation_equals_dense_solve_at_random_points(problem: bm.Problem) -> None:
    graph = problem.graph
    src, tgt = graph.source_index.astype(np.int64), np.array([e.target for e in graph.edges], dtype=np.int64)
    ext_t, share_t, y_t = pt.matrix("external"), pt.matrix("share"), pt.vector("yields")
    compiled = pytensor.function([ext_t, share_t, y_t], cyclic.cyclic_throughput(ext_t, share_t, y_t, src, tgt))
    rng = np.random.default_rng(7)
    for _ in range(5):
        external, share, yields = _random_point(graph, rng)
        expected = _dense_solve(graph, external, share, yields)
        scale = np.abs(expected).max()
        assert scale > 1.0
        np.testing.assert_allclose(cyclic.cyclic_solve(external, share, yields, src, tgt)[0], expected, rtol=1e-10,
                                   atol=1e-12 * scale)
        np.testing.assert_allclose(compiled(external, share, yields), expected, rtol=1e-10, atol=1e-12 * scale)
        numpy_path = forward.cyclic_throughput(NUMPY, graph, external, share, yields)
        np.testing.assert_allclose(numpy_path, expected, rtol=1e-10, atol=1e-12 * scale)
    # batched NumPy (sample dims in front, as after sampling) equals the per-point solves
    points = [_random_point(graph, rng) for _ in range(4)]
    stacked = [np.stack(x) for x in zip(*points, strict=True)]
    batched = forward.cyclic_throughput(NUMPY, graph, *stacked)
    for i, point in enumerate(points):
        np.testing.assert_allclose(batched[i], _dense_solve(graph, *point), rtol=1e-10)


def test_solve_balances_every_node(problem: bm.Problem) -> None:
    """T = external + inflows, and output = y T, to round-off, also with a loop gain close to 1."""
    graph = problem.graph
    src, tgt = graph.source_index.astype(np.int64), np.array([e.target for e in graph.edges], dtype=np.int64)
    rng = np.random.default_rng(3)
    external, share, yields = _random_point(graph, rng)
    yields[:] = 1.0 - 1e-6  # almost no leak: M is close to singular on the loops
    throughput = cyclic.cyclic_solve(external, share, yields, src, tgt)[0]
    inflow = np.zeros_like(throughput)
    np.add.at(inflow.T, tgt, (share * (throughput * yields)[:, src]).T)
    np.testing.assert_allclose(throughput, external + inflow, rtol=1e-9, atol=1e-9 * throughput.max())


def test_gradient_matches_finite_differences(problem: bm.Problem) -> None:
    graph = problem.graph
    src, tgt = graph.source_index.astype(np.int64), np.array([e.target for e in graph.edges], dtype=np.int64)
    rng = np.random.default_rng(11)
    external, share, yields = _random_point(graph, rng)
    weights = rng.normal(size=external.shape)

    def objective(e, s, y):  # noqa: ANN001, ANN202
        t = cyclic.cyclic_throughput(e, s, y, src, tgt)
        return (t * weights).sum() + (t * y).sum()

    pytensor.gradient.verify_grad(objective, [external, share, yields], rng=np.random.default_rng(0), eps=1e-7,
                                  abs_tol=1e-4, rel_tol=1e-4)  # one-sided differences: error ~ eps


def test_model_uses_the_compiled_solve_and_no_batched_reshape(problem: bm.Problem) -> None:
    model = bm.build_model(problem)
    ops = [node.op for node in model.compile_logp(jacobian=True).f.maker.fgraph.apply_nodes]
    assert any(isinstance(op, cyclic.CyclicSolve) for op in ops)
    assert not any(type(op).__name__ == "Blockwise" for op in ops)
    grad_ops = [node.op for node in model.compile_dlogp(jacobian=True).f.maker.fgraph.apply_nodes]
    assert any(isinstance(op, cyclic.CyclicSolveGrad) for op in grad_ops)
    assert not any(type(op).__name__ == "Blockwise" for op in grad_ops)


def test_balance_is_exact_in_prior_draws(problem: bm.Problem) -> None:
    """Every process balances in every draw of the model: input = output + loss (relative 1e-9)."""
    import pymc as pm

    model = bm.build_model(problem)
    names = [v.name for v in [*model.free_RVs, *model.deterministics] if not forward.is_derived(v.name)]
    prior = pm.sample_prior_predictive(draws=200, model=model, random_seed=5, var_names=names)
    post = prior.prior
    post = post.assign(forward.derived_arrays(post, Layout(problem.graph)))
    resid = bm.balance_residuals(post, problem.graph)
    scale = max(float(post[f"input_{p}"].max()) for p in problem.system.processes)
    assert scale > 1.0
    assert float(resid.max()) < 1e-9 * scale
    # not vacuous: a recycled flow scaled by 1e-6 is caught
    broken = post.copy()
    broken["flow_secondary"] = broken["flow_secondary"] * (1 + 1e-6)
    assert float(bm.balance_residuals(broken, problem.graph).max()) > 1e-9 * scale


def test_cyclic_propagation_and_gradient_compile_to_numba_without_object_mode(problem: bm.Problem) -> None:
    """The model's balance (external inputs, shares, yields -> throughput, output) and its gradient in numba's nopython mode."""
    graph = problem.graph
    layout = Layout(graph)
    ops = forward.pytensor_ops()
    u, share, yields = pt.matrix("u"), pt.matrix("share"), pt.vector("yields")
    throughput, output = forward.propagate(ops, layout, u, share, yields)
    rng = np.random.default_rng(2)
    weights = rng.normal(size=(len(layout.years), graph.n_nodes))
    loss = (throughput * weights).sum() + (output * weights**2).sum()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn = pytensor.function([u, share, yields], [loss, *pytensor.grad(loss, [u, share, yields])], mode="NUMBA")
    assert not bench.object_mode_warnings(caught), bench.object_mode_warnings(caught)
    assert not any(type(node.op).__name__ == "Blockwise" for node in fn.maker.fgraph.apply_nodes)
    external, s, y = _random_point(graph, rng)
    u0 = external[:, [n.index for n in graph.input_nodes]]
    value, g_u, _, _ = fn(u0, s, y)
    expected = _dense_solve(graph, external, s, y)
    np.testing.assert_allclose(value, (expected * weights).sum() + (expected * y * weights**2).sum(), rtol=1e-10)
    assert g_u.shape == u0.shape and np.all(np.isfinite(g_u))


@pytest.mark.slow
def test_nutpie_compile_has_no_object_mode(problem: bm.Problem) -> None:
    """The log density + gradient nutpie compiles runs in numba's nopython mode throughout (no op's Python perform)."""
    nutpie = pytest.importorskip("nutpie")
    from bayesmfa.inference.sampling import sampled_names

    model = bm.build_model(problem)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = nutpie.compile_pymc_model(model, var_names=sampled_names(model))
    assert not bench.object_mode_warnings(caught), bench.object_mode_warnings(caught)
    assert compiled.n_dim > 0


def test_object_mode_detector_sees_a_fallback() -> None:
    """The check above can fail: an op without a numba implementation is reported."""

    class PythonOnly(pytensor.graph.op.Op):
        __props__ = ()

        def make_node(self, x):  # noqa: ANN001, ANN201
            x = pt.as_tensor_variable(x)
            return pytensor.graph.basic.Apply(self, [x], [x.type()])

        def perform(self, node, inputs, output_storage) -> None:  # noqa: ANN001
            output_storage[0][0] = inputs[0] * 2.0

    x = pt.vector("x")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn = pytensor.function([x], PythonOnly()(x), mode="NUMBA")
    assert bench.object_mode_warnings(caught)
    np.testing.assert_allclose(fn(np.ones(2)), [2.0, 2.0])


@pytest.mark.slow
def test_small_cyclic_fit_runs_end_to_end_and_balances(problem: bm.Problem) -> None:
    idata = bm.fit(problem, backend="nutpie", draws=200, tune=300, chains=2, seed=1, prior_draws=50)
    post = idata.posterior
    assert post.sizes["draw"] == 200 and post.sizes["chain"] == 2
    resid = bm.balance_residuals(post, problem.graph)
    scale = max(float(post[f"input_{p}"].max()) for p in problem.system.processes)
    assert float(resid.max()) < 1e-9 * scale
    assert int(idata.sample_stats["diverging"].sum()) == 0
    assert float(idata.sample_stats["depth"].max()) < 10
    # the records pin the recycled metal: the posterior of the loop flow is narrower than its prior
    width = post["flow_secondary"].quantile([0.05, 0.95], dim=("chain", "draw"))
    prior_width = idata.prior["flow_secondary"].quantile([0.05, 0.95], dim=("chain", "draw"))
    assert float((width[1] - width[0]).sum()) < float((prior_width[1] - prior_width[0]).sum())
