"""Prior distributions declared as data: validation and construction of PyMC variables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayesmfa.errors import PriorError

#: Parameters each distribution takes, and whether each must be positive.
PARAMS: dict[str, dict[str, bool]] = {
    "Normal": {"mu": False, "sigma": True},
    "HalfNormal": {"sigma": True},
    "LogNormal": {"mu": False, "sigma": True},
    "Beta": {"alpha": True, "beta": True},
    "Gamma": {"alpha": True, "beta": True},
    "Exponential": {"lam": True},
    "Uniform": {"lower": False, "upper": False},
    "Fixed": {"value": False},
}


@dataclass(frozen=True)
class DistSpec:
    """A validated distribution: name and parameters.

    ``LogNormal`` may be given with ``median`` instead of ``mu``
    (``mu = log(median)``); it is stored with ``mu``.
    """

    dist: str
    params: tuple[tuple[str, float], ...]

    @property
    def kwargs(self) -> dict[str, float]:
        return dict(self.params)

    def median(self) -> float:
        """Median of the distribution (for summaries of prior width)."""
        p = self.kwargs
        if self.dist == "Fixed":
            return p["value"]
        if self.dist == "LogNormal":
            return float(np.exp(p["mu"]))
        if self.dist == "Beta":
            return p["alpha"] / (p["alpha"] + p["beta"])
        return float(np.nan)


def parse_dist(
    entry: dict[str, Any], *, allowed: Sequence[str], file: str, key: str, support: str = "real"
) -> DistSpec:
    """Validate the ``dist`` and parameters of one prior entry.

    Parameters
    ----------
    entry : dict
        The YAML entry, with ``dist`` and its parameters.
    allowed : sequence of str
        Distribution names allowed for this kind of prior.
    file, key : str
        Where the entry is (for error messages).
    support : {"real", "positive", "unit"}
        Support the variable needs; e.g. a ``Uniform`` factor must be positive.

    Returns
    -------
    DistSpec
    """
    dist = entry.get("dist")
    if dist not in PARAMS:
        raise PriorError(f"unknown distribution {dist!r}; known: {sorted(PARAMS)}", file=file, field=f"{key}.dist")
    if dist not in allowed:
        raise PriorError(f"distribution {dist!r} is not allowed here; use one of {list(allowed)}", file=file, field=f"{key}.dist")
    values = dict(entry)
    if dist == "LogNormal" and "median" in values and "mu" not in values:
        med = values.pop("median")
        if not isinstance(med, (int, float)) or med <= 0:
            raise PriorError(f"median must be a positive number, got {med!r}", file=file, field=f"{key}.median")
        values["mu"] = float(np.log(med))
    params: list[tuple[str, float]] = []
    for name, positive in PARAMS[dist].items():
        if name not in values:
            raise PriorError(f"parameter {name!r} of {dist} is missing", file=file, field=f"{key}.{name}")
        val = values[name]
        if isinstance(val, bool) or not isinstance(val, (int, float)) or not np.isfinite(val):
            raise PriorError(f"parameter {name!r} must be a finite number, got {val!r}", file=file, field=f"{key}.{name}")
        if positive and val <= 0:
            raise PriorError(f"parameter {name!r} must be positive, got {val}", file=file, field=f"{key}.{name}")
        params.append((name, float(val)))
    spec = DistSpec(dist, tuple(params))
    _check_support(spec, support, file, key)
    return spec


def _check_support(spec: DistSpec, support: str, file: str, key: str) -> None:
    p = spec.kwargs
    if spec.dist == "Uniform" and p["upper"] <= p["lower"]:
        raise PriorError("Uniform needs lower < upper", file=file, field=f"{key}.upper")
    lo, hi = {"positive": (0.0, np.inf), "unit": (0.0, 1.0)}.get(support, (-np.inf, np.inf))
    if spec.dist == "Uniform" and (p["lower"] < lo or p["upper"] > hi):
        raise PriorError(f"Uniform bounds must lie in [{lo}, {hi}]", file=file, field=f"{key}.lower")
    if spec.dist == "Fixed":
        ok = lo <= p["value"] <= hi and (support == "real" or p["value"] > 0)
        if not ok:
            raise PriorError(f"fixed value {p['value']} is outside the support ({support})", file=file, field=f"{key}.value")


def vector_variable(name: str, specs: Sequence[DistSpec], dim: str) -> pt.TensorVariable:
    """Create one PyMC variable with dim ``dim`` whose elements follow ``specs``.

    Elements that share a distribution are drawn as one vectorised variable;
    when more than one distribution is used, the pieces are stitched together
    in a ``pm.Deterministic`` named ``name``. Fixed elements are constants.

    Parameters
    ----------
    name : str
        Variable name in the model.
    specs : sequence of DistSpec
        One spec per coord of ``dim`` (the coords must exist in the model).
    dim : str
        The dim of the variable.

    Returns
    -------
    TensorVariable
        Shape ``(len(specs),)``.
    """
    model = pm.modelcontext(None)
    labels = list(model.coords[dim])
    groups: dict[str, list[int]] = {}
    for i, spec in enumerate(specs):
        groups.setdefault(spec.dist, []).append(i)
    if len(groups) == 1 and "Fixed" not in groups:
        dist = next(iter(groups))
        return _make(name, dist, [s.kwargs for s in specs], dim)
    pieces = pt.zeros(len(specs))
    for dist, idx in groups.items():
        if dist == "Fixed":
            part = pt.as_tensor(np.array([specs[i].kwargs["value"] for i in idx]))
        else:
            sub_dim = f"{dim}_{dist.lower()}"
            model.add_coord(sub_dim, [labels[i] for i in idx])
            part = _make(f"{name}_{dist.lower()}", dist, [specs[i].kwargs for i in idx], sub_dim)
        pieces = pt.set_subtensor(pieces[np.array(idx)], part)
    return pm.Deterministic(name, pieces, dims=dim)


def _make(name: str, dist: str, params: list[dict[str, float]], dim: str) -> pt.TensorVariable:
    arrays = {k: np.array([p[k] for p in params]) for k in params[0]}
    return getattr(pm, dist)(name, **arrays, dims=dim)
