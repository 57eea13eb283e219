"""Validation of tidy observation tables (CSV) before they reach a model.

The checker is generic: it knows nothing about any commodity.  Allowed code
lists (regions, products, units, statuses, quantities per table, ...), the
required columns, the year span, plausible value ranges, the duplicate-key
columns and the files to read or skip are read from a ``schema.yaml`` placed
in the data directory (or passed explicitly); generic defaults are used when
no schema file exists, except in a case folder (one holding ``system.yaml``),
whose record tables are checked against the system's own dims, years, units
and names (:func:`case_schema`).  A case's loader runs the same check first
(:func:`require_valid`), so that ``bayesmfa data check`` and the loader
accept and reject the same tables.

Row numbers are line numbers as a text editor shows them: the header is
row 1 and the first data row is row 2 (a quoted cell that spans lines counts
all its lines).  A problem that concerns a whole column (a missing required
column) or the file's first line is reported on row 1; one that concerns the
whole file (a missing table) has no row.

Files are read as UTF-8 text; a UTF-8 byte-order mark, CRLF line ends and
blank lines at the end of the file are accepted.  A blank line between data
rows, UTF-16 or latin-1 text, an empty file and a file with a header only are
problems.

Missing values
--------------
An empty ``value`` is a problem unless the row's ``status`` is listed under
``missing_value_status`` in the schema (default: ``withheld``), which marks a
figure the source printed as NA/withheld.  Such rows are kept; a loader must
list them as unused with the reason, never drop them silently.

Schema keys
-----------
``required_columns``, ``codes`` (column -> allowed codes), ``missing_value_status``,
``share_units`` (units whose values lie in [0, 1]), ``key_columns`` (duplicate
key), ``bound_columns`` (``low``/``high``), ``exclude`` (glob patterns of CSV
files to skip), and:

``allowed_columns``
    Columns a table may have besides the required ones (absent: any); an
    unknown column is a problem, as the record loader refuses it.
``years``
    ``[first, last]``: inclusive span of allowed years (absent or null: any
    integer year).
``tables``
    File names (relative to the checked directory) of the tables the case
    reads: each must exist, and any other CSV file (not excluded) is a problem,
    since nobody would read its rows.  Absent: every CSV is checked, none
    required.
``codes_by_file``
    ``{file pattern: {column: [codes]}}``: code lists for one table (e.g. the
    ``quantity`` codes each table may hold); they replace ``codes`` for that
    column in matching files.
``units_by_quantity``
    ``{quantity: [units]}``: the units a quantity may be given in.
``ranges``
    ``{file pattern: {column: [low, high]}}``: plausible range of a numeric
    column (in the table's units); a range of ``value`` also applies to the
    bound columns unless they have their own.
``quantity_sums``
    ``true`` when a ``quantity`` cell may be a sum of codes joined by ``+``
    (the generic record format); each term is checked.
``year_ranges``
    ``true`` when a ``year`` cell may be a range ``first-last`` (the generic
    record format: a record of the sum over those years); both ends are
    checked.
``region_or_partners``
    ``true`` (default) when each row must give ``region`` or both ``origin``
    and ``destination``; ``false`` where a blank region means a sum over
    regions (the generic record format).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import yaml

from bayesmfa.core import expressions
from bayesmfa.errors import LocatedError

__all__ = [
    "DEFAULT_SCHEMA", "DataCheckError", "DataProblem", "Table", "check_data", "format_problems",
    "load_schema", "read_table", "require_valid",
]

SCHEMA_FILE = "schema.yaml"

DEFAULT_SCHEMA: dict[str, Any] = {
    "required_columns": [
        "quantity", "region", "origin", "destination", "product", "year",
        "value", "unit", "basis", "source", "status", "note",
    ],
    # column -> allowed codes; a column without a list is not code-checked
    "codes": {
        "status": ["read", "derived", "estimated", "withheld"],
        "unit": ["kt", "t", "share", "ratio"],
    },
    "missing_value_status": ["withheld"],
    "share_units": ["share"],
    "key_columns": [
        "quantity", "region", "origin", "destination", "country", "product",
        "year", "period", "edition", "source", "reporter", "hs_code",
    ],
    "bound_columns": ["low", "high"],
    # glob patterns (relative to the checked directory) of CSV files to skip
    "exclude": [],
    "years": None,
    "tables": None,
    "codes_by_file": {},
    "units_by_quantity": {},
    "ranges": {},
    "quantity_sums": False,
    "year_ranges": False,
    "region_or_partners": True,
    # a closed list of columns (besides the required ones); absent: any extra column is allowed
    "allowed_columns": None,
}

# columns that must hold a non-blank entry on every row (when present)
_NON_BLANK = ("quantity", "product", "year", "unit", "status", "source")
_LIST_KEYS = ("required_columns", "allowed_columns", "missing_value_status", "share_units", "key_columns", "bound_columns", "exclude")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_UTF8_BOM = b"\xef\xbb\xbf"
_YEAR = re.compile(r"-?[0-9]+")
_YEAR_RANGE = re.compile(r"([0-9]{4})\s*-\s*([0-9]{4})")


class DataCheckError(LocatedError):
    """A data table (or its schema) failed the checks of :func:`check_data`.

    Raised by loaders that check their tables first (:func:`require_valid`),
    naming the file, the row (line as an editor shows it, header = 1) and the
    field of the first problem.
    """


@dataclass(frozen=True)
class DataProblem:
    """One problem found in a data file.

    Parameters
    ----------
    file : str
        Path of the CSV file (as reached from the path given to
        :func:`check_data`).
    row : int or None
        Line number in the file: header = 1, first data row = 2.  ``None``
        when the problem concerns the whole file.
    field : str or None
        Column name concerned; ``"key"`` for duplicate-key problems; ``None``
        when no single column is concerned.
    message : str
        Human-readable description (one line).
    """

    file: str
    row: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f" line {self.row}"
        if self.field is not None:
            where += f" field '{self.field}'"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class Table:
    """A CSV table as read by :func:`read_table`.

    Attributes
    ----------
    file : str
        Path of the file.
    header : list of str
        Column names (stripped; a UTF-8 byte-order mark removed).
    rows : list of (int, list of str)
        Each data row with the editor line it starts on (header = line 1)
        and its stripped cells; blank lines are not rows.
    """

    file: str
    header: list[str]
    rows: list[tuple[int, list[str]]]

    def records(self) -> Iterator[tuple[int, dict[str, str]]]:
        """Yield ``(line, {column: cell})`` for every row with as many cells as the header."""
        for line, cells in self.rows:
            if len(cells) == len(self.header):
                yield line, dict(zip(self.header, cells, strict=True))


class _Problems:
    """Collects the problems of one file."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.items: list[DataProblem] = []

    def add(self, row: int | None, field: str | None, message: str) -> None:
        one_line = message.replace("\r", "\\r").replace("\n", "\\n")
        self.items.append(DataProblem(self.file, row, field, one_line))


# ----------------------------------------------------------------------------- schema


def load_schema(path: str | Path | None) -> dict[str, Any]:
    """Return the schema for a data directory or file.

    Parameters
    ----------
    path : str, Path or None
        A ``schema.yaml`` file, a directory that may contain one, or a CSV
        file whose directory may contain one.  ``None`` gives the defaults.

    Returns
    -------
    dict
        The default schema updated with the keys found in the file (the
        ``codes`` mapping is merged column by column).

    Raises
    ------
    DataCheckError
        If the schema file cannot be read, is not a mapping, has an unknown
        key or a malformed entry.
    """
    schema = _defaults()
    if path is None:
        return schema
    p = Path(path)
    if p.is_dir():
        p = p / SCHEMA_FILE
    elif p.suffix.lower() == ".csv":
        p = p.parent / SCHEMA_FILE
    if not p.is_file():
        return schema
    try:
        loaded = yaml.safe_load(p.read_text(encoding="utf-8-sig")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        message = " ".join(str(exc).split())
        raise DataCheckError(f"cannot read the schema: {message}", file=str(p)) from None
    if not isinstance(loaded, dict):
        raise DataCheckError(f"schema must be a mapping, got {type(loaded).__name__}", file=str(p))
    return _merge_schema(schema, loaded, str(p))


def _defaults() -> dict[str, Any]:
    return {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v)
            for k, v in DEFAULT_SCHEMA.items()}


def _merge_schema(schema: dict[str, Any], loaded: dict[str, Any], file: str) -> dict[str, Any]:
    """The defaults updated with a loaded schema, after validating it."""
    _validate_schema(loaded, file)
    for key, val in loaded.items():
        if key == "codes":
            schema["codes"].update({str(c): [str(x) for x in v] for c, v in (val or {}).items()})
        else:
            schema[key] = val
    return schema


def _validate_schema(sch: dict[str, Any], file: str) -> None:
    """Raise :class:`DataCheckError` on an unknown key or a malformed entry."""

    def fail(key: str, message: str) -> None:
        raise DataCheckError(message, file=file, field=key)

    for key, val in sch.items():
        if key not in DEFAULT_SCHEMA:
            fail(str(key), f"unknown schema key (known: {', '.join(DEFAULT_SCHEMA)})")
        if key in _LIST_KEYS and not _is_str_list(val):
            fail(key, "must be a list of names")
    years = sch.get("years")
    if years is not None and not (_is_pair(years) and all(isinstance(y, int) for y in years)):
        fail("years", f"must be [first, last] (two integers, first <= last), got {years!r}")
    if sch.get("tables") is not None and not _is_str_list(sch["tables"]):
        fail("tables", "must be a list of file names")
    for key in ("codes", "units_by_quantity"):
        for name, val in (sch.get(key) or {}).items():
            if not _is_str_list(val):
                fail(f"{key}.{name}", "must be a list of codes")
    for pattern, columns in (sch.get("codes_by_file") or {}).items():
        for col, val in (columns or {}).items():
            if not _is_str_list(val):
                fail(f"codes_by_file.{pattern}.{col}", "must be a list of codes")
    for pattern, columns in (sch.get("ranges") or {}).items():
        for col, val in (columns or {}).items():
            if not _is_pair(val):
                fail(f"ranges.{pattern}.{col}", f"must be [low, high] (two numbers, low <= high), got {val!r}")


def _is_str_list(val: Any) -> bool:
    return isinstance(val, list) and all(isinstance(x, str | int | float) for x in val)


def _is_pair(val: Any) -> bool:
    if not (isinstance(val, list) and len(val) == 2):
        return False
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in val):
        return False
    return val[0] <= val[1]


def _resolve_schema(root: Path, schema: dict[str, Any] | str | Path | None) -> dict[str, Any]:
    if isinstance(schema, dict):
        return _merge_schema(_defaults(), schema, "<schema>")
    if schema is None:
        folder = root if root.is_dir() else root.parent
        if not (folder / SCHEMA_FILE).is_file() and (folder / "system.yaml").is_file():
            return case_schema(folder / "system.yaml")
    return load_schema(root if schema is None else schema)


def case_schema(system_file: str | Path) -> dict[str, Any]:
    """The rules for the record tables of a case folder that has no ``schema.yaml``: its system's own.

    The record format's required columns (``quantity, year, value, unit,
    source_type, source``); the system's years (ranges such as ``2015-2018``
    allowed); its coords as the codes of every dim column (``origin`` and
    ``destination`` of a crossed dim too); its units, and ``share``,
    ``percent`` and ``ratio``; its processes (also ``<process>.input``) and
    flows, groups and stocks (``<stock>.change``, ``<stock>.level``) as quantity codes, in linear expressions
    (``a + b``, ``a - 2*b``; a negative value only where the expression can take either sign). No ``region``/``product``/
    ``status`` columns are asked for: those are the REE tables' conventions.

    Parameters
    ----------
    system_file : str or Path
        The case's ``system.yaml``.

    Raises
    ------
    SpecError
        When the system file itself is invalid.
    """
    from bayesmfa.core.records import REQUIRED, SHARE_UNITS
    from bayesmfa.core.system import load_system

    system = load_system(system_file)
    codes: dict[str, list[str]] = {dim: [str(c) for c in coords] for dim, coords in system.dims.items()}
    for flow in system.flows.values():
        if flow.cross:
            for name in system.cross_dim_names(flow.cross):
                codes[name] = codes[flow.cross]
    quantities = [*system.processes, *(f"{p}.input" for p in system.processes), *(f"{p}.external" for p in system.inputs),
                  *system.flows, *system.groups, *(f"{g}.input" for g in system.groups),
                  *(f"{s}.{part}" for s in system.stocks for part in ("change", "level"))]
    codes["quantity"] = quantities
    codes["unit"] = sorted({*system.units, *SHARE_UNITS})
    schema = _defaults()
    schema.update({
        "required_columns": list(REQUIRED),
        "codes": codes,
        "missing_value_status": [],
        "share_units": ["share"],
        "years": [system.years[0], system.years[-1]],
        "year_ranges": True,
        "quantity_sums": True,
        "region_or_partners": False,
        # a duplicate is the same record in every column but the value (as bayesmfa.core.plausibility rules):
        # mirror records of one flow differ in factor and note
        "key_columns": ["quantity", *[d for d in codes if d not in ("quantity", "unit")], "year", "share_of", "denominator",
                        "factor", "bound", "source_type", "source", "note"],
    })
    return schema


# ----------------------------------------------------------------------------- reading


def read_table(path: str | Path, name: str | None = None) -> Table:
    """Read one CSV table as UTF-8 text, with the editor line of every row.

    Parameters
    ----------
    path : str or Path
        The CSV file.
    name : str, optional
        How to name the file in errors (default: ``str(path)``).

    Returns
    -------
    Table

    Raises
    ------
    DataCheckError
        If the file cannot be read, is not UTF-8 text, is empty, has a header
        only or a blank line between rows (first such problem).
    """
    table, problems = _read(Path(path), str(path) if name is None else name)
    if problems:
        raise _error(problems[0], len(problems) - 1)
    assert table is not None
    return table


def _read(path: Path, name: str) -> tuple[Table | None, list[DataProblem]]:
    """The table and the problems that prevent or spoil reading it."""
    out = _Problems(name)
    try:
        data = path.read_bytes()
    except OSError as exc:
        out.add(None, None, f"cannot read file: {exc.strerror or exc}")
        return None, out.items
    text = _decode(data, out)
    if text is None:
        return None, out.items
    lines = _parse(text, out)
    if lines is None:
        return None, out.items
    return _to_table(name, lines, out), out.items


def _decode(data: bytes, out: _Problems) -> str | None:
    """UTF-8 text of a file (byte-order mark removed), or None after reporting why not."""
    if data.startswith(_UTF16_BOMS):
        out.add(1, None, "file is UTF-16 text (byte-order mark found); save it as UTF-8")
        return None
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM):]
    nul = data.find(b"\x00")
    if nul >= 0:
        out.add(_line_of(data, nul), None,
                "NUL byte: binary data or UTF-16 text, not UTF-8 text; save the file as UTF-8 CSV")
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = _line_of(data, exc.start)
        out.add(line, _field_at(data, exc.start),
                f"byte 0x{data[exc.start]:02x} is not UTF-8 (latin-1 or Windows-1252 text?); save the file as UTF-8")
        return None
    if not text.strip():
        out.add(1, None, "empty file: no header line")
        return None
    return text


def _line_of(data: bytes, pos: int) -> int:
    """Editor line (1-based) of byte ``pos``."""
    return data.count(b"\n", 0, pos) + 1


def _field_at(data: bytes, pos: int) -> str | None:
    """Header name of the column that holds byte ``pos`` (best effort; None on the header line)."""
    start = data.rfind(b"\n", 0, pos) + 1
    if start == 0:
        return None
    header_end = data.find(b"\n")
    header = next(csv.reader([data[:header_end].decode("utf-8", "replace")]), [])
    prefix = data[start:pos].decode("utf-8", "replace")
    index = max(len(next(csv.reader([prefix]), [])) - 1, 0)
    return header[index].strip() if index < len(header) else None


def _parse(text: str, out: _Problems) -> list[tuple[int, list[str]]] | None:
    """CSV records with the editor line each starts on, or None after reporting a parse error."""
    reader = csv.reader(io.StringIO(text, newline=""))
    lines: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for cells in reader:
            lines.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as exc:
        out.add(start, None, f"unreadable CSV: {exc}")
        return None
    while lines and _blank(lines[-1][1]):  # blank lines at the end of the file are fine
        lines.pop()
    return lines


def _blank(cells: Sequence[str]) -> bool:
    return not any(cell.strip() for cell in cells)


def _to_table(name: str, lines: list[tuple[int, list[str]]], out: _Problems) -> Table:
    header_line, header_cells = lines[0]
    if _blank(header_cells):
        out.add(header_line, None, "blank line where the header should be")
    rows: list[tuple[int, list[str]]] = []
    for line, cells in lines[1:]:
        if _blank(cells):
            out.add(line, None, "blank line between data rows")
        else:
            rows.append((line, [cell.strip() for cell in cells]))
    if not lines[1:]:
        out.add(header_line, None, "header only: the table has no data rows")
    return Table(name, [h.strip() for h in header_cells], rows)


# ----------------------------------------------------------------------------- checking


@dataclass(frozen=True)
class _Rules:
    """The schema as it applies to one file."""

    file: str
    columns: frozenset[str]
    codes: dict[str, list[str]]
    units_by_quantity: dict[str, list[str]]
    quantity_sums: bool
    year_ranges: bool
    region_or_partners: bool
    missing_ok: frozenset[str]
    share_units: frozenset[str]
    bound_columns: list[str]
    key_columns: list[str]
    ranges: dict[str, tuple[float, float]]
    years: tuple[int, int] | None


def _rules(sch: dict[str, Any], rel: str, header: list[str], years: tuple[int, int] | None) -> _Rules:
    cols = frozenset(header)
    codes = {c: list(v) for c, v in (sch.get("codes") or {}).items()}
    ranges: dict[str, tuple[float, float]] = {}
    for pattern, by_col in (sch.get("codes_by_file") or {}).items():
        if fnmatch(rel, pattern):
            codes.update({c: [str(x) for x in v] for c, v in (by_col or {}).items()})
    for pattern, by_col in (sch.get("ranges") or {}).items():
        if fnmatch(rel, pattern):
            ranges.update({c: (float(v[0]), float(v[1])) for c, v in (by_col or {}).items()})
    bounds = [c for c in (sch.get("bound_columns") or []) if c in cols]
    if "value" in ranges:
        ranges = {**{c: ranges["value"] for c in bounds}, **ranges}
    span = years if years is not None else sch.get("years")
    return _Rules(
        file=rel,
        columns=cols,
        codes=codes,
        units_by_quantity={str(q): [str(u) for u in v] for q, v in (sch.get("units_by_quantity") or {}).items()},
        quantity_sums=bool(sch.get("quantity_sums")),
        year_ranges=bool(sch.get("year_ranges")),
        region_or_partners=bool(sch.get("region_or_partners", True)),
        missing_ok=frozenset(sch.get("missing_value_status") or []),
        share_units=frozenset(sch.get("share_units") or []),
        bound_columns=bounds,
        key_columns=[c for c in (sch.get("key_columns") or []) if c in cols],
        ranges=ranges,
        years=None if span is None else (int(span[0]), int(span[1])),
    )


def check_data(
    path: str | Path,
    years: tuple[int, int] | None = None,
    schema: dict[str, Any] | str | Path | None = None,
) -> list[DataProblem]:
    """Validate every CSV file under a directory (recursively) or one CSV file.

    Checks: the file is readable UTF-8 CSV text with a header and data rows
    (a byte-order mark, CRLF and trailing blank lines are fine); the tables
    listed under ``tables`` exist and no other CSV does; required columns
    present, none twice; no ragged rows or blank lines between rows;
    non-blank quantity, product, year, unit, status and source; ``value``
    numeric, finite, non-negative and present (an empty value is accepted
    only when the status is in ``missing_value_status``); values and bounds
    of share units in [0, 1]; values and bounds inside the table's
    ``ranges``; ``low <= value <= high`` when bounds are given; ``year`` an
    integer within ``years``; codes of every column listed under ``codes``
    (and ``codes_by_file`` for the file: e.g. its quantity codes); units
    allowed for the quantity (``units_by_quantity``); each row uses either
    ``region`` or both ``origin`` and ``destination`` (unless
    ``region_or_partners`` is false); ``origin != destination``; no duplicate
    keys (same values in all ``key_columns`` present in the file).

    Parameters
    ----------
    path : str or Path
        Directory (all ``*.csv`` below it, except ``exclude`` patterns of the
        schema) or a single CSV file.
    years : tuple of int, optional
        Inclusive span of allowed years; default: the schema's ``years``
        (no span check when it declares none).
    schema : dict, str, Path or None, default None
        Schema mapping, or a path to a ``schema.yaml`` / its directory.  By
        default ``schema.yaml`` is read from ``path`` (or from the directory
        of the file) if present, else :data:`DEFAULT_SCHEMA` is used.

    Returns
    -------
    list of DataProblem
        Empty when the data pass.  Row numbers: header = row 1, first data
        row = row 2.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    DataCheckError
        If the schema is malformed.
    """
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"no such file or directory: {root}")
    sch = _resolve_schema(root, schema)
    problems: list[DataProblem] = []
    files = _csv_files(root, sch.get("exclude") or [])
    if not files and not root.is_file():
        problems.append(DataProblem(str(root), None, None, "no CSV files found"))
    problems.extend(_check_tables(root, files, sch.get("tables")))
    for f in files:
        rel = f.name if root.is_file() else f.relative_to(root).as_posix()
        problems.extend(_check_file(f, rel, sch, years))
    return problems


def require_valid(path: str | Path, schema: dict[str, Any] | str | Path | None = None) -> None:
    """Raise the first problem :func:`check_data` finds, as a one-line error.

    Parameters
    ----------
    path : str or Path
        Directory or CSV file, as for :func:`check_data`.
    schema : dict, str, Path or None
        As for :func:`check_data`.

    Raises
    ------
    DataCheckError
        Naming the file, row and field of the first problem (and how many
        more there are).
    """
    problems = check_data(path, schema=schema)
    if problems:
        raise _error(problems[0], len(problems) - 1, path)


def _error(problem: DataProblem, more: int, path: str | Path | None = None) -> DataCheckError:
    message = problem.message
    if more:
        message += f" ({more} more problem(s); run `bayesmfa data check {path or problem.file}`)"
    return DataCheckError(message, file=problem.file, row=problem.row, field=problem.field)


def _csv_files(path: Path, exclude: Sequence[str]) -> list[Path]:
    if path.is_file():
        return [path]
    files = []
    for f in sorted(path.rglob("*.csv")):
        rel = f.relative_to(path).as_posix()
        if any(fnmatch(rel, pat) for pat in exclude):
            continue
        files.append(f)
    return files


def _check_tables(root: Path, files: list[Path], tables: list[str] | None) -> list[DataProblem]:
    """Declared tables that are missing, and CSV files that are not declared."""
    if tables is None:
        return []
    declared = [str(t) for t in tables]
    out: list[DataProblem] = []
    if root.is_dir():
        present = {f.relative_to(root).as_posix() for f in files}
        for t in declared:
            if t not in present:
                out.append(DataProblem(str(root / t), None, None, "table missing (listed under 'tables' in the schema)"))
    for f in files:
        rel = f.name if root.is_file() else f.relative_to(root).as_posix()
        if rel not in declared:
            out.append(DataProblem(str(f), None, None,
                                   "not a table of this case (not listed under 'tables' in the schema): nobody would read its rows"))
    return out


def _check_file(f: Path, rel: str, sch: dict[str, Any], years: tuple[int, int] | None) -> list[DataProblem]:
    table, read_problems = _read(f, str(f))
    if table is None:
        return read_problems
    out = _Problems(str(f))
    rules = _rules(sch, rel, table.header, years)
    complete = _check_header(out, table.header, sch.get("required_columns") or [], sch.get("allowed_columns"))
    seen: dict[tuple[str, ...], int] = {}
    for line, cells in table.rows:
        if len(cells) != len(table.header):
            _report_ragged(out, line, cells, table.header)
            continue
        r = dict(zip(table.header, cells, strict=True))
        for check in _ROW_CHECKS:
            check(out, line, r, rules)
        if complete:  # without a key column, distinct rows would look like duplicates
            _check_duplicate(out, line, r, rules, seen)
    return sorted(read_problems + out.items, key=lambda p: (p.row or 0))


def ragged(cells: list[str], header: list[str]) -> tuple[str | None, str]:
    """The field and the problem of a row with more or fewer cells than the header.

    Parameters
    ----------
    cells : list of str
        The row's cells.
    header : list of str
        The column names.

    Returns
    -------
    field : str or None
        The first column without a cell (``None`` when the row is too long).
    message : str
        What is wrong, in words.
    """
    n, m = len(cells), len(header)
    if n < m:
        return header[n], f"has {n} fields, header has {m} (no cell for '{header[n]}' onwards)"
    return None, f"has {n} fields, header has {m} (cells beyond the last column '{header[-1]}')"


def _report_ragged(out: _Problems, line: int, cells: list[str], header: list[str]) -> None:
    field, message = ragged(cells, header)
    out.add(line, field, message)


def _check_header(out: _Problems, header: list[str], required: Iterable[str], allowed: Iterable[str] | None = None) -> bool:
    """Report missing, unknown (when ``allowed`` is given) and repeated columns; True when the header is complete."""
    before = len(out.items)
    cols = set(header)
    for col in required:
        if col not in cols:
            out.add(1, col, f"missing required column '{col}'")
    if allowed is not None:
        known = set(allowed) | set(required)
        for col in header:
            if col not in known:
                out.add(1, col, f"unknown column '{col}' (a misspelt dim would be ignored; allowed: {', '.join(sorted(known))})")
    for h in sorted({h for h in header if header.count(h) > 1}):
        out.add(1, h, f"column '{h}' appears more than once")
    return len(out.items) == before


Row = dict[str, str]


def _check_blank(out: _Problems, line: int, r: Row, rules: _Rules) -> None:
    for col in _NON_BLANK:
        if col in r and r[col] == "":
            out.add(line, col, "row without a source" if col == "source" else f"missing {col}")


def _terms(col: str, cell: str, rules: _Rules) -> list[str]:
    """The codes in a cell: the names of a quantity expression (``a + b``, ``a - 2*b``), else the cell itself."""
    if col == "quantity" and rules.quantity_sums:
        return expressions.names(cell)
    return [cell]


def _signed(r: Row, rules: _Rules) -> bool:
    """Whether the row's quantity can take either sign (a negative coefficient, a stock change or level)."""
    if not rules.quantity_sums:
        return False
    try:
        terms = expressions.parse(r.get("quantity", ""))
    except expressions.ExpressionError:
        return False
    return expressions.is_signed(terms) or any(name.endswith((".change", ".level")) for _, name in terms)


def _check_codes(out: _Problems, line: int, r: Row, rules: _Rules) -> None:
    for col, allowed in rules.codes.items():
        if col not in r or r[col] == "":
            continue
        for code in _terms(col, r[col], rules):
            if code not in allowed:
                scope = f" in {rules.file}" if col == "quantity" else ""
                out.add(line, col, f"unknown {col} code '{code}'{scope} (allowed: {', '.join(allowed)})")


def _check_unit(out: _Problems, line: int, r: Row, rules: _Rules) -> None:
    unit = r.get("unit", "")
    if not rules.units_by_quantity or unit == "" or r.get("quantity", "") == "":
        return
    for q in _terms("quantity", r["quantity"], rules):
        allowed = rules.units_by_quantity.get(q)
        if allowed is not None and unit not in allowed:
            out.add(line, "unit", f"unit '{unit}' not allowed for quantity '{q}' (allowed: {', '.join(allowed)})")


def _check_location(out: _Problems, line: int, r: Row, rules: _Rules) -> None:
    o, d = r.get("origin", ""), r.get("destination", "")
    if rules.region_or_partners and {"region", "origin", "destination"} <= rules.columns:
        has_region = r["region"] != ""
        if has_region and (o or d):
            out.add(line, "region", "both region and origin/destination given (use one)")
        elif not has_region and not (o and d):
            out.add(line, "origin" if not o else "destination", "neither region nor both origin and destination given")
    if o and d and o == d:
        out.add(line, "destination", f"origin equals destination ('{o}')")


def _check_year(out: _Problems, line: int, r: Row, rules: _Rules) -> None:
    y = r.get("year", "")
    if y == "":
        return
    span = _YEAR_RANGE.fullmatch(y) if rules.year_ranges else None
    if span is not None and int(span.group(1)) > int(span.group(2)):
        out.add(line, "year", f"year range '{y}' ends before it starts")
        return
    ends = [span.group(1), span.group(2)] if span is not None else [y]
    if not all(_YEAR.fullmatch(e) for e in ends):
        kind = "an integer or a range first-last" if rules.year_ranges else "an integer"
        out.add(line, "year", f"year '{y}' is not {kind}")
        return
    for e in dict.fromkeys(ends):
        if rules.years is not None and not rules.years[0] <= int(e) <= rules.years[1]:
            out.add(line, "year", f"year {int(e)} outside {rules.years[0]}-{rules.years[1]}")


def _check_values(out: _Problems, line: int, r: Row, rules: _Rules) -> None:
    is_share = r.get("unit", "") in rules.share_units
    nums: dict[str, float] = {}
    if "value" in r:
        if r["value"] == "":
            if r.get("status", "") not in rules.missing_ok:
                out.add(line, "value", "missing value (allowed only with status "
                        + (", ".join(sorted(rules.missing_ok)) or "<none>") + ")")
        else:
            nums["value"] = _check_number(out, line, "value", r["value"], is_share, rules, signed=_signed(r, rules))
    for col in ("sd", "cv"):
        if r.get(col, "") != "":
            try:
                x = float(r[col])
            except ValueError:
                x = math.nan
            if not (math.isfinite(x) and x > 0):
                out.add(line, col, f"{col} must be a positive number, got '{r[col]}'")
    for col in rules.bound_columns:
        if r[col] != "":
            nums[col] = _check_number(out, line, col, r[col], is_share, rules)
    _check_bounds(out, line, nums)


def _check_number(out: _Problems, line: int, col: str, text: str, is_share: bool, rules: _Rules, signed: bool = False) -> float:
    """The number in a cell (NaN when it is not a finite number), reporting what is wrong with it; ``signed``:
    the row's quantity can take either sign, so a negative number is allowed."""
    try:
        x = float(text)
    except ValueError:
        out.add(line, col, f"non-numeric {col} '{text}'")
        return math.nan
    if not math.isfinite(x):
        out.add(line, col, f"non-finite {col} {text}")
        return math.nan
    low, high = rules.ranges.get(col, (-math.inf, math.inf))
    if x < 0 and not signed:
        out.add(line, col, f"negative {col} {x}")
    elif is_share and x > 1:
        out.add(line, col, f"share {col} {x} outside [0, 1]")
    elif not low <= x <= high:
        out.add(line, col, f"{col} {x:g} outside the plausible range [{low:g}, {high:g}] of {rules.file} (schema 'ranges')")
    return x


def _check_bounds(out: _Problems, line: int, nums: dict[str, float]) -> None:
    lo, hi, val = (nums.get(c, math.nan) for c in ("low", "high", "value"))
    if lo > hi:
        out.add(line, "low", f"low {lo:g} greater than high {hi:g}")
    if val < lo:
        out.add(line, "value", f"value {val:g} below low {lo:g}")
    if val > hi:
        out.add(line, "value", f"value {val:g} above high {hi:g}")


def _check_duplicate(out: _Problems, line: int, r: Row, rules: _Rules, seen: dict[tuple[str, ...], int]) -> None:
    if not rules.key_columns:
        return
    key = tuple(r[c] for c in rules.key_columns)
    if key in seen:
        out.add(line, "key", f"duplicate key of line {seen[key]} ({', '.join(rules.key_columns)})")
    else:
        seen[key] = line


_ROW_CHECKS: tuple[Callable[[_Problems, int, Row, _Rules], None], ...] = (
    _check_blank, _check_codes, _check_unit, _check_location, _check_year, _check_values,
)


def format_problems(problems: Iterable[DataProblem]) -> str:
    """Format problems as text, one per line, with a closing summary.

    Parameters
    ----------
    problems : iterable of DataProblem
        Problems as returned by :func:`check_data`.

    Returns
    -------
    str
        ``"No data problems found."`` when there are none.
    """
    probs = list(problems)
    if not probs:
        return "No data problems found."
    n_files = len({p.file for p in probs})
    lines = [str(p) for p in probs]
    lines.append(f"{len(probs)} problem(s) in {n_files} file(s)")
    return "\n".join(lines)
