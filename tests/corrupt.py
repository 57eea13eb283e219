"""Ways to damage a copy of a shipped data file, shared by the bad-input tests.

Each function returns (or is) a ``mutate(path)`` that rewrites one CSV or YAML file in place.
Lines are counted as an editor shows them: the header is line 1.
"""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Callable
from pathlib import Path

Mutate = Callable[[Path], None]
REE = Path(__file__).resolve().parents[1] / "data" / "ree"


def copy_ree_tables(dst: Path) -> Path:
    """A copy of the REE tables and their schema in ``dst`` (raw/ and build/ are not copied)."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in REE.glob("*.csv"):
        shutil.copy(f, dst / f.name)
    shutil.copy(REE / "schema.yaml", dst / "schema.yaml")
    return dst


def read_rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def csv_text(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def write_rows(path: Path, rows: list[list[str]]) -> None:
    path.write_text(csv_text(rows), encoding="utf-8")


def _edit(change: Callable[[list[list[str]]], list[list[str]]]) -> Mutate:
    def mutate(path: Path) -> None:
        write_rows(path, change(read_rows(path)))

    return mutate


def set_cell(line: int, column: str, value: str) -> Mutate:
    """Set one cell of ``line``."""

    def change(rows: list[list[str]]) -> list[list[str]]:
        rows[line - 1][rows[0].index(column)] = value
        return rows

    return _edit(change)


def drop_column(column: str) -> Mutate:
    def change(rows: list[list[str]]) -> list[list[str]]:
        i = rows[0].index(column)
        return [r[:i] + r[i + 1:] for r in rows]

    return _edit(change)


def cut_cells(line: int, n: int) -> Mutate:
    """Drop the last ``n`` cells of ``line`` (a short, ragged row)."""

    def change(rows: list[list[str]]) -> list[list[str]]:
        rows[line - 1] = rows[line - 1][:-n]
        return rows

    return _edit(change)


def add_cell(line: int) -> Mutate:
    """One cell too many on ``line``."""

    def change(rows: list[list[str]]) -> list[list[str]]:
        rows[line - 1] = [*rows[line - 1], "surplus"]
        return rows

    return _edit(change)


def duplicate(line: int) -> Mutate:
    """Repeat ``line`` right after itself (the copy is line ``line + 1``)."""
    return _edit(lambda rows: rows[:line] + [rows[line - 1]] + rows[line:])


def append_rows(*rows: dict[str, str]) -> Mutate:
    """Append rows given as column -> value (other cells blank; a column the file lacks is added)."""

    def change(table: list[list[str]]) -> list[list[str]]:
        extra = list(dict.fromkeys(c for r in rows for c in r if c not in table[0]))
        header = table[0] + extra
        body = [row + [""] * len(extra) for row in table[1:]]
        return [header, *body, *([r.get(c, "") for c in header] for r in rows)]

    return _edit(change)


def latin1(line: int) -> Mutate:
    """Add an accented word to the source of ``line`` and save the file as latin-1 (not valid UTF-8)."""

    def mutate(path: Path) -> None:
        rows = read_rows(path)
        rows[line - 1][rows[0].index("source")] += " (Société Générale)"
        path.write_bytes(csv_text(rows).encode("latin-1", errors="replace"))

    return mutate


def recode(encoding: str) -> Mutate:
    """Save the file in another encoding (e.g. UTF-16)."""

    def mutate(path: Path) -> None:
        path.write_bytes(path.read_text(encoding="utf-8").encode(encoding))

    return mutate


def set_bytes(data: bytes) -> Mutate:
    def mutate(path: Path) -> None:
        path.write_bytes(data)

    return mutate


def replace_text(old: str, new: str) -> Mutate:
    """Replace the first ``old`` (which must be there) by ``new``."""

    def mutate(path: Path) -> None:
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{old!r} not in {path}"
        path.write_text(text.replace(old, new, 1), encoding="utf-8")

    return mutate


def blank_line_inside(line: int) -> Mutate:
    def mutate(path: Path) -> None:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        path.write_text("".join(lines[:line - 1] + ["\n"] + lines[line - 1:]), encoding="utf-8")

    return mutate


def header_only(path: Path) -> None:
    path.write_text(path.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")


def with_bom(path: Path) -> None:
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())


def with_crlf(path: Path) -> None:
    path.write_bytes(path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))


def trailing_blank(path: Path) -> None:
    path.write_bytes(path.read_bytes().rstrip(b"\n") + b"\n\n")
