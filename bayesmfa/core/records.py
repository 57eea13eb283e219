"""Observation records as data, compiled into a sparse record x flow operator.

A record table is a CSV with one row per record and these columns:

``quantity`` (required)
    A flow name (the flow instances it selects), a process name (the output
    of the process instances it selects), ``<process>.input`` (their input)
    or, for a boundary input process, ``<process>.external`` (the inflow from
    outside the system alone, without the flows it also receives); or a sum
    of such terms, ``salt_trade + oxide_trade``. A process group (``groups`` in
    the system) stands for the sum of its members: ``<group>`` (outputs) or
    ``<group>.input``. A stock ``S`` gives ``S.change`` (additions less
    releases in the year, either sign) and ``S.level`` (its initial level
    plus the changes up to the year; needs ``initial`` in the system).
    Terms take signed coefficients (:mod:`bayesmfa.core.expressions`):
    ``a - b``, ``2*a + b``. A record that can take either sign (a negative
    coefficient, a stock change or level) needs an additive normal
    likelihood: an ``sd``, or a source type with ``likelihood: normal``.
``year`` (required)
    A year, or a range ``2007-2015`` (the record is the sum over the years).
``value``, ``unit`` (required)
    A number, non-negative unless the quantity can take either sign; unit is a mass unit known to the system (converted to
    the system unit) or ``share`` (a fraction 0-1) with ``share_of``.
``source_type``, ``source`` (required)
    The noise family (a prior in ``noise``) and the citation.
dim columns (optional)
    Any dim of the system, or ``origin``/``destination``: a coord restricts
    the selection, a blank cell sums over the dim.
``share_of`` (optional)
    Dims left free in the denominator: the record is the selected total
    divided by the total with those dims summed over.
``denominator`` (optional)
    A quantity expression for the denominator of a share (default: the
    quantity itself with the ``share_of`` dims summed over), e.g. the share
    of ``mining_unregistered`` in ``mining + mining_unregistered``.
``factor`` (optional)
    Names of latent factors (priors in ``factors``) joined by ``*`` (the
    record observes ``factor x total``) or preceded by ``/`` (``total /
    factor``), e.g. ``reporting/reo_content`` or ``/reo_content``: a gross-weight record of a
    flow counted in REO observes ``REO / reo_content``.
``bound`` (optional)
    ``upper``/``lower``: the record is a cap or floor, not a measurement
    (a censored likelihood).
``sd``, ``cv`` (optional, at most one per row)
    The record's own uncertainty, overriding its source type's learned
    noise: ``sd`` an absolute standard deviation in the record's unit (the
    record then has an additive normal likelihood), ``cv`` a relative one
    (log-scale sd ``sqrt(log(1 + cv^2))`` for a lognormal or Student-t source
    type, ``cv * |value|`` for a normal one).

Other columns must be listed as metadata (``note``, ``status``... by default);
an unknown column is an error, so that a misspelt dim is never ignored.
Records that contradict each other (bounds, shares summing above 1,
duplicates, values a thousand times apart) are caught when a problem is made,
by :mod:`bayesmfa.core.plausibility`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from bayesmfa.core import datacheck, expressions
from bayesmfa.core.graph import Graph
from bayesmfa.errors import RecordError

REQUIRED = ("quantity", "year", "value", "unit", "source_type", "source")
OPTIONAL = ("share_of", "denominator", "factor", "bound", "record_id", "sd", "cv")
DEFAULT_META = ("note", "status", "basis", "edition", "period", "reporter", "hs_code", "family", "country", "low", "high")
SHARE_UNITS = {"share": 1.0, "fraction": 1.0, "%": 0.01, "percent": 0.01, "ratio": 1.0}
BOUNDS = ("", "upper", "lower")
_YEAR_RANGE = re.compile(r"^(\d{4})\s*-\s*(\d{4})$")
_FACTOR_TERM = re.compile(r"([*/]?)\s*([A-Za-z_][A-Za-z0-9_]*)\s*")
_FACTOR_EXPR = re.compile(r"\s*/?\s*[A-Za-z_][A-Za-z0-9_]*\s*([*/]\s*[A-Za-z_][A-Za-z0-9_]*\s*)*")


@dataclass(frozen=True)
class CompiledRecords:
    """Records compiled against a graph.

    Attributes
    ----------
    table : DataFrame
        The validated records (one row per record, with ``file`` and ``row``).
    value : ndarray
        Values in the system unit (or as fractions for shares), dim ``obs``.
    numerator, denominator : scipy.sparse.csr_matrix
        Operators of shape (obs, state): the record's total is
        ``numerator @ state`` (divided by ``denominator @ state`` for shares).
    is_share : ndarray of bool
        Which records are shares.
    source_types : list of str
        Coords of dim ``source_type``: the source types with a learned noise
        (of records without ``sd``/``cv``); ``source_index`` maps obs to it,
        -1 for a record with its own ``sd``/``cv``.
    factors : list of str
        Coords of dim ``factor``; ``factor_matrix`` (obs, factor) holds the
        power of each factor in each record (1: multiplied, -1: divided, 0: absent).
    bound : ndarray of int
        0 measurement, 1 upper bound, -1 lower bound.
    sd, cv : ndarray of float
        The record's own absolute sd (system unit, or share units) and
        relative sd; NaN where the record takes its source type's noise.
    signed : ndarray of bool
        Records whose quantity can take either sign (a negative coefficient,
        a stock change or level): they need an additive normal likelihood.
    offset : ndarray of float
        Constant added to ``numerator @ state`` (a stock's initial level).
    """

    table: pd.DataFrame
    value: np.ndarray
    numerator: sp.csr_matrix
    denominator: sp.csr_matrix
    is_share: np.ndarray
    source_types: list[str]
    source_index: np.ndarray
    factors: list[str]
    factor_matrix: np.ndarray
    bound: np.ndarray
    sd: np.ndarray
    cv: np.ndarray
    signed: np.ndarray
    offset: np.ndarray

    @property
    def n_obs(self) -> int:
        return len(self.value)

    @property
    def fixed_noise(self) -> np.ndarray:
        """Records with their own ``sd`` or ``cv`` (no learned noise), dim ``obs``."""
        return np.isfinite(self.sd) | np.isfinite(self.cv)

    @property
    def labels(self) -> list[str]:
        return list(self.table["record_id"])

    def digest(self) -> str:
        """SHA-256 of the validated records (for provenance hashes)."""
        cols = [c for c in self.table.columns if c not in ("file", "row")]
        text = self.table[cols].to_csv(index=False)
        return hashlib.sha256(text.encode()).hexdigest()


class StateIndex:
    """Layout of the model's state vector: per year, [edges | outputs | inputs].

    Parameters
    ----------
    graph : Graph
        The expanded system.
    """

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.n_years = len(graph.system.years)
        self.width = graph.n_edges + 2 * graph.n_nodes

    @property
    def size(self) -> int:
        return self.n_years * self.width

    def edge(self, t: int, e: int) -> int:
        return t * self.width + e

    def output(self, t: int, n: int) -> int:
        return t * self.width + self.graph.n_edges + n

    def input(self, t: int, n: int) -> int:
        return t * self.width + self.graph.n_edges + self.graph.n_nodes + n


def read_records(paths: str | Path | Iterable[str | Path]) -> pd.DataFrame:
    """Read record CSVs (files, or directories of ``*.csv``) into one table.

    Files are read as UTF-8 text by the reader of ``bayesmfa data check``
    (:func:`bayesmfa.core.datacheck.read_table`): a byte-order mark, CRLF line
    ends and blank lines at the end are accepted; cells are stripped. Every
    row keeps its ``file`` and ``row`` (the line an editor shows, the header
    being line 1).

    Parameters
    ----------
    paths : path or iterable of paths
        Record files or directories.

    Returns
    -------
    DataFrame
        String cells, with ``file`` and ``row`` first.

    Raises
    ------
    RecordError
        On one line, naming the file (and the line where there is one): a
        missing file, no files, text that is not UTF-8 (UTF-16, latin-1,
        binary), an empty file, a header without records, a blank line
        between records, unreadable CSV, a row with more or fewer cells than
        the header, an unnamed or repeated column.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = list(paths)
    frames = []
    for p in map(Path, paths):
        files = sorted(p.glob("*.csv")) if p.is_dir() else [p]
        for f in files:
            if not f.is_file():
                raise RecordError("file not found", file=str(f))
            frames.append(_read_one(f))
    if not frames:
        raise RecordError("no record files found", file=", ".join(map(str, paths)))
    return pd.concat(frames, ignore_index=True).fillna("")


def _read_one(path: Path) -> pd.DataFrame:
    """One record file as a string table with ``file`` and ``row`` (editor line) columns."""
    try:
        table = datacheck.read_table(path)
    except datacheck.DataCheckError as exc:
        reason = "no records: the file has a header only" if "header only" in exc.reason else exc.reason
        raise RecordError(reason, file=exc.file, row=exc.row, field=exc.field) from None
    header = table.header
    for i, name in enumerate(header):
        if not name:
            raise RecordError(f"column {i + 1} of the header has no name", file=str(path), row=1)
        if header.index(name) != i:
            raise RecordError("column appears more than once in the header", file=str(path), row=1, field=name)
    for line, cells in table.rows:
        if len(cells) != len(header):
            field, message = datacheck.ragged(cells, header)
            raise RecordError(message, file=str(path), row=line, field=field)
    df = pd.DataFrame([cells for _, cells in table.rows], columns=header, dtype=str)
    df.insert(0, "row", [line for line, _ in table.rows])
    df.insert(0, "file", str(path))
    return df


def compile_records(
    table: pd.DataFrame,
    graph: Graph,
    *,
    meta_columns: Iterable[str] = DEFAULT_META,
    errors: list[RecordError] | None = None,
) -> CompiledRecords:
    """Validate records and compile them into sparse operators on the state vector.

    Parameters
    ----------
    table : DataFrame
        Records as read by :func:`read_records` (string cells; ``file`` and
        ``row`` columns are added when missing).
    graph : Graph
        The expanded system.
    meta_columns : iterable of str
        Extra columns allowed as free-text metadata.
    errors : list, optional
        When given, every bad record is appended to it and left out, instead
        of the first being raised (``bayesmfa check`` lists them all); errors
        of the header (unknown or missing columns) are still raised.

    Returns
    -------
    CompiledRecords

    Raises
    ------
    RecordError
        Naming file, row and field of the first bad record.
    """
    table = table.copy()
    if "file" not in table:
        table.insert(0, "file", "<table>")
    if "row" not in table:
        table.insert(1, "row", np.arange(2, len(table) + 2))
    table = table.astype({c: str for c in table.columns if c not in ("row",)}).replace({"nan": ""})
    system = graph.system
    dims_ok = set(system.all_coords()) - {system.time_dim}
    allowed = set(REQUIRED) | set(OPTIONAL) | dims_ok | set(meta_columns) | {"file", "row"}
    files = table["file"].unique()
    for col in table.columns:
        if col not in allowed:
            raise RecordError(f"unknown column {col!r}; dims are {sorted(dims_ok)}", file=files[0], row=1, field=col)
    for col in REQUIRED:
        if col not in table:
            raise RecordError("required column is missing", file=files[0], row=1, field=col)
    if "record_id" not in table:
        table["record_id"] = [f"{Path(f).stem}:{r}" for f, r in zip(table["file"], table["row"], strict=True)]
    dup = table["record_id"].duplicated(keep=False)
    if dup.any():
        first = table[dup].iloc[1]
        raise RecordError(f"duplicate record_id {first['record_id']!r}", file=first["file"], row=int(first["row"]), field="record_id")
    builder = _Builder(graph, [d for d in dims_ok if d in table.columns])
    bad = []
    for i, rec in enumerate(table.to_dict("records")):
        if errors is None:
            builder.add(rec)
            continue
        try:
            builder.add(rec)
        except RecordError as err:
            errors.append(err)
            bad.append(i)
            builder.drop_partial()
    return builder.finish(table.drop(index=table.index[bad]) if bad else table)


def _kind(slots: list[tuple[dict, str, int]]) -> str:
    """The kind (``edge``, ``input``, ``stock_change``, ...) a quantity's slots share; ``''`` when it has none."""
    return slots[0][1] if slots else ""


class _Builder:
    def __init__(self, graph: Graph, dim_cols: list[str]) -> None:
        self.graph = graph
        self.system = graph.system
        self.state = StateIndex(graph)
        self.dim_cols = dim_cols
        #: (record, state index, weight) entries of the numerator and denominator operators
        self.num: list[tuple[int, int, float]] = []
        self.den: list[tuple[int, int, float]] = []
        self.values: list[float] = []
        self.is_share: list[bool] = []
        self.stypes: list[str] = []
        self.factor_lists: list[list[tuple[str, float]]] = []
        self.bounds: list[int] = []
        self.sds: list[float] = []
        self.cvs: list[float] = []
        self.signed: list[bool] = []
        self.offsets: list[float] = []
        #: a quantity's slots, and the slots a selection keeps, computed once per
        #: quantity and selection: records of one flow share them, so compiling is
        #: linear in the records, not records x instances of the flow
        self._slot_cache: dict[str, tuple[list[tuple[dict, str, int]], tuple[str, ...]]] = {}
        self._match_cache: dict[tuple[int, frozenset], list[tuple[str, int]]] = {}
        self._coords = {d: set(values) for d, values in self.system.all_coords().items()}

    def _err(self, rec: dict, field: str, msg: str) -> RecordError:
        return RecordError(msg, file=rec["file"], row=int(rec["row"]), field=field)

    def add(self, rec: dict) -> None:
        obs = len(self.values)
        for col in REQUIRED:
            if not str(rec[col]).strip():
                raise self._err(rec, col, "missing value")
        try:
            value = float(rec["value"])
        except ValueError:
            raise self._err(rec, "value", f"not a number: {rec['value']!r}") from None
        years = self._years(rec)
        parts = self._parts(rec, "quantity")
        signed = any(coef < 0 or _kind(slots).startswith("stock") for coef, _, (slots, _) in parts)
        if not np.isfinite(value) or (value < 0 and not signed):
            hint = " (only a quantity that can take either sign, e.g. 'a - b', may be negative)" if np.isfinite(value) else ""
            raise self._err(rec, "value", f"value must be finite and non-negative, got {rec['value']}{hint}")
        if any(_kind(slots) == "stock_level" for _, _, (slots, _) in parts) and len(years) > 1:
            raise self._err(rec, "year", "a stock level is observed in one year, not over a range")
        selection = {d: str(rec[d]).strip() for d in self.dim_cols if str(rec.get(d, "")).strip()}
        for d in selection:
            for _, name, (_, dims) in parts:
                if d not in dims:
                    raise self._err(rec, d, f"quantity {name!r} has no dim {d!r} (its dims: {list(dims)})")
            if selection[d] not in self._coords[d]:
                raise self._err(rec, d, f"unknown coord {selection[d]!r} for dim {d!r}")
        share_of = [x.strip() for x in str(rec.get("share_of", "")).split(",") if x.strip()]
        for d in share_of:
            if d not in selection:
                raise self._err(rec, "share_of", f"dim {d!r} must be selected (given a coord) to form a share")
        den_parts = self._parts(rec, "denominator") if str(rec.get("denominator", "")).strip() else (parts if share_of else [])
        if any(coef < 0 or _kind(slots).startswith("stock") for coef, _, (slots, _) in den_parts):
            raise self._err(rec, "denominator" if str(rec.get("denominator", "")).strip() else "share_of",
                            "a share's denominator must be a sum of non-negative quantities (no '-' terms, stock changes or levels): "
                            "it could reach zero")
        is_share = bool(den_parts)
        unit = str(rec["unit"]).strip()
        if is_share:
            if unit not in SHARE_UNITS:
                raise self._err(rec, "unit", f"a share record needs a unit in {sorted(SHARE_UNITS)}, got {unit!r}")
            value *= SHARE_UNITS[unit]
            if value > 1 and unit != "ratio":
                raise self._err(rec, "value", f"a share must be at most 1, got {value:g} (use unit 'ratio' for ratios)")
        elif unit not in self.system.units:
            raise self._err(rec, "unit", f"unknown unit {unit!r} (system unit {self.system.unit}; known: {sorted(self.system.units)})")
        else:
            value *= self.system.units[unit]
        to_system = SHARE_UNITS[unit] if is_share else self.system.units[unit]
        sd, cv = self._uncertainty(rec, to_system)
        num, offset = [], 0.0
        for coef, _, (slots, _) in parts:
            entries, const = self._select(slots, selection, years)
            num.extend((i, coef * w) for i, w in entries)
            offset += coef * const
        if not num:
            raise self._err(rec, "quantity", "the record matches no flow (check the coords)")
        self.num.extend((obs, i, w) for i, w in num)
        if is_share:
            den_sel = {d: v for d, v in selection.items() if d not in share_of}
            for coef, name, (slots, dims) in den_parts:
                missing = [d for d in den_sel if d not in dims]
                if missing:
                    raise self._err(rec, "denominator", f"quantity {name!r} has no dim {missing[0]!r}")
                self.den.extend((obs, i, coef * w) for i, w in self._select(slots, den_sel, years)[0])
        bound = str(rec.get("bound", "")).strip()
        if bound not in BOUNDS:
            raise self._err(rec, "bound", f"bound must be blank, 'upper' or 'lower', got {bound!r}")
        factors = self._factors(rec)
        self.values.append(value)
        self.is_share.append(is_share)
        self.stypes.append(str(rec["source_type"]).strip())
        self.factor_lists.append(factors)
        self.bounds.append({"": 0, "upper": 1, "lower": -1}[bound])
        self.sds.append(sd)
        self.cvs.append(cv)
        self.signed.append(signed)
        self.offsets.append(offset)

    def _uncertainty(self, rec: dict, to_system: float) -> tuple[float, float]:
        """The row's ``sd`` (converted with the value's unit factor) and ``cv``; NaN where blank."""
        out = []
        for col in ("sd", "cv"):
            text = str(rec.get(col, "")).strip()
            if not text:
                out.append(np.nan)
                continue
            try:
                x = float(text)
            except ValueError:
                raise self._err(rec, col, f"not a number: {text!r}") from None
            if not np.isfinite(x) or x <= 0:
                raise self._err(rec, col, f"{col} must be a positive finite number, got {text}")
            out.append(x * to_system if col == "sd" else x)
        if np.isfinite(out[0]) and np.isfinite(out[1]):
            raise self._err(rec, "cv", "give either sd (absolute) or cv (relative), not both")
        return out[0], out[1]

    def drop_partial(self) -> None:
        """Forget what a record that failed half-way added (its operator entries); the lists end with the last good record."""
        n = len(self.values)
        self.num = [entry for entry in self.num if entry[0] < n]
        self.den = [entry for entry in self.den if entry[0] < n]

    def _factors(self, rec: dict) -> list[tuple[str, float]]:
        """``(name, power)`` of each factor: +1 after ``*`` (or first), -1 after ``/``."""
        text = str(rec.get("factor", "")).strip()
        if not text:
            return []
        if not _FACTOR_EXPR.fullmatch(text):
            raise self._err(rec, "factor", f"malformed factor expression {text!r}: names joined by '*' or '/'")
        return [(name.strip(), -1.0 if op == "/" else 1.0) for op, name in _FACTOR_TERM.findall(text)]

    def _years(self, rec: dict) -> list[int]:
        text = str(rec["year"]).strip()
        m = _YEAR_RANGE.match(text)
        try:
            lo, hi = (int(m.group(1)), int(m.group(2))) if m else (int(text), int(text))
        except ValueError:
            raise self._err(rec, "year", f"not a year or range: {text!r}") from None
        years = list(self.system.years)
        if lo not in years or hi not in years or hi < lo:
            raise self._err(rec, "year", f"year {text} is outside the system's years {years[0]}-{years[-1]}")
        return [years.index(y) for y in range(lo, hi + 1)]

    def _parts(self, rec: dict, column: str) -> list[tuple[float, str, tuple[list[tuple[dict, str, int]], tuple[str, ...]]]]:
        """``(coefficient, name, (slots, dims))`` of each term of a quantity expression (``a - 2*b``)."""
        try:
            terms = expressions.parse(str(rec[column]))
        except expressions.ExpressionError as exc:
            raise self._err(rec, column, str(exc)) from None
        return [(coef, q, self._cached_slots(rec, q, column)) for coef, q in terms]

    def _cached_slots(self, rec: dict, quantity: str, column: str) -> tuple[list[tuple[dict, str, int]], tuple[str, ...]]:
        """:meth:`_slots` of a quantity, built on its first record (an error is raised for every record, never cached)."""
        found = self._slot_cache.get(quantity)
        if found is None:
            found = self._slot_cache[quantity] = self._slots(rec, quantity, column)
        return found

    def _slots(self, rec: dict, quantity: str, column: str = "quantity") -> tuple[list[tuple[dict, str, int]], tuple[str, ...]]:
        """Candidate (coords, kind, index) for a quantity, and its dims."""
        g, system = self.graph, self.system
        if quantity in system.flows:
            return [(dict(e.coords), "edge", e.index) for e in g.edges_of(quantity)], system.flow_dims(quantity)
        proc, _, part = quantity.partition(".")
        if proc in system.groups and part in ("", "input", "output"):
            kind = "input" if part == "input" else "output"
            members = system.groups[proc]
            slots = [(dict(n.coords), kind, n.index) for m in members for n in g.nodes_of(m)]
            return slots, system.processes[members[0]].dims
        if proc in system.stocks and part in ("change", "level"):
            stock = system.stocks[proc]
            if part == "level" and stock.initial is None:
                raise self._err(rec, column, f"{quantity!r}: stock {proc!r} has no initial level; give 'initial' under stocks.{proc} "
                                             f"in the system to observe its level, or record {proc}.change")
            return [(dict(n.coords), f"stock_{part}", n.index) for n in g.nodes_of(proc)], system.processes[proc].dims
        if proc in system.processes and part == "external":
            if proc not in system.inputs:
                raise self._err(rec, column, f"{quantity!r}: process {proc!r} has no external inflow (it is not a boundary input; "
                                             f"boundary inputs: {', '.join(system.inputs)})")
            return [(dict(n.coords), "external", n.index) for n in g.nodes_of(proc)], system.processes[proc].dims
        if proc in system.processes and part in ("", "input", "output"):
            kind = "input" if part == "input" else "output"
            return [(dict(n.coords), kind, n.index) for n in g.nodes_of(proc)], system.processes[proc].dims
        raise self._err(rec, column, f"unknown quantity {quantity!r}: not a flow, process, group or stock of system {system.name!r}")

    def _select(self, slots: list[tuple[dict, str, int]], selection: dict[str, str],
                years: list[int]) -> tuple[list[tuple[int, float]], float]:
        """(state index, weight) of the selected slots in the selected years, and the constant the selection adds.

        A process's external inflow is its total input less the flows into it:
        weight +1 on its input, -1 on each entering flow (positive in every draw,
        as the external input is). A stock's change is the input of its sink
        process less the output of its withdrawal process; its level in year t
        is the initial level (the constant) plus the changes of years 0..t.
        """
        out: list[tuple[int, float]] = []
        const = 0.0
        key = (id(slots), frozenset(selection.items()))
        matched = self._match_cache.get(key)
        if matched is None:
            matched = self._match_cache[key] = [(kind, idx) for coords, kind, idx in slots
                                                if all(str(coords.get(d)) == v for d, v in selection.items())]
        for kind, idx in matched:
            if kind == "external":
                entering = [e.index for e in self.graph.edges if e.target == idx]
                for t in years:
                    out.append((self.state.input(t, idx), 1.0))
                    out.extend((self.state.edge(t, e), -1.0) for e in entering)
                continue
            if kind in ("stock_change", "stock_level"):
                node = self.graph.nodes[idx]
                stock = self.system.stocks[node.process]
                withdrawal = next(n.index for n in self.graph.nodes_of(stock.withdrawal) if n.coords == node.coords)
                span = range(years[-1] + 1) if kind == "stock_level" else years
                for t in span:
                    out.append((self.state.input(t, idx), 1.0))
                    out.append((self.state.output(t, withdrawal), -1.0))
                const += stock.initial if kind == "stock_level" else 0.0
                continue
            at = getattr(self.state, kind)
            out.extend((at(t, idx), 1.0) for t in years)
        return out, const

    def finish(self, table: pd.DataFrame) -> CompiledRecords:
        n = len(self.values)
        size = self.state.size

        def matrix(entries: list[tuple[int, int, float]]) -> sp.csr_matrix:
            if not entries:
                return sp.csr_matrix((n, size))
            rows, cols, weights = zip(*entries, strict=True)
            return sp.csr_matrix((np.asarray(weights, dtype=float), (rows, cols)), shape=(n, size))

        fixed = np.isfinite(self.sds) | np.isfinite(self.cvs) if n else np.zeros(0, dtype=bool)
        stypes = sorted({s for s, f in zip(self.stypes, fixed, strict=True) if not f})
        factors = sorted({f for fl in self.factor_lists for f, _ in fl})
        fmat = np.zeros((n, len(factors)))
        for i, fl in enumerate(self.factor_lists):
            for f, power in fl:
                fmat[i, factors.index(f)] += power
        return CompiledRecords(
            table=table.reset_index(drop=True),
            value=np.array(self.values, dtype=float),
            numerator=matrix(self.num),
            denominator=matrix(self.den),
            is_share=np.array(self.is_share, dtype=bool),
            source_types=stypes,
            source_index=np.array([-1 if f else stypes.index(s) for s, f in zip(self.stypes, fixed, strict=True)], dtype=int),
            factors=factors,
            factor_matrix=fmat,
            bound=np.array(self.bounds, dtype=int),
            sd=np.array(self.sds, dtype=float),
            cv=np.array(self.cvs, dtype=float),
            signed=np.array(self.signed, dtype=bool),
            offset=np.array(self.offsets, dtype=float),
        )


def mirror_trade_rows(flows: Sequence[str], pairs: Sequence[tuple[str, str]], year: int, *, source_type: str = "customs",
                      factor: str = "exporter_reporting") -> list[dict[str, object]]:
    """Record-template rows of mirror trade statistics: each flow and (origin, destination) pair twice in ``year``.

    The exporter's record carries the reporting ``factor`` (its bias against the
    importer's), the importer's record none; values are left to the simulation.

    Returns
    -------
    list of dict
        Rows with ``quantity, origin, destination, year, source_type, factor, note``.
    """
    rows: list[dict[str, object]] = []
    for origin, destination in pairs:
        for flow in flows:
            base = {"quantity": flow, "origin": origin, "destination": destination, "year": year, "source_type": source_type}
            rows.append({**base, "factor": factor, "note": "exporter's record"})
            rows.append({**base, "note": "importer's record"})
    return rows
