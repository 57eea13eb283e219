"""Convergence diagnostics computed after every fit, and loud warnings when they fail."""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass

import arviz as az
import numpy as np

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


def _extreme(ds, pick: str) -> tuple[float, str]:
    best, where = (np.nan, "")
    for name, da in ds.data_vars.items():
        vals = np.asarray(da.values, dtype=float)
        vals = vals[np.isfinite(vals)]
        if not vals.size:
            continue
        v = vals.max() if pick == "max" else vals.min()
        if np.isnan(best) or (v > best if pick == "max" else v < best):
            best, where = float(v), name
    return best, where


def compute_diagnostics(
    idata: az.InferenceData,
    var_names: list[str] | None = None,
    wall_s: float = float("nan"),
    dataset=None,
) -> Diagnostics:
    """R-hat, bulk/tail ESS and divergences of a fit.

    Constant elements (structural zeros) are ignored; their R-hat is undefined.

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
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        # constant elements divide 0 by 0 inside ArviZ; they are skipped by _extreme, so their warnings are noise
        warnings.filterwarnings("ignore", category=RuntimeWarning, module="arviz")
        rhat, worst_rhat = _extreme(az.rhat(post), "max")
        ess_bulk, worst_ess = _extreme(az.ess(post, method="bulk"), "min")
        ess_tail, _ = _extreme(az.ess(post, method="tail"), "min")
    div = int(idata.sample_stats["diverging"].sum()) if "diverging" in idata.sample_stats else 0
    return Diagnostics(rhat, ess_bulk, ess_tail, div, worst_rhat, worst_ess, wall_s)


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
        warnings.warn(msg, ConvergenceWarning, stacklevel=2)
    return failures
