"""Tests for bayesmfa.datacheck on the shipped REE tables and corrupted copies."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from bayesmfa.datacheck import DataProblem, check_data, format_problems

REE = Path(__file__).resolve().parents[1] / "data" / "ree"
TABLE = "mine_production.csv"


def _read(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


@pytest.fixture()
def copy(tmp_path: Path) -> Path:
    """A copy of the shipped tables and schema (raw/ and build/ are not copied)."""
    dst = tmp_path / "ree"
    dst.mkdir()
    for f in REE.glob("*.csv"):
        shutil.copy(f, dst / f.name)
    shutil.copy(REE / "schema.yaml", dst / "schema.yaml")
    return dst


def test_shipped_data_pass() -> None:
    problems = check_data(REE)
    assert problems == [], format_problems(problems)


def test_shipped_tables_have_rows_and_sources() -> None:
    tables = sorted(REE.glob("*.csv"))
    assert len(tables) >= 10
    for t in tables:
        header, rows = _read(t)
        assert rows, f"{t.name} is empty"
        for col in ("quantity", "region", "origin", "destination", "product", "year",
                    "value", "unit", "basis", "source", "status", "note"):
            assert col in header, (t.name, col)
        src = header.index("source")
        assert all(r[src].strip() for r in rows)


def test_mine_production_keeps_editions_apart() -> None:
    header, rows = _read(REE / TABLE)
    idx = {c: header.index(c) for c in ("region", "year", "edition", "quantity", "value")}
    world_2019 = {r[idx["edition"]]: r[idx["value"]] for r in rows
                  if r[idx["region"]] == "World" and r[idx["year"]] == "2019"
                  and r[idx["quantity"]] == "mine_production"}
    # DS140 219, MYB2022 223, MCS2020 210 are different vintages of one truth
    assert world_2019.get("DS140") == "219"
    assert world_2019.get("MYB2022") == "223"
    assert world_2019.get("MCS2020") == "210"


def test_mirror_trade_coding_trap_recorded() -> None:
    header, rows = _read(REE / "mirror_trade.csv")
    h = {c: header.index(c) for c in header}
    conc = [r for r in rows if r[h["mirror_group"]] == "US->CN ore_concentrate"]
    codes = {(r[h["reporter"]], r[h["hs_code"]]) for r in conc}
    assert ("US", "2846.90.9000") in codes
    assert any(rep == "CN" and hs.startswith("2530.90") for rep, hs in codes)


# (column to corrupt, new content, expected words in the message); row = first data row
CORRUPTIONS = [
    ("value", "-3.0", "negative value -3.0"),
    ("value", "", "missing value"),
    ("region", "Atlantis", "unknown region code 'Atlantis'"),
    ("product", "widgets", "unknown product code 'widgets'"),
    ("year", "1999", "year 1999 outside 2000-2022"),
    ("source", "", "row without a source"),
    ("unit", "lbs", "unknown unit code 'lbs'"),
]


@pytest.mark.parametrize(("column", "content", "expected"), CORRUPTIONS)
def test_corrupted_cell_is_reported(copy: Path, column: str, content: str, expected: str) -> None:
    path = copy / TABLE
    header, rows = _read(path)
    row_index = 11  # 0-based data row -> file line 13 (header = row 1)
    rows[row_index][header.index(column)] = content
    _write(path, header, rows)
    problems = check_data(copy)
    assert problems, "corruption not detected"
    line = row_index + 2
    hits = [p for p in problems if p.row == line and p.field == column and expected in p.message]
    assert hits, format_problems(problems)
    text = str(hits[0])
    assert TABLE in text
    assert f"row {line}" in text
    assert f"field '{column}'" in text
    # nothing else in the copy is wrong
    assert all(p.file.endswith(TABLE) for p in problems)


def test_duplicate_row_is_reported(copy: Path) -> None:
    path = copy / TABLE
    header, rows = _read(path)
    rows.insert(5, list(rows[4]))  # duplicate of data row 5 (file line 6) at line 7
    _write(path, header, rows)
    problems = check_data(copy)
    assert len(problems) == 1, format_problems(problems)
    p = problems[0]
    assert (p.row, p.field) == (7, "key")
    assert "duplicate key of row 6" in p.message
    assert str(p).startswith(str(copy / TABLE) + " row 7 field 'key'")


def test_origin_equals_destination_is_reported(copy: Path) -> None:
    path = copy / "mirror_trade.csv"
    header, rows = _read(path)
    o, d = header.index("origin"), header.index("destination")
    rows[0][d] = rows[0][o]
    _write(path, header, rows)
    problems = check_data(copy)
    hits = [p for p in problems if p.row == 2 and p.field == "destination"
            and "origin equals destination" in p.message]
    assert hits, format_problems(problems)
    assert "mirror_trade.csv row 2 field 'destination'" in str(hits[0])


def test_missing_column_is_reported(copy: Path) -> None:
    path = copy / "lynas.csv"
    header, rows = _read(path)
    k = header.index("basis")
    _write(path, header[:k] + header[k + 1:], [r[:k] + r[k + 1:] for r in rows])
    problems = check_data(copy)
    hits = [p for p in problems if p.field == "basis" and "missing required column" in p.message]
    assert len(hits) == 1, format_problems(problems)
    assert str(hits[0]) == f"{copy / 'lynas.csv'} row 1 field 'basis': missing required column 'basis'"


def test_withheld_status_allows_missing_value(copy: Path) -> None:
    path = copy / TABLE
    header, rows = _read(path)
    v, s = header.index("value"), header.index("status")
    rows[0][v] = ""
    rows[0][s] = "withheld"
    _write(path, header, rows)
    assert check_data(copy) == []
    rows[0][s] = "guessed"
    _write(path, header, rows)
    problems = check_data(copy)
    assert {(p.row, p.field) for p in problems} == {(2, "status"), (2, "value")}


def test_share_above_one_and_year_span_parameter(copy: Path) -> None:
    path = copy / "end_use_shares.csv"
    header, rows = _read(path)
    rows[0][header.index("value")] = "1.5"
    _write(path, header, rows)
    problems = check_data(path)  # single file; schema.yaml found next to it
    assert [(p.row, p.field) for p in problems] == [(2, "value")]
    assert "outside [0, 1]" in problems[0].message
    narrow = check_data(copy / TABLE, years=(2010, 2012))
    assert narrow and all(p.field == "year" for p in narrow)


def test_dataproblem_str_and_format() -> None:
    p = DataProblem("data/ree/mine_production.csv", 12, "value", "negative value -3.0")
    assert str(p) == "data/ree/mine_production.csv row 12 field 'value': negative value -3.0"
    assert str(DataProblem("x.csv", None, None, "empty file")) == "x.csv: empty file"
    text = format_problems([p, p])
    assert text.splitlines()[-1] == "2 problem(s) in 1 file(s)"
    assert format_problems([]) == "No data problems found."


def test_default_schema_without_file(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    _write(f, ["quantity", "region", "origin", "destination", "product", "year", "value",
               "unit", "basis", "source", "status", "note"],
           [["q", "XX", "", "", "p", "2005", "1", "kt", "", "s", "read", ""]])
    assert check_data(f) == []  # no code lists for region/product without a schema
    with pytest.raises(FileNotFoundError):
        check_data(tmp_path / "nope")
