"""Every row of the shipped REE tables is accounted for, and bad tables are refused where they are.

Row by row: each data line of each table the loader reads is either a record (its id and note name
the table and line) or an unused row with a true reason, never both and never neither. Corrupted
copies of the shipped tables are reported by ``check_data`` and refused by ``build_records`` with
the same file, line and field (the loader runs the check first); a byte-order mark, CRLF line ends
and a trailing blank line load to exactly the records of the shipped files.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml
from corrupt import (
    add_cell,
    blank_line_inside,
    copy_ree_tables,
    cut_cells,
    drop_column,
    duplicate,
    header_only,
    latin1,
    recode,
    set_bytes,
    set_cell,
    trailing_blank,
    with_bom,
    with_crlf,
)

from bayesmfa.cases import ree_records
from bayesmfa.cases.ree_records import FAMILIES, NOT_RECORDS, build_records, record_lines, table_files
from bayesmfa.core.datacheck import DataCheckError, check_data, format_problems, load_schema
from bayesmfa.core.records import SHARE_UNITS
from bayesmfa.core.system import load_system

ROOT = Path(__file__).resolve().parents[1]
REE = ROOT / "data" / "ree"
Row = dict[str, str]


def read_lines(path: Path) -> list[tuple[int, Row]]:
    """Data rows of a shipped table with their editor line (header = line 1), read with the csv module."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        out = []
        for cells in reader:
            assert len(cells) == len(header), (path.name, reader.line_num)
            out.append((reader.line_num, dict(zip(header, cells, strict=True))))
    return out


@pytest.fixture(scope="module")
def shipped() -> tuple[pd.DataFrame, pd.DataFrame]:
    return build_records(REE)


@pytest.fixture(scope="module")
def tables() -> dict[str, dict[int, Row]]:
    return {name: dict(read_lines(REE / f"{name}.csv")) for name in (*FAMILIES, *NOT_RECORDS)}


# ----------------------------------------------------------------------------- E: every row, row by row


def test_loader_tables_are_the_schema_tables() -> None:
    schema = load_schema(REE)
    assert sorted(schema["tables"]) == sorted(table_files())
    assert sorted(p.name for p in REE.glob("*.csv")) == sorted(table_files())


def test_every_row_is_a_record_or_unused_never_both(shipped, tables) -> None:
    records, unused = shipped
    used: dict[tuple[str, int], list[str]] = {}
    for rid in records["record_id"]:
        table, lines = record_lines(rid)
        for line in lines:
            used.setdefault((table, line), []).append(rid)
    listed = [(t, int(r)) for t, r in zip(unused["table"], unused["row"], strict=True)]
    assert len(listed) == len(set(listed)), "a row listed twice as unused"
    every = {(name, line) for name, rows in tables.items() for line in rows}
    assert set(used) | set(listed) == every, "records or unused rows that are not data lines"
    for key in sorted(every):
        assert (key in used) != (key in set(listed)), f"{key[0]}.csv line {key[1]}: record {key in used}, unused {key in listed}"


def test_records_name_their_table_and_lines(shipped, tables) -> None:
    records, _ = shipped
    for rec in records.to_dict("records"):
        table, lines = record_lines(rec["record_id"])
        assert rec["family"] == table
        assert rec["note"].startswith(f"{table} row {'+'.join(map(str, lines))}"), rec["note"]
        rows = [tables[table][line] for line in lines]
        assert all(r["source"] == rec["source"] for r in rows), rec["record_id"]
        assert all(r["status"] != "withheld" and r["value"] != "" for r in rows), rec["record_id"]
        years = {r["year"] for r in rows}
        assert rec["year"] in years or re.fullmatch(r"\d{4}-\d{4}", rec["year"]), rec["record_id"]


def _world_total(tables: dict[str, dict[int, Row]], row: Row) -> bool:
    return any(r["region"] == "World" and r["quantity"] == "mine_production" and r["value"] != ""
               and r["edition"] == row["edition"] and r["year"] == row["year"]
               for r in tables["mine_production"].values())


def _reprint_kept(tables: dict[str, dict[int, Row]], line: int, row: Row, reprints: set[int]) -> bool:
    key = ("region", "country", "year", "value", "quantity")
    return any(other != line and other not in reprints and r["source_type"] == "compilation"
               and all(r[k] == row[k] for k in key)
               for other, r in tables["mine_production"].items())


def _row_country(row: Row) -> bool:
    return row["quantity"] == "mine_production" and row["region"] == "RoW" and row["country"] not in ree_records.UNREGISTERED_RoW_COUNTRIES


SUB_QUOTAS = {"mining_quota_light", "mining_quota_medium_heavy", "mining_quota_rock_type", "mining_quota_ionic",
              "production_plan_mineral_products", "production_plan_smelting_separation"}
FINAL_PRODUCTS = {"magnet_production", "phosphor_production", "hydrogen_storage_alloy_production"}
TRADE = ("china_trade", "us_trade", "mirror_trade")
ALL = (*FAMILIES, *NOT_RECORDS)


@dataclass(frozen=True)
class Reason:
    """A reason the loader may give: its text (``{name}`` marks a part taken from the row), the tables
    it may be given in, and what must hold of the row it is given for (given the parts)."""

    text: str
    tables: tuple[str, ...]
    holds: Callable[[Row, dict[str, str]], bool]

    @property
    def pattern(self) -> str:
        return re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>.+)", re.escape(self.text))


def _withheld(r: Row, m: dict[str, str]) -> bool:
    return r["status"] == "withheld" or r["value"] == ""


def _mine_share_unusable(r: Row, m: dict[str, str]) -> bool:
    return r["quantity"] == "mine_production_share_of_world" and (r["region"] not in ("CN", "US", "RoW") or not r["year"].isdigit())


def _trade_share(r: Row, m: dict[str, str]) -> bool:
    return r["quantity"] in ("import_source_share", "export_destination_share")


def _not_a_final_product_record(r: Row, m: dict[str, str]) -> bool:
    return r["quantity"] in FINAL_PRODUCTS or (r["quantity"] == "consumption" and r["basis"] != "REO")


def _not_lynas_fy_reo(r: Row, m: dict[str, str]) -> bool:
    return not (r["quantity"] == "lynas_reo_production" and r["period"] == "FY-Jun" and r["basis"] == "REO")


def _straddles_end_uses(r: Row, m: dict[str, str]) -> bool:
    return r["end_use"] == "" and repr(r["detail"]) == m["c"]


REASONS = [
    Reason("value withheld in the source", ALL, _withheld),
    Reason("no value", ("unregistered_estimates",), lambda r, m: r["value"] == ""),
    Reason("period '{p}' is not a calendar-year total", ALL, lambda r, m: r["period"] == m["p"]),
    Reason("undated estimate ({p})", ("unregistered_estimates",), lambda r, m: r["period"] == m["p"]),
    Reason("RoW country: covered by its edition's World total", ("mine_production",), lambda r, m: _row_country(r)),
    Reason("RoW country: registered RoW mining is recorded by World totals (none in this edition)", ("mine_production",),
           lambda r, m: _row_country(r)),
    Reason("identical value in another compilation edition (one source family, counted once)", ("mine_production",),
           lambda r, m: r["source_type"] == "compilation" and r["value"] != ""),
    Reason("share without a single region or year", ("mine_production",), _mine_share_unusable),
    Reason("used in the derived quantity unregistered_refining_share, not as a record", ("china_quotas",),
           lambda r, m: r["quantity"] == "smelting_separation_quota"),
    Reason("sub-quota or production plan: the total mining quota is used", ("china_quotas",), lambda r, m: r["quantity"] in SUB_QUOTAS),
    Reason("exports of processed products: scope beyond the system's products", TRADE,
           lambda r, m: r["detail"] == "exports_processed_products"),
    Reason("product '{p}' has no trade flow", TRADE, lambda r, m: m["p"] not in ree_records.TRADE_RECORDED),
    Reason("share of a single partner country inside RoW", TRADE, lambda r, m: _trade_share(r, m) and r["country"] != ""),
    Reason("share with World as a partner: not a share between two regions of the system", TRADE,
           lambda r, m: _trade_share(r, m) and "World" in (r["origin"], r["destination"])),
    Reason("apparent consumption of compounds only: scope not a flow of the system", TRADE,
           lambda r, m: r["quantity"] in ("apparent_consumption", "consumption_estimated") and r["product"] != "all"),
    Reason("{q}: not a linear function of the flows (or scope unclear)", TRADE,
           lambda r, m: r["quantity"] == m["q"] and m["q"] in ("net_import_reliance", "production_compounds_metals")),
    Reason("product-weight output of a final product, or consumption of unstated basis", ("china_output_consumption",),
           _not_a_final_product_record),
    Reason("quarterly, NdPr-only, sales or product-weight figure", ("lynas",), _not_lynas_fy_reo),
    Reason("category {c} straddles the end uses of the system", ("end_use_shares",), _straddles_end_uses),
    Reason("no single year", ("end_use_shares",), lambda r, m: not r["year"].isdigit()),
    Reason("change of unregistered output: not a level or share", ("unregistered_estimates",),
           lambda r, m: r["quantity"] in ("illegal_production_halted", "illegal_production_ratio_to_previous_year")),
    Reason("REO factors inform the priors in priors/ree/factors.yaml", ("conversion_factors",), lambda r, m: True),
    Reason("imports of a RoW country from all partners include trade within RoW, which is not a flow of the system", TRADE,
           lambda r, m: r["quantity"] == "imports" and r["origin"] == "World" and r["destination"] == "RoW"),
    Reason("not demand: the figure equals world mine production (low-quality source)", ("china_output_consumption",),
           lambda r, m: r["quantity"] == "consumption" and r["detail"] == "likely_mine_production"),
    Reason("a plan or an unconfirmed report, not a purchase", ("unregistered_estimates",),
           lambda r, m: r["quantity"] in ("stockpile_plan", "stockpile_rumour")),
]
# guards the shipped data never reach
UNREACHED = {"no value", "no single year", "share without a single region or year", "product '{p}' has no trade flow",
             "share with World as a partner: not a share between two regions of the system"}


def _match_reason(reason: str) -> tuple[Reason, dict[str, str]]:
    hits = [(r, m.groupdict()) for r in REASONS if (m := re.fullmatch(r.pattern, reason))]
    assert len(hits) == 1, f"reason not in the enumerated set: {reason!r}"
    return hits[0]


def test_unused_reasons_are_enumerated_and_true(shipped, tables) -> None:
    _, unused = shipped
    reprints = {int(r) for t, r, why in zip(unused["table"], unused["row"], unused["reason"], strict=True)
                if t == "mine_production" and why.startswith("identical value")}
    seen = set()
    for item in unused.to_dict("records"):
        table, line, text = item["table"], int(item["row"]), item["reason"]
        row = tables[table][line]
        reason, parts = _match_reason(text)
        seen.add(reason.text)
        assert table in reason.tables, f"{table}.csv line {line}: reason {text!r} is not one of this table's"
        assert reason.holds(row, parts), f"{table}.csv line {line}: reason {text!r} contradicts the row {row}"
        assert item["quantity"] == row["quantity"] and item["year"] == row["year"]
        if text.startswith("RoW country: covered"):
            assert _world_total(tables, row), (table, line)
        elif text.startswith("RoW country: registered"):
            assert not _world_total(tables, row), (table, line)
        elif text.startswith("identical value"):
            assert _reprint_kept(tables, line, row, reprints), (table, line)
    assert {r.text for r in REASONS} - seen <= UNREACHED, "a reason of the set is dead text"


def test_no_row_of_a_known_code_is_skipped_as_unknown(shipped) -> None:
    _, unused = shipped
    assert not unused["reason"].str.contains("unknown", case=False).any()


def test_a_row_no_rule_handles_is_an_error(tmp_path, monkeypatch) -> None:
    """The loader's own guard: a family rule that forgets a row makes build_records fail on that line."""
    copy = copy_ree(tmp_path)
    original = FAMILIES["lynas"]

    def forgetful(t, df):
        original(t, df.iloc[1:])

    monkeypatch.setitem(FAMILIES, "lynas", forgetful)
    with pytest.raises(DataCheckError) as err:
        build_records(copy)
    assert "lynas.csv" in str(err.value) and re.search(r"\b(line|row) 2\b", str(err.value))
    assert "neither a record nor listed as unused" in str(err.value)


# ----------------------------------------------------------------------------- schema and loader agree


def test_schema_declares_every_quantity_with_its_unit() -> None:
    schema = load_schema(REE)
    for name in table_files():
        codes = schema["codes_by_file"][name]["quantity"]
        shipped = {row["quantity"] for _, row in read_lines(REE / name)}
        assert shipped <= set(codes), name
        assert set(codes) <= set(schema["units_by_quantity"]), name
        for _, row in read_lines(REE / name):
            assert row["unit"] in schema["units_by_quantity"][row["quantity"]]


def test_schema_units_and_years_are_the_systems() -> None:
    schema = load_schema(REE)
    system = load_system(REE / "system.yaml")
    assert set(schema["codes"]["unit"]) <= set(system.units) | set(SHARE_UNITS)
    assert tuple(schema["years"]) == (system.years[0], system.years[-1])
    with (REE / "schema.yaml").open(encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    assert set(raw["ranges"]) == set(table_files())


def test_loader_needs_the_schema(tmp_path) -> None:
    copy = copy_ree(tmp_path)
    (copy / "schema.yaml").unlink()
    with pytest.raises(DataCheckError, match="schema.yaml"):
        build_records(copy)


def test_loader_refuses_a_schema_without_quantity_codes(tmp_path) -> None:
    copy = copy_ree(tmp_path)
    text = (copy / "schema.yaml").read_text(encoding="utf-8")
    (copy / "schema.yaml").write_text(text.replace("  lynas.csv:\n    quantity:", "  lynas.csv:\n    product:"), encoding="utf-8")
    with pytest.raises(DataCheckError, match=r"codes_by_file\.lynas\.csv\.quantity"):
        build_records(copy)


# ----------------------------------------------------------------------------- F: corrupted copies


def copy_ree(tmp_path: Path) -> Path:
    return copy_ree_tables(tmp_path / "ree")


@dataclass(frozen=True)
class Corruption:
    """One corrupted table: which, how, and where the error must point (line None: the whole file)."""

    file: str
    mutate: Callable[[Path], None]
    line: int | None
    field: str | None
    words: str


MP, UT = "mine_production.csv", "us_trade.csv"
# mine_production line 13 and us_trade line 4 are records; mine_production lines 3 and 38 are unused rows (reprints)
CORRUPTIONS: dict[str, Corruption] = {
    "misspelt-quantity": Corruption(MP, set_cell(13, "quantity", "mine_prodution"), 13, "quantity",
                                    "unknown quantity code 'mine_prodution'"),
    "misspelt-quantity-unused-row": Corruption(MP, set_cell(3, "quantity", "mine_produktion"), 3, "quantity", "unknown quantity code"),
    "misspelt-quantity-trade": Corruption(UT, set_cell(4, "quantity", "export"), 4, "quantity", "unknown quantity code 'export'"),
    "quantity-of-another-table": Corruption(MP, set_cell(13, "quantity", "exports"), 13, "quantity", "unknown quantity code 'exports'"),
    "unknown-region": Corruption(MP, set_cell(13, "region", "Atlantis"), 13, "region", "unknown region code 'Atlantis'"),
    "unknown-region-unused-row": Corruption(MP, set_cell(3, "region", "Row"), 3, "region", "unknown region code 'Row'"),
    "unknown-origin": Corruption(UT, set_cell(4, "origin", "Mars"), 4, "origin", "unknown origin code 'Mars'"),
    "negative-value": Corruption(MP, set_cell(38, "value", "-5"), 38, "value", "negative value"),
    "text-value": Corruption(MP, set_cell(13, "value", "twelve"), 13, "value", "non-numeric value 'twelve'"),
    "text-year": Corruption(UT, set_cell(4, "year", "20x0"), 4, "year", "not an integer"),
    "year-outside-span": Corruption(UT, set_cell(4, "year", "1850"), 4, "year", "outside 2000-2022"),
    "value-1e30": Corruption(MP, set_cell(13, "value", "1e30"), 13, "value", "plausible range"),
    "value-inf": Corruption(UT, set_cell(4, "value", "inf"), 4, "value", "non-finite value"),
    "value-nan": Corruption(MP, set_cell(13, "value", "NaN"), 13, "value", "non-finite value"),
    "share-above-one": Corruption("end_use_shares.csv", set_cell(2, "value", "1.5"), 2, "value", "outside [0, 1]"),
    "unit-of-another-quantity": Corruption(MP, set_cell(13, "unit", "share"), 13, "unit", "not allowed for quantity 'mine_production'"),
    "missing-column": Corruption(MP, drop_column("country"), 1, "country", "missing required column 'country'"),
    "missing-value-column": Corruption(UT, drop_column("value"), 1, "value", "missing required column 'value'"),
    "utf16": Corruption(MP, recode("utf-16"), 1, None, "UTF-16"),
    "latin1": Corruption(MP, latin1(13), 13, "source", "not UTF-8"),
    "empty-file": Corruption(MP, set_bytes(b""), 1, None, "empty file"),
    "header-only": Corruption("lynas.csv", header_only, 1, None, "no data rows"),
    "ragged-short": Corruption(MP, cut_cells(13, 3), 13, "note", "has 22 fields, header has 25"),
    "ragged-long": Corruption(UT, add_cell(4), 4, None, "has 26 fields, header has 25"),
    "duplicated-row": Corruption(MP, duplicate(13), 14, "key", "duplicate key of line 13"),
    "duplicated-trade-row": Corruption("mirror_trade.csv", duplicate(28), 29, "key", "duplicate key of line 28"),
    "blank-line-inside": Corruption(UT, blank_line_inside(10), 10, None, "blank line"),
    "table-missing": Corruption("lynas.csv", lambda p: p.unlink(), None, None, "table missing"),
}


def test_corruption_targets_are_records_and_unused_rows(shipped) -> None:
    records, unused = shipped
    ids = set(records["record_id"])
    assert {"mine_production:13", "us_trade:4"} <= ids
    for line in (3, 38):
        reprint = unused[(unused["table"] == "mine_production") & (unused["row"] == line)]
        assert reprint["reason"].str.startswith("identical value").all() and len(reprint) == 1


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_corruption_is_reported_and_refused(name: str, tmp_path: Path) -> None:
    spec = CORRUPTIONS[name]
    copy = copy_ree(tmp_path)
    spec.mutate(copy / spec.file)
    problems = check_data(copy)
    assert problems, f"{name}: data check found nothing"
    first = problems[0]
    assert Path(first.file).name == spec.file and first.row == spec.line and first.field == spec.field, format_problems(problems)
    assert spec.words in first.message, format_problems(problems)
    with pytest.raises(DataCheckError) as err:
        build_records(copy)
    text = str(err.value)
    assert "\n" not in text
    assert spec.file in text
    assert (err.value.file, err.value.row, err.value.field) == (first.file, first.row, first.field)
    if spec.line is not None:
        assert re.search(rf"\b(line|row) {spec.line}\b", text), text
    if spec.field is not None:
        assert spec.field in text
    assert spec.words in text


def test_exact_duplicate_was_counted_twice_and_is_now_refused(tmp_path: Path) -> None:
    """Before the loader checked first, a duplicated record row became two records of one observation."""
    copy = copy_ree(tmp_path)
    records, _ = build_records(copy)
    assert records["record_id"].str.fullmatch(r"mine_production:13").any()
    duplicate(13)(copy / MP)
    problems = check_data(copy)
    assert [(p.row, p.field) for p in problems] == [(14, "key")]
    with pytest.raises(DataCheckError, match=r"mine_production\.csv.*\b(row|line) 14\b.*duplicate key of line 13"):
        build_records(copy)


# ----------------------------------------------------------------------------- valid variants


def all_three(path: Path) -> None:
    for mutate in (with_crlf, trailing_blank, with_bom):
        mutate(path)


@pytest.mark.parametrize("mutate", [with_bom, with_crlf, trailing_blank, all_three], ids=lambda f: f.__name__)
def test_valid_variants_give_identical_records(mutate, tmp_path: Path, shipped) -> None:
    copy = copy_ree(tmp_path)
    for f in copy.glob("*.csv"):
        mutate(f)
    assert check_data(copy) == []
    records, unused = build_records(copy)
    assert (records["file"].map(lambda f: Path(f).name) == shipped[0]["file"].map(lambda f: Path(f).name)).all()
    pd.testing.assert_frame_equal(records.drop(columns="file"), shipped[0].drop(columns="file"))  # same records, from the copy
    pd.testing.assert_frame_equal(unused, shipped[1])
