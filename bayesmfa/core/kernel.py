"""The record likelihood fused into one compiled kernel with a hand-written gradient.

The reference model (:func:`bayesmfa.core.model.build_model`) writes the balance
and the record likelihood as a PyTensor graph: readable, and the source of
truth for prior predictive draws and model criticism. Its log-density gradient
evaluates several hundred small array operations. For sampling, the part from
(external inputs, shares, yields, noise scales, record factors) to the summed
record log-likelihood is one numba function here: sparse propagation through
the acyclic graph in topological order, the sparse record operators, the
lognormal / Student-t / normal / censored log densities, and the reverse pass that
gives the gradient with respect to every input. It is wrapped as one PyTensor
``Op`` (with a numba implementation for nutpie and a Python one for PyMC's
own sampler), so the priors stay in PyTensor and the model's parameters are
the same as the reference model's. ``tests/test_kernel.py`` checks log density
and gradient against the reference model at random points.

Shapes: ``u`` (year, input_node), ``share`` (year, edge), ``yields`` (node,),
``sigma`` (source_type,), ``factor`` (record,: the product of each record's factors), all float64; flows in
the system unit (kt REO for the REE case). Record families (``kind``) as :data:`bayesmfa.core.likelihoods.FAMILIES`:
0 lognormal and 1 Student-t on the log scale, 2 normal (additive) on the record's own scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from bayesmfa.core.graph import Graph
from bayesmfa.core.likelihoods import RecordLikelihoods
from bayesmfa.core.records import CompiledRecords

_LOG_2PI = math.log(2.0 * math.pi)
#: Below this z the standard normal log-cdf uses its asymptotic series (as ``model.normal_logcdf``).
_TAIL_Z = -5.0


@dataclass(frozen=True)
class KernelData:
    """Index arrays of the graph and the records for :func:`logp_and_grad` (all numpy)."""

    topo: np.ndarray  # nodes in topological order
    in_ptr: np.ndarray  # CSR over nodes of entering edges
    in_edges: np.ndarray
    src: np.ndarray  # source node of each edge
    input_col: np.ndarray  # column of each node among the input nodes, or -1
    num_ptr: np.ndarray
    num_idx: np.ndarray
    num_val: np.ndarray
    den_ptr: np.ndarray
    den_idx: np.ndarray
    den_val: np.ndarray
    is_share: np.ndarray
    offset: np.ndarray  # constant added to each record's numerator (a stock's initial level)
    floor: np.ndarray
    obs: np.ndarray  # the record on its likelihood's scale: log(value + floor), or value (normal)
    bound: np.ndarray
    kind: np.ndarray  # 0 lognormal, 1 Student-t, 2 normal
    nu: np.ndarray
    t_const: np.ndarray  # Student-t normalising constant per record (lgamma terms)
    source_index: np.ndarray  # -1: the record's own sd (fixed_sd)
    fixed_sd: np.ndarray  # (record, 2): each record's own sd and its log (0, 0 where the sd is learned)
    noise_scale: float

    def arrays(self) -> tuple[Any, ...]:
        """The fields in the order :func:`logp_and_grad` takes them after the five inputs."""
        return tuple(getattr(self, f) for f in self.__dataclass_fields__)


def topological_order(graph: Graph) -> np.ndarray | None:
    """Nodes in an order where every edge runs forward, or ``None`` when the graph has a cycle."""
    if graph.depth is None:
        return None
    indeg = np.zeros(graph.n_nodes, dtype=int)
    for e in graph.edges:
        indeg[e.target] += 1
    queue = [n for n in range(graph.n_nodes) if indeg[n] == 0]
    order = []
    while queue:
        n = queue.pop(0)
        order.append(n)
        for ei in graph.out_edges.get(n, []):
            t = graph.edges[ei].target
            indeg[t] -= 1
            if indeg[t] == 0:
                queue.append(t)
    return np.array(order, dtype=np.int64)


def kernel_data(graph: Graph, records: CompiledRecords, lik: RecordLikelihoods, noise_scale: float) -> KernelData:
    """Collect the index arrays of an acyclic ``graph`` and its compiled ``records``.

    Parameters
    ----------
    graph : Graph
        The expanded (acyclic) system.
    records : CompiledRecords
        The records compiled against ``graph``.
    lik : RecordLikelihoods
        Each record's family, floor, observed value on its scale and fixed sd.
    noise_scale : float
        Multiplier on every learned noise scale.
    """
    topo = topological_order(graph)
    if topo is None:
        raise ValueError("the fused likelihood kernel needs an acyclic graph")
    by_target: list[list[int]] = [[] for _ in range(graph.n_nodes)]
    for e in graph.edges:
        by_target[e.target].append(e.index)
    in_ptr = np.cumsum([0] + [len(b) for b in by_target]).astype(np.int64)
    in_edges = np.array([e for b in by_target for e in b], dtype=np.int64)
    input_col = np.full(graph.n_nodes, -1, dtype=np.int64)
    for i, n in enumerate(graph.input_nodes):
        input_col[n.index] = i
    num, den = records.numerator.tocsr(), records.denominator.tocsr()
    return KernelData(
        topo, in_ptr, in_edges, graph.source_index.astype(np.int64), input_col,
        num.indptr.astype(np.int64), num.indices.astype(np.int64), num.data.astype(float),
        den.indptr.astype(np.int64), den.indices.astype(np.int64), den.data.astype(float),
        records.is_share.astype(np.bool_), records.offset.astype(float), np.asarray(lik.floor, dtype=float),
        np.asarray(lik.obs, dtype=float), records.bound.astype(np.int64), np.asarray(lik.kind, dtype=np.int64),
        nu := np.asarray(lik.nu, dtype=float), _t_const(nu), records.source_index.astype(np.int64),
        _own_sd(lik.fixed_sd), float(noise_scale),
    )


def _own_sd(fixed_sd: np.ndarray) -> np.ndarray:
    """(record, 2): a record's own sd and its log, computed once instead of per gradient; 0 where it has none."""
    sd = np.nan_to_num(np.asarray(fixed_sd, dtype=float), nan=0.0)
    return np.stack([sd, np.log(np.where(sd > 0, sd, 1.0))], axis=1)


def _t_const(nu: np.ndarray) -> np.ndarray:
    """``lgamma((nu + 1) / 2) - lgamma(nu / 2) - log(nu pi) / 2`` per record."""
    return np.array([math.lgamma(0.5 * (v + 1.0)) - math.lgamma(0.5 * v) - 0.5 * math.log(v * math.pi) for v in nu])


@numba.njit(cache=True, error_model="numpy")
def _normal_logcdf(z: float) -> tuple[float, float]:
    """log Phi(z) and its derivative, with the same branches as ``model.normal_logcdf``."""
    if z >= _TAIL_Z:
        phi_c = 0.5 * math.erfc(-z / math.sqrt(2.0))
        return math.log(phi_c), math.exp(-0.5 * z * z - 0.5 * _LOG_2PI) / phi_c
    inv2 = 1.0 / (z * z)
    series = 1.0 - inv2 + 3.0 * inv2 * inv2
    val = -0.5 * z * z - 0.5 * _LOG_2PI - math.log(-z) + math.log(series)
    dseries = 2.0 / z**3 - 12.0 / z**5
    return val, -z - 1.0 / z + dseries / series


@numba.njit(cache=True, error_model="numpy")
def _propagate(u, share, yields, topo, in_ptr, in_edges, src, input_col):  # noqa: ANN001, ANN202
    n_years, n_nodes = share.shape[0], yields.shape[0]
    through = np.zeros((n_years, n_nodes))
    out = np.zeros((n_years, n_nodes))
    for t in range(n_years):
        for n in topo:
            v = u[t, input_col[n]] if input_col[n] >= 0 else 0.0
            for j in range(in_ptr[n], in_ptr[n + 1]):
                e = in_edges[j]
                v += out[t, src[e]] * share[t, e]
            through[t, n] = v
            out[t, n] = v * yields[n]
    return through, out


@numba.njit(cache=True, error_model="numpy")
def _state(share, through, out, src):  # noqa: ANN001, ANN202
    """The flat state vector: per year [edge flows | outputs | throughputs] (the layout of ``records.StateIndex``)."""
    n_years, n_edges = share.shape
    n_nodes = through.shape[1]
    width = n_edges + 2 * n_nodes
    state = np.empty(n_years * width)
    for t in range(n_years):
        base = t * width
        for e in range(n_edges):
            state[base + e] = out[t, src[e]] * share[t, e]
        for n in range(n_nodes):
            state[base + n_edges + n] = out[t, n]
            state[base + n_edges + n_nodes + n] = through[t, n]
    return state


@numba.njit(cache=True, error_model="numpy")
def _record_terms(r, lm, sd, log_sd, obs, bound, kind, nu, t_const):  # noqa: ANN001, ANN202
    """Log density of record ``r`` at model value ``lm`` on its scale (log, or natural for normal records)
    and its derivatives in ``lm`` and ``sd``."""
    inv = 1.0 / sd
    if bound[r] == 0:
        z = (obs[r] - lm) * inv
        if kind[r] != 1:
            return -0.5 * z * z - log_sd - 0.5 * _LOG_2PI, z * inv, (z * z - 1.0) * inv
        v = nu[r]
        lp = t_const[r] - log_sd - 0.5 * (v + 1.0) * math.log1p(z * z / v)
        w = (v + 1.0) / (v + z * z)
        return lp, w * z * inv, (w * z * z - 1.0) * inv
    b = float(bound[r])
    z = b * (obs[r] - lm) * inv
    val, g = _normal_logcdf(z)
    return val, -b * g * inv, -z * g * inv


@numba.njit(cache=True, error_model="numpy")
def _model_values(r, state, num_ptr, num_idx, num_val, den_ptr, den_idx, den_val, is_share, offset):  # noqa: ANN001, ANN202
    num = offset[r]
    for j in range(num_ptr[r], num_ptr[r + 1]):
        num += num_val[j] * state[num_idx[j]]
    den = 1.0
    if is_share[r]:
        den = 0.0
        for j in range(den_ptr[r], den_ptr[r + 1]):
            den += den_val[j] * state[den_idx[j]]
    return num, den


@numba.njit(cache=True, error_model="numpy")
def _scale(r, source_index, scale, log_scale, fixed_sd):  # noqa: ANN001, ANN202
    """The noise sd of record ``r`` and its log: its own, or its source type's."""
    s = source_index[r]
    if s < 0:
        return fixed_sd[r, 0], fixed_sd[r, 1]
    return scale[s], log_scale[s]


@numba.njit(cache=True, error_model="numpy")
def logp_and_grad(u, share, yields, sigma, factor, topo, in_ptr, in_edges, src, input_col, num_ptr, num_idx, num_val,  # noqa: ANN001, ANN201
                  den_ptr, den_idx, den_val, is_share, offset, floor, obs, bound, kind, nu, t_const, source_index, fixed_sd,
                  noise_scale):
    """Summed record log-likelihood and its gradient with respect to ``u, share, yields, sigma, factor``."""
    through, out = _propagate(u, share, yields, topo, in_ptr, in_edges, src, input_col)
    state = _state(share, through, out, src)
    d_state = np.zeros_like(state)
    n_years, n_nodes = through.shape
    d_sigma = np.zeros_like(sigma)
    d_lf = np.zeros_like(factor)
    total = 0.0
    scale = sigma * noise_scale
    log_scale = np.log(scale)
    for r in range(obs.shape[0]):
        num, den = _model_values(r, state, num_ptr, num_idx, num_val, den_ptr, den_idx, den_val, is_share, offset)
        mu = num / den
        ef = factor[r]
        m = mu * ef + floor[r]
        s = source_index[r]
        sd, log_sd = _scale(r, source_index, scale, log_scale, fixed_sd)
        additive = kind[r] == 2
        lp, d_lm, d_sd = _record_terms(r, m if additive else math.log(m), sd, log_sd, obs, bound, kind, nu, t_const)
        total += lp
        if s >= 0:
            d_sigma[s] += d_sd * noise_scale
        dm = d_lm if additive else d_lm / m
        d_lf[r] = dm * mu
        d_mu = dm * ef
        d_num = d_mu / den
        for j in range(num_ptr[r], num_ptr[r + 1]):
            d_state[num_idx[j]] += num_val[j] * d_num
        if is_share[r]:
            d_den = -d_mu * num / (den * den)
            for j in range(den_ptr[r], den_ptr[r + 1]):
                d_state[den_idx[j]] += den_val[j] * d_den
    n_edges = share.shape[1]
    width = n_edges + 2 * n_nodes
    d_flow = np.empty_like(share)
    d_out = np.empty((n_years, n_nodes))
    d_through = np.empty((n_years, n_nodes))
    for t in range(n_years):
        base = t * width
        for e in range(n_edges):
            d_flow[t, e] = d_state[base + e]
        for n in range(n_nodes):
            d_out[t, n] = d_state[base + n_edges + n]
            d_through[t, n] = d_state[base + n_edges + n_nodes + n]
    d_share = np.zeros_like(share)
    d_u = np.zeros_like(u)
    d_yields = np.zeros_like(yields)
    for t in range(n_years):
        for e in range(share.shape[1]):
            if d_flow[t, e] != 0.0:
                d_out[t, src[e]] += d_flow[t, e] * share[t, e]
                d_share[t, e] += d_flow[t, e] * out[t, src[e]]
        for i in range(topo.shape[0] - 1, -1, -1):
            n = topo[i]
            d_yields[n] += d_out[t, n] * through[t, n]
            g = d_through[t, n] + d_out[t, n] * yields[n]
            if input_col[n] >= 0:
                d_u[t, input_col[n]] += g
            for j in range(in_ptr[n], in_ptr[n + 1]):
                e = in_edges[j]
                d_out[t, src[e]] += g * share[t, e]
                d_share[t, e] += g * out[t, src[e]]
    return total, d_u, d_share, d_yields, d_sigma, d_lf


@numba.njit(cache=True, error_model="numpy")
def softmax_shares(logits, free_edges, src, n_edges, n_nodes):  # noqa: ANN001, ANN201
    """Transfer coefficients (year, edge) from the free logits (year, free edge): a softmax per source node, the
    other (reference) edges at logit 0 (as :func:`bayesmfa.core.forward.shares` after interpolation)."""
    n_years = logits.shape[0]
    share = np.empty((n_years, n_edges))
    full = np.zeros(n_edges)
    top = np.empty(n_nodes)
    total = np.empty(n_nodes)
    for t in range(n_years):
        full[:] = 0.0
        for i in range(free_edges.shape[0]):
            full[free_edges[i]] = logits[t, i]
        top[:] = -np.inf
        for e in range(n_edges):
            top[src[e]] = max(top[src[e]], full[e])
        total[:] = 0.0
        for e in range(n_edges):
            share[t, e] = math.exp(full[e] - top[src[e]])
            total[src[e]] += share[t, e]
        for e in range(n_edges):
            share[t, e] /= total[src[e]]
    return share


@numba.njit(cache=True, error_model="numpy")
def logp_and_grad_logits(u, logits, yields, sigma, factor, free_edges, topo, in_ptr, in_edges, src, input_col,  # noqa: ANN001, ANN201
                         num_ptr, num_idx, num_val, den_ptr, den_idx, den_val, is_share, offset, floor, obs, bound, kind, nu,
                         t_const, source_index, fixed_sd, noise_scale):
    """:func:`logp_and_grad` with the shares given by their free logits (year, free edge); the gradient is with
    respect to ``u, logits, yields, sigma, factor``. The softmax and its reverse pass run here, not in PyTensor."""
    n_edges, n_nodes = src.shape[0], yields.shape[0]
    share = softmax_shares(logits, free_edges, src, n_edges, n_nodes)
    total, d_u, d_share, d_yields, d_sigma, d_lf = logp_and_grad(
        u, share, yields, sigma, factor, topo, in_ptr, in_edges, src, input_col, num_ptr, num_idx, num_val,
        den_ptr, den_idx, den_val, is_share, offset, floor, obs, bound, kind, nu, t_const, source_index, fixed_sd, noise_scale)
    d_logits = np.empty_like(logits)
    dot = np.empty(n_nodes)
    for t in range(logits.shape[0]):
        dot[:] = 0.0
        for e in range(n_edges):
            dot[src[e]] += share[t, e] * d_share[t, e]
        for i in range(free_edges.shape[0]):
            e = free_edges[i]
            d_logits[t, i] = share[t, e] * (d_share[t, e] - dot[src[e]])
    return total, d_u, d_logits, d_yields, d_sigma, d_lf


@numba.njit(cache=True, error_model="numpy")
def predicted(u, share, yields, factor, topo, in_ptr, in_edges, src, input_col, num_ptr, num_idx, num_val,  # noqa: ANN001, ANN201
              den_ptr, den_idx, den_val, is_share, offset, floor, obs, bound, kind):
    """Model value of every record on its likelihood's scale for a batch of draws, (draw, record): the log of
    total x factors + floor, or total x factors for normal records."""
    n_draws, n_rec = u.shape[0], floor.shape[0]
    res = np.empty((n_draws, n_rec))
    for d in range(n_draws):
        through, out = _propagate(u[d], share[d], yields[d], topo, in_ptr, in_edges, src, input_col)
        state = _state(share[d], through, out, src)
        for r in range(n_rec):
            num, den = _model_values(r, state, num_ptr, num_idx, num_val, den_ptr, den_idx, den_val, is_share, offset)
            m = num / den * factor[d, r] + floor[r]
            res[d, r] = m if kind[r] == 2 else math.log(m)
    return res


@numba.njit(cache=True, error_model="numpy")
def pointwise(u, share, yields, sigma, factor, topo, in_ptr, in_edges, src, input_col, num_ptr, num_idx, num_val,  # noqa: ANN001, ANN201
              den_ptr, den_idx, den_val, is_share, offset, floor, obs, bound, kind, nu, t_const, source_index, fixed_sd,
              noise_scale):
    """Log-likelihood of every record for a batch of draws: inputs with a leading draw axis, result (draw, record)."""
    n_draws, n_rec = u.shape[0], obs.shape[0]
    res = np.empty((n_draws, n_rec))
    for d in range(n_draws):
        through, out = _propagate(u[d], share[d], yields[d], topo, in_ptr, in_edges, src, input_col)
        state = _state(share[d], through, out, src)
        scale = sigma[d] * noise_scale
        log_scale = np.log(scale)
        for r in range(n_rec):
            num, den = _model_values(r, state, num_ptr, num_idx, num_val, den_ptr, den_idx, den_val, is_share, offset)
            m = num / den * factor[d, r] + floor[r]
            sd, log_sd = _scale(r, source_index, scale, log_scale, fixed_sd)
            res[d, r] = _record_terms(r, m if kind[r] == 2 else math.log(m), sd, log_sd, obs, bound, kind, nu, t_const)[0]
    return res
