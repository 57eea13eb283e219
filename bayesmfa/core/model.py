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

Records are sparse linear functions of the state (flows, outputs, inputs;
signed coefficients, plus a constant for stock levels), optionally divided by
another (shares) and multiplied by latent factors, and observed on the log
scale with a learned relative error per source type (lognormal or Student-t),
additively (normal), with a record's own sd where it gives one, or as censored
bounds (see :mod:`bayesmfa.core.likelihoods`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pymc.logprob.transforms import Transform

from bayesmfa.core import forward
from bayesmfa.core.distributions import vector_variable
from bayesmfa.core.forward import Layout, interpolation_matrix, knot_years, named_positions  # noqa: F401  (re-exported)
from bayesmfa.core.graph import Graph
from bayesmfa.core.likelihoods import FAMILIES, NORMAL, RecordLikelihoods, resolve_likelihoods
from bayesmfa.core.priors import resolve_named, resolve_priors
from bayesmfa.core.problem import Problem


@dataclass(frozen=True)
class ModelOptions:
    """Numerical choices of the model.

    Parameters
    ----------
    likelihood : {"auto", "lognormal", "studentt"}
        Likelihood of measurement records: ``auto`` takes each source type's
        ``likelihood`` from its noise prior (lognormal where unset); the other
        two force one likelihood on every record on the log scale (for
        sensitivity studies); records with a normal likelihood stay normal.
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
        Input processes, or their instances (``mining[region=CN]``), whose log-input random walks are centred: the walk
        itself is sampled (``input_log_walk``, dims (centred_input,
        year_step)) instead of standardised innovations
        (``input_log_innovation``). The prior is the same either way.
        Centre series that records observe nearly every year (there the
        non-centred innovations are strongly correlated, since the records
        pin their cumulative sums, and NUTS needs long trajectories); leave
        weakly observed series non-centred (a centred walk with little data
        makes a funnel with its step scale).
    centred_shares : tuple of str
        Processes, or process instances (``use[region=US]``), whose share-logit walks are centred: the knot values
        (``share_logit_walk``, dims (share_edge, share_knot_step)) are
        sampled instead of standardised innovations. The prior is the same.
        Centre the splits whose flows records see only through sums (the sum
        pins each knot, and non-centred innovations become correlated across
        knots); safe where the share step is ``Fixed`` (no funnel).
    share_sums : tuple of tuple of str
        Groups of share edges whose flows records see only through their sum
        (e.g. ``("salt_trade", "oxide_trade")``: every origin-destination
        pair's salt and oxide trade, which customs record as one "compounds"
        figure). Each entry names flow types (one group per set of coords that
        at least two free edges of those types share) or edge labels (one
        group). A group's logit walks are centred and sampled in the
        coordinates of :class:`bayesmfa.core.forward.SumSplit`: per knot, their
        log-sum-exp and their split. The map has a unit Jacobian, so the prior
        is the same random walk on each logit; the sampler sees the sum pinned
        and the split free (a straight ridge) instead of the corner that two
        flows with a known sum make in their logits. Stored as
        ``share_logit_summed`` (summed_share_edge, share_knot).
    """

    likelihood: str = "auto"
    nu: float = 4.0
    floor: float | None = None
    share_floor: float = 1e-3
    noise_scale: float = 1.0
    share_knots_every: int = 1
    centred_inputs: tuple[str, ...] = ()
    centred_shares: tuple[str, ...] = ()
    share_sums: tuple[tuple[str, ...], ...] = ()

    def as_dict(self) -> dict:
        """The options as a dict (``centred_shares`` and ``share_sums`` only when set, so content hashes of earlier fits hold)."""
        out = dict(self.__dict__)
        for name in ("centred_shares", "share_sums"):
            if not out[name]:
                del out[name]
        return out


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
            "share_knot": knot_years(years, (options or ModelOptions()).share_knots_every),
        }
    )
    return coords


def build_model(problem: Problem, options: ModelOptions | None = None, *, fused: bool = False) -> pm.Model:
    """Build the PyMC model of ``problem``.

    Parameters
    ----------
    problem : Problem
        System, priors and compiled records.
    options : ModelOptions, optional
        Likelihood and numerical options.
    fused : bool
        Write the balance and the record likelihood as one compiled kernel
        with a hand-written gradient (:mod:`bayesmfa.core.kernel`; acyclic systems
        only): the same log density and parameters, a several times cheaper
        gradient, but no named deterministics and no observed variables (the
        pointwise log-likelihood is computed after sampling). The default
        (reference) model is a plain PyTensor graph.

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
    if fused and graph.depth is None:
        raise ValueError("fused=True needs an acyclic system; this one has a cycle")
    inputs = set(graph.system.inputs) | {n.label for n in graph.input_nodes}
    unknown = set(options.centred_inputs) - inputs
    if unknown:
        raise ValueError(f"centred_inputs {sorted(unknown)} are not input processes or their instances; input processes: "
                         f"{sorted(graph.system.inputs)}")
    splitting = [graph.nodes[n] for n, edges in graph.out_edges.items() if len(edges) > 1]
    splitters = {n.process for n in splitting}
    unknown = set(options.centred_shares) - splitters - {n.label for n in splitting}
    if unknown:
        raise ValueError(f"centred_shares {sorted(unknown)} are not processes (or process instances) that split their output; "
                         f"those are: {sorted(splitters)}")
    resolved = resolve_priors(problem.priors, graph)
    coords = model_coords(graph, options)
    layout = Layout.from_options(graph, options)
    ops = forward.pytensor_ops()
    with pm.Model(coords=coords) as model:
        u = _inputs(graph, resolved, layout, ops)
        eta = _share_logits(graph, resolved, layout, ops)
        share = pm.Deterministic("share", forward.shares(ops, layout, eta), dims=("year", "edge"))
        yields = forward.full_yields(ops, layout, vector_variable("yield", resolved.yields, "yield_node") if graph.yield_nodes else None)
        if fused:  # the kernel takes the logits and does the softmax itself (``share`` stays out of the log density)
            logits = forward.year_logits(ops, layout, eta)
            _fused_likelihood(problem, u, logits, yields, options)
            _fused_flow_priors(problem, u, logits, yields)
            return model
        throughput, output = forward.propagate(ops, layout, u, share, yields)
        edge_flow = forward.edge_flows(layout, output, share)
        _named_arrays(graph, edge_flow, throughput, output, u)
        state = pt.concatenate([edge_flow, output, throughput], axis=1).reshape((-1,))
        _likelihood(problem, state, options)
        _flow_priors(problem, state)
    return model


def _random_walk(
    name: str,
    level: pt.TensorVariable,
    step: pt.TensorVariable,
    dim: str,
    ops: forward.Ops,
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
        values = pm.RandomWalk(
            f"{name}_walk", init_dist=init, innovation_dist=innovation, steps=n_steps - 1, shape=(n, n_steps), dims=(dim, step_dim)
        )
        return forward.centred_walk(ops, level, values)
    if heavy:
        z = pm.StudentT(f"{name}_innovation", nu=nu, mu=0.0, sigma=1.0, dims=(step_dim, dim))
    else:
        z = pm.Normal(f"{name}_innovation", 0.0, 1.0, dims=(step_dim, dim))
    return forward.walk(ops, level, step, z)


def _inputs(graph: Graph, resolved, layout: Layout, ops: forward.Ops) -> pt.TensorVariable:
    """External inputs (year, input_node): exp of the log-input random walks."""
    mu = np.array([d.kwargs["mu"] for d in resolved.input_level])
    sd = np.array([d.kwargs["sigma"] for d in resolved.input_level])
    z0 = pm.Normal("input_level_z", 0.0, 1.0, dims="input_node")
    level = pm.Deterministic("input_log_level", mu + sd * z0, dims="input_node")
    step = vector_variable("input_step", resolved.input_step, "input_node")
    centred = layout.centred
    if not centred.any() or centred.all():
        log_u = _random_walk("input_log", level, step, "input_node", ops, nu=resolved.input_nu, centred=bool(centred.all()))
        return pt.exp(log_u)
    model = pm.modelcontext(None)
    walks = []
    for flag, dim in ((False, "noncentred_input"), (True, "centred_input")):
        idx = np.flatnonzero(centred == flag)
        model.add_coord(dim, graph.node_labels([graph.input_nodes[i] for i in idx]))
        walks.append(_random_walk("input_log", level[idx], step[idx], dim, ops, nu=resolved.input_nu[idx], centred=flag))
    return pt.exp(forward.join_walks(ops, layout.walk_order, *walks))


def _share_logits(graph: Graph, resolved, layout: Layout, ops: forward.Ops) -> pt.TensorVariable:
    """Free share logits at the knots (knot, free edge): random walks (see :func:`forward.shares` for the coefficients).

    Plain edges walk non-centred (or centred, ``ModelOptions.centred_shares``)
    from ``share_logit_z``; the edges of ``ModelOptions.share_sums`` groups are
    one centred walk variable, ``share_logit_summed``, sampled in sum-split
    coordinates. ``share_logit_level`` holds every free edge's start.
    """
    if not graph.free_edges:
        n_knots = len(layout.years) if layout.interp is None else layout.interp.shape[1]
        return pt.zeros((n_knots, 0))
    model = pm.modelcontext(None)
    step = vector_variable("share_step", resolved.share_step, "share_node")[layout.share_step_index]
    step_dim = layout.share_step_dim
    plain, summed = layout.plain_share, layout.summed_edges
    labels = graph.edge_labels(graph.free_edges)
    parts, levels = [], []
    if len(plain):
        dim = "share_edge"
        if len(summed):
            dim = "plain_share_edge"
            model.add_coord(dim, [labels[i] for i in plain])
        z0 = pm.Normal("share_logit_z", 0.0, 1.0, dims=dim)
        level = resolved.share_mean[plain] + resolved.share_sd[plain] * z0
        centred = layout.centred_share[plain]
        if not centred.any() or centred.all():
            eta = _random_walk("share_logit", level, step[plain], dim, ops, step_dim, centred=bool(centred.all()))
        else:
            walks = []
            for flag, sub in ((False, "noncentred_share_edge"), (True, "centred_share_edge")):
                idx = np.flatnonzero(centred == flag)
                model.add_coord(sub, [labels[plain[i]] for i in idx])
                walks.append(_random_walk("share_logit", level[idx], step[plain][idx], sub, ops, step_dim, centred=flag))
            eta = forward.join_walks(ops, layout.share_walk_order, *walks)
        parts.append(eta)
        levels.append(level)
    if len(summed):
        model.add_coord("summed_share_edge", [labels[i] for i in summed])
        knot = layout.share_knot_dim
        values = pm.RandomWalk(
            "share_logit_summed",
            init_dist=pm.Normal.dist(mu=resolved.share_mean[summed], sigma=resolved.share_sd[summed]),
            innovation_dist=pm.Normal.dist(mu=0.0, sigma=step[summed]),
            steps=len(model.coords[knot]) - 1, shape=(len(summed), len(model.coords[knot])),
            dims=("summed_share_edge", knot), transform=SumSplitTransform(layout.sum_split),
        )
        parts.append(values.T)
        levels.append(values[:, 0])
    if not len(summed):
        pm.Deterministic("share_logit_level", levels[0], dims="share_edge")
        return parts[0]
    pm.Deterministic("share_logit_level", pt.concatenate(levels)[layout.share_join_order], dims="share_edge")
    return pt.concatenate(parts, axis=-1)[:, layout.share_join_order]


class SumSplitTransform(Transform):
    """PyMC transform of ``share_logit_summed`` (member, knot) to the sum-split coordinates of :class:`forward.SumSplit`."""

    name = "sumsplit"
    ndim_supp = 1

    def __init__(self, split: forward.SumSplit) -> None:
        self.split = split

    def forward(self, value, *inputs):  # noqa: ANN001, ANN201  (logits -> coordinates)
        return self.split.to_coords(forward.pytensor_ops(), value)

    def backward(self, value, *inputs):  # noqa: ANN001, ANN201  (coordinates -> logits)
        return self.split.to_logits(forward.pytensor_ops(), value)

    def log_jac_det(self, value, *inputs):  # noqa: ANN001, ANN201
        return pt.zeros(value.shape[:-1])  # volume-preserving (see SumSplit)


def _scatter(values: pt.TensorVariable, positions: np.ndarray, shape: tuple[int, ...]) -> pt.TensorVariable:
    n_years = len(pm.modelcontext(None).coords["year"])
    flat = pt.zeros((n_years, int(np.prod(shape))))
    flat = pt.set_subtensor(flat[:, positions], values)
    return flat.reshape((n_years, *shape))


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
    model = pm.modelcontext(None)
    for stock in system.stocks.values():  # see bayesmfa.core.forward.stock_arrays (the same definition in NumPy)
        dims = ("year", *system.processes[stock.process].dims)
        change = model[f"flow_{stock.addition}"] - model[f"flow_{stock.release}"]
        pm.Deterministic(f"stock_change_{stock.name}", change, dims=dims)
        level = pt.cumsum(change, axis=0)
        if stock.initial is not None:
            shape = [len(model.coords[d]) for d in dims[1:]]
            mask = np.ones(shape)
            for axis, d in enumerate(dims[1:]):
                if d in stock.coords:
                    keep = np.isin([str(c) for c in model.coords[d]], stock.coords[d])
                    mask = mask * keep.reshape([-1 if a == axis else 1 for a in range(len(shape))])
            level = level + stock.initial * mask
        pm.Deterministic(f"stock_{stock.name}", level, dims=dims)


def _gather(matrix, state: pt.TensorVariable, n_obs: int) -> pt.TensorVariable:
    coo = matrix.tocoo()
    weighted = state[coo.col] if np.all(coo.data == 1.0) else state[coo.col] * coo.data
    return pt.inc_subtensor(pt.zeros(n_obs)[coo.row], weighted)


@dataclass(frozen=True)
class RecordTerms:
    """What the record likelihood needs besides the state: per model (tensors) and per record (numpy)."""

    sigma: pt.TensorVariable  # (source_type,), learned noise scales times options.noise_scale
    log_factor: pt.TensorVariable  # (record,), log of the product of each record's factors
    lik: RecordLikelihoods


def record_likelihoods(problem: Problem, options: ModelOptions) -> RecordLikelihoods:
    """Each record's likelihood family, floor, value on its scale and own sd under ``options``."""
    return resolve_likelihoods(problem.priors, problem.records, likelihood=options.likelihood, nu=options.nu,
                               floor=options.floor, share_floor=options.share_floor, noise_scale=options.noise_scale)


def _record_terms(problem: Problem, options: ModelOptions) -> RecordTerms:
    """Create the noise and factor parameters of the records and collect their per-record constants."""
    rec = problem.records
    model = pm.modelcontext(None)
    lik = record_likelihoods(problem, options)
    model.add_coord("record", rec.labels)
    pm.Data("record_value", rec.value, dims="record")
    pm.Data("record_bound", rec.bound, dims="record")
    sigma = pt.zeros(0)
    if rec.source_types:
        model.add_coord("source_type", rec.source_types)
        noise = resolve_named(problem.priors, "noise", rec.source_types, "source_type")
        sigma = vector_variable("noise", [noise[s].dist for s in rec.source_types], "source_type") * options.noise_scale
    log_factor = pt.zeros(rec.n_obs)
    if rec.factors:
        model.add_coord("factor", rec.factors)
        fac = resolve_named(problem.priors, "factors", rec.factors, "name")
        factor = vector_variable("record_factor", [fac[f].dist for f in rec.factors], "factor")
        log_factor = pt.dot(rec.factor_matrix, pt.log(factor))
    return RecordTerms(sigma, log_factor, lik)


def _record_sd(rec, sigma: pt.TensorVariable, lik: RecordLikelihoods) -> pt.TensorVariable:  # noqa: ANN001
    """Per record (record,): its own sd where it has one, else its source type's learned noise."""
    own = np.nan_to_num(lik.fixed_sd, nan=1.0)
    if not rec.source_types:
        return pt.as_tensor(own)
    return pt.where(rec.source_index < 0, own, sigma[np.maximum(rec.source_index, 0)])


def _likelihood(problem: Problem, state: pt.TensorVariable, options: ModelOptions) -> None:
    """The record likelihood as a PyTensor graph (the reference model): observed ``records`` (lognormal),
    ``records_t`` (Student-t) and ``records_n`` (normal); bounds as a potential."""
    rec = problem.records
    model = pm.modelcontext(None)
    terms = _record_terms(problem, options)
    lik = terms.lik
    mu = _gather(rec.numerator, state, rec.n_obs) + rec.offset
    if rec.is_share.any():
        den = _gather(rec.denominator, state, rec.n_obs)
        mu = pt.where(rec.is_share, mu / pt.where(rec.is_share, den, 1.0), mu)
    total = mu * pt.exp(terms.log_factor)
    normal = lik.kind == NORMAL
    x = pt.where(normal, total, pt.log(pt.where(normal, 1.0, total + lik.floor))) if normal.any() else pt.log(total + lik.floor)
    # a data container, so a compiled model can be refitted to new values of the same records (e.g. in SBC)
    obs = pm.Data("record_obs", lik.obs, dims="record")
    sd = _record_sd(rec, terms.sigma, lik)
    labels = rec.labels  # a property that rebuilds the list: read it once
    for code, (kind, name, dim) in enumerate(FAMILIES):
        idx = np.flatnonzero((rec.bound == 0) & (lik.kind == code))
        if not len(idx):
            continue
        model.add_coord(dim, [labels[i] for i in idx])
        if kind == "studentt":
            pm.StudentT(name, nu=lik.nu[idx], mu=x[idx], sigma=sd[idx], observed=obs[idx], dims=dim)
        else:
            pm.Normal(name, mu=x[idx], sigma=sd[idx], observed=obs[idx], dims=dim)
    bidx = np.flatnonzero(rec.bound != 0)
    if len(bidx):
        z = rec.bound[bidx] * (obs[bidx] - x[bidx]) / sd[bidx]
        pm.Potential("record_bounds", normal_logcdf(z).sum())


def fused_data(problem: Problem, lik: RecordLikelihoods):  # noqa: ANN201
    """The index arrays of the fused likelihood kernel for ``problem`` (see :mod:`bayesmfa.core.kernel`)."""
    from bayesmfa.core.kernel import kernel_data

    return kernel_data(problem.graph, problem.records, lik, 1.0)


def _fused_likelihood(problem: Problem, u, logits, yields, options: ModelOptions) -> None:  # noqa: ANN001
    """The same likelihood as :func:`_likelihood`, as one compiled kernel with its own gradient (for sampling);
    ``logits`` are the free share logits per year (year, free edge)."""
    from bayesmfa.core.fusedop import fused_loglik

    terms = _record_terms(problem, options)
    data = fused_data(problem, terms.lik)
    free = np.array(problem.graph.free_edges, dtype=np.int64)
    pm.Potential("records_loglik", fused_loglik(data, free, u, logits, yields, terms.sigma, pt.exp(terms.log_factor)))


def _flow_priors(problem: Problem, state: pt.TensorVariable) -> None:
    """The ``flows`` priors (:mod:`bayesmfa.core.flowpriors`) as the potential ``flow_priors``: a lognormal density of
    each selected flow instance and year."""
    if problem.flow_priors is None:
        return
    rec, lik = problem.flow_priors
    log_flow = pt.log(_gather(rec.numerator, state, rec.n_obs))
    sd = lik.fixed_sd
    z = (lik.obs - log_flow) / sd
    pm.Potential("flow_priors", pt.sum(-0.5 * z**2 - np.log(sd) - 0.5 * np.log(2.0 * np.pi)))


def _fused_flow_priors(problem: Problem, u, logits, yields) -> None:  # noqa: ANN001
    """:func:`_flow_priors` with the fused kernel (no learned noise, no factors)."""
    if problem.flow_priors is None:
        return
    from bayesmfa.core.fusedop import fused_loglik
    from bayesmfa.core.kernel import kernel_data

    rec, lik = problem.flow_priors
    data = kernel_data(problem.graph, rec, lik, 1.0)
    free = np.array(problem.graph.free_edges, dtype=np.int64)
    pm.Potential("flow_priors", fused_loglik(data, free, u, logits, yields, pt.zeros(0), pt.ones(rec.n_obs)))


def flow_prior_logp(post, problem: Problem, options: ModelOptions, sample_dims: tuple[str, ...] = ("chain", "draw")):  # noqa: ANN001, ANN201
    """Log density of the ``flows`` priors per draw (sample dims), nats; ``None`` without flow priors (acyclic systems)."""
    import xarray as xr

    from bayesmfa.core.kernel import kernel_data, pointwise

    if problem.flow_priors is None:
        return None
    rec, lik = problem.flow_priors
    u, share, yields, _, _, _, batch = _kernel_inputs(post, problem, options, sample_dims)
    n = u.shape[0]
    data = kernel_data(problem.graph, rec, lik, 1.0)
    lp = pointwise(u, share, yields, np.zeros((n, 0)), np.ones((n, rec.n_obs)), *data.arrays()).sum(axis=1).reshape(batch)
    return xr.DataArray(lp, dims=sample_dims, coords={d: post[d].values for d in sample_dims})


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


def pointwise_loglik(post, problem: Problem, options: ModelOptions, sample_dims: tuple[str, ...] = ("chain", "draw")):  # noqa: ANN001, ANN201
    """Log-likelihood of every point record in every draw, as PyMC's ``log_likelihood`` group would hold it.

    Computed with the fused kernel from the stored parameters (no compiled
    PyTensor function), for fits of acyclic systems.

    Returns
    -------
    xarray.Dataset
        ``records`` (sample dims, obs) for lognormal records, ``records_t``
        (sample dims, obs_t) for Student-t and ``records_n`` (sample dims,
        obs_n) for normal ones; bounds are not pointwise terms.
    """
    import xarray as xr

    from bayesmfa.core.kernel import pointwise

    rec = problem.records
    u, share, yields, noise, factor, data, batch = _kernel_inputs(post, problem, options, sample_dims)
    lp = pointwise(u, share, yields, noise * options.noise_scale, factor, *data.arrays()).reshape(*batch, rec.n_obs)
    coords = {d: post[d].values for d in sample_dims}
    labels = rec.labels
    out = {}
    for code, (_, name, dim) in enumerate(FAMILIES):
        idx = np.flatnonzero((rec.bound == 0) & (data.kind == code))
        if len(idx):
            out[name] = xr.DataArray(lp[..., idx], dims=(*sample_dims, dim), coords=coords | {dim: [labels[i] for i in idx]})
    return xr.Dataset(out)


def _kernel_inputs(post, problem: Problem, options: ModelOptions, sample_dims: tuple[str, ...],  # noqa: ANN001, ANN202
                   lik: RecordLikelihoods | None = None):
    """Flattened per-draw inputs of the kernel functions: u, share, yields, noise (draw, source_type),
    record factors (draw, record), the kernel's index arrays (for the records' likelihoods ``lik``, resolved here when not
    given), and the batch shape of the sample dims."""
    rec = problem.records
    layout = Layout.from_options(problem.graph, options)
    u, share, yields = forward.parameter_arrays(post, layout, sample_dims)
    batch = u.shape[: len(sample_dims)]
    n = int(np.prod(batch))
    noise = (np.asarray(post["noise"].transpose(*sample_dims, "source_type").values, dtype=float).reshape(n, -1)
             if rec.source_types else np.zeros((n, 0)))
    if rec.factors:
        log_fac = np.log(np.asarray(post["record_factor"].transpose(*sample_dims, "factor").values, dtype=float)).reshape(n, -1)
        factor = np.exp(log_fac @ rec.factor_matrix.T)
    else:
        factor = np.ones((n, rec.n_obs))
    data = fused_data(problem, lik or record_likelihoods(problem, options))
    return (u.reshape(n, *u.shape[-2:]), share.reshape(n, *share.shape[-2:]), yields.reshape(n, -1), noise, factor, data, batch)


class RecordPredictions(NamedTuple):
    """Per draw, each record's model value and noise sd on its likelihood's scale (see :func:`record_predictions`)."""

    model: np.ndarray  # (draw, record): log(total x factors + floor), or total x factors for normal records
    scale: np.ndarray  # (draw, record): the noise sd on that scale
    obs: np.ndarray  # (record,): the record on that scale
    kind: np.ndarray  # (record,): 0 lognormal, 1 Student-t, 2 normal
    nu: np.ndarray  # (record,): Student-t degrees of freedom
    lik: RecordLikelihoods

    def natural(self, x: np.ndarray) -> np.ndarray:
        """Values on the likelihood scale (e.g. ``model`` or replicates) back in the records' units."""
        return self.lik.natural(x)


def record_predictions(post, problem: Problem, options: ModelOptions, sample_dims: tuple[str, ...] = ("chain", "draw")):  # noqa: ANN001, ANN201
    """Per draw, the model value of every record and the sd of its noise, on its likelihood's scale (acyclic systems).

    Returns
    -------
    RecordPredictions
        ``model`` (draw, record): ``log(model total x factors + floor)``, comparable to ``obs`` =
        ``log(value + floor)`` (for normal records: the total and the value themselves); ``scale``
        (draw, record): the record's own sd, or its source type's noise, times ``options.noise_scale``;
        ``kind`` and ``nu`` (record,).
    """
    from bayesmfa.core.kernel import predicted

    rec = problem.records
    lik = record_likelihoods(problem, options)
    u, share, yields, noise, factor, data, _ = _kernel_inputs(post, problem, options, sample_dims, lik)
    upto_kind = list(data.__dataclass_fields__).index("kind") + 1  # predicted() takes the arrays up to ``kind``
    log_model = predicted(u, share, yields, factor, *data.arrays()[:upto_kind])
    own = np.nan_to_num(lik.fixed_sd, nan=1.0)
    learned = (noise * options.noise_scale)[:, np.maximum(rec.source_index, 0)] if rec.source_types else np.ones_like(log_model)
    scale = np.where(rec.source_index < 0, own, learned)
    return RecordPredictions(log_model, scale, lik.obs, lik.kind, lik.nu, lik)


def replicate_records(log_model: np.ndarray, scale: np.ndarray, kind: np.ndarray, nu: np.ndarray,
                      rng: np.random.Generator) -> np.ndarray:
    """Replicated records (draw, record) on their likelihood's scale: model value plus fresh noise of each record's likelihood.

    ``log_model``, ``scale``, ``kind`` and ``nu`` as :func:`record_predictions` returns them; normal noise
    for lognormal and normal records, Student-t(nu) for the others (drawn in that order from ``rng``).
    """
    eps = rng.standard_normal(log_model.shape)
    t = kind == 1
    if t.any():
        eps[:, t] = rng.standard_t(np.broadcast_to(nu[t], (log_model.shape[0], int(t.sum()))))
    return log_model + scale * eps
