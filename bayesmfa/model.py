"""Build the PyMC model of a problem: latent flows balanced by construction.

Parametrisation (per year ``t``):

* each input process instance receives an external input ``u[t]`` whose log
  follows a random walk (non-centred; learned step size per process);
* each process instance splits its output among its outgoing flow instances
  with logistic-normal transfer coefficients (softmax of logits that follow a
  random walk; the first edge is the reference with logit 0);
* processes with a yield keep a Beta fraction; the rest is a loss;
* throughputs solve ``T = u + A^T (y * T)`` exactly (a fixed number of
  propagation steps on acyclic graphs, a linear solve when there are cycles),
  so every process balances in every draw.

Records are sparse linear functions of the state (flows, outputs, inputs),
optionally divided by another (shares) and multiplied by latent factors, and
observed on the log scale with a learned relative error per source type
(lognormal or Student-t), or as censored bounds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayesmfa.distributions import vector_variable
from bayesmfa.graph import Graph
from bayesmfa.priors import resolve_named, resolve_priors
from bayesmfa.problem import Problem


@dataclass(frozen=True)
class ModelOptions:
    """Numerical choices of the model.

    Parameters
    ----------
    likelihood : {"auto", "lognormal", "studentt"}
        Likelihood of measurement records: ``auto`` takes each source type's
        ``likelihood`` from its noise prior (lognormal where unset); the other
        two force one likelihood on every record (for sensitivity studies).
    nu : float
        Degrees of freedom of the Student-t likelihood.
    floor : float or None
        Added to mass records and their model values before taking logs, in
        the system unit, so that zero records are usable; ``None`` means
        1e-3 times the median positive mass record.
    share_floor : float
        The same for share records.
    noise_scale : float
        Multiplier on every record noise scale (for sensitivity sweeps).
    share_knots_every : int
        Spacing in years of the knots of the logit-share random walks; shares
        are interpolated linearly between knots (1 = a knot every year). Fewer
        knots mean fewer parameters where no record resolves annual changes.
        The step prior then applies per knot interval.
    centred_inputs : tuple of str
        Input processes whose log-input random walks are centred: the walk
        itself is sampled (``input_log_walk``, dims (centred_input,
        year_step)) instead of standardised innovations
        (``input_log_innovation``). The prior is the same either way.
        Centre series that records observe nearly every year (there the
        non-centred innovations are strongly correlated, since the records
        pin their cumulative sums, and NUTS needs long trajectories); leave
        weakly observed series non-centred (a centred walk with little data
        makes a funnel with its step scale).
    """

    likelihood: str = "auto"
    nu: float = 4.0
    floor: float | None = None
    share_floor: float = 1e-3
    noise_scale: float = 1.0
    share_knots_every: int = 1
    centred_inputs: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def knot_years(years: list[int], every: int) -> list[int]:
    """Knot years: every ``every``-th year, always including the first and the last."""
    knots = years[::every]
    return knots if knots[-1] == years[-1] else [*knots, years[-1]]


def interpolation_matrix(years: list[int], knots: list[int]) -> np.ndarray:
    """Linear interpolation weights, shape (year, knot)."""
    w = np.zeros((len(years), len(knots)))
    for i, y in enumerate(years):
        j = int(np.searchsorted(knots, y, side="right")) - 1
        if j >= len(knots) - 1:
            w[i, -1] = 1.0
            continue
        frac = (y - knots[j]) / (knots[j + 1] - knots[j])
        w[i, j], w[i, j + 1] = 1.0 - frac, frac
    return w


def model_coords(graph: Graph, options: ModelOptions | None = None) -> dict[str, list]:
    """Coords of every dim the model uses."""
    system = graph.system
    coords = system.all_coords()
    years = list(system.years)
    coords.update(
        {
            "year_step": years[1:],
            "node": graph.node_labels(),
            "edge": graph.edge_labels(),
            "input_node": graph.node_labels(graph.input_nodes),
            "share_edge": graph.edge_labels(graph.free_edges),
            "share_node": graph.node_labels(graph.share_nodes),
            "yield_node": graph.node_labels(graph.yield_nodes),
            "share_knot_step": knot_years(years, (options or ModelOptions()).share_knots_every)[1:],
        }
    )
    return coords


def build_model(problem: Problem, options: ModelOptions | None = None) -> pm.Model:
    """Build the PyMC model of ``problem``.

    Parameters
    ----------
    problem : Problem
        System, priors and compiled records.
    options : ModelOptions, optional
        Likelihood and numerical options.

    Returns
    -------
    pymc.Model
        Every variable has named dims. Named deterministics:
        ``flow_<flow>`` (year, flow dims), ``input_<process>`` and
        ``output_<process>`` (year, process dims; system unit),
        ``external_<process>`` for boundary inputs.
    """
    options = options or ModelOptions()
    graph = problem.graph
    unknown = set(options.centred_inputs) - set(graph.system.inputs)
    if unknown:
        raise ValueError(f"centred_inputs {sorted(unknown)} are not input processes; input processes: {sorted(graph.system.inputs)}")
    resolved = resolve_priors(problem.priors, graph)
    coords = model_coords(graph, options)
    with pm.Model(coords=coords) as model:
        u = _inputs(graph, resolved, options.centred_inputs)
        share = _shares(graph, resolved, options.share_knots_every)
        yields = _yields(graph, resolved)
        throughput = _propagate(graph, u, share, yields)
        output = throughput * yields[None, :]
        edge_flow = output[:, graph.source_index] * share
        _named_arrays(graph, edge_flow, throughput, output, u)
        state = pt.concatenate([edge_flow, output, throughput], axis=1).reshape((-1,))
        _likelihood(problem, state, options)
    return model


def _random_walk(
    name: str,
    level: pt.TensorVariable,
    step: pt.TensorVariable,
    dim: str,
    step_dim: str = "year_step",
    nu: np.ndarray | None = None,
    centred: bool = False,
) -> pt.TensorVariable:
    """Random walk over ``step_dim`` starting at ``level``, shape (1 + step, dim).

    Innovations are Normal(0, step), or Student-t(nu, 0, step) where ``nu`` is
    finite. Non-centred: ``<name>_innovation`` (step_dim, dim) are
    standardised; centred: ``<name>_walk`` (dim, step_dim) holds the walk's
    values after its start.
    """
    coords = pm.modelcontext(None).coords
    n, n_steps = len(coords[dim]), len(coords[step_dim])  # static shapes: JAX (numpyro) needs them
    heavy = nu is not None and np.isfinite(nu).any()
    if heavy:
        nu = np.where(np.isfinite(nu), nu, 1e4)  # 1e4 degrees of freedom is Gaussian to 1e-4
    if centred:
        if heavy:
            init = pm.StudentT.dist(nu=nu, mu=level, sigma=step)
            innovation = pm.StudentT.dist(nu=nu, mu=0.0, sigma=step)
        else:
            init = pm.Normal.dist(mu=level, sigma=step)
            innovation = pm.Normal.dist(mu=0.0, sigma=step)
        walk = pm.RandomWalk(
            f"{name}_walk", init_dist=init, innovation_dist=innovation, steps=n_steps - 1, shape=(n, n_steps), dims=(dim, step_dim)
        )
        return pt.concatenate([level[None, :], walk.T], axis=0)
    if heavy:
        z = pm.StudentT(f"{name}_innovation", nu=nu, mu=0.0, sigma=1.0, dims=(step_dim, dim))
    else:
        z = pm.Normal(f"{name}_innovation", 0.0, 1.0, dims=(step_dim, dim))
    return level[None, :] + pt.concatenate([pt.zeros((1, n)), pt.cumsum(z * step[None, :], axis=0)], axis=0)


def _inputs(graph: Graph, resolved, centred_processes: tuple[str, ...] = ()) -> pt.TensorVariable:
    mu = np.array([d.kwargs["mu"] for d in resolved.input_level])
    sd = np.array([d.kwargs["sigma"] for d in resolved.input_level])
    z0 = pm.Normal("input_level_z", 0.0, 1.0, dims="input_node")
    level = pm.Deterministic("input_log_level", mu + sd * z0, dims="input_node")
    step = vector_variable("input_step", resolved.input_step, "input_node")
    centred = np.array([n.process in centred_processes for n in graph.input_nodes])
    if not centred.any() or centred.all():
        log_u = _random_walk("input_log", level, step, "input_node", nu=resolved.input_nu, centred=bool(centred.all()))
        return pt.exp(log_u)
    model = pm.modelcontext(None)
    n_years = len(graph.system.years)
    log_u = pt.zeros((n_years, len(graph.input_nodes)))
    for flag, dim in ((False, "noncentred_input"), (True, "centred_input")):
        idx = np.flatnonzero(centred == flag)
        model.add_coord(dim, graph.node_labels([graph.input_nodes[i] for i in idx]))
        walk = _random_walk("input_log", level[idx], step[idx], dim, nu=resolved.input_nu[idx], centred=flag)
        log_u = pt.set_subtensor(log_u[:, idx], walk)
    return pt.exp(log_u)


def _shares(graph: Graph, resolved, knots_every: int) -> pt.TensorVariable:
    n_years = len(graph.system.years)
    logits = pt.zeros((n_years, graph.n_edges))
    if graph.free_edges:
        z0 = pm.Normal("share_logit_z", 0.0, 1.0, dims="share_edge")
        level = resolved.share_mean + resolved.share_sd * z0
        step = vector_variable("share_step", resolved.share_step, "share_node")
        owners = [n.index for n in graph.share_nodes]
        idx = np.array([owners.index(graph.edges[e].source) for e in graph.free_edges])
        years = list(graph.system.years)
        step_dim = "year_step" if knots_every <= 1 else "share_knot_step"
        eta = _random_walk("share_logit", level, step[idx], "share_edge", step_dim)
        if knots_every > 1:
            eta = pt.dot(interpolation_matrix(years, knot_years(years, knots_every)), eta)
        logits = pt.set_subtensor(logits[:, np.array(graph.free_edges)], eta)
    ex = pt.exp(logits)
    total = pt.dot(ex, graph.source_matrix)
    return pm.Deterministic("share", ex / total[:, graph.source_index], dims=("year", "edge"))


def _yields(graph: Graph, resolved) -> pt.TensorVariable:
    full = pt.ones(graph.n_nodes)
    if graph.yield_nodes:
        y = vector_variable("yield", resolved.yields, "yield_node")
        full = pt.set_subtensor(full[np.array([n.index for n in graph.yield_nodes])], y)
    return full


def _propagate(graph: Graph, u: pt.TensorVariable, share: pt.TensorVariable, yields: pt.TensorVariable) -> pt.TensorVariable:
    """Throughput of every node, shape (year, node), solving the balance exactly."""
    n_years = len(graph.system.years)
    idx = np.array([n.index for n in graph.input_nodes])
    external = pt.set_subtensor(pt.zeros((n_years, graph.n_nodes))[:, idx], u)
    src = graph.source_index
    if graph.depth is not None:
        throughput = external
        for _ in range(graph.depth):
            inflow = pt.dot(throughput[:, src] * yields[src][None, :] * share, graph.target_matrix)
            throughput = external + inflow
        return throughput
    # A[t, n, m]: fraction of n's output that goes to m
    a = pt.einsum("en,te,em->tnm", graph.source_matrix, share, graph.target_matrix)
    eye = np.eye(graph.n_nodes)[None]
    m = eye - pt.swapaxes(a, 1, 2) * yields[None, None, :]
    return pt.linalg.solve(m, external[..., None], b_ndim=2)[..., 0]


def _scatter(values: pt.TensorVariable, positions: np.ndarray, shape: tuple[int, ...]) -> pt.TensorVariable:
    n_years = len(pm.modelcontext(None).coords["year"])
    flat = pt.zeros((n_years, int(np.prod(shape))))
    flat = pt.set_subtensor(flat[:, positions], values)
    return flat.reshape((n_years, *shape))


def named_positions(graph: Graph, coords_list: list[tuple[tuple[str, object], ...]], dims: tuple[str, ...]) -> np.ndarray:
    """Flat positions of labelled items in a dense array with ``dims`` (full system coords)."""
    all_coords = graph.system.all_coords()
    shape = tuple(len(all_coords[d]) for d in dims)
    if not dims:
        return np.zeros(len(coords_list), dtype=int)
    idx = [tuple(all_coords[d].index(dict(c)[d]) for d in dims) for c in coords_list]
    return np.ravel_multi_index(tuple(np.array(idx).T), shape)


def _named_arrays(graph: Graph, edge_flow, throughput, output, u) -> None:
    system = graph.system
    all_coords = system.all_coords()
    for fname in system.flows:
        dims = system.flow_dims(fname)
        edges = graph.edges_of(fname)
        pos = named_positions(graph, [e.coords for e in edges], dims)
        shape = tuple(len(all_coords[d]) for d in dims)
        arr = _scatter(edge_flow[:, np.array([e.index for e in edges])], pos, shape)
        pm.Deterministic(f"flow_{fname}", arr, dims=("year", *dims))
    for pname, proc in system.processes.items():
        nodes = graph.nodes_of(pname)
        pos = named_positions(graph, [n.coords for n in nodes], proc.dims)
        shape = tuple(len(all_coords[d]) for d in proc.dims)
        ids = np.array([n.index for n in nodes])
        pm.Deterministic(f"input_{pname}", _scatter(throughput[:, ids], pos, shape), dims=("year", *proc.dims))
        pm.Deterministic(f"output_{pname}", _scatter(output[:, ids], pos, shape), dims=("year", *proc.dims))
        if pname in system.inputs:
            cols = np.array([i for i, n in enumerate(graph.input_nodes) if n.process == pname])
            pm.Deterministic(f"external_{pname}", _scatter(u[:, cols], pos, shape), dims=("year", *proc.dims))


def _gather(matrix, state: pt.TensorVariable, n_obs: int) -> pt.TensorVariable:
    coo = matrix.tocoo()
    return pt.inc_subtensor(pt.zeros(n_obs)[coo.row], state[coo.col])


def _likelihood(problem: Problem, state: pt.TensorVariable, options: ModelOptions) -> None:
    rec = problem.records
    model = pm.modelcontext(None)
    model.add_coord("source_type", rec.source_types)
    model.add_coord("record", rec.labels)
    pm.Data("record_value", rec.value, dims="record")
    pm.Data("record_bound", rec.bound, dims="record")
    noise = resolve_named(problem.priors, "noise", rec.source_types, "source_type")
    sigma = vector_variable("noise", [noise[s].dist for s in rec.source_types], "source_type") * options.noise_scale
    mu = _gather(rec.numerator, state, rec.n_obs)
    if rec.is_share.any():
        den = _gather(rec.denominator, state, rec.n_obs)
        mu = pt.where(rec.is_share, mu / pt.where(rec.is_share, den, 1.0), mu)
    log_mu_factor = 0.0
    if rec.factors:
        model.add_coord("factor", rec.factors)
        fac = resolve_named(problem.priors, "factors", rec.factors, "name")
        factor = vector_variable("record_factor", [fac[f].dist for f in rec.factors], "factor")
        log_mu_factor = pt.dot(rec.factor_matrix, pt.log(factor))
    floor = _floor(rec, options)
    log_mu = pt.log(mu * pt.exp(log_mu_factor) + floor)
    # a data container, so a compiled model can be refitted to new values of the same records (e.g. in SBC)
    log_obs = pm.Data("record_log_value", np.log(rec.value + floor), dims="record")
    sd = sigma[rec.source_index]
    if options.likelihood not in ("auto", "lognormal", "studentt"):
        raise ValueError(f"unknown likelihood {options.likelihood!r}")
    kinds = [noise[s].get("likelihood", "lognormal") if options.likelihood == "auto" else options.likelihood for s in rec.source_types]
    lik = np.array(kinds)[rec.source_index]
    nus = np.array([float(noise[s].get("nu", options.nu)) for s in rec.source_types])[rec.source_index]
    for kind in ("lognormal", "studentt"):
        idx = np.flatnonzero((rec.bound == 0) & (lik == kind))
        if not len(idx):
            continue
        dim = "obs" if kind == "lognormal" else "obs_t"
        model.add_coord(dim, [rec.labels[i] for i in idx])
        name = "records" if kind == "lognormal" else "records_t"
        if kind == "lognormal":
            pm.Normal(name, mu=log_mu[idx], sigma=sd[idx], observed=log_obs[idx], dims=dim)
        else:
            pm.StudentT(name, nu=nus[idx], mu=log_mu[idx], sigma=sd[idx], observed=log_obs[idx], dims=dim)
    bidx = np.flatnonzero(rec.bound != 0)
    if len(bidx):
        z = rec.bound[bidx] * (log_obs[bidx] - log_mu[bidx]) / sd[bidx]
        pm.Potential("record_bounds", normal_logcdf(z).sum())


#: Below this z the standard normal log-cdf uses its asymptotic series.
_TAIL_Z = -5.0


def normal_logcdf(z: pt.TensorVariable) -> pt.TensorVariable:
    """Log of the standard normal cdf, stable in the lower tail and built from ops every backend has.

    PyMC's own ``logcdf`` uses ``erfcx``, which JAX (numpyro) lacks. Above
    ``z = -5``: ``log(erfc(-z / sqrt 2) / 2)``; below: the asymptotic series
    ``log phi(z) - log(-z) + log(1 - 1/z^2 + 3/z^4)`` (relative error < 1e-4 at -5,
    shrinking fast). Each branch sees clipped inputs so neither produces NaN
    gradients.
    """
    hi = pt.maximum(z, _TAIL_Z)
    lo = pt.minimum(z, _TAIL_Z)
    upper = pt.log(0.5 * pt.erfc(-hi / np.sqrt(2.0)))
    inv2 = 1.0 / lo**2
    lower = -0.5 * lo**2 - 0.5 * np.log(2.0 * np.pi) - pt.log(-lo) + pt.log1p(-inv2 + 3.0 * inv2**2)
    return pt.switch(z >= _TAIL_Z, upper, lower)


def _floor(rec, options: ModelOptions) -> np.ndarray:
    mass = rec.value[~rec.is_share]
    positive = mass[mass > 0]
    floor = options.floor
    if floor is None:
        floor = 1e-3 * float(np.median(positive)) if len(positive) else 1e-3
    return np.where(rec.is_share, options.share_floor, floor)
