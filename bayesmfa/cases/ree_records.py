"""Translate the REE data tables (``data/ree/*.csv``) into model records.

Each table row becomes a record (a linear function of the REE system's flows,
see :mod:`bayesmfa.core.records`) or is listed as unused with the reason; nothing
is dropped silently. The mapping rules are written out below, one function
per family, so that a reader can check every modelling choice.

Before translating, :func:`build_records` runs the checks of ``bayesmfa data
check`` (:func:`bayesmfa.core.datacheck.check_data`) with the folder's
``schema.yaml`` and raises the first problem (file, line, field), so the
loader and the check accept the same tables; after translating, it verifies
that every data row is a record or an unused row, never both or neither.
Line numbers are those an editor shows (header = line 1): record ids are
``<table>:<line>`` (``<table>:<line>+<line>`` for summed lines).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from bayesmfa.core import datacheck
from bayesmfa.core.datacheck import DataCheckError

# Quantity expressions of the REE system (flow names in data/ree/system.yaml)
# Ores (HS 2530.90) are registered concentrate only: Myanmar/Laos output (unregistered RoW mining)
# reaches China as mixed carbonate and compounds (HS 2846: the Burma rows of china_trade.csv), so
# China's ore-import totals must not count it a second time next to its HS 2846 records.
TRADE_RECORDED = {
    "ore_concentrate": "concentrate_trade",
    "salt": "salt_trade",
    "oxide": "oxide_trade",
    "metal": "metal_trade",
    "compound_mixed": "concentrate_unregistered_trade+salt_trade+oxide_trade",
    "all": "concentrate_trade+concentrate_unregistered_trade+salt_trade+oxide_trade+metal_trade",
    "ore_compound": "concentrate_trade+concentrate_unregistered_trade+salt_trade+oxide_trade",
    "oxide_metal": "oxide_trade+metal_trade",
    "compound_metal": "concentrate_unregistered_trade+salt_trade+oxide_trade+metal_trade",
}
# an importer sees smuggled goods too (recorded on arrival), an exporter does not
SMUGGLED_IN = {"oxide", "compound_mixed", "all", "ore_compound", "oxide_metal", "compound_metal"}
FACTOR_GROSS = {
    "ore_concentrate": "reo_content_concentrate",
    "salt": "reo_content_salt",
    "oxide": "reo_content_oxide",
    "metal": "reo_content_metal",
    "compound_mixed": "reo_content_compound_mixed",
    "all": "reo_content_compound_mixed",
    "ore_compound": "reo_content_compound_mixed",
    "oxide_metal": "reo_content_oxide",
    "compound_metal": "reo_content_compound_mixed",
}
UNREGISTERED_RoW_COUNTRIES = ("Burma", "Laos")
# Myanmar's flow to China, as China's customs record it, is HS 2846 as a whole (Comtrade) or the sum of its lines
# 2846.90.19 (unlisted oxides), .48 (mixed carbonate) and .99 (other compounds); one line alone is part of it
MYANMAR_WHOLE_HS = ("", "2846", "2846.90.19+2846.90.48+2846.90.99")
# How a trade row's `detail` relates to the flow: a total of a product scope ("total", product),
# a part of it ("part", product: a lower bound), or another scope ("skip", reason).
# A blank detail is a total of the row's product.
TRADE_DETAIL: dict[str, tuple[str, str]] = {
    # USGS (DS140, MCS, MYB) US trade, REO basis
    "exports_total_REO": ("total", "all"),
    "imports_total_REO": ("total", "all"),
    # US-reported exports of HS 2846 "compounds" include Mountain Pass concentrate, which the US codes
    # 2846.90.9000 (MYB 2022 notes it on the "other RE compounds" line): they measure ores and compounds,
    # not compounds alone. Mapping them to compounds only had forced US concentrate to be cracked in the US
    # and exported as salts to RoW (about 32 kt in 2022), against the mirror records of concentrate to China.
    "exports_compounds_REO_all_destinations": ("total", "ore_compound"),
    "exports_other_RE_compounds": ("part", "ore_compound"),
    "imports_compounds_REO_all_origins": ("total", "compound_mixed"),
    "exports_compounds": ("total", "ore_compound"),
    "imports_compounds": ("total", "compound_mixed"),
    "imports_RE_oxides_compounds": ("total", "compound_mixed"),
    "exports_ores_compounds": ("total", "ore_compound"),
    # China's HS 2846 imports from the US after the Mountain Pass restart: part of the same concentrate
    # shipments (the US codes them 2846.90.9000, China 2530.90) -> a lower bound on ores and compounds
    "imports_HS2846_from_concentrate_exporter": ("part", "ore_compound"),
    # China customs exports: headline totals of various vintages
    "exports_customs": ("total", "all"),
    "exports_reported": ("total", "all"),
    "exports_reported_MIIT": ("total", "all"),
    "exports_reported_blog": ("total", "all"),
    "exports_authorized_channels": ("total", "all"),
    "exports_RE_elements_compounds": ("total", "all"),
    "exports_compounds_HS2846": ("total", "compound_mixed"),
    "exports_RE_metals_alloys_HS280530": ("total", "metal"),
    "exports_processed_products": ("skip", "exports of processed products: scope beyond the system's products"),
    # China imports
    "imports_RE_metal_ore": ("total", "ore_concentrate"),
    "imports_RE_products": ("total", "all"),
    "oxides and metals": ("total", "oxide_metal"),
    "compounds and metals": ("total", "compound_metal"),
}
RECORD_COLUMNS = [
    "record_id", "quantity", "region", "origin", "destination", "end_use", "year", "value", "unit",
    "share_of", "denominator", "factor", "bound", "source_type", "source", "note",
]


class Translator:
    """Collects records and unused rows while the family rules run."""

    def __init__(self) -> None:
        self.records: list[dict] = []
        self.unused: list[dict] = []

    def add(self, row: pd.Series | dict, table: str, **fields) -> None:
        rec = {c: "" for c in RECORD_COLUMNS}
        rec.update({"year": row["year"], "value": row["value"], "unit": row.get("unit", "kt"), "source_type": row["source_type"]})
        rec.update({"source": row["source"], "note": f"{table} row {row['_row']}: {row.get('quantity', '')}"})
        rec.update({k: v for k, v in fields.items() if v is not None})
        rec["record_id"] = f"{table}:{row['_row']}" + (f":{fields['suffix']}" if "suffix" in fields else "")
        rec.pop("suffix", None)
        self.records.append(rec)

    def skip(self, row: pd.Series | dict, table: str, reason: str) -> None:
        self.unused.append(
            {"table": table, "row": row["_row"], "quantity": row.get("quantity", ""), "year": row.get("year", ""), "reason": reason}
        )

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        rec = pd.DataFrame(self.records, columns=RECORD_COLUMNS).fillna("").astype(str)
        rec = rec.drop(columns=[c for c in ("suffix",) if c in rec])
        return rec, pd.DataFrame(self.unused, columns=["table", "row", "quantity", "year", "reason"])


def read_table(folder: Path, name: str) -> pd.DataFrame:
    """One data table (string cells, stripped) with its editor line numbers (header = line 1) in ``_row``.

    Read by the same reader as ``bayesmfa data check`` (UTF-8, a byte-order mark, CRLF and trailing
    blank lines accepted); :func:`build_records` has checked the table before.
    """
    table = datacheck.read_table(folder / f"{name}.csv")
    df = pd.DataFrame([cells for _, cells in table.rows], columns=table.header, dtype=str)
    df.insert(0, "_row", [line for line, _ in table.rows])
    return df


def _factor(row, customs_product_factor: str = "china_customs_product_to_reo") -> str:
    """Factor expression of a trade row: a record in product or gross weight observes the
    flow (kt REO) divided by the REO content of what was weighed."""
    basis = row["basis"]
    if basis == "REO":
        return ""
    if basis == "product_weight" and row.get("reporter") == "CN":
        return "/" + customs_product_factor
    # China's customs tonnage of its exports of all RE products, printed as "gross weight" (raw/more_facts.csv):
    # the same tonnage as the product-tonne headline totals, so the same factor
    if basis == "gross_weight" and row.get("reporter") == "CN" and row.get("origin") == "CN" and row["product"] == "all":
        return "/" + customs_product_factor
    return "/" + FACTOR_GROSS.get(row["product"], "reo_content_compound_mixed")


def _published_bound(row) -> str:
    """A one-sided published figure: "more than"/"above" (``low`` = value, no ``high``) is a lower bound,
    "up to"/"as much as"/"less than" (``high`` = value, no ``low``) an upper bound; else blank."""
    low, high, value = row.get("low", ""), row.get("high", ""), row["value"]
    if low and not high and float(low) == float(value):
        return "lower"
    if high and not low and float(high) == float(value):
        return "upper"
    return ""


def _usable(t: Translator, row, table: str, *, annual: bool = True) -> bool:
    if row["status"] == "withheld" or row["value"] == "":
        t.skip(row, table, "value withheld in the source")
        return False
    if annual and row["period"]:
        t.skip(row, table, f"period {row['period']!r} is not a calendar-year total")
        return False
    return True


# ----------------------------------------------------------------------------- families


def mine_production(t: Translator, df: pd.DataFrame) -> None:
    """Mine production: China and US rows measure registered mining; World rows (minus the
    edition's own Burma/Laos figure) measure registered world mining; Burma/Laos rows measure
    unregistered RoW mining; other RoW countries are covered by the World rows of their edition."""
    table = "mine_production"
    rows = df[df["quantity"] == "mine_production"]
    world = rows[(rows["region"] == "World") & (rows["value"] != "")]
    world_by = set(zip(world["edition"], world["year"], strict=True))  # editions that print a World total
    rows = _drop_compilation_reprints(t, rows, table)
    burma = rows[rows["country"].isin(UNREGISTERED_RoW_COUNTRIES) & (rows["value"] != "")]
    burma_by = burma.assign(v=burma["value"].astype(float)).groupby(["edition", "year"])["v"].sum()
    for _, row in rows.iterrows():
        if not _usable(t, row, table):
            continue
        if row["region"] in ("CN", "US"):
            t.add(row, table, quantity="mining", region=row["region"])
        elif row["region"] == "World":
            less = float(burma_by.get((row["edition"], row["year"]), 0.0))
            value = float(row["value"]) - less
            note = f" minus Burma/Laos {less:g} kt of the same edition" if less else ""
            note = f"{table} row {row['_row']}: world mine production{note}"
            t.add({**row, "value": f"{value:.6g}"}, table, quantity="mining", note=note)
        elif row["country"] in UNREGISTERED_RoW_COUNTRIES:
            t.add(row, table, quantity="mining_unregistered", region="RoW")
        elif (row["edition"], row["year"]) in world_by:
            t.skip(row, table, "RoW country: covered by its edition's World total")
        else:
            t.skip(row, table, "RoW country: registered RoW mining is recorded by World totals (none in this edition)")
    for _, row in df[df["quantity"] == "mine_production_mountain_pass"].iterrows():
        if _usable(t, row, table):
            t.add(row, table, quantity="mining", region="US")
    for _, row in df[df["quantity"] == "mine_production_share_of_world"].iterrows():
        if not _usable(t, row, table):
            continue
        if row["region"] in ("CN", "US", "RoW") and row["year"].isdigit():
            t.add(row, table, quantity="mining", region=row["region"], share_of="region", unit="share")
        else:
            t.skip(row, table, "share without a single region or year")


def _drop_compilation_reprints(t: Translator, rows: pd.DataFrame, table: str) -> pd.DataFrame:
    """Keep one of identical values printed by several compilations (EI/bp/GeoPolRisk share a series).

    Counting one series three times would make its noise look three times better than it is.
    """
    comp = rows["source_type"] == "compilation"
    key = rows["region"] + "|" + rows["country"] + "|" + rows["year"] + "|" + rows["value"]
    dup = comp & (rows["value"] != "") & key.where(comp).duplicated(keep="first")
    for _, row in rows[dup].iterrows():
        t.skip(row, table, "identical value in another compilation edition (one source family, counted once)")
    return rows[~dup]


def china_quotas(t: Translator, df: pd.DataFrame) -> None:
    """Mining quotas measure registered China mining; export quotas cap China's recorded exports."""
    table = "china_quotas"
    for _, row in df.iterrows():
        q = row["quantity"]
        if q == "mining_quota":
            if _usable(t, row, table):
                t.add(row, table, quantity="mining", region="CN", source_type="quota_as_output")
        elif q == "export_quota":
            if _usable(t, row, table):
                t.add(row, table, quantity=TRADE_RECORDED["all"], origin="CN", bound="upper",
                      factor="/china_customs_product_to_reo" if row["basis"] != "REO" else "")
        elif q == "smelting_separation_quota":
            t.skip(row, table, "used in the derived quantity unregistered_refining_share, not as a record")
        else:
            t.skip(row, table, "sub-quota or production plan: the total mining quota is used")


def _trade(t: Translator, row, table: str, *, partial: bool) -> None:
    if row["destination"] == "RoW" and row["origin"] == "World":
        t.skip(row, table, "imports of a RoW country from all partners include trade within RoW, which is not a flow of the system")
        return
    product = row["product"]
    group = row.get("mirror_group", "")
    if group:  # the physical flow the record measures (e.g. Mountain Pass concentrate coded HS 2846 by the US)
        product = group.split(" ", 1)[1]
    mode, scope = TRADE_DETAIL.get(row.get("detail", ""), ("part", product)) if row.get("detail", "") else ("total", product)
    if mode == "skip":
        t.skip(row, table, scope)
        return
    published = _published_bound(row)
    partial = partial or mode == "part" or published == "lower"
    product = scope
    if product not in TRADE_RECORDED:
        t.skip(row, table, f"product {product!r} has no trade flow")
        return
    expr = TRADE_RECORDED[product]
    importer_report = row["quantity"] == "imports"
    origin = "" if row["origin"] == "World" else row["origin"]
    destination = "" if row["destination"] == "World" else row["destination"]
    if importer_report and origin in ("", "CN") and product in SMUGGLED_IN and destination != "CN":
        expr += "+smuggled"
    if row.get("country") in UNREGISTERED_RoW_COUNTRIES and origin == "RoW":
        # Myanmar/Laos mixed carbonate and compounds; one customs line (or one product, a named part such as
        # Kachin state) is part of Myanmar's flow, and Laos is part of the two countries' flow
        expr = "concentrate_unregistered_trade"
        factor = "/reo_content_myanmar_carbonate" if row["basis"] != "REO" else ""
        one_line = row["product"] not in ("compound_mixed", "all") or row.get("hs_code", "") not in MYANMAR_WHOLE_HS
        partial = row["country"] != "Burma" or one_line or mode == "part" or published == "lower"
    else:
        factor = _factor({**row, "product": product})
    bound = "lower" if partial else ("upper" if published == "upper" else "")
    t.add(row, table, quantity=expr, origin=origin, destination=destination, factor=factor, bound=bound)


def trade_table(t: Translator, df: pd.DataFrame, table: str) -> None:
    """Customs and USGS trade records. A record of one partner country inside RoW is a lower
    bound on the region's flow; MYB trade lines of one product are summed per year first."""
    df = _sum_trade_lines(t, df, table)
    for _, row in df.iterrows():
        q = row["quantity"]
        if q in ("exports", "imports"):
            if not _usable(t, row, table):
                continue
            partial = bool(row["country"]) and row["country"] not in ("",) and (row["origin"] == "RoW" or row["destination"] == "RoW")
            _trade(t, row, table, partial=partial)
        elif q in ("import_source_share", "export_destination_share"):
            _trade_share(t, row, table)
        elif q in ("apparent_consumption", "consumption_estimated"):
            if not _usable(t, row, table):
                continue
            if row["product"] == "all":
                t.add(row, table, quantity="use.input", region=row["region"])
            else:
                t.skip(row, table, "apparent consumption of compounds only: scope not a flow of the system")
        else:
            t.skip(row, table, f"{q}: not a linear function of the flows (or scope unclear)")


def _trade_share(t: Translator, row, table: str) -> None:
    if not _usable(t, row, table):
        return
    if row["country"]:
        t.skip(row, table, "share of a single partner country inside RoW")
        return
    if "World" in (row["origin"], row["destination"]):
        t.skip(row, table, "share with World as a partner: not a share between two regions of the system")
        return
    importer = row["quantity"] == "import_source_share"
    expr = TRADE_RECORDED["all"] + ("+smuggled" if importer else "")
    t.add(row, table, quantity=expr, origin=row["origin"], destination=row["destination"],
          share_of="origin" if importer else "destination", unit="share")


def _sum_trade_lines(t: Translator, df: pd.DataFrame, table: str) -> pd.DataFrame:
    """Sum MYB per-HTS-line rows of one flow, product, basis, edition and year into one row."""
    is_line = df["edition"].str.startswith("MYB") & df["quantity"].isin(["exports", "imports"]) & (df["hs_code"] != "")
    lines = df[is_line & (df["value"] != "")]
    keys = ["quantity", "origin", "destination", "country", "product", "basis", "reporter", "edition", "year", "period", "unit"]
    keys += [k for k in ("mirror_group",) if k in df]
    out = [df[~is_line]]
    for _, grp in lines.groupby(keys):
        first = grp.iloc[0].copy()
        first["value"] = f"{grp['value'].astype(float).sum():.6g}"
        first["_row"] = "+".join(map(str, grp["_row"]))
        first["detail"] = ""  # the lines of one flow, summed: a total of the group's product
        if len(grp) > 1:
            first["status"] = "derived"
        out.append(first.to_frame().T)
    for _, row in df[is_line & (df["value"] == "")].iterrows():
        t.skip(row, table, "value withheld in the source")
    return pd.concat(out, ignore_index=True)


#: ``country`` of a demand figure for the world outside China (the system's US and RoW together)
NON_CHINA = "world excl. China (incl. US)"
#: ``detail`` of demand figures whose scope is not REO demand, with the reason
NOT_DEMAND = {"likely_mine_production": "not demand: the figure equals world mine production (low-quality source)"}


def output_consumption(t: Translator, df: pd.DataFrame) -> None:
    """Separation output, consumption (demand) and China's share of world consumption.

    * Separation output measures ``separation`` of China (or of the world: refined supply).
    * Consumption or demand, REO or of unstated basis (most compilations of demand do not say; the note of the
      record says so), is apparent consumption ``use.input``: of the world (no region), of China, of RoW; of
      one country or continent inside RoW (Japan, Europe) a lower bound on RoW; of the world outside China
      (US included) an upper bound on RoW. One-sided figures ("less than 200 kt") are bounds. Consumption of
      one end use (catalysts) and figures in product weight are not records.
    * China's share of world consumption is a share record of ``use.input`` among regions.
    """
    table = "china_output_consumption"
    for _, row in df.iterrows():
        q = row["quantity"]
        if not _usable(t, row, table):
            continue
        where = "" if row["region"] == "World" else row["region"]
        if q == "separation_output":
            t.add(row, table, quantity="separation", region=where)
        elif q == "consumption_share_of_world":
            t.add(row, table, quantity="use.input", region=row["region"], share_of="region", unit="share")
        elif q == "consumption" and row["detail"] in NOT_DEMAND:
            t.skip(row, table, NOT_DEMAND[row["detail"]])
        elif q == "consumption" and row["basis"] in ("REO", "unspecified") and not row["end_use"]:
            note = f"{table} row {row['_row']}: consumption" + (" of unstated basis (read as REO)" if row["basis"] != "REO" else "")
            bound = _published_bound(row)
            if row["country"]:  # part of RoW (Japan, Europe): a floor; the world outside China (US + RoW): a cap
                side = "upper" if row["country"] == NON_CHINA else "lower"
                if bound and bound != side:
                    t.skip(row, table, "one-sided figure for a part or a superset of a region: it bounds no flow of the system")
                    continue
                bound = side
                note += "; demand outside China (US + RoW): an upper bound on RoW" if side == "upper" else \
                    f"; {row['country']}, part of RoW: a lower bound"
            t.add(row, table, quantity="use.input", region=where, bound=bound, note=note)
        else:
            t.skip(row, table, "product-weight output of a final product, or consumption of unstated basis")


def lynas(t: Translator, df: pd.DataFrame) -> None:
    """Lynas's fiscal-year REO output is a lower bound on RoW separation in the year the FY ends."""
    table = "lynas"
    for _, row in df.iterrows():
        if row["quantity"] == "lynas_reo_production" and row["period"] == "FY-Jun" and row["basis"] == "REO":
            if _usable(t, row, table, annual=False):
                t.add(row, table, quantity="separation", region="RoW", bound="lower",
                      note=f"{table} row {row['_row']}: Lynas FY to June {row['year']} (one company of RoW)")
        else:
            t.skip(row, table, "quarterly, NdPr-only, sales or product-weight figure")


#: Source categories that are a whole end use of the system (not a sub-category of one)
WHOLE_END_USE_DETAILS = {"catalysts", "magnets", "metallurgy", "permanent_magnets", "metallurgical_applications_alloys",
                         "metallurgical_alloying"}
#: A published structure whose listed shares sum to at least this is complete: the sum of the
#: sub-categories of one end use is then that end use's share
COMPLETE_STRUCTURE = 0.95


def end_use_shares(t: Translator, df: pd.DataFrame) -> None:
    """End-use shares of a region's (or the world's) consumption.

    Rows of one published structure (same region, year, period and edition or source) are grouped.
    The shares of the sub-categories of one end use (e.g. chemical, petroleum and automotive
    catalysts) are summed into one record of that end use (``end_use_shares:9+11+12``). In a
    complete structure (listed shares sum to >= 0.95) each sum is a measurement; in a partial one a
    whole category (e.g. "catalysts 19 %") is still a measurement, while a sum of sub-categories is
    a lower bound (other sub-categories may be missing). Multi-year periods (``2006-2007``) become
    a year range; undated structures (``circa``, ``c.YYYY-YYYY``) are recorded in their ``year``
    (the end_use_survey noise class carries the uncertainty). Rows without an end-use code
    (``new_materials``, ``mature_markets``) are unused.
    """
    table = "end_use_shares"
    usable = []
    for _, row in df.iterrows():
        if row["status"] == "withheld" or row["value"] == "":
            t.skip(row, table, "value withheld in the source")
        elif not row["end_use"]:
            t.skip(row, table, f"category {row['detail']!r} straddles the end uses of the system")
        elif not row["year"].isdigit():
            t.skip(row, table, "no single year")
        else:
            usable.append(row)
    if not usable:
        return
    rows = pd.DataFrame(usable)
    rows["_group"] = rows["edition"].where(rows["edition"] != "", rows["source"])
    for _, grp in rows.groupby(["region", "year", "period", "_group"], sort=False):
        total = grp["value"].astype(float).sum()
        complete = total >= COMPLETE_STRUCTURE
        for end_use, part in grp.groupby("end_use", sort=False):
            whole = len(part) == 1 and part["detail"].iloc[0] in WHOLE_END_USE_DETAILS | {end_use}
            first = part.iloc[0].copy()
            first["value"] = f"{part['value'].astype(float).sum():.6g}"
            first["_row"] = "+".join(map(str, part["_row"]))
            period = first["period"]
            year = period if period[:4].isdigit() and "-" in period else first["year"]
            region = "" if first["region"] == "World" else first["region"]
            sub = ", ".join(part["detail"])
            partial = "" if complete or whole else " (part of the categories: lower bound)"
            note = f"{table} row {first['_row']}: {end_use} = {sub}{partial}"
            t.add({**first, "year": year}, table, quantity="end_use", region=region, end_use=end_use, share_of="end_use",
                  unit="share", bound="" if complete or whole else "lower", note=note)


#: purchases into China's state stockpile, plans and rumours of them: wired to the stock of the CN oxide market
#: (data/ree/system.yaml, ``stocks``) in issue 17 item 2
STOCKPILE_QUANTITIES = ("stockpile_purchase", "stockpile_plan", "stockpile_rumour")


def unregistered_estimates(t: Translator, df: pd.DataFrame) -> None:
    """Published estimates: illegal share of China's mining, smuggled exports, smuggling ratio.

    Smuggled exports (kt per year) measure ``smuggled`` out of China, "up to"/"as much as" figures are
    upper bounds, "more than" figures lower bounds; the illegal share of China's mining is a share of
    ``mining_unregistered`` in all China's mining (bounded the same way when published as "below"/"above").
    A black-market volume "in recent years" has no year; stockpile purchases wait for the stock process.
    """
    table = "unregistered_estimates"
    for _, row in df.iterrows():
        q = row["quantity"]
        if row["value"] == "":
            t.skip(row, table, "no value")
            continue
        if q == "stockpile_purchase":  # the state reserve's purchases: part of all additions to China's stockpiles
            t.add(row, table, quantity="stockpile_addition", region="CN", bound="lower")
            continue
        if q in STOCKPILE_QUANTITIES:
            t.skip(row, table, "a plan or an unconfirmed report, not a purchase")
            continue
        period = row["period"]
        year = row["year"]
        if period and "-" in period and period[:4].isdigit():
            year = period
        elif period:
            t.skip(row, table, f"undated estimate ({period})")
            continue
        if q == "illegal_mining_share":
            t.add({**row, "year": year}, table, quantity="mining_unregistered", region="CN",
                  denominator="mining+mining_unregistered", unit="share", bound=_published_bound(row))
        elif q == "smuggled_exports":
            t.add({**row, "year": year}, table, quantity="smuggled", origin="CN", bound=_published_bound(row))
        elif q == "smuggled_to_legal_exports_ratio":
            t.add({**row, "year": year}, table, quantity="smuggled", origin="CN", denominator=TRADE_RECORDED["all"], unit="ratio")
        elif q == "black_market_volume":
            t.skip(row, table, "black-market volume: neither China's exports nor its output")
        else:
            t.skip(row, table, "change of unregistered output: not a level or share")


FAMILIES: dict[str, Callable[[Translator, pd.DataFrame], None]] = {
    "mine_production": mine_production,
    "china_quotas": china_quotas,
    "china_trade": lambda t, df: trade_table(t, df, "china_trade"),
    "us_trade": lambda t, df: trade_table(t, df, "us_trade"),
    "mirror_trade": lambda t, df: trade_table(t, df, "mirror_trade"),
    "china_output_consumption": output_consumption,
    "lynas": lynas,
    "end_use_shares": end_use_shares,
    "unregistered_estimates": unregistered_estimates,
}
NOT_RECORDS = {"conversion_factors": "REO factors inform the priors in priors/ree/factors.yaml"}


def build_records(folder: str | Path, families: Iterable[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All model records from the REE tables, and the rows not used (with reasons).

    The tables are checked first, with the rules of the folder's ``schema.yaml`` (the checks of
    ``bayesmfa data check``): the first problem is raised.

    Parameters
    ----------
    folder : str or Path
        ``data/ree``.
    families : iterable of str, optional
        Families to use (default all); the others are listed as unused.

    Returns
    -------
    records : DataFrame
        Record table for :func:`bayesmfa.core.records.compile_records`.
    unused : DataFrame
        ``table, row, quantity, year, reason`` for every row not turned into a record.

    Raises
    ------
    DataCheckError
        Naming the file, line and field of the first problem in the tables (or in the schema).
    ValueError
        If ``families`` names an unknown family.
    """
    folder = Path(folder)
    chosen = set(FAMILIES if families is None else families)
    unknown = chosen - set(FAMILIES)
    if unknown:
        raise ValueError(f"unknown record families {sorted(unknown)}; known: {sorted(FAMILIES)}")
    check_tables(folder)
    t = Translator()
    tables = {name: read_table(folder, name) for name in (*FAMILIES, *NOT_RECORDS)}
    for name, rule in FAMILIES.items():
        if name in chosen:
            rule(t, tables[name])
        else:
            for _, row in tables[name].iterrows():
                t.skip(row, name, "family left out of this fit")
    for name, reason in NOT_RECORDS.items():
        for _, row in tables[name].iterrows():
            t.skip(row, name, reason)
    records, unused = t.frames()
    _require_every_row_once(folder, tables, records, unused)
    records["family"] = records["record_id"].str.split(":").str[0]
    # where each record was read (its table and first line), so a later error names the file and line
    records.insert(0, "file", [str(folder / f"{fam}.csv") for fam in records["family"]])
    records.insert(1, "row", records["record_id"].str.split(":").str[1].str.split("+").str[0].astype(int))
    return records, unused


def table_files() -> list[str]:
    """File names of the tables the loader reads (families and tables that are not records)."""
    return [f"{name}.csv" for name in (*FAMILIES, *NOT_RECORDS)]


def check_tables(folder: str | Path) -> None:
    """Run the checks of ``bayesmfa data check`` on the REE folder; raise the first problem.

    The folder's ``schema.yaml`` must list the loader's tables under ``tables`` and the quantity
    codes of each under ``codes_by_file`` (so that a misspelt quantity is an error, not a lost row).

    Raises
    ------
    DataCheckError
        Naming the file, line and field of the first problem.
    """
    folder = Path(folder)
    schema_file = folder / datacheck.SCHEMA_FILE
    if not schema_file.is_file():
        raise DataCheckError("missing: the REE tables are checked against it before they are read", file=str(schema_file))
    schema = datacheck.load_schema(schema_file)
    expected = table_files()
    if sorted(schema.get("tables") or []) != sorted(expected):
        raise DataCheckError(f"must list the tables the REE loader reads: {', '.join(expected)}", file=str(schema_file), field="tables")
    by_file = schema.get("codes_by_file") or {}
    for name in expected:
        if not (by_file.get(name) or {}).get("quantity"):
            raise DataCheckError("no quantity codes for this table", file=str(schema_file), field=f"codes_by_file.{name}.quantity")
    datacheck.require_valid(folder, schema_file)


def record_lines(record_id: str) -> tuple[str, list[int]]:
    """Table and editor lines a record comes from (``mine_production:38`` or ``us_trade:12+13:suffix``)."""
    table, lines = record_id.split(":")[:2]
    return table, [int(x) for x in lines.split("+")]


def _require_every_row_once(folder: Path, tables: dict[str, pd.DataFrame], records: pd.DataFrame, unused: pd.DataFrame) -> None:
    """Every data row is a record or an unused row, never neither and never both."""
    used = {(table, line) for rid in records["record_id"] for table, lines in [record_lines(rid)] for line in lines}
    listed: set[tuple[str, int]] = set()
    for table, row in zip(unused["table"], unused["row"], strict=True):
        key = (str(table), int(str(row)))
        if key in listed:
            raise DataCheckError("row listed twice as unused", file=str(folder / f"{key[0]}.csv"), row=key[1], field="quantity")
        listed.add(key)
    for name, df in tables.items():
        for line, quantity in zip(df["_row"], df["quantity"], strict=True):
            key = (name, int(line))
            if key not in used and key not in listed:
                raise DataCheckError(f"row is neither a record nor listed as unused: no rule for quantity {quantity!r}",
                                     file=str(folder / f"{name}.csv"), row=int(line), field="quantity")
            if key in used and key in listed:
                raise DataCheckError("row is both a record and listed as unused",
                                     file=str(folder / f"{name}.csv"), row=int(line), field="quantity")
