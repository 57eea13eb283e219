"""Convergence diagnostics computed after every fit, and loud warnings when they fail."""

from __future__ import annotations

import json
import sys
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from scipy.fftpack import next_fast_len
from scipy.special import ndtri

from bayesmfa.errors import DiagnosticsError


class ConvergenceWarning(UserWarning):
    """The sampler's diagnostics fail the thresholds."""


@dataclass(frozen=True)
class Thresholds:
    """Limits a fit must meet.

    Parameters
    ----------
    max_rhat : float
        Largest acceptable rank-normalised split R-hat.
    min_ess_bulk, min_ess_tail : float
        Smallest acceptable effective sample sizes.
    max_divergences : int
        Largest acceptable number of divergent transitions.
    max_pareto_k : float
        Largest acceptable Pareto k of an approximate fit's importance ratios
        (``method="laplace"``; NUTS fits have none).
    """

    max_rhat: float = 1.01
    min_ess_bulk: float = 400.0
    min_ess_tail: float = 400.0
    max_divergences: int = 0
    max_pareto_k: float = 0.7


@dataclass(frozen=True)
class Diagnostics:
    """Diagnostics of one fit (over the given variables)."""

    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    divergences: int
    worst_rhat: str
    worst_ess: str
    wall_s: float = float("nan")
    #: Pareto k of an approximate fit (NaN for NUTS).
    pareto_k: float = float("nan")
    #: Elements left out of R-hat and ESS because every draw has the same value (structural zeros, the
    #: share 1 of a one-edge group): their R-hat is undefined, so they are skipped, not failed.
    constant: int = 0
    #: Elements left out because some draw is NaN or infinite.
    nonfinite: int = 0

    def failures(self, thresholds: Thresholds) -> list[str]:
        """Human-readable list of failed checks (empty when all pass)."""
        out = []
        if not self.max_rhat <= thresholds.max_rhat:
            out.append(f"max R-hat {self.max_rhat:.3f} > {thresholds.max_rhat} (worst: {self.worst_rhat})")
        if not self.min_ess_bulk >= thresholds.min_ess_bulk:
            out.append(f"min bulk ESS {self.min_ess_bulk:.0f} < {thresholds.min_ess_bulk:.0f} (worst: {self.worst_ess})")
        if not self.min_ess_tail >= thresholds.min_ess_tail:
            out.append(f"min tail ESS {self.min_ess_tail:.0f} < {thresholds.min_ess_tail:.0f}")
        if self.divergences > thresholds.max_divergences:
            out.append(f"{self.divergences} divergences > {thresholds.max_divergences}")
        if np.isfinite(self.pareto_k) and self.pareto_k > thresholds.max_pareto_k:
            out.append(f"Pareto k {self.pareto_k:.2f} > {thresholds.max_pareto_k}: "
                       "the approximation cannot be trusted; fit with method='nuts'")
        elif self.pareto_k == np.inf:
            out.append("Pareto k undefined (no finite importance ratio): the approximation cannot be trusted; fit with method='nuts'")
        return out

    def to_json(self) -> str:
        return json.dumps({k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in asdict(self).items()})


#: An element whose draws span at most this fraction of its largest magnitude is constant (exact zeros, and
#: ones recomputed with rounding jitter such as the share 1 of a one-edge group).
CONSTANT_RTOL = 1e-12


def _element_status(values: np.ndarray) -> np.ndarray:
    """Status of each element of draws ``values`` (chain, draw, n): "ok", "constant" or "nonfinite"."""
    with np.errstate(invalid="ignore"):  # non-finite elements are classified by ``finite`` first
        high, low = values.max(axis=(0, 1)), values.min(axis=(0, 1))  # NaN where a draw is NaN
        finite = np.isfinite(high) & np.isfinite(low)
        span = high - low
        scale = np.maximum(np.abs(high), np.abs(low))  # the largest magnitude
    constant = finite & (span <= CONSTANT_RTOL * scale)
    return np.where(~finite, "nonfinite", np.where(constant, "constant", "ok"))


# ----------------------------------------------------------------------------- vectorised rank-normalised diagnostics
#
# The same numbers as ``arviz.rhat`` (method "rank") and ``arviz.ess`` (methods "bulk" and "tail") of
# Vehtari et al. (2021), computed for many elements at once instead of one ArviZ call per element: the
# ranks come from one sort per element (the folded draws' ranks from a near-linear stable sort of the
# already sorted ones), the normal scores of untied ranks from one table, the autocovariances from one
# FFT per block of elements, and Geyer's initial monotone sequence from cumulative array operations.

#: Fractional offset of the rank back-transformation (Blom, 1958; as ArviZ).
_BLOM = 3 / 8
#: Elements processed together (bounds the memory of the FFTs: a few tens of MB per block).
_BLOCK = 256


def _naive_var(a: np.ndarray) -> np.ndarray:
    """Sample variance (ddof 1) along the last axis, as ArviZ computes it.

    ArviZ uses its numba variance (sums of values and squares, accumulated in order) when numba is
    installed and ``np.var`` otherwise; this follows the same choice so the results agree to rounding.
    """
    from arviz.utils import Numba

    if not Numba.numba_flag:
        return np.var(a, axis=-1, ddof=1)
    n = a.shape[-1]
    total = a.sum(axis=-1)
    squares = (a * a).sum(axis=-1)
    return (squares / n - (total / n) ** 2) * (n / (n - 1))


def _split(x: np.ndarray) -> np.ndarray:
    """Draws (n, chain, draw) split into halves: (n, 2 * chain, draw // 2), first halves first (as ArviZ)."""
    half = x.shape[-1] // 2
    return np.concatenate([x[..., :half], x[..., x.shape[-1] - half:]], axis=1)


def _average_ranks_sorted(ordered: np.ndarray) -> np.ndarray:
    """Average ranks (1-based, ties share their mean rank) of the values of each row of ``ordered`` (sorted rows)."""
    n = ordered.shape[-1]
    pos = np.broadcast_to(np.arange(n), ordered.shape)
    starts = np.ones(ordered.shape, dtype=bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    ends = np.ones(ordered.shape, dtype=bool)
    ends[:, :-1] = starts[:, 1:]
    first = np.maximum.accumulate(np.where(starts, pos, 0), axis=-1)
    last = np.minimum.accumulate(np.where(ends, pos, n)[:, ::-1], axis=-1)[:, ::-1]
    return (first + last) / 2 + 1


def _normal_scores(order: np.ndarray, ordered: np.ndarray) -> np.ndarray:
    """Rank-normalised values (rows of ``ordered`` are the values sorted by ``order``), as ArviZ's ``_z_scale``.

    Rows without ties take their scores from one table (their ranks are 1..N); tied rows get the normal
    score of their average ranks.
    """
    rows, n = ordered.shape
    scale = n - 2 * _BLOM + 1
    out = np.empty(ordered.shape)
    np.put_along_axis(out, order, np.broadcast_to(ndtri((np.arange(1, n + 1, dtype=float) - _BLOM) / scale), ordered.shape),
                      axis=-1)
    tied = np.flatnonzero((ordered[:, 1:] == ordered[:, :-1]).any(axis=1))
    if tied.size:
        scores = np.empty((tied.size, n))
        np.put_along_axis(scores, order[tied], ndtri((_average_ranks_sorted(ordered[tied]) - _BLOM) / scale), axis=-1)
        out[tied] = scores
    return out


def _split_rhat(z: np.ndarray) -> np.ndarray:
    """Split R-hat of rank-normalised draws ``z`` (n, chains, draws), as ArviZ's ``_rhat``."""
    draws = z.shape[-1]
    between = draws * _naive_var(z.mean(axis=-1))
    within = _naive_var(z).mean(axis=-1)
    return np.sqrt((between / within + draws - 1) / draws)


def _mean_autocov(centred: np.ndarray, lags: int | None) -> np.ndarray:
    """Autocovariance of the first ``lags`` lags (every lag when None) of centred draws (n, chains, draws), averaged
    over the chains.

    The first lags are sums of products (ArviZ's ``autocov`` takes every lag from an FFT: the same values to
    rounding); every lag comes from the same FFT as ArviZ's.
    """
    draws = centred.shape[-1]
    if lags is None:
        m = next_fast_len(2 * draws)
        spectrum = np.fft.rfft(centred, n=m, axis=-1)
        spectrum *= np.conjugate(spectrum)
        cov = np.fft.irfft(spectrum, n=m, axis=-1)[..., :draws]
        cov /= draws
        return np.ascontiguousarray(cov.transpose(0, 2, 1)).mean(axis=-1)
    cov = np.empty((centred.shape[0], lags, centred.shape[1]))
    for t in range(lags):
        cov[:, t] = np.einsum("ncs,ncs->nc", centred[..., :draws - t], centred[..., t:]) / draws
    return cov.mean(axis=-1)


def _geyer(rho: np.ndarray, kcap: int, total: int) -> tuple[np.ndarray, np.ndarray]:
    """ESS from the autocorrelations ``rho`` (n, lags; ``rho[:, 0] = 1``) by Geyer's initial monotone sequence.

    ArviZ's loops, per element: the pair sums ``P_k = rho[2k] + rho[2k+1]`` are taken while the previous
    one is positive, up to pair ``kcap``; the pairs before the last one enter as their running minimum
    (the monotone sequence), the last one's even term when it is positive or its pair was kept.

    Returns
    -------
    tuple of numpy.ndarray
        Whether the lags given decide the ESS of each element (the sequence stopped within them), and the ESS.
    """
    reach = min(kcap, (rho.shape[1] - 2) // 2)  # the last pair the given lags hold
    pairs = rho[:, 0:2 * reach + 2:2] + rho[:, 1:2 * reach + 2:2]  # (n, reach + 1)
    stop = ~(pairs[:, 1:] > 0)
    stopped = stop.any(axis=1)
    k_last = np.where(stopped, np.argmax(stop, axis=1) + 1, reach) if reach else np.zeros(len(rho), dtype=int)
    start = (pairs[:, 0] > 0) & (kcap >= 1)
    k_last = np.where(start, k_last, 0)
    decided = stopped | ~start | (reach == kcap)
    monotone = np.minimum.accumulate(pairs, axis=1)
    kept = np.where(np.arange(reach + 1) < k_last[:, None], monotone, 0.0).sum(axis=1)
    idx = np.arange(rho.shape[0])
    even, pair = rho[idx, 2 * k_last], pairs[idx, k_last]
    last = np.where(k_last == 0, 1.0, np.where((even > 0) | (pair >= 0), even, 0.0))
    tau = np.maximum(-1.0 + 2.0 * kept + last, 1 / np.log10(total))
    ess = total / tau
    ess[np.isnan(rho[:, 1]) | np.isnan(kept) | np.isnan(last)] = np.nan
    return decided, ess


def _geyer_ess(x: np.ndarray) -> np.ndarray:
    """Effective sample size of draws ``x`` (n, chains, draws), as ArviZ's ``_ess``.

    The autocorrelations are computed for the first 16 lags, then 64, for the elements whose
    sequence has not stopped within them (almost none), and over every lag (FFT) for the rest.
    """
    rows, chains, draws = x.shape
    total = chains * draws
    chain_mean = x.mean(axis=-1)
    centred = x - chain_mean[..., None]
    var_plus = np.zeros(rows) if chains == 1 else _naive_var(chain_mean)
    kcap = (draws - 3) // 2  # the last pair ArviZ's loop may reach: lags 2k, 2k+1 with 2k - 1 < draws - 3
    ess = np.full(rows, np.nan)
    todo = np.arange(rows)
    for lags in (16, 64, None):
        if lags is not None and lags >= draws:
            continue
        mean_acov = _mean_autocov(centred[todo], lags)
        mean_var = mean_acov[:, 0] * draws / (draws - 1.0)
        plus = mean_var * (draws - 1.0) / draws + var_plus[todo]
        with np.errstate(invalid="ignore", divide="ignore"):
            rho = 1.0 - (mean_var[:, None] - mean_acov) / plus[:, None]
        rho[:, 0] = 1.0
        decided, values = _geyer(rho, kcap, total)
        ess[todo[decided]] = values[decided]
        todo = todo[~decided]
        if not todo.size:
            break
    flat = (x.max(axis=(1, 2)) - x.min(axis=(1, 2))) < np.finfo(float).resolution
    ess[flat] = total
    return ess


def _tail_quantile(ordered: np.ndarray, prob: float) -> np.ndarray:
    """Quantile ``prob`` of each sorted row (R's type 7, as ArviZ's ``_quantile`` through ``mquantiles``)."""
    n = ordered.shape[-1]
    p = np.atleast_1d(np.asarray(prob))
    aleph = n * p + (1.0 + p * (1.0 - 1.0 - 1.0))
    k = np.floor(aleph.clip(1, n - 1)).astype(int)
    gamma = (aleph - k).clip(0, 1)
    return (1.0 - gamma) * ordered[:, k[0] - 1] + gamma * ordered[:, k[0]]


def _rank_block(x: np.ndarray) -> np.ndarray:
    """R-hat, bulk ESS and tail ESS (rows) of a block of elements with draws ``x`` (n, chain, draw)."""
    n, chains, draws = x.shape
    split = _split(x)  # (n, 2 * chains, draws // 2)
    flat = split.reshape(n, -1)
    order = np.argsort(flat, axis=-1)
    ordered = np.take_along_axis(flat, order, axis=-1)
    z = _normal_scores(order, ordered).reshape(split.shape)
    size = ordered.shape[-1]
    median = (ordered[:, size // 2 - 1] + ordered[:, size // 2]) / 2 if size % 2 == 0 else ordered[:, size // 2]
    folded_sorted = np.abs(ordered - median[:, None])  # decreasing, then increasing: a near-linear stable sort
    refold = np.argsort(folded_sorted, axis=-1, kind="stable")
    z_folded = _normal_scores(np.take_along_axis(order, refold, axis=-1),
                              np.take_along_axis(folded_sorted, refold, axis=-1)).reshape(split.shape)
    out = np.empty((3, n))
    out[0] = np.maximum(_split_rhat(z), _split_rhat(z_folded))
    out[1] = _geyer_ess(z)
    whole = ordered if draws % 2 == 0 else np.sort(x.reshape(n, -1), axis=-1)  # the quantiles are of the unsplit draws
    out[2] = np.minimum(*(_geyer_ess((split <= _tail_quantile(whole, prob)[:, None, None]).astype(float))
                          for prob in (0.05, 0.95)))
    return out


def rank_diagnostics(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rank-normalised split R-hat, bulk ESS and tail ESS of every element of ``values``.

    The same numbers (to rounding) as ``arviz.rhat(method="rank")``, ``arviz.ess(method="bulk")``
    and ``arviz.ess(method="tail")`` element by element, computed for all elements at once.

    Parameters
    ----------
    values : numpy.ndarray
        Finite draws with dims (chain, draw, element).

    Returns
    -------
    tuple of numpy.ndarray
        R-hat, bulk ESS and tail ESS, one value per element.
    """
    return _rank_rows(np.ascontiguousarray(np.asarray(values, dtype=float).transpose(2, 0, 1)))


def _rank_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`rank_diagnostics` of draws ``x`` (element, chain, draw), C-contiguous.

    Elements whose draws are identical (a quantity reported twice, as exports and as imports) are
    computed once.
    """
    n, chains, draws = x.shape
    if chains < 2 or draws < 4:  # ArviZ's own handling (R-hat undefined for one chain) for such tiny fits
        ds = xr.Dataset({"x": (("chain", "draw", "element"), x.transpose(1, 2, 0))})
        return az.rhat(ds)["x"].values, az.ess(ds, method="bulk")["x"].values, az.ess(ds, method="tail")["x"].values
    # candidates for a twin: the same first draws of the first chain; kept only where all draws are equal
    _, first, inverse = np.unique(x[:, 0, :32], axis=0, return_index=True, return_inverse=True)
    twin = first[inverse.ravel()]
    same = np.concatenate([(x[i:i + _BLOCK] == x[twin[i:i + _BLOCK]]).all(axis=(1, 2))  # blockwise: no copy of x
                           for i in range(0, n, _BLOCK)]) if n else np.zeros(0, dtype=bool)
    source = np.where(same, twin, np.arange(n))
    unique = np.flatnonzero(source == np.arange(n))
    out = np.full((3, unique.size), np.nan)
    for start in range(0, unique.size, _BLOCK):  # a block of distinct elements at a time: no copy of x
        out[:, start:start + _BLOCK] = _rank_block(x[unique[start:start + _BLOCK]])
    position = np.empty(n, dtype=int)
    position[unique] = np.arange(unique.size)
    full = out[:, position[source]]
    return full[0], full[1], full[2]


def diagnostics_table(post: xr.Dataset) -> pd.DataFrame:
    """R-hat and bulk/tail ESS of every element of every variable, computed only where they are defined.

    Constant elements (every draw the same, e.g. structural zeros) and elements
    with a non-finite draw have no R-hat: they are not passed to ArviZ (whose
    R-hat of a constant divides 0 by 0) and are reported with NaN values and
    their status instead.

    Parameters
    ----------
    post : xarray.Dataset
        Draws with dims (chain, draw, ...), e.g. ``idata.posterior``.

    Returns
    -------
    pandas.DataFrame
        One row per element: ``variable``, ``element`` (flat index within the
        variable, C order), ``rhat``, ``ess_bulk``, ``ess_tail`` and
        ``status`` (``"ok"``, ``"constant"`` or ``"nonfinite"``; NaN
        diagnostics unless ``"ok"``).
    """
    names, elements, statuses, arrays = [], [], [], []
    for name, da in post.data_vars.items():
        if not {"chain", "draw"} <= set(da.dims):
            continue
        da = da.transpose("chain", "draw", ...)
        values = np.asarray(da.values, dtype=float).reshape(da.sizes["chain"], da.sizes["draw"], -1)
        status = _element_status(values)
        names += [name] * status.size
        elements += list(range(status.size))
        statuses.append(status)
        arrays.append(values)
    status = np.concatenate(statuses) if statuses else np.array([], dtype=str)
    out = {k: np.full(status.size, np.nan) for k in ("rhat", "ess_bulk", "ess_tail")}
    ok = status == "ok"
    if ok.any():  # the checked elements' draws gathered once, as (element, chain, draw)
        draws = np.empty((int(ok.sum()), *arrays[0].shape[:2]))
        row = 0
        for values, st in zip(arrays, statuses, strict=True):
            picked = np.flatnonzero(st == "ok")
            draws[row:row + picked.size] = np.moveaxis(values, -1, 0)[picked]
            row += picked.size
        out["rhat"][ok], out["ess_bulk"][ok], out["ess_tail"][ok] = _rank_rows(draws)
    return pd.DataFrame({"variable": names, "element": elements, **out, "status": status})


def _extreme(table: pd.DataFrame, column: str, pick: str) -> tuple[float, str]:
    """Largest (``pick="max"``) or smallest finite ``column`` of ``table`` and its variable; (NaN, "") when none."""
    values = table[column].to_numpy()
    finite = np.isfinite(values)
    if not finite.any():
        return float("nan"), ""
    i = np.flatnonzero(finite)[np.argmax(values[finite]) if pick == "max" else np.argmin(values[finite])]
    return float(values[i]), str(table["variable"].iloc[i])


def compute_diagnostics(
    idata: az.InferenceData,
    var_names: list[str] | None = None,
    wall_s: float = float("nan"),
    dataset: xr.Dataset | None = None,
) -> Diagnostics:
    """R-hat, bulk/tail ESS and divergences of a fit.

    Constant elements (structural zeros; every draw the same) have no R-hat:
    they are skipped, not failed, and counted in ``Diagnostics.constant``
    (elements with a non-finite draw likewise, in ``nonfinite``); see
    :func:`diagnostics_table` for the values per element.

    Parameters
    ----------
    idata : InferenceData
        With ``posterior`` and ``sample_stats``.
    var_names : list of str, optional
        Variables to check (all posterior variables by default).
    wall_s : float
        Wall time of the fit, reported alongside.
    dataset : xarray.Dataset, optional
        Derived quantities (dims chain, draw, ...) to check instead of the posterior.
    """
    post = idata.posterior if var_names is None else idata.posterior[var_names]
    if dataset is not None:
        post = dataset
    table = diagnostics_table(post)
    rhat, worst_rhat = _extreme(table, "rhat", "max")
    ess_bulk, worst_ess = _extreme(table, "ess_bulk", "min")
    ess_tail, _ = _extreme(table, "ess_tail", "min")
    div = int(idata.sample_stats["diverging"].sum()) if "diverging" in idata.sample_stats else 0
    counts = table["status"].value_counts()
    return Diagnostics(rhat, ess_bulk, ess_tail, div, worst_rhat, worst_ess, wall_s,
                       constant=int(counts.get("constant", 0)), nonfinite=int(counts.get("nonfinite", 0)))


def _outside_package() -> int:
    """``stacklevel`` for a warning raised here that names the first caller outside bayesmfa (the user's line)."""
    package = str(Path(__file__).resolve().parents[1])
    level, frame = 1, sys._getframe(1)
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(package):
        level, frame = level + 1, frame.f_back
    return level


def check_diagnostics(diag: Diagnostics, thresholds: Thresholds, *, strict: bool = False) -> list[str]:
    """Warn (or raise when ``strict``) when the diagnostics fail ``thresholds``.

    Returns
    -------
    list of str
        The failed checks.
    """
    failures = diag.failures(thresholds)
    if failures:
        msg = "Sampler diagnostics failed: " + "; ".join(failures)
        if strict:
            raise DiagnosticsError(msg)
        warnings.warn(msg, ConvergenceWarning, stacklevel=_outside_package())
    return failures
