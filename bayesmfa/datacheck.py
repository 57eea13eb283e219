"""Validation of tidy observation tables (CSV) before they reach a model.

The checker is generic: it knows nothing about any commodity.  Allowed code
lists (regions, products, units, statuses, ...), the required columns, the
duplicate-key columns and the files to skip are read from a ``schema.yaml``
placed in the data directory (or passed explicitly); sane generic defaults
are used when no schema file exists.

Row numbers follow the spreadsheet convention: they are the line numbers of
the CSV file, so the header is row 1 and the first data row is row 2.  A
problem that concerns a whole column (a missing required column) is reported
on row 1, the header.

Missing values
--------------
An empty ``value`` is a problem unless the row's ``status`` is listed under
``missing_value_status`` in the schema (default: ``withheld``), which marks a
figure the source printed as NA/withheld.  Such rows are kept and reported by
nobody; no row is ever dropped silently.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import yaml

__all__ = ["DEFAULT_SCHEMA", "DataProblem", "check_data", "format_problems", "load_schema"]

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
}

# columns that must hold a non-blank entry on every row (when present)
_NON_BLANK = ("quantity", "product", "year", "unit", "status", "source")


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
        Human-readable description.
    """

    file: str
    row: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f" row {self.row}"
        if self.field is not None:
            where += f" field '{self.field}'"
        return f"{where}: {self.message}"


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
    """
    schema = {k: (dict(v) if isinstance(v, dict) else list(v)) for k, v in DEFAULT_SCHEMA.items()}
    if path is None:
        return schema
    p = Path(path)
    if p.is_dir():
        p = p / SCHEMA_FILE
    elif p.suffix.lower() == ".csv":
        p = p.parent / SCHEMA_FILE
    if not p.is_file():
        return schema
    with p.open(encoding="utf-8") as fh:
        loaded = yaml.safe_load(fh) or {}
    if not isinstance(loaded, dict):
        raise TypeError(f"{p}: schema must be a mapping, got {type(loaded).__name__}")
    for key, val in loaded.items():
        if key == "codes":
            schema["codes"].update({str(c): [str(x) for x in v] for c, v in (val or {}).items()})
        else:
            schema[key] = val
    return schema


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


def _number(text: str) -> float | None:
    try:
        x = float(text)
    except ValueError:
        return None
    return x


def check_data(
    path: str | Path,
    years: tuple[int, int] = (2000, 2022),
    schema: dict[str, Any] | str | Path | None = None,
) -> list[DataProblem]:
    """Validate every CSV file under a directory (recursively) or one CSV file.

    Checks: required columns present; no ragged rows; non-blank quantity,
    product, year, unit, status and source; ``value`` numeric, finite,
    non-negative and present (an empty value is accepted only when the
    status is in ``missing_value_status``); values and bounds of share units
    in [0, 1]; ``low <= value <= high`` when bounds are given; ``year`` an
    integer within ``years``; codes of every column listed under ``codes``
    in the schema (region, origin, destination, product, unit, status, ...);
    each row uses either ``region`` or both ``origin`` and ``destination``;
    ``origin != destination``; no duplicate keys (same values in all
    ``key_columns`` present in the file).

    Parameters
    ----------
    path : str or Path
        Directory (all ``*.csv`` below it, except ``exclude`` patterns of the
        schema) or a single CSV file.
    years : tuple of int, default (2000, 2022)
        Inclusive span of allowed years.
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
    """
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"no such file or directory: {root}")
    sch = schema if isinstance(schema, dict) else load_schema(root if schema is None else schema)
    sch = {**DEFAULT_SCHEMA, **sch}
    problems: list[DataProblem] = []
    files = _csv_files(root, sch.get("exclude") or [])
    if not files:
        problems.append(DataProblem(str(root), None, None, "no CSV files found"))
    for f in files:
        problems.extend(_check_file(f, sch, years))
    return problems


def _check_file(f: Path, sch: dict[str, Any], years: tuple[int, int]) -> list[DataProblem]:
    name = str(f)
    out: list[DataProblem] = []

    def add(row: int | None, field: str | None, msg: str) -> None:
        out.append(DataProblem(name, row, field, msg))

    try:
        with f.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        add(None, None, f"cannot read file: {exc}")
        return out
    if not rows:
        add(None, None, "empty file (no header)")
        return out
    header = [h.strip() for h in rows[0]]
    cols = set(header)
    for col in sch["required_columns"]:
        if col not in cols:
            add(1, col, f"missing required column '{col}'")
    dupes = {h for h in header if header.count(h) > 1}
    for h in sorted(dupes):
        add(1, h, f"column '{h}' appears more than once")

    codes: dict[str, list[str]] = sch.get("codes") or {}
    missing_ok = set(sch.get("missing_value_status") or [])
    share_units = set(sch.get("share_units") or [])
    bounds = [c for c in (sch.get("bound_columns") or []) if c in cols]
    key_cols = [c for c in (sch.get("key_columns") or []) if c in cols]
    seen: dict[tuple[str, ...], int] = {}
    lo_year, hi_year = years

    for lineno, raw in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in raw):
            add(lineno, None, "blank line")
            continue
        if len(raw) != len(header):
            add(lineno, None, f"has {len(raw)} fields, header has {len(header)}")
            continue
        r = {h: cell.strip() for h, cell in zip(header, raw, strict=True)}

        for col in _NON_BLANK:
            if col in r and r[col] == "":
                msg = "row without a source" if col == "source" else f"missing {col}"
                add(lineno, col, msg)

        # codes
        for col, allowed in codes.items():
            if col in r and r[col] != "" and r[col] not in allowed:
                add(lineno, col, f"unknown {col} code '{r[col]}' (allowed: {', '.join(allowed)})")

        # region vs origin/destination
        has_region = r.get("region", "") != ""
        o, d = r.get("origin", ""), r.get("destination", "")
        if {"region", "origin", "destination"} <= cols:
            if has_region and (o or d):
                add(lineno, "region", "both region and origin/destination given (use one)")
            elif not has_region and not (o and d):
                field = "origin" if not o else "destination"
                add(lineno, field, "neither region nor both origin and destination given")
        if o and d and o == d:
            add(lineno, "destination", f"origin equals destination ('{o}')")

        # year
        if "year" in r and r["year"] != "":
            y = r["year"]
            if not (y.isdigit() or (y.startswith("-") and y[1:].isdigit())):
                add(lineno, "year", f"year '{y}' is not an integer")
            elif not lo_year <= int(y) <= hi_year:
                add(lineno, "year", f"year {int(y)} outside {lo_year}-{hi_year}")

        # value and bounds
        unit = r.get("unit", "")
        is_share = unit in share_units
        nums: dict[str, float] = {}
        if "value" in r:
            v = r["value"]
            if v == "":
                if r.get("status", "") not in missing_ok:
                    add(lineno, "value", "missing value (allowed only with status "
                        + (", ".join(sorted(missing_ok)) or "<none>") + ")")
            else:
                nums["value"] = _check_number(add, lineno, "value", v, is_share)
        for col in bounds:
            if r[col] != "":
                nums[col] = _check_number(add, lineno, col, r[col], is_share)
        lo, hi, val = nums.get("low"), nums.get("high"), nums.get("value")
        if lo is not None and hi is not None and not math.isnan(lo) and not math.isnan(hi) and lo > hi:
            add(lineno, "low", f"low {lo:g} greater than high {hi:g}")
        if val is not None and not math.isnan(val):
            if lo is not None and not math.isnan(lo) and val < lo:
                add(lineno, "value", f"value {val:g} below low {lo:g}")
            if hi is not None and not math.isnan(hi) and val > hi:
                add(lineno, "value", f"value {val:g} above high {hi:g}")

        # duplicate keys
        if key_cols:
            key = tuple(r[c] for c in key_cols)
            if key in seen:
                add(lineno, "key", f"duplicate key of row {seen[key]} ({', '.join(key_cols)})")
            else:
                seen[key] = lineno
    return out


def _check_number(add: Any, lineno: int, col: str, text: str, is_share: bool) -> float:
    x = _number(text)
    if x is None:
        add(lineno, col, f"non-numeric {col} '{text}'")
        return math.nan
    if not math.isfinite(x):
        add(lineno, col, f"non-finite {col} {text}")
        return math.nan
    if x < 0:
        add(lineno, col, f"negative {col} {x}")
    elif is_share and x > 1:
        add(lineno, col, f"share {col} {x} outside [0, 1]")
    return x


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
