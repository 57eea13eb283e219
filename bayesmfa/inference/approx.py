"""A fast approximate posterior: Laplace at the mode, corrected and judged by Pareto-smoothed importance sampling.

For notebook iteration, not for publication. The steps, all in the
unconstrained space where NUTS samples (log / log-odds of constrained
parameters, with the Jacobian in the density):

1. the posterior mode, by L-BFGS on the log density and its gradient;
2. the Hessian there, by central differences of the gradient (2 x parameters
   gradient evaluations), and the Gaussian ``q`` it defines;
3. a pool of draws from ``q``, their importance ratios ``p / q`` smoothed by
   PSIS (:func:`arviz.psislw`), whose Pareto shape ``k`` says whether the
   approximation can be trusted: ``k <= 0.7`` the importance-weighted draws
   are usable, above it they are not (Vehtari et al. 2024, "Pareto smoothed
   importance sampling", JMLR 25);
4. the stored draws: resampled from the pool in proportion to the smoothed
   weights, so every quantity computed from them carries the correction;
   where ``k > 0.7`` the weights are not to be trusted either, and the stored
   draws are the plain Gaussian ones (a rough picture, flagged), those where
   the model's density is finite: far in the Gaussian's tails (e.g. along
   directions the mode leaves flat) the forward model overflows.

Draws where the log density overflows or is undefined are expected on the
way (the optimiser's trial steps, the pool's tails): they are handled by value
(no step there, zero weight), so NumPy's floating-point warnings about them
are not raised.

The result has the layout of a NUTS fit's posterior (chain, draw, the
parameters the sampler would store), so everything downstream runs on it.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pymc as pm
import xarray as xr

#: Above this Pareto k the importance-weighted approximation is not to be trusted.
MAX_PARETO_K = 0.7


@dataclass(frozen=True)
class LaplaceInfo:
    """What the approximation did and how good it is.

    Attributes
    ----------
    pareto_k : float
        Pareto shape of the importance ratios (<= 0.7: usable).
    ess : float
        Effective number of the importance-weighted pool draws.
    pool : int
        Draws from the Gaussian approximation before resampling.
    corrected : bool
        Whether the stored draws are resampled by the smoothed weights
        (``pareto_k <= 0.7``); otherwise they are plain draws from the Gaussian,
        a rough picture only.
    mode_logp : float
        Log density (unconstrained, with Jacobian) at the mode.
    n_grad : int
        Log-density gradient evaluations (optimiser and Hessian).
    clipped_eigenvalues : int
        Eigenvalues of the negative Hessian raised to the floor (directions
        the mode leaves flat or curved the wrong way).
    optimise_s, hessian_s, sample_s : float
        Seconds in each step.
    converged : bool
        Whether L-BFGS reported convergence.
    finite_share : float
        Share of the pool draws where the log density is finite (the others
        have weight 0 and are not stored).
    """

    pareto_k: float
    ess: float
    pool: int
    corrected: bool
    mode_logp: float
    n_grad: int
    clipped_eigenvalues: int
    optimise_s: float
    hessian_s: float
    sample_s: float
    converged: bool
    finite_share: float = 1.0


def laplace(
    model: pm.Model, var_names: list[str], *, draws: int, chains: int, seed: int, pool_factor: int = 4
) -> tuple[xr.Dataset, xr.Dataset, LaplaceInfo]:
    """Draws from the PSIS-corrected Laplace approximation of ``model``'s posterior.

    Parameters
    ----------
    model : pymc.Model
        The model (its free variables define the unconstrained space).
    var_names : list of str
        Variables to store per draw (free variables and small deterministics).
    draws, chains : int
        Layout of the result: ``chains x draws`` resampled draws.
    seed : int
        Random seed of the optimiser's start, the pool and the resampling.
    pool_factor : int
        The pool holds ``pool_factor x chains x draws`` Gaussian draws.

    Returns
    -------
    posterior : xarray.Dataset
        ``var_names`` and the unconstrained values, dims (chain, draw, ...)
        with the model's dims and coords.
    sample_stats : xarray.Dataset
        ``lp`` (chain, draw): the log density (unconstrained, with Jacobian) of each draw.
    info : LaplaceInfo
    """
    from scipy import optimize

    start = time.perf_counter()
    logp_grad, x0, unravel = _flat_logp(model, seed)
    n_grad = 0

    def neg(x: np.ndarray) -> tuple[float, np.ndarray]:
        nonlocal n_grad
        n_grad += 1
        lp, g = logp_grad(x)
        if not np.isfinite(lp):
            return 1e300, np.zeros_like(x)
        return -lp, -g

    res = optimize.minimize(neg, x0, jac=True, method="L-BFGS-B", options={"maxiter": 20000, "maxfun": 40000, "gtol": 1e-6})
    mode = res.x
    optimise_s = time.perf_counter() - start
    start = time.perf_counter()
    hess = _hessian(logp_grad, mode)
    n_grad += 2 * mode.size
    evals, evecs, clipped = _precision_eig(-hess)
    hessian_s = time.perf_counter() - start
    start = time.perf_counter()
    rng = np.random.default_rng([seed, 7])
    n_pool = pool_factor * chains * draws
    eps = rng.standard_normal((n_pool, mode.size))
    pool = mode + (eps / np.sqrt(evals)) @ evecs.T
    log_q = -0.5 * np.sum(eps**2, axis=1) + 0.5 * np.sum(np.log(evals))  # up to a constant, which PSIS ignores
    log_p = np.array([logp_grad(x)[0] for x in pool])
    log_w = np.where(np.isfinite(log_p), log_p - log_q, -np.inf)
    smoothed, k = _psis(log_w)
    weights = np.exp(smoothed - smoothed.max())
    weights /= weights.sum()
    ess = float(1.0 / np.sum(weights**2))
    corrected = bool(k <= MAX_PARETO_K)
    if corrected:
        picked = rng.choice(n_pool, size=chains * draws, replace=True, p=weights)
    else:  # the weights are not to be trusted either: keep the plain Gaussian draws, flagged by k
        picked = _plain_draws(np.isfinite(log_p), chains * draws, rng)
    posterior = _dataset(model, var_names, unravel, pool[picked], chains, draws)
    sample_s = time.perf_counter() - start
    info = LaplaceInfo(float(k), ess, n_pool, corrected, float(-res.fun), n_grad, clipped, optimise_s, hessian_s, sample_s,
                       bool(res.success), float(np.isfinite(log_p).mean()))
    lp = xr.DataArray(log_p[picked].reshape(chains, draws), dims=("chain", "draw"), coords=posterior[["chain", "draw"]].coords)
    return posterior, xr.Dataset({"lp": lp}), info


def _plain_draws(finite: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``n`` plain (unweighted) pool draws: the first ``n`` with a finite log density, in pool order.

    When fewer are finite, all of them plus a uniform choice among them (with
    replacement) fill the rest; when none is, the first ``n`` draws.
    """
    ok = np.flatnonzero(finite)
    if not ok.size:
        return np.arange(n)
    if ok.size >= n:
        return ok[:n]
    return np.concatenate([ok, rng.choice(ok, size=n - ok.size, replace=True)])


def _flat_logp(model: pm.Model, seed: int):  # noqa: ANN202
    """Log density and gradient as a function of one flat unconstrained vector, the start, and the unravelling."""
    import pytensor.tensor as pt
    from pymc.blocking import DictToArrayBijection
    from pymc.pytensorf import compile as compile_fn
    from pymc.pytensorf import join_nonshared_inputs

    point = model.initial_point(random_seed=seed)
    value_vars = model.value_vars
    logp = model.logp(jacobian=True)
    grad = pt.concatenate([g.ravel() for g in pt.grad(logp, value_vars)])
    (logp_flat, grad_flat), joined = join_nonshared_inputs(point, [logp, grad], value_vars)
    with _quiet_blas_check():
        fn = compile_fn([joined], [logp_flat, grad_flat], mode=None)
    x0 = DictToArrayBijection.map({v.name: point[v.name] for v in value_vars}).data

    def logp_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
        with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):  # non-finite results are handled by value
            lp, g = fn(x)
        return float(lp), np.asarray(g, dtype=float)

    def unravel(x: np.ndarray) -> dict[str, np.ndarray]:
        out, i = {}, 0
        for v in value_vars:
            shape = point[v.name].shape
            n = int(np.prod(shape))
            out[v.name] = x[i : i + n].reshape(shape)
            i += n
        return out

    return logp_grad, x0, unravel


@contextmanager
def _quiet_blas_check() -> Iterator[None]:
    """Silence PyTensor's notice, on its first compilation in a process, that it found no BLAS library to link.

    The notice (a ``UserWarning`` from ``pytensor.link.c.cmodule`` and a log
    line from ``pytensor.tensor.blas``) is PyTensor's advice on how it was
    installed, about speed: the fallback it takes (NumPy's BLAS through its C
    API) computes the same values. Other warnings pass.
    """
    log = logging.getLogger("pytensor.tensor.blas")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS installation", category=UserWarning,
                                    module="pytensor")
            yield
    finally:
        log.setLevel(level)


def _hessian(logp_grad, x: np.ndarray) -> np.ndarray:  # noqa: ANN001
    """Hessian of the log density at ``x`` by central differences of its gradient, symmetrised."""
    n = x.size
    hess = np.empty((n, n))
    for i in range(n):
        h = 1e-5 * max(1.0, abs(x[i]))
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        hess[:, i] = (logp_grad(up)[1] - logp_grad(down)[1]) / (2.0 * h)
    return 0.5 * (hess + hess.T)


def _precision_eig(precision: np.ndarray, floor: float = 1e-6) -> tuple[np.ndarray, np.ndarray, int]:
    """Eigen-decomposition of the precision with eigenvalues raised to ``floor`` (count of those raised)."""
    evals, evecs = np.linalg.eigh(precision)
    low = evals < floor
    return np.where(low, floor, evals), evecs, int(low.sum())


def _psis(log_w: np.ndarray) -> tuple[np.ndarray, float]:
    """Pareto-smoothed log weights (normalised) and the Pareto shape ``k``."""
    import arviz as az

    finite = np.isfinite(log_w)
    if not finite.any():
        return np.zeros_like(log_w), float("inf")
    smoothed, k = az.psislw(np.where(finite, log_w, np.min(log_w[finite]) - 1e3))
    k = float(k)
    if not np.isfinite(k):  # PSIS could not fit a tail (e.g. ratios spanning beyond float range): as untrustworthy as it gets
        k = float("inf")
    return np.where(finite, smoothed, -np.inf), k


def _dataset(model: pm.Model, var_names: list[str], unravel, xs: np.ndarray, chains: int, draws: int) -> xr.Dataset:  # noqa: ANN001
    """The stored variables and unconstrained values of each flat draw, as a posterior dataset (chain, draw, ...)."""
    value_names = [v.name for v in model.value_vars]
    extra = [n for n in value_names if n not in var_names]  # unconstrained values (``*_log__``), as nutpie stores them
    outs = model.replace_rvs_by_values([model[n] for n in var_names])  # functions of the values, not fresh random draws
    fn = model.compile_fn(outs, inputs=model.value_vars, on_unused_input="ignore", point_fn=False)
    stored: dict[str, list[np.ndarray]] = {n: [] for n in [*var_names, *extra]}
    for x in xs:
        point = unravel(x)
        for name, value in zip(var_names, fn(*(point[v] for v in value_names)), strict=True):
            stored[name].append(np.asarray(value))
        for name in extra:
            stored[name].append(point[name])
    dims = model.named_vars_to_dims
    coords = {k: list(v) for k, v in model.coords.items() if v is not None}
    out = {}
    for name, values in stored.items():
        arr = np.stack(values).reshape(chains, draws, *np.shape(values[0]))
        var_dims = dims.get(name) or dims.get(_rv_name(model, name))
        if var_dims and len(var_dims) == arr.ndim - 2:
            out[name] = xr.DataArray(arr, dims=("chain", "draw", *var_dims), coords={d: coords[d] for d in var_dims if d in coords})
        else:
            out[name] = xr.DataArray(arr, dims=("chain", "draw", *[f"{name}_dim_{i}" for i in range(arr.ndim - 2)]))
    return xr.Dataset(out).assign_coords(chain=np.arange(chains), draw=np.arange(draws))


def _rv_name(model: pm.Model, value_name: str) -> str:
    """The free variable whose value variable is ``value_name`` (its dims are the value's)."""
    for rv, value in model.rvs_to_values.items():
        if value.name == value_name:
            return rv.name
    return value_name
