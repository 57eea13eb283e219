"""The balance of a cyclic system as one compiled op: a per-year dense LU solve with a hand-written gradient.

On a graph with cycles (recycling loops) the throughput of every node solves,
per year ``t``,

    T[t] = b[t] + A[t]^T (y * T[t]),   i.e.   M[t] T[t] = b[t],   M[t] = I - A[t]^T diag(y),

with ``b`` the external inputs, ``A[t][s, n]`` the summed shares of the edges
from ``s`` to ``n`` and ``y`` the yields. :class:`CyclicSolve` builds ``M[t]``
from the edges (no dense incidence products), factorises it (LU with partial
pivoting, in numba) and solves, year by year; :class:`CyclicSolveGrad` reuses
the factors for the adjoint solve ``M^T lambda = g`` and scatters the gradient
back onto the edges and yields (O(edges) per year):

    dL/db = lambda,   dL/dshare[e] = lambda[tgt e] T[src e] y[src e],   dL/dy[s] = sum_e lambda[tgt e] share[e] T[s].

Both ops have numba implementations (nutpie compiles them into its log density
without object mode, and numba caches them on disk) and Python ones (PyMC's
own sampler, the C backend for prior draws and the pointwise log-likelihood).
The batched ``pt.linalg.solve`` path this replaces went through ``pt.einsum``,
whose batched reshapes (``Blockwise{Reshape}``) numba compiles in object mode.

Shapes: ``external`` (year, node), ``share`` (year, edge), ``yields`` (node,);
flows in the system unit. ``M`` is column diagonally dominant (a node sends at
most its throughput onwards), so it is non-singular whenever every loop leaks.
"""

from __future__ import annotations

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply, Variable
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import register_funcify_and_cache_key

#: Bump when the numerics of the numba functions change (numba's on-disk cache key).
CYCLIC_VERSION = 1


@numba.njit(cache=True)
def balance_matrices(share: np.ndarray, yields: np.ndarray, src: np.ndarray, tgt: np.ndarray) -> np.ndarray:
    """``M[t] = I - A[t]^T diag(y)`` for every year, shape (year, node, node), from the edges' shares (year, edge)."""
    n_years, n_edges = share.shape
    n = yields.shape[0]
    m = np.zeros((n_years, n, n))
    for t in range(n_years):
        for i in range(n):
            m[t, i, i] = 1.0
        for e in range(n_edges):
            m[t, tgt[e], src[e]] -= share[t, e] * yields[src[e]]
    return m


@numba.njit(cache=True)
def lu_factor(a: np.ndarray, piv: np.ndarray) -> None:
    """LU factorisation with partial pivoting of the square matrix ``a``, in place (L unit lower, U upper).

    ``piv[k]`` is the row swapped with row ``k`` at step ``k`` (LAPACK's ``getrf`` convention, 0-based).
    """
    n = a.shape[0]
    for k in range(n):
        p = k
        best = abs(a[k, k])
        for i in range(k + 1, n):
            v = abs(a[i, k])
            if v > best:
                best, p = v, i
        piv[k] = p
        if p != k:
            for j in range(n):
                a[k, j], a[p, j] = a[p, j], a[k, j]
        inv = 1.0 / a[k, k]
        for i in range(k + 1, n):
            a[i, k] *= inv
            f = a[i, k]
            if f != 0.0:
                for j in range(k + 1, n):
                    a[i, j] -= f * a[k, j]


@numba.njit(cache=True)
def lu_solve(lu: np.ndarray, piv: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve ``a x = b`` from the factors of :func:`lu_factor` (``b`` (node,); a new array)."""
    n = lu.shape[0]
    x = b.copy()
    for k in range(n):
        p = piv[k]
        if p != k:
            x[k], x[p] = x[p], x[k]
    for i in range(n):
        s = x[i]
        for j in range(i):
            s -= lu[i, j] * x[j]
        x[i] = s
    for i in range(n - 1, -1, -1):
        s = x[i]
        for j in range(i + 1, n):
            s -= lu[i, j] * x[j]
        x[i] = s / lu[i, i]
    return x


@numba.njit(cache=True)
def lu_solve_transposed(lu: np.ndarray, piv: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Solve ``a^T x = g`` from the factors of :func:`lu_factor` (``g`` (node,); a new array)."""
    n = lu.shape[0]
    x = g.copy()
    for i in range(n):  # U^T z = g
        s = x[i]
        for j in range(i):
            s -= lu[j, i] * x[j]
        x[i] = s / lu[i, i]
    for i in range(n - 1, -1, -1):  # L^T w = z
        s = x[i]
        for j in range(i + 1, n):
            s -= lu[j, i] * x[j]
        x[i] = s
    for k in range(n - 1, -1, -1):  # x = P^T w
        p = piv[k]
        if p != k:
            x[k], x[p] = x[p], x[k]
    return x


@numba.njit(cache=True)
def cyclic_solve(external: np.ndarray, share: np.ndarray, yields: np.ndarray, src: np.ndarray,
                 tgt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Throughput (year, node) solving ``M[t] T[t] = external[t]`` every year, with the LU factors and pivots of ``M``.

    Parameters
    ----------
    external : ndarray (year, node)
        External input of every node (0 where it has none), system unit.
    share : ndarray (year, edge)
        Transfer coefficients.
    yields : ndarray (node,)
        Fraction of each node's throughput that leaves it as output.
    src, tgt : ndarray (edge,) of int64
        Source and target node of each edge.

    Returns
    -------
    throughput : ndarray (year, node)
    lu : ndarray (year, node, node)
        The factors of each year's ``M`` (for :func:`cyclic_solve_grad`).
    piv : ndarray (year, node) of int64
    """
    lu = balance_matrices(share, yields, src, tgt)
    n_years, n = external.shape
    piv = np.zeros((n_years, n), dtype=np.int64)
    out = np.empty((n_years, n))
    for t in range(n_years):
        lu_factor(lu[t], piv[t])
        out[t] = lu_solve(lu[t], piv[t], external[t])
    return out, lu, piv


@numba.njit(cache=True)
def cyclic_solve_grad(g: np.ndarray, throughput: np.ndarray, lu: np.ndarray, piv: np.ndarray, share: np.ndarray,
                      yields: np.ndarray, src: np.ndarray, tgt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradient of ``sum(g * throughput)`` with respect to external (year, node), share (year, edge) and yields (node,)."""
    n_years, n = throughput.shape
    n_edges = share.shape[1]
    g_ext = np.empty((n_years, n))
    g_share = np.empty((n_years, n_edges))
    g_y = np.zeros(n)
    for t in range(n_years):
        lam = lu_solve_transposed(lu[t], piv[t], g[t])
        g_ext[t] = lam
        for e in range(n_edges):
            s = src[e]
            w = lam[tgt[e]] * throughput[t, s]
            g_share[t, e] = w * yields[s]
            g_y[s] += w * share[t, e]
    return g_ext, g_share, g_y


def _as_float(x) -> Variable:  # noqa: ANN001
    return pt.as_tensor_variable(x).astype("float64")


def _as_index(x) -> Variable:  # noqa: ANN001
    return x if isinstance(x, Variable) else pt.constant(np.asarray(x, dtype=np.int64))


class CyclicSolve(Op):
    """Throughput (year, node) of a cyclic graph from (external, share, yields); extra outputs: LU factors and pivots.

    Inputs: ``external`` (year, node), ``share`` (year, edge), ``yields`` (node,), then the edges' source and
    target nodes (int64 constants). Only the throughput is differentiable (see :class:`CyclicSolveGrad`).
    """

    __props__ = ()

    def make_node(self, external, share, yields, src, tgt) -> Apply:  # noqa: ANN001
        external, share, yields = _as_float(external), _as_float(share), _as_float(yields)
        if (external.ndim, share.ndim, yields.ndim) != (2, 2, 1):
            raise ValueError("CyclicSolve takes external (year, node), share (year, edge) and yields (node,)")
        outputs = [pt.matrix(dtype="float64"), pt.tensor3(dtype="float64"), pt.matrix(dtype="int64")]
        return Apply(self, [external, share, yields, _as_index(src), _as_index(tgt)], outputs)

    def perform(self, node, inputs, output_storage) -> None:  # noqa: ANN001
        for store, value in zip(output_storage, cyclic_solve(*(np.asarray(x) for x in inputs)), strict=True):
            store[0] = value

    def infer_shape(self, fgraph, node, shapes):  # noqa: ANN001, ANN201
        (t, n), _, _, _, _ = shapes
        return [(t, n), (t, n, n), (t, n)]

    def grad(self, inputs, output_grads):  # noqa: ANN001, ANN201
        from pytensor.gradient import DisconnectedType, disconnected_type

        for g in output_grads[1:]:
            if not isinstance(g.type, DisconnectedType):
                raise NotImplementedError("only the throughput output of CyclicSolve is differentiable")
        external, share, yields, src, tgt = inputs
        throughput, lu, piv = self(*inputs)
        g_ext, g_share, g_y = CyclicSolveGrad()(output_grads[0], throughput, lu, piv, share, yields, src, tgt)
        return [g_ext, g_share, g_y, disconnected_type(), disconnected_type()]

    def connection_pattern(self, node) -> list[list[bool]]:  # noqa: ANN001
        return [[True, False, False]] * 3 + [[False, False, False]] * 2


class CyclicSolveGrad(Op):
    """Gradient of :class:`CyclicSolve`'s throughput: (g_external, g_share, g_yields) from the output gradient and factors."""

    __props__ = ()

    def make_node(self, g, throughput, lu, piv, share, yields, src, tgt) -> Apply:  # noqa: ANN001
        inputs = [_as_float(g), throughput, lu, piv, _as_float(share), _as_float(yields), _as_index(src), _as_index(tgt)]
        return Apply(self, inputs, [pt.matrix(dtype="float64"), pt.matrix(dtype="float64"), pt.vector(dtype="float64")])

    def perform(self, node, inputs, output_storage) -> None:  # noqa: ANN001
        for store, value in zip(output_storage, cyclic_solve_grad(*(np.asarray(x) for x in inputs)), strict=True):
            store[0] = value

    def infer_shape(self, fgraph, node, shapes):  # noqa: ANN001, ANN201
        return [shapes[1], shapes[4], shapes[5]]


@register_funcify_and_cache_key(CyclicSolve)
def _numba_cyclic_solve(op: CyclicSolve, node=None, **kwargs):  # noqa: ANN001, ANN003, ANN202
    @numba.njit
    def solve(external, share, yields, src, tgt):  # noqa: ANN001, ANN202
        return cyclic_solve(external, share, yields, src, tgt)

    return solve, f"{__name__}.CyclicSolve.v{CYCLIC_VERSION}"  # the module path in the key: see fusedop


@register_funcify_and_cache_key(CyclicSolveGrad)
def _numba_cyclic_solve_grad(op: CyclicSolveGrad, node=None, **kwargs):  # noqa: ANN001, ANN003, ANN202
    @numba.njit
    def solve_grad(g, throughput, lu, piv, share, yields, src, tgt):  # noqa: ANN001, ANN202
        return cyclic_solve_grad(g, throughput, lu, piv, share, yields, src, tgt)

    return solve_grad, f"{__name__}.CyclicSolveGrad.v{CYCLIC_VERSION}"


def cyclic_throughput(external, share, yields, src: np.ndarray, tgt: np.ndarray) -> pt.TensorVariable:  # noqa: ANN001
    """Throughput (year, node) of a cyclic graph as a PyTensor tensor, differentiable in ``external``, ``share`` and ``yields``.

    Parameters
    ----------
    external : tensor (year, node)
        External input of every node, system unit.
    share : tensor (year, edge)
        Transfer coefficients.
    yields : tensor (node,)
        Yields (1 for nodes without one).
    src, tgt : ndarray (edge,)
        Source and target node of each edge.
    """
    return CyclicSolve()(external, share, yields, np.asarray(src, dtype=np.int64), np.asarray(tgt, dtype=np.int64))[0]

