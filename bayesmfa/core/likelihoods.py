"""Which likelihood each record has, on which scale, with which noise: resolved once from records, priors and options.

Three families (``kind``):

* 0 ``lognormal``: ``log(value + floor) ~ Normal(log(model + floor), sd)``, sd the relative error;
* 1 ``studentt``: the same on the log scale with Student-t(nu) noise;
* 2 ``normal``: additive, ``value ~ Normal(model, sd)`` with sd in the record's (system) unit; the
  only family for quantities that can take either sign (``a - b``, a stock change).

A record's family is its source type's ``likelihood`` (``noise`` priors; lognormal when unset, or the
one ``ModelOptions.likelihood`` forces on the log-scale records), except that a record with its own
``sd`` is normal. Its noise is learned per source type, unless the record carries ``sd`` or ``cv``
(see :mod:`bayesmfa.core.records`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayesmfa.core.priors import Priors, resolve_named
from bayesmfa.core.records import CompiledRecords
from bayesmfa.errors import PriorError, RecordError

#: Likelihood families in the order of their ``kind`` code, with the posterior group and dim of their records.
FAMILIES: tuple[tuple[str, str, str], ...] = (("lognormal", "records", "obs"), ("studentt", "records_t", "obs_t"),
                                              ("normal", "records_n", "obs_n"))
KIND = {name: i for i, (name, _, _) in enumerate(FAMILIES)}
NORMAL = KIND["normal"]


@dataclass(frozen=True)
class RecordLikelihoods:
    """Per record (dim ``obs``): its family and the constants of its density.

    Attributes
    ----------
    kind : ndarray of int
        0 lognormal, 1 Student-t, 2 normal (see :data:`FAMILIES`).
    nu : ndarray of float
        Student-t degrees of freedom (unused by the other families).
    floor : ndarray of float
        Added to value and model before the log (system unit, or share
        units); 0 for normal records.
    obs : ndarray of float
        The record on its likelihood's scale: ``log(value + floor)``, or
        ``value`` for normal records.
    fixed_sd : ndarray of float
        The record's own sd on that scale (log scale for lognormal and
        Student-t, the record's unit for normal), times the options' noise
        scale; NaN where the sd is its source type's learned noise.
    """

    kind: np.ndarray
    nu: np.ndarray
    floor: np.ndarray
    obs: np.ndarray
    fixed_sd: np.ndarray

    def natural(self, x: np.ndarray) -> np.ndarray:
        """Model values (..., record) on the likelihood scale back in the record's unit."""
        return np.where(self.kind == NORMAL, x, np.exp(x) - self.floor)


def default_floor(records: CompiledRecords, floor: float | None, share_floor: float) -> np.ndarray:
    """Per record: ``floor`` (or 1e-3 times the median positive mass record) for masses, ``share_floor`` for shares."""
    mass = records.value[~records.is_share]
    positive = mass[mass > 0]
    if floor is None:
        floor = 1e-3 * float(np.median(positive)) if len(positive) else 1e-3
    return np.where(records.is_share, share_floor, floor)


def resolve_likelihoods(priors: Priors, records: CompiledRecords, *, likelihood: str = "auto", nu: float = 4.0,
                        floor: float | None = None, share_floor: float = 1e-3, noise_scale: float = 1.0) -> RecordLikelihoods:
    """Resolve every record's family, floor, observed value and fixed sd.

    Parameters
    ----------
    priors : Priors
        Their ``noise`` entries give each source type's ``likelihood`` and
        ``nu``; a source type whose records all carry ``sd``/``cv`` needs no entry.
    records : CompiledRecords
        The compiled records (their ``sd``, ``cv``, ``signed`` and values).
    likelihood : {"auto", "lognormal", "studentt"}
        ``auto``: each source type's own; else forced on every log-scale
        record (normal ones stay normal).
    nu, floor, share_floor, noise_scale
        As in :class:`bayesmfa.core.model.ModelOptions`.

    Raises
    ------
    RecordError
        A record that can take either sign (``a - b``, a stock change)
        without a normal likelihood, naming its file, line and ``quantity``.
    PriorError
        A source type with learned noise and no ``noise`` prior.
    """
    if likelihood not in ("auto", "lognormal", "studentt"):
        raise ValueError(f"unknown likelihood {likelihood!r}")
    stype = records.table["source_type"].astype(str).str.strip().to_numpy() if records.n_obs else np.array([], dtype=str)
    entries = resolve_named(priors, "noise", records.source_types, "source_type")
    for name in sorted(set(stype) - set(entries)):
        try:
            entries |= resolve_named(priors, "noise", [name], "source_type")
        except PriorError:
            pass  # every record of this source type has its own sd or cv
    own = [entries[s].get("likelihood", "lognormal") if s in entries else "lognormal" for s in stype]
    kinds = np.array([KIND["normal"] if np.isfinite(sd) or k == "normal" else KIND[k if likelihood == "auto" else likelihood]
                      for k, sd in zip(own, records.sd, strict=True)], dtype=np.int64)
    nus = np.array([float(entries[s].get("nu", nu)) if s in entries else float(nu) for s in stype])
    bad = np.flatnonzero(records.signed & (kinds != NORMAL))
    if len(bad):
        row = records.table.iloc[bad[0]]
        raise RecordError("this quantity can take either sign (a '-' term, a stock change or level), so it has no log: give the "
                          "record an sd, or its source type 'likelihood: normal' in the noise priors",
                          file=str(row["file"]), row=int(row["row"]), field="quantity")
    is_normal = kinds == NORMAL
    floors = np.where(is_normal, 0.0, default_floor(records, floor, share_floor))
    value = records.value
    with np.errstate(divide="ignore", invalid="ignore"):
        obs = np.where(is_normal, value, np.log(np.where(is_normal, 1.0, value + floors)))
        from_cv = np.where(is_normal, records.cv * np.abs(value), np.sqrt(np.log1p(records.cv**2)))
    fixed = np.where(np.isfinite(records.sd), records.sd, from_cv) * noise_scale
    if np.any(np.isfinite(records.cv) & ~(fixed > 0)):
        row = records.table.iloc[int(np.flatnonzero(np.isfinite(records.cv) & ~(fixed > 0))[0])]
        raise RecordError("a cv on a record of value 0 with a normal likelihood gives an sd of 0: give an sd instead",
                          file=str(row["file"]), row=int(row["row"]), field="cv")
    return RecordLikelihoods(kinds, nus, floors, obs, fixed)
