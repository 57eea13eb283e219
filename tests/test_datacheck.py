"""Tests for bayesmfa.core.datacheck on the shipped REE and demo tables, corrupted copies and small files."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import yaml
from corrupt import copy_ree_tables

from bayesmfa.core.datacheck import DataCheckError, DataProblem, check_data, format_problems, load_schema, read_table, require_valid
from bayesmfa.errors import LocatedError

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
    return copy_ree_tables(tmp_path / "ree")


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
    assert f"line {line}" in text
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
    assert "duplicate key of line 6" in p.message
    assert str(p).startswith(str(copy / TABLE) + " line 7 field 'key'")


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
    assert "mirror_trade.csv line 2 field 'destination'" in str(hits[0])


def test_missing_column_is_reported(copy: Path) -> None:
    path = copy / "lynas.csv"
    header, rows = _read(path)
    k = header.index("basis")
    _write(path, header[:k] + header[k + 1:], [r[:k] + r[k + 1:] for r in rows])
    problems = check_data(copy)
    hits = [p for p in problems if p.field == "basis" and "missing required column" in p.message]
    assert len(hits) == 1, format_problems(problems)
    assert str(hits[0]) == f"{copy / 'lynas.csv'} line 1 field 'basis': missing required column 'basis'"


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
    assert str(p) == "data/ree/mine_production.csv line 12 field 'value': negative value -3.0"
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


# ----------------------------------------------------------------------------- schema keys, reading, the demo

DEMO = REE.parent / "demo"
GENERIC = ["quantity", "region", "origin", "destination", "year", "value", "unit", "source_type", "source"]


def _demo_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "demo"
    dst.mkdir()
    for name in ("records.csv", "schema.yaml"):
        shutil.copy(DEMO / name, dst / name)
    return dst


def _generic_file(tmp_path: Path, rows: list[list[str]], text: str | None = None) -> Path:
    f = tmp_path / "t.csv"
    if text is None:
        _write(f, GENERIC, rows)
    else:
        f.write_bytes(text.encode("utf-8"))
    return f


def test_shipped_demo_data_pass() -> None:
    problems = check_data(DEMO)
    assert problems == [], format_problems(problems)


def test_data_check_command_passes_on_shipped_cases() -> None:
    from bayesmfa.drivers import cli

    assert cli.main(["data", "check", str(REE)]) == 0
    assert cli.main(["data", "check", str(DEMO)]) == 0


def test_demo_schema_is_its_system() -> None:
    from bayesmfa.core.records import SHARE_UNITS
    from bayesmfa.core.system import load_system

    schema = load_schema(DEMO)
    system = load_system(DEMO / "system.yaml")
    coords = system.all_coords()
    codes = schema["codes"]
    assert set(codes["region"]) == set(codes["origin"]) == set(codes["destination"]) == set(coords["region"])
    assert set(codes["end_use"]) == set(coords["end_use"])
    procs = set(system.processes)
    expected = set(system.flows) | procs | {f"{p}.{part}" for p in procs for part in ("input", "output")}
    assert set(codes["quantity"]) == expected
    assert tuple(schema["years"]) == (system.years[0], system.years[-1])
    assert set(codes["unit"]) <= set(system.units) | set(SHARE_UNITS)
    with (REE.parents[1] / "priors" / "demo" / "priors.yaml").open(encoding="utf-8") as fh:
        noise = yaml.safe_load(fh)["noise"]
    assert set(codes["source_type"]) == {n["source_type"] for n in noise}


@pytest.mark.parametrize(("cell", "value", "expected"), [
    ("year", "2009", "year 2009 outside 2010-2019"),
    ("year", "2012-2025", "year 2025 outside 2010-2019"),
    ("year", "2014-2012", "ends before it starts"),
    ("year", "twenty", "is not an integer or a range"),
    ("region", "C", "unknown region code 'C'"),
    ("quantity", "minning", "unknown quantity code 'minning'"),
    ("quantity", "mining+minning", "unknown quantity code 'minning'"),
    ("unit", "kg per fortnight", "unknown unit code"),
    ("source_type", "gossip", "unknown source_type code"),
    ("value", "1e30", "plausible range"),
])
def test_demo_corruption_is_reported(tmp_path: Path, cell: str, value: str, expected: str) -> None:
    copy = _demo_copy(tmp_path)
    header, rows = _read(copy / "records.csv")
    rows[2][header.index(cell)] = value
    _write(copy / "records.csv", header, rows)
    problems = check_data(copy)
    assert [(p.row, p.field) for p in problems] == [(4, cell)], format_problems(problems)
    assert expected in problems[0].message


def test_demo_generic_expressions_are_accepted(tmp_path: Path) -> None:
    copy = _demo_copy(tmp_path)
    header, rows = _read(copy / "records.csv")
    rows[0][header.index("quantity")] = "mining + refining"
    rows[1][header.index("year")] = "2012-2014"
    rows[2][header.index("quantity")] = "use.input"
    _write(copy / "records.csv", header, rows)
    assert check_data(copy) == []


def test_without_a_schema_years_are_not_bounded(tmp_path: Path) -> None:
    f = _generic_file(tmp_path, [["q", "XX", "", "", "1850", "1", "kt", "p", "s"]])
    schema = {"required_columns": ["quantity"], "key_columns": []}
    assert check_data(f, schema=schema) == []
    narrow = check_data(f, years=(2000, 2010), schema=schema)
    assert [(p.row, p.field) for p in narrow] == [(2, "year")]


ROW = ["q", "XX", "", "", "2005", "1", "kt", "p", "s"]
SCHEMA = {"required_columns": GENERIC, "key_columns": GENERIC}


def _text(rows: list[list[str]], end: str = "\n") -> str:
    return "".join(",".join(r) + end for r in rows)


@pytest.mark.parametrize("variant", ["bom", "crlf", "trailing_blank", "trailing_empty_cells", "all"])
def test_valid_text_variants_are_accepted(tmp_path: Path, variant: str) -> None:
    rows = [GENERIC, ROW, ["q2", *ROW[1:]]]
    text = {
        "bom": "\ufeff" + _text(rows),
        "crlf": _text(rows, "\r\n"),
        "trailing_blank": _text(rows) + "\n\n",
        "trailing_empty_cells": _text(rows) + ",,,,,,,,\n",
        "all": "\ufeff" + _text(rows, "\r\n") + "\r\n",
    }[variant]
    f = _generic_file(tmp_path, [], text)
    assert check_data(f, schema=SCHEMA) == []
    table = read_table(f)
    assert table.header == GENERIC
    assert [line for line, _ in table.rows] == [2, 3]


def test_blank_line_between_rows_is_reported(tmp_path: Path) -> None:
    f = _generic_file(tmp_path, [], _text([GENERIC, ROW]) + "\n" + _text([["q2", *ROW[1:]]]))
    problems = check_data(f, schema=SCHEMA)
    assert [(p.row, p.field) for p in problems] == [(3, None)]
    assert "blank line" in problems[0].message


def test_line_numbers_count_lines_of_quoted_cells(tmp_path: Path) -> None:
    """A cell spanning two lines: the next row is reported at the line an editor shows."""
    note = ["q", "XX", "", "", "2005", "1", "kt", "p", '"two\nlines"']
    f = _generic_file(tmp_path, [], _text([GENERIC, note, ["q2", "XX", "", "", "2005", "-1", "kt", "p", "s"]]))
    problems = check_data(f, schema=SCHEMA)
    assert [(p.row, p.field) for p in problems] == [(4, "value")]


@pytest.mark.parametrize(("name", "data", "row", "field", "words"), [
    ("utf16", _text([GENERIC, ROW]).encode("utf-16"), 1, None, "UTF-16"),
    ("utf16-no-bom", _text([GENERIC, ROW]).encode("utf-16-le"), 1, None, "NUL byte"),
    ("latin1", _text([GENERIC, ROW[:-1] + ["Société"]]).encode("latin-1"), 2, "source", "byte 0xe9 is not UTF-8"),
    ("empty", b"", 1, None, "empty file"),
    ("whitespace", b" \n\n", 1, None, "empty file"),
    ("header-only", _text([GENERIC]).encode(), 1, None, "no data rows"),
])
def test_unreadable_files_are_reported_on_a_line(tmp_path: Path, name: str, data: bytes, row: int, field: str | None,
                                                 words: str) -> None:
    f = tmp_path / "t.csv"
    f.write_bytes(data)
    problems = check_data(f, schema=SCHEMA)
    assert [(p.row, p.field) for p in problems] == [(row, field)], format_problems(problems)
    assert words in problems[0].message and "\n" not in str(problems[0])
    with pytest.raises(DataCheckError) as err:
        read_table(f)
    assert "t.csv" in str(err.value) and f"line {row}" in str(err.value)


def test_ragged_rows_name_the_first_missing_column(tmp_path: Path) -> None:
    f = _generic_file(tmp_path, [], _text([GENERIC, ROW[:-2], [*ROW, "extra"]]))
    problems = check_data(f, schema=SCHEMA)
    assert [(p.row, p.field) for p in problems] == [(2, "source_type"), (3, None)]


def test_ranges_apply_to_value_and_bounds(tmp_path: Path) -> None:
    header = [*GENERIC, "low", "high"]
    f = tmp_path / "t.csv"
    _write(f, header, [[*ROW[:5], "5", *ROW[6:], "1", "2000"], ["q2", *ROW[1:5], "2000", *ROW[6:], "", ""]])
    schema = {**SCHEMA, "ranges": {"t.csv": {"value": [0, 1000]}}}
    problems = check_data(f, schema=schema)
    assert [(p.row, p.field) for p in problems] == [(2, "high"), (3, "value")], format_problems(problems)
    assert "outside the plausible range [0, 1000] of t.csv" in problems[1].message
    assert check_data(f, schema={**SCHEMA, "ranges": {"other.csv": {"value": [0, 1]}}}) == []


def test_tables_key_finds_missing_and_unread_tables(copy: Path) -> None:
    (copy / "lynas.csv").rename(copy / "lynas_old.csv")
    problems = check_data(copy)
    found = {(Path(p.file).name, p.row, p.field): p.message for p in problems}
    assert "table missing" in found[("lynas.csv", None, None)]
    assert "nobody would read its rows" in found[("lynas_old.csv", None, None)]


@pytest.mark.parametrize(("text", "field"), [
    ("yeras: [2000, 2022]\n", "yeras"),
    ("years: [2022, 2000]\n", "years"),
    ("years: 2000\n", "years"),
    ("ranges: {a.csv: {value: [0]}}\n", "ranges.a.csv.value"),
    ("codes_by_file: {a.csv: {quantity: x}}\n", "codes_by_file.a.csv.quantity"),
    ("- a\n- b\n", None),
    ("codes: [unclosed\n", None),
])
def test_malformed_schema_is_an_error(tmp_path: Path, text: str, field: str | None) -> None:
    (tmp_path / "schema.yaml").write_text(text, encoding="utf-8")
    _generic_file(tmp_path, [ROW])
    with pytest.raises(DataCheckError) as err:
        check_data(tmp_path)
    assert "schema.yaml" in str(err.value) and err.value.field == field
    assert "\n" not in str(err.value)


def test_require_valid_raises_the_first_problem(copy: Path) -> None:
    require_valid(copy)
    header, rows = _read(copy / TABLE)
    rows[11][header.index("value")] = "-3"
    rows[12][header.index("region")] = "Atlantis"
    _write(copy / TABLE, header, rows)
    with pytest.raises(DataCheckError) as err:
        require_valid(copy)
    assert (err.value.row, err.value.field) == (13, "value")
    assert str(err.value).startswith(f"{copy / TABLE} line 13 field 'value': negative value -3.0 (1 more problem(s)")
    assert isinstance(err.value, LocatedError)


def test_messages_are_one_line(tmp_path: Path) -> None:
    f = _generic_file(tmp_path, [], _text([GENERIC, [*ROW[:5], '"1\n2"', *ROW[6:]]]))
    problems = check_data(f, schema=SCHEMA)
    assert [(p.row, p.field) for p in problems] == [(2, "value")]
    assert "\n" not in str(problems[0]) and "'1\\n2'" in problems[0].message


# ----------------------------------------------------------------------------- a case folder without schema.yaml


def test_a_case_folder_without_schema_is_checked_against_its_own_system(tmp_path: Path) -> None:
    """Not the REE defaults (region, product, basis, status, 2000-2022): the system's dims, years, units and names."""
    from bayesmfa.drivers.starter import init_case

    case = init_case(tmp_path / "mine")
    assert check_data(case) == []  # what the loader accepts, the check accepts (mirror records are not duplicates)
    header, rows = _read(case / "records.csv")
    rows[0][header.index("region")] = "west"
    rows[1][header.index("year")] = "2031"
    rows[2][header.index("quantity")] = "minning + use"
    rows[4][header.index("year")] = "2016-2018"  # a range is a valid year here
    rows[5] = list(rows[6])  # the same record twice
    _write(case / "records.csv", header, rows)
    found = {(p.row, p.field): p.message for p in check_data(case)}
    assert "unknown region code 'west'" in found[(2, "region")]
    assert "2031" in found[(3, "year")]
    assert "'minning'" in found[(4, "quantity")]
    assert (6, "year") not in found
    assert "duplicate key of line 7" in found[(8, "key")]
    assert len(found) == 4, found


def test_a_case_folder_check_reads_signed_expressions_stocks_and_own_uncertainty(tmp_path: Path) -> None:
    """Linear expressions with '-' and coefficients, stock changes (negative values allowed there only), sd and cv."""
    from bayesmfa.drivers.starter import init_case

    case = init_case(tmp_path / "mine")
    header, rows = _read(case / "records.csv")
    header = [*header, "sd", "cv"]
    rows = [[*r, "", ""] for r in rows]
    base = list(rows[0])
    q, v, sd, cv = (header.index(c) for c in ("quantity", "value", "sd", "cv"))
    signed = [("stockpile.change", "-3", "1", ""), ("mining - 2*use", "-1.5", "2", ""), ("mining", "-1", "", ""),
              ("stockpile.change + mining", "4", "", "0.1"), ("mining", "5", "-2", ""), ("mining * use", "5", "1", "")]
    for i, (quantity, value, s, c) in enumerate(signed):
        rows[i] = list(base)
        rows[i][q], rows[i][v], rows[i][sd], rows[i][cv] = quantity, value, s, c
        rows[i][header.index("year")] = str(2015 + i)
    _write(case / "records.csv", header, rows)
    found = {(p.row, p.field): p.message for p in check_data(case)}
    assert "negative value -1.0" in found[(4, "value")]  # 'mining' cannot be negative
    assert "sd must be a positive number" in found[(6, "sd")]
    assert "'mining * use'" in found[(7, "quantity")]  # not a linear expression: quoted whole
    assert {k for k in found if k[0] <= 7} == {(4, "value"), (6, "sd"), (7, "quantity")}, found
