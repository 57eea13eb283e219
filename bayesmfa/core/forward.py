"""The map from the model's parameters to balanced flows, written once for PyTensor and for NumPy.

The sampler evaluates it in PyTensor (inside the log density); results recompute
the named arrays from the stored parameters with NumPy, vectorised over every
draw at once (:func:`derived_arrays`), so the sampler never stores or
recomputes them per draw.

Array layout everywhere: optional leading sample dims (none inside the model;
``chain, draw`` after sampling), then ``year``, then the items (input nodes,
edges or nodes). Flows are in the system unit (kt REO for the REE case).

The balance is solved by sparse propagation on acyclic graphs: nodes are
grouped by their level (longest path from a boundary input), and each level's
throughput is its external input plus a segment sum, over the edges that enter
it, of the source outputs times the shares (index gathers, no dense incidence
products). Cyclic graphs use a dense linear solve per year.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from types import ModuleType
from typing import Any

import numpy as np
import xarray as xr

from bayesmfa.core.graph import Graph
from bayesmfa.core.system import Stock, System

#: Names of the arrays derived from the parameters (flows, process totals, shares).
DERIVED_PREFIXES = ("flow_", "input_", "output_", "external_", "stock_")
#: Model variables that are parameters or small, even though their names carry a derived prefix.
PARAMETER_NAMES = {"input_level_z", "input_log_level", "input_step", "input_log_innovation", "input_log_walk"}


def is_derived(name: str) -> bool:
    """Whether ``name`` is a named array recomputed from the parameters (not stored by the sampler)."""
    if name in PARAMETER_NAMES or name.startswith(("input_step_", "input_log_")):
        return False
    return name == "share" or name.startswith(DERIVED_PREFIXES)


@dataclass(frozen=True)
class Ops:
    """The few array operations the forward map needs, for one array library.

    ``xp`` is :mod:`numpy` or :mod:`pytensor.tensor`; the two differ only in how
    a segment sum and a batched linear solve are written.
    """

    xp: ModuleType

    @property
    def is_numpy(self) -> bool:
        return self.xp is np

    def segment_sum(self, values: Any, ids: np.ndarray, n: int) -> Any:
        """Sum ``values`` over its last axis into ``n`` segments given by ``ids`` (repeats add up)."""
        xp = self.xp
        front = xp.moveaxis(values, -1, 0)
        if self.is_numpy:
            out = np.zeros((n, *front.shape[1:]))
            np.add.at(out, ids, front)
        else:
            out = xp.inc_subtensor(xp.zeros((n, *tuple(front.shape)[1:]))[ids], front)
        return xp.moveaxis(out, 0, -1)

    def solve(self, a: Any, b: Any) -> Any:
        """Solve ``a x = b`` for the last axis of ``b`` (batched over the leading axes).

        ``a`` (..., n, n), ``b`` (..., n). PyTensor: one ``Solve`` with a vector
        right-hand side (``b_ndim=1``), batched by ``Blockwise`` only when
        there are leading axes; no reshapes of batched arrays.
        """
        if self.is_numpy:
            return np.linalg.solve(a, b[..., None])[..., 0]
        import pytensor.tensor as pt

        return pt.linalg.solve(a, b, b_ndim=1)


NUMPY = Ops(np)


def pytensor_ops() -> Ops:
    """Ops on PyTensor tensors (imported lazily: NumPy users need no PyTensor)."""
    import pytensor.tensor as pt

    return Ops(pt)


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


def selects(names: tuple[str, ...], node: Any) -> bool:
    """Whether ``names`` (process names, or process-instance labels such as ``use[region=US]``) name ``node``."""
    return node.process in names or node.label in names


def share_groups(graph: Graph, share_sums: tuple[tuple[str, ...], ...]) -> list[np.ndarray]:
    """Groups of free share edges (positions among ``graph.free_edges``) named by ``share_sums``.

    Each entry of ``share_sums`` names free share edges by label (one group:
    exactly those edges) or flow types (one group per set of coords shared by
    at least two free edges of those types, e.g. ``("salt_trade",
    "oxide_trade")`` pairs the salt and oxide trade of each origin and
    destination).

    Raises
    ------
    ValueError
        A name that is neither a flow type nor a free share edge, an entry
        that forms no group, or an edge in two groups.
    """
    position = {e: i for i, e in enumerate(graph.free_edges)}
    by_label = {graph.edges[e].label: i for e, i in position.items()}
    groups: list[np.ndarray] = []
    used: set[int] = set()
    for entry in share_sums:
        names = tuple(entry)
        if names and all(n in by_label for n in names):
            found = [[by_label[n] for n in names]]
        else:
            unknown = [n for n in names if n not in graph.system.flows]
            if unknown:
                raise ValueError(f"share_sums entry {list(names)}: {unknown} are neither flow types nor free share edges "
                                 f"(a process's first edge is its reference and has no free logit)")
            by_coords: dict[tuple, list[int]] = {}
            for e, i in position.items():
                if graph.edges[e].flow in names:
                    by_coords.setdefault(graph.edges[e].coords, []).append(i)
            found = list(by_coords.values())
        found = [g for g in found if len(g) >= 2]
        if not found:
            raise ValueError(f"share_sums entry {list(names)}: no two free share edges of it share their coords")
        for members in found:
            if used & set(members):
                raise ValueError(f"share_sums entry {list(names)}: an edge is already in another group")
            used |= set(members)
            groups.append(np.array(members, dtype=int))
    return groups


@dataclass(frozen=True)
class SumSplit:
    """Logits of groups of edges <-> each group's log-sum-exp and split: a volume-preserving bijection.

    For a group with logits ``eta_1..eta_k`` the coordinates are ``tau =
    logsumexp(eta)`` (stored at the first member) and ``delta_i = eta_i -
    eta_1`` (the others); back, ``eta_i = tau + delta_i - logsumexp(delta)``
    with ``delta_1 = 0``. The Jacobian determinant is 1, so a density on the
    logits is the same density on the new coordinates. Flows that records see
    only through their sum get ``tau`` pinned and ``delta`` free: a product of
    a narrow and a wide direction instead of a curved corner in the logits.
    Arrays are (..., member, knot).
    """

    group_of: np.ndarray
    first: np.ndarray

    @property
    def n_groups(self) -> int:
        return len(self.first)

    def _onehot(self) -> np.ndarray:
        m = np.zeros((self.n_groups, len(self.group_of)))
        m[self.group_of, np.arange(len(self.group_of))] = 1.0
        return m

    def to_logits(self, ops: Ops, coords: Any) -> Any:
        """Logits (..., member, knot) from (tau, delta) coordinates of the same shape."""
        xp = ops.xp
        tau = coords[..., self.first, :]
        mask = np.ones((len(self.group_of), 1))
        mask[self.first] = 0.0
        delta = coords * mask
        lse = xp.log(xp.matmul(self._onehot(), xp.exp(delta)))
        return tau[..., self.group_of, :] + delta - lse[..., self.group_of, :]

    def to_coords(self, ops: Ops, logits: Any) -> Any:
        """(tau, delta) coordinates (..., member, knot) from logits of the same shape."""
        xp = ops.xp
        lse = xp.log(xp.matmul(self._onehot(), xp.exp(logits)))
        delta = logits - logits[..., self.first[self.group_of], :]
        first = np.zeros((len(self.group_of), 1))
        first[self.first] = 1.0
        return delta * (1.0 - first) + lse[..., self.group_of, :] * first


class Layout:
    """Index arrays of a graph for the forward map (computed once per graph and options).

    Parameters
    ----------
    graph : Graph
        The expanded system.
    share_knots_every : int
        Spacing in years of the knots of the share random walks.
    centred_inputs : tuple of str
        Input processes (or process instances) whose log-input walks are centred (see ``ModelOptions``).
    centred_shares : tuple of str
        Processes (or process instances) whose share-logit walks are centred (see ``ModelOptions``).
    """

    def __init__(self, graph: Graph, share_knots_every: int = 1, centred_inputs: tuple[str, ...] = (),
                 centred_shares: tuple[str, ...] = (), share_sums: tuple[tuple[str, ...], ...] = ()) -> None:
        self.graph = graph
        self.years = list(graph.system.years)
        self.share_knots_every = share_knots_every
        self.centred = np.array([selects(centred_inputs, n) for n in graph.input_nodes], dtype=bool)
        self.share_groups = share_groups(graph, share_sums)
        summed = np.zeros(len(graph.free_edges), dtype=bool)
        for group in self.share_groups:
            summed[group] = True
        #: Free share edges whose logits are sampled as their group's log-sum-exp and split (see ``ModelOptions.share_sums``).
        self.summed_share = summed
        self.centred_share = np.array([selects(centred_shares, graph.nodes[graph.edges[e].source]) for e in graph.free_edges],
                                      dtype=bool) & ~summed

    @classmethod
    def from_options(cls, graph: Graph, options: Any) -> Layout:
        """The layout of ``graph`` under model ``options`` (a :class:`~bayesmfa.core.model.ModelOptions`)."""
        return cls(graph, options.share_knots_every, tuple(options.centred_inputs), tuple(getattr(options, "centred_shares", ())),
                   tuple(tuple(g) for g in getattr(options, "share_sums", ())))

    @cached_property
    def plain_share(self) -> np.ndarray:
        """Positions (among the free edges) of the share edges sampled as plain random walks (not in a summed group)."""
        return np.flatnonzero(~self.summed_share)

    @cached_property
    def summed_edges(self) -> np.ndarray:
        """Positions (among the free edges) of the summed share edges, group after group (the order of ``summed_share_edge``)."""
        return np.concatenate(self.share_groups) if self.share_groups else np.zeros(0, dtype=int)

    @cached_property
    def share_join_order(self) -> np.ndarray:
        """Gather index that puts ``[plain share edges, summed share edges]`` into free-edge order."""
        return np.argsort(np.concatenate([self.plain_share, self.summed_edges]))

    @cached_property
    def share_walk_order(self) -> np.ndarray:
        """Gather index that puts the plain share edges' ``[non-centred, centred]`` walks into plain-edge order."""
        c = self.centred_share[self.plain_share]
        return np.argsort(np.concatenate([np.flatnonzero(~c), np.flatnonzero(c)]))

    @cached_property
    def sum_split(self) -> SumSplit:
        """The bijection between the summed edges' logits and their groups' (log-sum-exp, split) coordinates."""
        sizes = [len(g) for g in self.share_groups]
        return SumSplit(np.repeat(np.arange(len(sizes)), sizes), np.cumsum([0, *sizes[:-1]]).astype(int))

    @property
    def share_knot_dim(self) -> str:
        """Dim of the share walks' knots: ``year`` with a knot every year, else ``share_knot``."""
        return "year" if self.share_knots_every <= 1 else "share_knot"

    @property
    def share_step_dim(self) -> str:
        """Dim of the share walks' steps between knots: ``year_step`` or ``share_knot_step``."""
        return "year_step" if self.share_knots_every <= 1 else "share_knot_step"

    @cached_property
    def interp(self) -> np.ndarray | None:
        """Knot-to-year interpolation weights (year, knot), or ``None`` with a knot every year."""
        if self.share_knots_every <= 1:
            return None
        return interpolation_matrix(self.years, knot_years(self.years, self.share_knots_every))

    @cached_property
    def share_step_index(self) -> np.ndarray:
        """For each free share edge, the position of its source among the share nodes."""
        owners = [n.index for n in self.graph.share_nodes]
        return np.array([owners.index(self.graph.edges[e].source) for e in self.graph.free_edges], dtype=int)

    @cached_property
    def logit_order(self) -> np.ndarray:
        """Gather index that puts ``[reference edges (0), free edges]`` into edge order."""
        free = list(self.graph.free_edges)
        ref = [e for e in range(self.graph.n_edges) if e not in set(free)]
        return np.argsort(np.array(ref + free, dtype=int))

    @cached_property
    def yield_order(self) -> np.ndarray:
        """Gather index that puts ``[nodes without a yield (1), yield nodes]`` into node order."""
        ynodes = [n.index for n in self.graph.yield_nodes]
        rest = [i for i in range(self.graph.n_nodes) if i not in set(ynodes)]
        return np.argsort(np.array(rest + ynodes, dtype=int))

    @cached_property
    def input_column(self) -> np.ndarray:
        """For each node, its column among the input nodes, or ``n_inputs`` (a zero column)."""
        col = np.full(self.graph.n_nodes, len(self.graph.input_nodes), dtype=int)
        for i, n in enumerate(self.graph.input_nodes):
            col[n.index] = i
        return col

    @cached_property
    def walk_order(self) -> np.ndarray:
        """Gather index that puts ``[non-centred inputs, centred inputs]`` into input-node order."""
        order = np.concatenate([np.flatnonzero(~self.centred), np.flatnonzero(self.centred)])
        return np.argsort(order)

    @cached_property
    def levels(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per level after the first: (nodes, entering edges, target position of each edge within the level's nodes)."""
        g = self.graph
        level = np.zeros(g.n_nodes, dtype=int)
        for _ in range(g.depth or 0):  # longest-path levels (graph is acyclic here)
            for e in g.edges:
                level[e.target] = max(level[e.target], level[e.source] + 1)
        out = []
        for lv in range(1, int(level.max(initial=0)) + 1):
            nodes = np.flatnonzero(level == lv)
            local = {int(n): i for i, n in enumerate(nodes)}
            edges = np.array([e.index for e in g.edges if level[e.target] == lv], dtype=int)
            out.append((nodes, edges, np.array([local[g.edges[e].target] for e in edges], dtype=int)))
        return out

    @cached_property
    def first_level(self) -> np.ndarray:
        """Nodes without incoming edges (level 0)."""
        has_in = {e.target for e in self.graph.edges}
        return np.array([i for i in range(self.graph.n_nodes) if i not in has_in], dtype=int)


def walk(ops: Ops, level: Any, step: Any, innovation: Any) -> Any:
    """Random walk from standardised innovations, shape (..., 1 + step, item).

    ``level`` and ``step`` have shape (..., item); ``innovation`` (..., step, item).
    """
    xp = ops.xp
    steps = xp.cumsum(innovation * step[..., None, :], axis=-2)
    zero = xp.zeros_like(level)[..., None, :]
    return level[..., None, :] + xp.concatenate([zero, steps], axis=-2)


def centred_walk(ops: Ops, level: Any, values: Any) -> Any:
    """A centred walk: its start ``level`` (..., item) then its values (..., item, step), shape (..., 1 + step, item)."""
    xp = ops.xp
    return xp.concatenate([level[..., None, :], xp.swapaxes(values, -1, -2)], axis=-2)


def join_walks(ops: Ops, order: np.ndarray, noncentred: Any | None, centred: Any | None) -> Any:
    """Walks (..., step, item) of all items from those of the non-centred and the centred items (``order``: their gather index)."""
    parts = [p for p in (noncentred, centred) if p is not None]
    if len(parts) == 1:
        return parts[0]
    return ops.xp.concatenate(parts, axis=-1)[..., order]


def year_logits(ops: Ops, layout: Layout, free_logits: Any) -> Any:
    """Free logits per year (..., year, free edge) from their values at the knots (linear interpolation)."""
    if layout.interp is None:
        return free_logits
    return ops.xp.matmul(layout.interp, free_logits)


def shares(ops: Ops, layout: Layout, free_logits: Any) -> Any:
    """Transfer coefficients (..., year, edge) from the free logits at the knots (..., knot, free edge); reference logits are 0."""
    xp, g = ops.xp, layout.graph
    free_logits = year_logits(ops, layout, free_logits)
    n_ref = g.n_edges - len(g.free_edges)
    ref = xp.zeros((*tuple(free_logits.shape)[:-1], n_ref))
    logits = xp.concatenate([ref, free_logits], axis=-1)[..., layout.logit_order]
    if ops.is_numpy:  # draws far in a tail (e.g. of a Laplace fit) must not overflow: subtract each node's largest logit
        top = np.full((*logits.shape[:-1], g.n_nodes), -np.inf)
        np.maximum.at(np.moveaxis(top, -1, 0), g.source_index, np.moveaxis(logits, -1, 0))
        logits = logits - top[..., g.source_index]
    ex = xp.exp(logits)
    total = ops.segment_sum(ex, g.source_index, g.n_nodes)
    return ex / total[..., g.source_index]


def full_yields(ops: Ops, layout: Layout, yields: Any | None, batch: tuple[int, ...] = ()) -> Any:
    """Yield of every node (..., node): the yield nodes' values, 1 elsewhere."""
    xp, g = ops.xp, layout.graph
    if yields is None:
        return xp.ones((*batch, g.n_nodes))
    ones = xp.ones((*tuple(yields.shape)[:-1], g.n_nodes - len(g.yield_nodes)))
    return xp.concatenate([ones, yields], axis=-1)[..., layout.yield_order]


def propagate(ops: Ops, layout: Layout, u: Any, share: Any, yields: Any) -> tuple[Any, Any]:
    """Throughput and output of every node, each (..., year, node), balancing every node exactly.

    Parameters
    ----------
    ops : Ops
        The array library.
    layout : Layout
        Index arrays of the graph.
    u : array (..., year, input_node)
        External inputs of the input nodes.
    share : array (..., year, edge)
        Transfer coefficients.
    yields : array (..., node)
        Fraction of each node's throughput that leaves it as output.
    """
    xp, g = ops.xp, layout.graph
    zero = xp.zeros((*tuple(u.shape)[:-1], 1))
    external = xp.concatenate([u, zero], axis=-1)[..., layout.input_column]  # (..., year, node)
    y = yields[..., None, :]
    if g.depth is None:
        throughput = cyclic_throughput(ops, g, external, share, yields)
        return throughput, throughput * y
    order = [layout.first_level]
    through = [external[..., layout.first_level]]
    out = [through[0] * y[..., layout.first_level]]
    position = np.zeros(g.n_nodes, dtype=int)
    position[layout.first_level] = np.arange(len(layout.first_level))
    done = len(layout.first_level)
    for nodes, edges, local in layout.levels:
        outputs = xp.concatenate(out, axis=-1) if len(out) > 1 else out[0]
        contrib = outputs[..., position[g.source_index[edges]]] * share[..., edges]
        t = external[..., nodes] + ops.segment_sum(contrib, local, len(nodes))
        through.append(t)
        out.append(t * y[..., nodes])
        order.append(nodes)
        position[nodes] = done + np.arange(len(nodes))
        done += len(nodes)
    back = np.argsort(np.concatenate(order))
    return xp.concatenate(through, axis=-1)[..., back], xp.concatenate(out, axis=-1)[..., back]


def balance_matrices(ops: Ops, graph: Graph, share: Any, yields: Any) -> Any:
    """``M = I - A^T diag(y)`` (..., year, node, node) of a graph: ``M T = external`` balances every node.

    ``A[s, n]`` sums the shares (..., year, edge) of the edges from ``s`` to
    ``n``; ``yields`` (..., node). Built by a scatter of the edges into the
    flattened matrix (no dense incidence products, no einsum: PyTensor's
    batched einsum reshapes batched arrays, which numba compiles in object mode).
    """
    xp, n = ops.xp, graph.n_nodes
    src, tgt = graph.source_index, np.array([e.target for e in graph.edges], dtype=int)
    values = share * yields[..., None, :][..., src]  # (..., year, edge)
    off = ops.segment_sum(-values, tgt * n + src, n * n)  # (..., year, node * node)
    eye = np.eye(n).reshape(-1)
    return xp.reshape(off + eye, (*tuple(off.shape)[:-1], n, n))


def cyclic_throughput(ops: Ops, graph: Graph, external: Any, share: Any, yields: Any) -> Any:
    """Throughput (..., year, node) of a cyclic graph: per year the solution of ``M T = external`` (see :func:`balance_matrices`).

    Parameters
    ----------
    ops : Ops
        The array library.
    graph : Graph
        The expanded (cyclic) system.
    external : array (..., year, node)
        External input of every node (0 where it has none), system unit.
    share : array (..., year, edge)
        Transfer coefficients.
    yields : array (..., node)
        Fraction of each node's throughput that leaves it as output.

    Notes
    -----
    In the model (PyTensor, no sample dims) this is one compiled op,
    :class:`bayesmfa.core.cyclic.CyclicSolve`: a per-year LU solve in numba with a
    hand-written gradient (no ``Blockwise``, no object mode in nutpie's
    compile). NumPy (after sampling, with sample dims) and batched PyTensor
    tensors build the dense matrices and solve them batched.
    """
    if not ops.is_numpy and external.ndim == 2 and share.ndim == 2 and yields.ndim == 1:
        from bayesmfa.core.cyclic import cyclic_throughput as compiled

        tgt = np.array([e.target for e in graph.edges], dtype=np.int64)
        return compiled(external, share, yields, graph.source_index.astype(np.int64), tgt)
    return ops.solve(balance_matrices(ops, graph, share, yields), external)


def named_positions(graph: Graph, coords_list: list[tuple[tuple[str, object], ...]], dims: tuple[str, ...]) -> np.ndarray:
    """Flat positions of labelled items in a dense array with ``dims`` (full system coords)."""
    all_coords = graph.system.all_coords()
    shape = tuple(len(all_coords[d]) for d in dims)
    if not dims:
        return np.zeros(len(coords_list), dtype=int)
    idx = [tuple(all_coords[d].index(dict(c)[d]) for d in dims) for c in coords_list]
    return np.ravel_multi_index(tuple(np.array(idx).T), shape)


def edge_flows(layout: Layout, output: Any, share: Any) -> Any:
    """Flow of every edge (..., year, edge): its source's output times its share."""
    return output[..., layout.graph.source_index] * share


# ----------------------------------------------------------------------------- after sampling


def derived_arrays(post: xr.Dataset, layout: Layout, sample_dims: tuple[str, ...] = ("chain", "draw")) -> xr.Dataset:
    """The named arrays of a fit, recomputed from its stored parameters with NumPy.

    Parameters
    ----------
    post : xarray.Dataset
        A posterior or prior group holding the parameters (``input_log_level``,
        ``input_step``, the input walks, ``share_logit_level``,
        ``share_logit_innovation``, ``share_step``, ``yield``).
    layout : Layout
        Index arrays of the model's graph and options.
    sample_dims : tuple of str
        The sample dims of ``post``.

    Returns
    -------
    xarray.Dataset
        ``share`` (..., year, edge), and per flow type ``flow_<flow>``, per
        process ``input_<process>`` and ``output_<process>`` (throughput and
        output), per boundary input ``external_<process>``; dims (sample dims,
        year, flow or process dims), system unit.
    """
    u, share, yields = parameter_arrays(post, layout, sample_dims)
    throughput, output = propagate(NUMPY, layout, u, share, yields)
    flows = edge_flows(layout, output, share)
    return named_dataset(layout.graph, post, sample_dims, flows, throughput, output, u, share)


def parameter_arrays(
    post: xr.Dataset, layout: Layout, sample_dims: tuple[str, ...] = ("chain", "draw")
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """External inputs (..., year, input_node), shares (..., year, edge) and yields (..., node) of every draw."""
    g = layout.graph
    batch = tuple(post.sizes[d] for d in sample_dims)

    def arr(name: str, *dims: str) -> np.ndarray:
        return np.asarray(post[name].transpose(*sample_dims, *dims).values, dtype=float)

    u = np.exp(log_inputs_numpy(post, layout, sample_dims))
    if g.free_edges:
        plain = layout.plain_share
        level = arr("share_logit_level", "share_edge")[..., plain]
        step = arr("share_step", "share_node")[..., layout.share_step_index[plain]]
        parts = []
        if len(plain):
            all_dim = "share_edge" if len(plain) == len(g.free_edges) else "plain_share_edge"
            parts.append(_walk_numpy(post, sample_dims, "share_logit", level, step, layout.centred_share[plain],
                                     layout.share_walk_order, (all_dim, "noncentred_share_edge", "centred_share_edge"),
                                     layout.share_step_dim))
        if len(layout.summed_edges):  # stored as the logits themselves (the sampler's coordinates are a transform of them)
            parts.append(arr("share_logit_summed", layout.share_knot_dim, "summed_share_edge"))
        eta = np.concatenate(parts, axis=-1)[..., layout.share_join_order]
    else:
        eta = np.zeros((*batch, len(layout.years), 0))
    share = shares(NUMPY, layout, eta)
    yields = full_yields(NUMPY, layout, arr("yield", "yield_node") if g.yield_nodes else None, batch)
    return u, share, yields


def log_inputs_numpy(post: xr.Dataset, layout: Layout, sample_dims: tuple[str, ...]) -> np.ndarray:
    """Log external inputs (..., year, input_node) from the stored walk parameters."""
    level = np.asarray(post["input_log_level"].transpose(*sample_dims, "input_node").values, dtype=float)
    step = np.asarray(post["input_step"].transpose(*sample_dims, "input_node").values, dtype=float)
    return _walk_numpy(post, sample_dims, "input_log", level, step, layout.centred, layout.walk_order,
                       ("input_node", "noncentred_input", "centred_input"), "year_step")


def _walk_numpy(post: xr.Dataset, sample_dims: tuple[str, ...], name: str, level: np.ndarray, step: np.ndarray,
                centred: np.ndarray, order: np.ndarray, dims: tuple[str, str, str], step_dim: str) -> np.ndarray:
    """A random walk (..., 1 + step, item) from its stored non-centred innovations and/or centred values.

    ``dims`` are the item dim when all items share one parametrisation, then
    the dims of the non-centred and of the centred items when they are mixed.
    """
    noncentred = values = None
    if (~centred).any():
        dim = dims[0] if not centred.any() else dims[1]
        z = np.asarray(post[f"{name}_innovation"].transpose(*sample_dims, step_dim, dim).values, dtype=float)
        noncentred = walk(NUMPY, level[..., ~centred], step[..., ~centred], z)
    if centred.any():
        dim = dims[0] if centred.all() else dims[2]
        raw = np.asarray(post[f"{name}_walk"].transpose(*sample_dims, dim, step_dim).values, dtype=float)
        values = centred_walk(NUMPY, level[..., centred], raw)
    return join_walks(NUMPY, order, noncentred, values)


def named_dataset(
    graph: Graph, post: xr.Dataset, sample_dims: tuple[str, ...], flows: np.ndarray, throughput: np.ndarray,
    output: np.ndarray, u: np.ndarray, share: np.ndarray,
) -> xr.Dataset:
    """Scatter edge and node arrays (..., year, item) into named, dense arrays with the system's dims."""
    system = graph.system
    all_coords = system.all_coords()
    base = {d: post[d].values for d in sample_dims}
    base["year"] = np.asarray(system.years)
    lead = (*sample_dims, "year")
    data: dict[str, xr.DataArray] = {}

    def dense(values: np.ndarray, items: list, dims: tuple[str, ...]) -> xr.DataArray:
        shape = tuple(len(all_coords[d]) for d in dims)
        full = np.zeros((*values.shape[:-1], int(np.prod(shape))))
        full[..., named_positions(graph, items, dims)] = values
        coords = dict(base) | {d: list(all_coords[d]) for d in dims}
        return xr.DataArray(full.reshape(*values.shape[:-1], *shape), dims=(*lead, *dims), coords=coords)

    data["share"] = xr.DataArray(share, dims=(*lead, "edge"), coords=dict(base) | {"edge": graph.edge_labels()})
    for fname in system.flows:
        edges = graph.edges_of(fname)
        data[f"flow_{fname}"] = dense(flows[..., [e.index for e in edges]], [e.coords for e in edges], system.flow_dims(fname))
    input_pos = {n.index: i for i, n in enumerate(graph.input_nodes)}
    for pname, proc in system.processes.items():
        nodes = graph.nodes_of(pname)
        ids = [n.index for n in nodes]
        coords = [n.coords for n in nodes]
        data[f"input_{pname}"] = dense(throughput[..., ids], coords, proc.dims)
        data[f"output_{pname}"] = dense(output[..., ids], coords, proc.dims)
        if pname in system.inputs:
            data[f"external_{pname}"] = dense(u[..., [input_pos[i] for i in ids]], coords, proc.dims)
    data.update(stock_arrays(system, data))
    data.update(group_arrays(system, data))
    return xr.Dataset(data)


def group_arrays(system: System, named: dict[str, xr.DataArray] | xr.Dataset) -> dict[str, xr.DataArray]:
    """``input_<group>`` and ``output_<group>`` of every process group: the sums of its members' arrays (system unit)."""
    out: dict[str, xr.DataArray] = {}
    for group, members in system.groups.items():
        for kind in ("input", "output"):
            out[f"{kind}_{group}"] = sum(named[f"{kind}_{m}"] for m in members[1:]) + named[f"{kind}_{members[0]}"]
    return out


def stock_arrays(system: System, named: dict[str, xr.DataArray] | xr.Dataset) -> dict[str, xr.DataArray]:
    """Yearly change and running level of every stock of ``system`` (see :class:`bayesmfa.core.system.Stock`).

    ``stock_change_<S>`` = ``flow_<S>_addition`` - ``flow_<S>_release`` (dims: sample dims, year,
    the holding process's dims; system unit per year, e.g. kt REO/yr; either sign), and
    ``stock_<S>`` its level at the end of each year: the stock's ``initial`` level plus the running
    sum of the changes (without ``initial``: the change since the start of the first year). Coords
    outside the stock's restriction are 0.
    """
    out: dict[str, xr.DataArray] = {}
    for stock in system.stocks.values():
        change = named[f"flow_{stock.addition}"] - named[f"flow_{stock.release}"]
        out[f"stock_change_{stock.name}"] = change
        level = change.cumsum(system.time_dim)
        if stock.initial is not None:
            level = level + stock.initial * stock_mask(system, stock, change)
        out[f"stock_{stock.name}"] = level
    return out


def stock_mask(system: System, stock: Stock, like: xr.DataArray) -> xr.DataArray:
    """1 on the coords of the holding process where ``stock`` exists, 0 elsewhere (the dims of the process among ``like``'s)."""
    dims = system.processes[stock.process].dims
    mask = xr.DataArray(1.0)
    for d in dims:
        allowed = stock.coords.get(d)
        if allowed is not None:
            mask = mask * xr.DataArray(np.isin(like[d].astype(str).values, allowed).astype(float), dims=d, coords={d: like[d].values})
    return mask
