"""Plausibility and consistency checks of a problem's inputs, run before any fit.

:func:`check_problem` runs when a :class:`~bayesmfa.core.problem.Problem` is made
(:func:`~bayesmfa.core.problem.make_problem`, :func:`~bayesmfa.core.problem.load_problem`),
so every path (the demo, the REE case, a user's own system) gets it. Each
finding is either an error (:class:`PlausibilityError`, a
:class:`~bayesmfa.errors.RecordError` naming the file, row and field of the
offending record and the record it conflicts with) or a warning
(:class:`PlausibilityWarning`, also listed on ``Problem.warnings``).

Two records observe *the same quantity* when their operators are identical:
the same flows and years in the numerator, the same denominator (shares) and
the same factors (a gross-weight record and an REO record of one flow are
different quantities). Values are compared in the system unit.

Rules and thresholds
--------------------
Magnitude
    A mass record above :data:`MAX_KT` kt (1e12 kt = 1e15 t, ten thousand
    times the world's yearly extraction of all raw materials, about 1e11 t)
    is an error. Two measurements of the same quantity more than
    :data:`SPREAD_LIMIT` (1000) times apart are an error: sources disagree by
    tens of percent, not by three orders of magnitude (a unit or a decimal
    slipped). Zeros are left out of this rule: tables print 0 for "nil" or
    "not reported" (the model floors them).
Duplicates
    Two records equal in every column but ``file``, ``row`` and ``record_id``
    (values compared in the system unit) would be counted twice: an error
    naming both lines.
Bounds
    A lower bound above an upper bound of the same quantity (beyond
    :data:`ROUNDING`, 1 %, for printed figures) is an error. A measurement
    above an upper bound (or below a lower bound) is an error when it is more
    than :data:`GROSS` (2) times beyond it (a log gap of 0.69, over 3 sd of
    the relative errors of 0.05-0.2 that statistics usually carry), and a
    warning when it is beyond the bound by more than :data:`NOISE` (10 %,
    the usual relative error of official statistics; closer than that is
    plain noise) but less than 2 times (measurements are noisy; the censored
    likelihood can reconcile them).
Shares
    Shares of one denominator (same denominator flows, same year) from one
    ``source`` whose numerators are disjoint parts of the denominator must
    not sum above :data:`SHARE_SUM_LIMIT` (1.05; published shares are
    rounded): an error. Different sources may disagree, so they are not
    summed together; ratios (unit ``ratio``) and bounds are not summed.
Priors
    Structural prior entries must select something
    (:func:`bayesmfa.core.priors.check_prior_selectors`: errors, and a warning for
    an entry every node of which a later entry overrides). A ``noise`` or
    ``factors`` entry naming a source type or factor no record uses is a
    warning when some record takes the ``*`` default instead (the named entry
    is then most likely misspelt); without a ``*`` entry a record lacking its
    prior is an error when the model is built, and an unused named entry is
    harmless (a run may leave record families out).
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Hashable, Iterable
from pathlib import Path

import numpy as np

from bayesmfa.core.graph import Graph
from bayesmfa.core.priors import Priors, check_prior_selectors
from bayesmfa.core.records import CompiledRecords
from bayesmfa.core.system import System
from bayesmfa.errors import RecordError

#: Largest plausible mass record, kt (converted to the system unit).
MAX_KT = 1e12
#: Largest ratio between two measurements of the same quantity.
SPREAD_LIMIT = 1000.0
#: A measurement this many times beyond a bound of the same quantity is an error (a warning below).
GROSS = 2.0
#: Relative tolerance when comparing a lower with an upper bound (rounding of printed figures).
ROUNDING = 0.01
#: A measurement beyond a bound by less than this (relative) is noise: no warning.
NOISE = 0.10
#: Largest sum of disjoint shares of one denominator from one source.
SHARE_SUM_LIMIT = 1.05
_NOT_DATA = ("file", "row", "record_id")


class PlausibilityError(RecordError):
    """Records contradict each other or are implausible (names the record and the one it conflicts with)."""


class PlausibilityWarning(UserWarning):
    """A tension in the inputs that a fit can still reconcile (listed on ``Problem.warnings``)."""


def check_problem(system: System, priors: Priors, graph: Graph, records: CompiledRecords) -> tuple[str, ...]:
    """Run every plausibility check; raise the first error, warn about and return the rest.

    Parameters
    ----------
    system : System
        The validated system (its unit is the unit of ``records.value``).
    priors : Priors
        Prior tables.
    graph : Graph
        Node/edge expansion of ``system``.
    records : CompiledRecords
        Records compiled against ``graph``.

    Returns
    -------
    tuple of str
        The warnings, one line each (each was also issued as a :class:`PlausibilityWarning`).

    Raises
    ------
    PlausibilityError
        For the first contradictory or implausible record.
    PriorError
        For the first prior entry that selects nothing.
    """
    found = check_records(records, system) + check_prior_selectors(priors, graph) + check_named_priors(priors, records)
    for message in found:
        warnings.warn(message, PlausibilityWarning, stacklevel=3)
    return tuple(found)


def check_records(records: CompiledRecords, system: System) -> list[str]:
    """The record checks (magnitude, duplicates, bounds, spread, share sums).

    Parameters
    ----------
    records : CompiledRecords
        Records compiled against the system's graph (values in the system unit).
    system : System
        The system (for its unit and dims).

    Returns
    -------
    list of str
        Warnings (milder bound tensions).

    Raises
    ------
    PlausibilityError
        For the first error found, in the order of the rules above.
    """
    view = _View(records, system)
    _check_absolute(view)
    _check_duplicates(view)
    found: list[str] = []
    for group in view.groups().values():
        _check_bound_pair(view, group)
        if records.signed[group].any():
            continue  # a quantity of either sign (a - b, a stock change) has no ratios of magnitude
        found.extend(_check_bounds_vs_measurements(view, group))
        _check_spread(view, group)
    _check_share_sums(view)
    return found


def check_named_priors(priors: Priors, records: CompiledRecords) -> list[str]:
    """Warn about ``noise``/``factors`` entries no record uses while records fall back on ``*``.

    Parameters
    ----------
    priors : Priors
        Prior tables.
    records : CompiledRecords
        The compiled records (their source types and factors).

    Returns
    -------
    list of str
        One warning per named entry that is probably misspelt.
    """
    found = []
    stypes = sorted(set(records.table["source_type"].astype(str).str.strip())) if records.n_obs else []
    for section, selector, used in (("noise", "source_type", stypes), ("factors", "name", records.factors)):
        entries = priors.entries[section]
        named = {v for e in entries for v in e.get_select(selector) if v != "*"}
        by_default = sorted(set(used) - named)
        if not by_default or not any("*" in e.get_select(selector) for e in entries):
            continue
        for e in entries:
            for v in e.get_select(selector):
                if v != "*" and v not in used:
                    found.append(f"{e.file} field '{e.key}.{selector}': no record has {selector} {v!r}, while "
                                 f"{', '.join(map(repr, by_default))} take(s) the '*' default (misspelt?)")
    return found


# ----------------------------------------------------------------------------- the records, for the rules


class _View:
    """Records with what the rules need: quantity keys, locations, descriptions."""

    def __init__(self, records: CompiledRecords, system: System) -> None:
        self.records = records
        self.system = system
        self.table = records.table.reset_index(drop=True)
        self.value = records.value
        self.bound = records.bound
        self.is_share = records.is_share
        self.keys = _quantity_keys(records)
        self.dims = [d for d in system.all_coords() if d != system.time_dim and d in self.table.columns]

    def groups(self) -> dict[Hashable, list[int]]:
        """Record indices by quantity key, in table order."""
        out: dict[Hashable, list[int]] = defaultdict(list)
        for i, key in enumerate(self.keys):
            out[key].append(i)
        return out

    def cell(self, i: int, col: str) -> str:
        return str(self.table.at[i, col]).strip() if col in self.table.columns else ""

    def where(self, i: int, relative_to: int | None = None) -> str:
        """``file row N`` of record ``i`` (the file left out when it is the file of ``relative_to``)."""
        file, row = self.cell(i, "file"), self.cell(i, "row")
        same = relative_to is not None and self.cell(relative_to, "file") == file
        text = f"line {row}" if same else f"{file} line {row}"
        rid = self.cell(i, "record_id")
        return text if rid == f"{Path(file).stem}:{row}" else f"{text} (record {rid!r})"

    def what(self, i: int) -> str:
        """The quantity in words: ``mining[region=A] 2010``."""
        coords = ",".join(f"{d}={self.cell(i, d)}" for d in self.dims if self.cell(i, d))
        text = self.cell(i, "quantity") + (f"[{coords}]" if coords else "")
        if self.cell(i, "factor"):
            text += f" with factor {self.cell(i, 'factor')}"
        return f"{text} {self.cell(i, 'year')}"

    def amount(self, i: int) -> str:
        unit = "" if self.is_share[i] else f" {self.system.unit}"
        return f"{self.value[i]:.4g}{unit}"

    def error(self, i: int, field: str, message: str) -> PlausibilityError:
        rid = self.cell(i, "record_id")
        file, row = self.cell(i, "file") or "<table>", self.cell(i, "row")
        if rid and rid != f"{Path(file).stem}:{row}":
            message = f"record {rid!r}: {message}"
        return PlausibilityError(message, file=file, row=int(row) if row.isdigit() else None, field=field)

    def warning(self, i: int, field: str, message: str) -> str:
        return str(self.error(i, field, message))


def _quantity_keys(records: CompiledRecords) -> list[Hashable]:
    """One hashable key per record: numerator and denominator operator rows, factor powers, share flag."""
    rows = [_operator_rows(records.numerator), _operator_rows(records.denominator)]
    return [(num, den, tuple(records.factor_matrix[i]), bool(records.is_share[i])) for i, (num, den) in enumerate(zip(*rows))]


def _operator_rows(matrix) -> list[tuple[tuple[int, ...], tuple[float, ...]]]:
    """Each row of a sparse operator as (column indices, weights), canonical."""
    m = matrix.tocsr(copy=True)
    m.sum_duplicates()
    m.sort_indices()
    return [
        (tuple(m.indices[a:b].tolist()), tuple(m.data[a:b].tolist()))
        for a, b in zip(m.indptr[:-1], m.indptr[1:])
    ]


# ----------------------------------------------------------------------------- the rules


def _check_absolute(view: _View) -> None:
    """A mass record above ``MAX_KT`` kt is an error."""
    unit = view.system.unit
    limit = MAX_KT * view.system.units.get("kt", 1.0)
    in_kt = "" if unit == "kt" else f" = {MAX_KT:.0e} kt"
    for i in np.flatnonzero(~view.is_share & (view.value > limit)):
        raise view.error(i, "value", f"{view.amount(i)} is implausibly large (limit {limit:.0e} {unit}{in_kt}): "
                                     "a unit or an exponent slipped?")


def _check_duplicates(view: _View) -> None:
    """Two records equal in every column but file/row/record_id are an error (at the later one)."""
    cols = [c for c in view.table.columns if c not in _NOT_DATA and c not in ("value", "unit")]
    cells = view.table[cols].astype(str).apply(lambda s: s.str.strip())
    seen: dict[tuple, int] = {}
    for i, row in enumerate(cells.itertuples(index=False, name=None)):
        key = (*row, float(view.value[i]), bool(view.is_share[i]))
        if key in seen:
            first = seen[key]
            raise view.error(i, "quantity", f"duplicate of {view.where(first, i)}: the same record in every column "
                                            "would be counted twice (delete one)")
        seen[key] = i


def _check_bound_pair(view: _View, group: list[int]) -> None:
    """The largest lower bound must not exceed the smallest upper bound of the same quantity."""
    lower = [i for i in group if view.bound[i] == -1]
    upper = [i for i in group if view.bound[i] == 1]
    if not lower or not upper:
        return
    lo = max(lower, key=lambda i: view.value[i])
    hi = min(upper, key=lambda i: view.value[i])
    if view.value[lo] > view.value[hi] * (1 + ROUNDING):
        at, other = (lo, hi) if lo > hi else (hi, lo)
        raise view.error(at, "bound", f"lower bound {view.amount(lo)} is above upper bound {view.amount(hi)} of the same "
                                      f"quantity {view.what(at)} ({'upper' if at == lo else 'lower'} bound at "
                                      f"{view.where(other, at)}): no value satisfies both")


def _check_bounds_vs_measurements(view: _View, group: list[int]) -> list[str]:
    """Measurements beyond a bound: an error beyond ``GROSS`` times, a warning beyond ``ROUNDING``."""
    found = []
    measured = [i for i in group if view.bound[i] == 0]
    for b in (i for i in group if view.bound[i] != 0):
        for m in measured:
            gap = _gap(view.value[m], view.value[b], int(view.bound[b]))
            if gap <= 1 + NOISE:
                continue
            kind, side = ("upper", "below") if view.bound[b] == 1 else ("lower", "above")
            message = (f"{kind} bound {view.amount(b)} is {side} the measurement {view.amount(m)} of the same quantity "
                       f"{view.what(b)} at {view.where(m, b)}")
            if gap > GROSS:
                raise view.error(b, "value", f"{message}: a gap of {_times(gap)} (more than {GROSS:g}x) is no noise")
            found.append(view.warning(b, "value", f"{message} ({_times(gap)}; within {GROSS:g}x, left to the likelihood)"))
    return found


def _gap(measured: float, bound: float, side: int) -> float:
    """How many times the measurement lies beyond the bound (<= 1: on the right side)."""
    over, under = (measured, bound) if side == 1 else (bound, measured)
    if under <= 0:
        return np.inf if over > 0 else 1.0
    return over / under


def _times(gap: float) -> str:
    return "infinite ratio" if not np.isfinite(gap) else f"x{gap:.3g}"


def _check_spread(view: _View, group: list[int]) -> None:
    """Positive measurements of one quantity must lie within ``SPREAD_LIMIT`` of each other."""
    measured = [i for i in group if view.bound[i] == 0 and view.value[i] > 0]
    if len(measured) < 2:
        return
    lo = min(measured, key=lambda i: view.value[i])
    hi = max(measured, key=lambda i: view.value[i])
    ratio = view.value[hi] / view.value[lo]
    if ratio <= SPREAD_LIMIT:
        return
    centre = np.median(np.log([view.value[i] for i in measured]))
    d_hi, d_lo = (abs(np.log(view.value[i]) - centre) for i in (hi, lo))
    if np.isclose(d_hi, d_lo):
        at, other = max(hi, lo), min(hi, lo)  # a tie (two records): the later one is the suspect
    else:
        at, other = (hi, lo) if d_hi > d_lo else (lo, hi)
    raise view.error(at, "value", f"{view.amount(at)} is {ratio:.3g} times {'above' if at == hi else 'below'} the measurement "
                                  f"{view.amount(other)} of the same quantity {view.what(at)} at {view.where(other, at)} "
                                  f"(more than {SPREAD_LIMIT:g}x: a unit or a decimal slipped?)")


def _check_share_sums(view: _View) -> None:
    """Disjoint shares of one denominator from one source must not sum above ``SHARE_SUM_LIMIT``."""
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for i in np.flatnonzero(view.is_share & (view.bound == 0)):
        num, den, factors, _ = view.keys[i]
        if view.cell(i, "unit") == "ratio" or not set(num[0]) <= set(den[0]):
            continue  # ratios, and "shares" whose numerator is not a part of their denominator, do not partition it
        groups[(den, factors, view.cell(i, "source"))].append(int(i))
    for members in groups.values():
        parts = _distinct_parts(view, members)
        if len(parts) < 2 or not _disjoint(view.keys[i][0][0] for i in parts):
            continue
        total = float(sum(view.value[i] for i in parts))
        if total > SHARE_SUM_LIMIT:
            at = max(parts)
            others = ", ".join(view.where(i, at) for i in parts if i != at)
            raise view.error(at, "value", f"shares of one denominator from one source sum to {total:.3g} (> {SHARE_SUM_LIMIT:g}): "
                                          f"this share {view.amount(at)} of {view.what(at)} with {others}")


def _distinct_parts(view: _View, members: list[int]) -> list[int]:
    """One record per distinct numerator (the smallest value, to be lenient with repeated shares)."""
    best: dict[Hashable, int] = {}
    for i in members:
        num = view.keys[i][0]
        if num not in best or view.value[i] < view.value[best[num]]:
            best[num] = i
    return sorted(best.values())


def _disjoint(supports: Iterable[tuple[int, ...]]) -> bool:
    seen: set[int] = set()
    for cols in supports:
        if seen & set(cols):
            return False
        seen |= set(cols)
    return True

