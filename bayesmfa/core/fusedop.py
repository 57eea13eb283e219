"""The fused record likelihood (:mod:`bayesmfa.core.kernel`) as a PyTensor ``Op``, for every PyTensor backend but JAX.

One ``Op`` returns the summed log-likelihood and its gradient with respect to
its five inputs; its ``grad`` reuses those outputs (PyTensor merges the two
identical applications, so one kernel call gives value and gradient). The
numba implementation lets nutpie compile it into its log-density function; the
Python ``perform`` serves PyMC's own sampler and the C backend.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply, Variable
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import register_funcify_and_cache_key

from bayesmfa.core.kernel import KernelData, logp_and_grad_logits


class FusedLikelihood(Op):
    """Summed record log-likelihood of (u, logits, yields, sigma, factor) and its gradient.

    ``logits`` are the free share logits per year (year, free edge); the softmax
    per node runs in the kernel. Inputs: the five tensors, the free edges' indices,
    then the arrays of :class:`~bayesmfa.core.kernel.KernelData` as constants (so the compiled function depends on no captured global and
    numba can cache it on disk). Outputs: ``logp`` (scalar), then the gradient
    with respect to each of the five tensors (same shapes).
    """

    __props__ = ()

    def make_node(self, u, logits, yields, sigma, factor, *data) -> Apply:  # noqa: ANN001, ANN002
        inputs = [pt.as_tensor_variable(x).astype("float64") for x in (u, logits, yields, sigma, factor)]
        consts = [d if isinstance(d, Variable) else pt.constant(np.asarray(d)) for d in data]
        outputs = [pt.dscalar(), *(x.type() for x in inputs)]
        return Apply(self, inputs + consts, outputs)

    def perform(self, node, inputs, output_storage) -> None:  # noqa: ANN001
        results = logp_and_grad_logits(*(np.asarray(x, dtype=float) for x in inputs[:5]), *(np.asarray(d)[()] for d in inputs[5:]))
        output_storage[0][0] = np.asarray(results[0])
        for store, value in zip(output_storage[1:], results[1:], strict=True):
            store[0] = value

    def grad(self, inputs, output_grads):  # noqa: ANN001, ANN201
        from pytensor.gradient import DisconnectedType, disconnected_type

        for g in output_grads[1:]:
            if not isinstance(g.type, DisconnectedType):
                raise NotImplementedError("only the log-likelihood output of FusedLikelihood is differentiable")
        outs = self(*inputs)
        return [output_grads[0] * d for d in outs[1:]] + [disconnected_type() for _ in inputs[5:]]

    def connection_pattern(self, node) -> list[list[bool]]:  # noqa: ANN001
        n_data = len(node.inputs) - 5
        return [[True] + [False] * 5 for _ in range(5)] + [[False] * 6 for _ in range(n_data)]


#: Bump when the kernel's numerics change, so numba's on-disk cache is not reused across versions.
KERNEL_VERSION = 4


@register_funcify_and_cache_key(FusedLikelihood)
def _numba_fused(op: FusedLikelihood, node=None, **kwargs):  # noqa: ANN001, ANN003, ANN202
    import numba

    @numba.njit
    def fused(u, logits, yields, sigma, factor, free_edges, topo, in_ptr, in_edges, src, input_col, num_ptr, num_idx,  # noqa: ANN001, ANN202
              num_val, den_ptr, den_idx, den_val, is_share, offset, floor, obs, bound, kind, nu, t_const, source_index, fixed_sd,
              noise_scale):
        total, du, dlogits, dyields, dsigma, dlf = logp_and_grad_logits(
            u, logits, yields, sigma, factor, free_edges, topo, in_ptr, in_edges, src, input_col, num_ptr, num_idx, num_val,
            den_ptr, den_idx, den_val, is_share, offset, floor, obs, bound, kind, nu, t_const, source_index, fixed_sd,
            noise_scale.item())
        return np.asarray(total), du, dlogits, dyields, dsigma, dlf

    # the module path is in the key: numba pickles it into the cached code, so a cache written where the module lived
    # before a move would fail to load (ModuleNotFoundError) instead of being recompiled
    return fused, f"{__name__}.FusedLikelihood.v{KERNEL_VERSION}"


def fused_loglik(data: KernelData, free_edges: np.ndarray, u, logits, yields, sigma, factor) -> pt.TensorVariable:  # noqa: ANN001
    """The summed record log-likelihood as a PyTensor scalar (differentiable in its first five tensor inputs).

    ``logits`` (year, free edge) are the free share logits per year; ``free_edges`` their edge indices.
    """
    return FusedLikelihood()(u, logits, yields, sigma, factor, np.asarray(free_edges, dtype=np.int64), *data.arrays())[0]
