"""The second compilation of REE figures (``data/ree/raw/more_facts.csv``) in the tables and the records.

Every row of the compilation is a table row or a row of ``build/omitted.csv`` (exactly one of the two);
the build regenerates the shipped tables byte for byte (so running it twice gives no diff); the project
reads only its own copy; and the record rules turn demand, partner-reported trade, smuggling and
Myanmar rows into the records the brief of issue 17 (item 1) asks for.
"""

from __future__ import annotations

import ast
import csv
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from bayesmfa.cases.ree_records import FAMILIES, NOT_RECORDS, build_records, record_lines

ROOT = Path(__file__).resolve().parents[1]
REE = ROOT / "data" / "ree"
MORE = REE / "raw" / "more_facts.csv"
TABLES = (*FAMILIES, *NOT_RECORDS)


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def shipped() -> tuple[pd.DataFrame, pd.DataFrame]:
    return build_records(REE)


@pytest.fixture(scope="module")
def lines() -> dict[str, tuple[str, int, dict[str, str]]]:
    """``more_facts.csv:N`` -> (table, editor line, row) of the table row it became."""
    out = {}
    for name in TABLES:
        for line, row in enumerate(read(REE / f"{name}.csv"), start=2):
            if row["facts_row"].startswith("more_facts.csv:"):
                assert row["facts_row"] not in out, row["facts_row"]
                out[row["facts_row"]] = (name, line, row)
    return out


def record_of(records: pd.DataFrame, table: str, line: int) -> dict[str, str]:
    hits = [rec for rec in records.to_dict("records") if (table, line) in
            {(t, n) for t, ns in [record_lines(rec["record_id"])] for n in ns}]
    assert len(hits) == 1, (table, line, hits)
    return hits[0]


def where(lines, n: int) -> tuple[str, int, dict[str, str]]:
    return lines[f"more_facts.csv:{n}"]


# ----------------------------------------------------------------------------- every row accounted for


def test_more_facts_is_the_182_row_compilation() -> None:
    rows = read(MORE)
    assert len(rows) == 182
    assert list(rows[0]) == ["quantity", "region", "partner", "year", "value", "unit", "basis", "source", "where_read",
                             "status", "note"]
    # the excerpt files it names are in the project
    named = {Path(p.strip()).name for r in rows for p in r["where_read"].split(";") if p.strip().startswith("raw/")}
    assert named and all((REE / "raw" / "more" / name).is_file() for name in named)
    assert (REE / "raw" / "MORE_SOURCES.md").is_file()


def test_every_more_row_is_in_a_table_or_omitted_exactly_once(lines) -> None:
    omitted = [r["facts_row"] for r in read(REE / "build" / "omitted.csv") if r["facts_row"].startswith("more_facts.csv:")]
    assert len(omitted) == len(set(omitted))
    assert not set(omitted) & set(lines), "a row both in a table and omitted"
    assert set(omitted) | set(lines) == {f"more_facts.csv:{i}" for i in range(1, 183)}
    assert len(omitted) + len(lines) == 182
    for r in read(REE / "build" / "omitted.csv"):
        assert r["reason"], r


def test_table_rows_carry_the_figure_of_their_facts_row(lines) -> None:
    facts = read(MORE)
    for cell, (_, _, row) in lines.items():
        f = facts[int(cell.split(":")[1]) - 1]
        assert row["facts_quantity"] == f["quantity"]
        assert row["year"] == f["year"]
        expected = float(f["value"]) / (1000.0 if f["unit"] == "t" else 1.0)
        assert float(row["value"]) == pytest.approx(expected, rel=1e-12), cell
        assert row["unit"] == ("kt" if f["unit"] == "t" else "share")
        assert row["status"] in ({"read": "read", "inferred": "derived"}[f["status"]], "estimated")
        assert "raw/more/" in row["source"] or "raw/more/" not in f["where_read"].replace("raw/", "raw/more/")


def test_merged_rows_name_a_first_compilation_row_with_the_same_figure() -> None:
    facts = read(REE / "raw" / "facts.csv")
    more = read(MORE)
    merged = [r for r in read(REE / "build" / "omitted.csv")
              if r["facts_row"].startswith("more_facts.csv:") and r["reason"].startswith("identical print")]
    assert len(merged) == 45
    for r in merged:
        j = int(re.search(r"raw/facts\.csv row (\d+)", r["reason"]).group(1))
        m = more[int(r["facts_row"].split(":")[1]) - 1]
        g = facts[j - 1]
        mv = float(m["value"]) / (1000.0 if m["unit"] == "t" else 1.0)
        gv = float(g["value"]) / (100.0 if g["unit"] == "%" else 1.0)
        assert mv == pytest.approx(gv), r


def test_first_compilation_rows_keep_their_provenance() -> None:
    """facts_row is a raw/facts.csv row number or more_facts.csv:N, nothing else."""
    for name in TABLES:
        for row in read(REE / f"{name}.csv"):
            assert re.fullmatch(r"\d+|more_facts\.csv:\d+", row["facts_row"]), (name, row["facts_row"])


# ----------------------------------------------------------------------------- the build


def test_build_regenerates_the_shipped_tables(tmp_path: Path) -> None:
    """Running the build on a copy gives the shipped tables, omitted.csv and README byte for byte
    (so the shipped files are up to date and a second run gives no diff)."""
    copy = tmp_path / "ree"
    shutil.copytree(REE, copy)
    for _ in range(2):
        subprocess.run([sys.executable, str(copy / "build" / "build_tables.py")], check=True, capture_output=True)
        for name in (*[f"{t}.csv" for t in TABLES], "build/omitted.csv", "README.md"):
            assert (copy / name).read_bytes() == (REE / name).read_bytes(), name


def test_project_never_reads_the_shared_folder() -> None:
    """No string in the build or the loader names the shared folder (comments may say where the copy came from)."""
    for path in [REE / "build" / "build_tables.py", ROOT / "bayesmfa" / "cases" / "ree_records.py",
                 ROOT / "bayesmfa" / "cases" / "ree.py"]:
        strings = [node.value for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                   if isinstance(node, ast.Constant) and isinstance(node.value, str)]
        assert not [s for s in strings if "shared" in s], path


def test_readme_table_counts_are_the_shipped_counts() -> None:
    text = (REE / "README.md").read_text(encoding="utf-8")
    for name in TABLES:
        m = re.search(rf"^\| `{name}\.csv` \| (\d+) \|", text, flags=re.M)
        assert m, name
        assert int(m.group(1)) == len(read(REE / f"{name}.csv")), name


# ----------------------------------------------------------------------------- record rules


def test_world_demand_is_use_input_without_region(shipped, lines) -> None:
    records, _ = shipped
    table, line, row = where(lines, 1)  # Kingsnorth: world demand 2010, 133 kt REO
    assert (table, row["region"], row["quantity"]) == ("china_output_consumption", "World", "consumption")
    rec = record_of(records, table, line)
    assert (rec["quantity"], rec["region"], rec["bound"], rec["year"], rec["value"]) == ("use.input", "", "", "2010", "133")
    # a figure of unstated basis is a record too, and its note says so
    table, line, row = where(lines, 13)  # CCID 2021, 199 kt, basis unclear
    rec = record_of(records, table, line)
    assert row["basis"] == "unspecified" and rec["region"] == "" and "unstated basis" in rec["note"]


def test_demand_of_parts_and_supersets_of_row_are_bounds(shipped, lines) -> None:
    records, _ = shipped
    table, line, _ = where(lines, 38)  # JSNM: Japan 2020
    rec = record_of(records, table, line)
    assert (rec["quantity"], rec["region"], rec["bound"]) == ("use.input", "RoW", "lower")
    table, line, row = where(lines, 18)  # Kingsnorth: "ROW" (= outside China, US included) 2011
    rec = record_of(records, table, line)
    assert row["country"] == "world excl. China (incl. US)"
    assert (rec["quantity"], rec["region"], rec["bound"]) == ("use.input", "RoW", "upper")
    table, line, _ = where(lines, 16)  # "less than 200,000 tons"
    assert record_of(records, table, line)["bound"] == "upper"


def test_china_share_of_world_consumption_is_a_share_record(shipped, lines) -> None:
    records, _ = shipped
    table, line, _ = where(lines, 25)
    rec = record_of(records, table, line)
    assert (rec["quantity"], rec["region"], rec["share_of"], rec["unit"]) == ("use.input", "CN", "region", "share")


def test_japan_import_from_china_is_a_lower_bound_with_smuggled_and_a_factor(shipped, lines) -> None:
    records, _ = shipped
    table, line, row = where(lines, 67)  # Japan MOF 2010: 23,310 t from China, gross weight
    assert (row["origin"], row["destination"], row["country"], row["reporter"]) == ("CN", "RoW", "Japan", "RoW")
    rec = record_of(records, table, line)
    assert rec["bound"] == "lower" and rec["origin"] == "CN" and rec["destination"] == "RoW"
    assert "smuggled" in rec["quantity"].split("+") and "oxide_trade" in rec["quantity"].split("+")
    assert rec["factor"] == "/reo_content_compound_mixed"


def test_importer_totals_from_all_partners_are_unused(shipped, lines) -> None:
    _, unused = shipped
    table, line, _ = where(lines, 76)  # Japan's imports from everywhere, 2014
    reason = unused[(unused["table"] == table) & (unused["row"] == line)]["reason"].tolist()
    assert reason == ["imports of a RoW country from all partners include trade within RoW, which is not a flow of the system"]


def test_china_total_exports_are_exporter_records_with_the_customs_factor(shipped, lines) -> None:
    records, _ = shipped
    table, line, row = where(lines, 129)  # GAC 2019: 46,330 t
    assert row["basis"] == "gross_weight"
    rec = record_of(records, table, line)
    assert rec["origin"] == "CN" and rec["destination"] == "" and "smuggled" not in rec["quantity"]
    assert rec["factor"] == "/china_customs_product_to_reo" and rec["bound"] == ""


def test_smuggling_estimates_are_smuggled_records(shipped, lines) -> None:
    records, _ = shipped
    expected = {149: "", 148: "upper", 150: "lower"}  # "about 10,000", "as much as 20,000", "more than 21,000"
    for n, bound in expected.items():
        table, line, row = where(lines, n)
        assert (table, row["status"], row["source_type"]) == ("unregistered_estimates", "estimated", "literature_estimate")
        rec = record_of(records, table, line)
        assert (rec["quantity"], rec["origin"], rec["bound"]) == ("smuggled", "CN", bound), n


def test_stockpile_purchases_are_lower_bounds_on_additions_and_plans_are_unused(shipped, lines) -> None:
    records, unused = shipped
    table, line, _ = where(lines, 162)  # the state reserve's 2014 purchase (Bloomberg)
    rec = record_of(records, table, line)
    assert (rec["quantity"], rec["region"], rec["bound"]) == ("stockpile_addition", "CN", "lower")
    for n in (163, 164):  # the 2012 plan, the 2011 rumour
        table, line, _ = where(lines, n)
        reason = unused[(unused["table"] == table) & (unused["row"] == line)]["reason"].tolist()
        assert reason == ["a plan or an unconfirmed report, not a purchase"], n


def test_myanmar_rows_follow_the_burma_rule(shipped, lines) -> None:
    """All of China's HS 2846 imports from Myanmar measure unregistered RoW trade; one line is part of it."""
    records, _ = shipped
    table, line, _ = where(lines, 165)  # HS 28469019+48+99 from Myanmar, 2020
    whole = record_of(records, table, line)
    assert (whole["quantity"], whole["origin"], whole["destination"], whole["bound"]) == (
        "concentrate_unregistered_trade", "RoW", "CN", "")
    assert whole["factor"] == "/reo_content_myanmar_carbonate"
    table, line, _ = where(lines, 168)  # mixed carbonate (HS 28469048) only, 2020
    assert record_of(records, table, line)["bound"] == "lower"


def test_part_years_and_final_products_are_unused(shipped, lines) -> None:
    _, unused = shipped
    for n, words in {93: "period 'Jan-Sep'", 97: "period 'Jan-Nov'", 44: "final product"}.items():
        table, line, _ = where(lines, n)
        reason = unused[(unused["table"] == table) & (unused["row"] == line)]["reason"].tolist()
        assert len(reason) == 1 and words in reason[0], (n, reason)
