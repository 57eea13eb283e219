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
    finite = np.isfinite(values).all(axis=(0, 1))
    with np.errstate(invalid="ignore"):  # non-finite elements are classified by ``finite`` first
        span = values.max(axis=(0, 1)) - values.min(axis=(0, 1))
        scale = np.abs(values).max(axis=(0, 1))
    constant = finite & (span <= CONSTANT_RTOL * scale)
    return np.where(~finite, "nonfinite", np.where(constant, "constant", "ok"))


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
    names, elements, statuses, columns = [], [], [], []
    for name, da in post.data_vars.items():
        if not {"chain", "draw"} <= set(da.dims):
            continue
        da = da.transpose("chain", "draw", ...)
        values = np.asarray(da.values, dtype=float).reshape(da.sizes["chain"], da.sizes["draw"], -1)
        status = _element_status(values)
        names += [name] * status.size
        elements += list(range(status.size))
        statuses.append(status)
        columns.append(values[..., status == "ok"])
    status = np.concatenate(statuses) if statuses else np.array([], dtype=str)
    out = {k: np.full(status.size, np.nan) for k in ("rhat", "ess_bulk", "ess_tail")}
    ok = status == "ok"
    if ok.any():
        draws = xr.Dataset({"x": (("chain", "draw", "element"), np.concatenate(columns, axis=-1))})  # one call for all
        out["rhat"][ok] = az.rhat(draws)["x"].values
        out["ess_bulk"][ok] = az.ess(draws, method="bulk")["x"].values
        out["ess_tail"][ok] = az.ess(draws, method="tail")["x"].values
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
    package = str(Path(__file__).resolve().parent)
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
