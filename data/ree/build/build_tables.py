"""Build the tidy REE record tables in ``data/ree/`` from ``data/ree/raw/facts.csv`` and
``data/ree/raw/more_facts.csv`` (the second compilation, translated by the tables near the end).

Run from the repository root::

    python data/ree/build/build_tables.py

Every output row comes from exactly one row of ``facts.csv`` (column
``facts_row``: 1-based data-row number in facts.csv, header = row 1 not
counted) or of ``more_facts.csv`` (``facts_row`` = ``more_facts.csv:<row>``).  No number is invented: values are copied, converted exactly
(percent -> share by /100) or, where a source printed a range, the published
bounds go to ``low``/``high`` and ``value`` is their midpoint (the note says
so).  Rows that cannot be expressed in the codes of ``schema.yaml`` (stocks,
money values, years outside 2000-2022, aggregates such as "world excl.
China") are listed in ``build/omitted.csv`` with the reason.

Identical prints of one figure in one publication (same key, same value, same
edition or same URL, e.g. MYB 2022 world total in Table 1 and Table 8) are kept
once; the note of the kept row names the other print.  Different editions or
sources are always kept as separate rows (noisy observations of one truth).
"""

from __future__ import annotations

import csv
import re
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
REE = HERE.parent
FACTS = REE / "raw" / "facts.csv"
YEARS = (2000, 2022)

COLUMNS = [
    "quantity", "region", "origin", "destination", "country", "product",
    "year", "period", "value", "low", "high", "unit", "basis", "status",
    "source_type", "edition", "reporter", "hs_code", "end_use", "detail",
    "mirror_group", "source", "note", "facts_quantity", "facts_row",
]

TABLES = {
    "mine_production": ("Mine production by country (USGS DS140/MCS/MYB, EI/bp, WMD, GeoPolRisk, others), shares of world mining,"
                        " company mine output"),
    "china_quotas": "China mining, smelting/separation and export quotas; MIIT production plans",
    "china_trade": ("China customs exports and imports by product group and partner (not US partner); partner countries'"
                    " customs records of imports from China (Japan, Korea, EU)"),
    "us_trade": ("US production of compounds, imports, exports, apparent consumption, net import reliance, import sources"
                 " (USGS DS140/MCS/MYB, USITC) (not China partner)"),
    "mirror_trade": "Bilateral US<->China flows as reported by exporter and by importer (US Census/USITC/MYB, China customs/UN Comtrade)",
    "china_output_consumption": ("China actual production/separation output, consumption; world/other consumption and demand"
                                 " estimates; China's share of world consumption"),
    "lynas": "Lynas (Mt Weld -> LAMP Malaysia) output by fiscal year and quarter",
    "end_use_shares": "End-use shares by region and year",
    "conversion_factors": "REO-content factors per commodity group (US trade lines, MYB 2022)",
    "unregistered_estimates": ("Published estimates of unregistered (illegal) mining and smuggling; China's state stockpile"
                               " purchases"),
}

# ---------------------------------------------------------------- codes ----
COUNTRY_RENAME = {"Myanmar": "Burma"}
AGG_WORLD = {"World", "World (sum of listed countries)"}
RESIDUAL = {
    "Rest of World (EI/BP residual)": "Rest of World (EI/bp residual)",
    "Other countries": "Other countries",
}


def region_code(name: str) -> tuple[str, str] | None:
    """Map a facts region/partner name to (code, country)."""
    name = name.strip()
    if name in AGG_WORLD:
        return "World", ""
    if name.startswith("China"):
        return "CN", ("" if name == "China" else name)
    if name.startswith("United States"):
        return "US", ""
    if name == "Rest of world (excl. China)":
        return None
    if name in RESIDUAL:
        return "RoW", RESIDUAL[name]
    if name.startswith("Australia/Malaysia"):
        return "RoW", "Australia/Malaysia (Lynas)"
    if name == "other":
        return "RoW", "other countries"
    return "RoW", COUNTRY_RENAME.get(name, name)


# ------------------------------------------------------------ year/period ---
def parse_year(text: str) -> tuple[int, str] | None:
    """Return (calendar year the period ends in, period code) or None."""
    t = text.strip()
    if re.fullmatch(r"\d{4}", t):
        return int(t), ""
    m = re.fullmatch(r"(\d{4})-(Jan(?:-[A-Z][a-z]{2})?)", t)
    if m:
        return int(m.group(1)), m.group(2)
    m = re.fullmatch(r"(\d{4})-Q1-Q3", t)
    if m:
        return int(m.group(1)), "Jan-Sep"
    m = re.fullmatch(r"(\d{4})-H1", t)
    if m:
        return int(m.group(1)), "Jan-Jun"
    m = re.fullmatch(r"(\d{4})-Q4 \(Dec qtr\)", t)
    if m:
        return int(m.group(1)), "Oct-Dec"
    m = re.fullmatch(r"(\d{4})-(\d{4})", t)
    if m:
        return int(m.group(2)), f"{m.group(1)}-{m.group(2)}"
    m = re.fullmatch(r"FY(\d{4})", t)
    if m:
        return int(m.group(1)), "FY-Jun"
    m = re.fullmatch(r"FY(\d{4})-Q([1-4])", t)
    if m:
        fy, q = int(m.group(1)), int(m.group(2))
        return {1: (fy - 1, "Jul-Sep"), 2: (fy - 1, "Oct-Dec"),
                3: (fy, "Jan-Mar"), 4: (fy, "Apr-Jun")}[q]
    m = re.fullmatch(r"c\.(\d{4})", t)
    if m:
        return int(m.group(1)), "circa"
    m = re.fullmatch(r"c\.(\d{4})-(\d{4})", t)
    if m:
        return int(m.group(2)), f"c.{m.group(1)}-{m.group(2)}"
    m = re.fullmatch(r"pre-(\d{4})", t)
    if m:
        return int(m.group(1)) - 1, t
    return None


# ---------------------------------------------------------------- basis ----
def basis_code(text: str) -> str:
    t = text.lower()
    if "undocumented" in t or "not stated" in t:
        return "unspecified"
    if "net weight" in t:
        return "net_weight"
    if "gross" in t:
        return "gross_weight"
    if "product" in t or "export licence" in t:
        return "product_weight"
    if "reo" in t or "oxide" in t:
        return "REO"
    return "unspecified"


# -------------------------------------------------------------- edition ----
def first_url(src: str) -> str:
    m = re.search(r"https?://[^\s;)]+", src)
    return m.group(0) if m else ""


def edition_of(src: str, note: str) -> str:
    if "Data Series 140" in src:
        return "DS140"
    m = re.search(r"Minerals Yearbook (\d{4})", src)
    if m:
        return f"MYB{m.group(1)}"
    m = re.search(r"\((MCS\d{4}(?:/\d{4})?)", src) or re.search(r"citing USGS (MCS\d{4})", src) \
        or re.search(r"quoting USGS (MCS\d{4})", src)
    if m:
        return m.group(1)
    m = re.search(r"Mineral Commodity Summaries (\d{4})", src)
    if m:
        return f"MCS{m.group(1)}"
    m = re.search(r"MCS(\d{4}) Data Release", src)
    if m:
        return f"MCS{m.group(1)}"
    if src.startswith("Energy Institute"):
        return "EI2024"
    if src.startswith("bp Statistical Review"):
        return "BP2021"
    if src.startswith("World Mining Data"):
        return "WMD"
    if src.startswith("GeoPolRisk"):
        return "GeoPolRisk2023"
    if "BGR" in src:
        return "BGR"
    if src.startswith("Visual Capitalist"):
        return "VisualCapitalist"
    if src.startswith("UN Comtrade"):
        return "Comtrade"
    if src.startswith("USITC DataWeb"):
        return "USITC"
    return ""


def fallback_edition(src: str) -> str:
    url = first_url(src)
    if url:
        host = re.sub(r"^https?://(www\.|m\.|news\.|en\.|wap\.)?", "", url).split("/")[0]
        return host
    return re.sub(r"\W+", "_", src[:24]).strip("_")


# ------------------------------------------------------------- products ----
HS_PRODUCT = {
    # US HTS / Schedule B lines (MYB 2022 Tables 4-7) -> product code
    "2846.10.0010": "oxide", "2846.90.2005": "oxide", "2846.90.2015": "oxide",
    "2846.90.2040": "oxide", "2846.90.2060": "salt", "2846.90.8070": "salt",
    "2846.90.8075": "salt",
}


def product_from_hs(hs: str, desc: str = "") -> str:
    """Product code of a customs line; unlisted 2846 lines are compound_mixed."""
    if hs.startswith(("2805.30", "3606.90", "7202")):
        return "metal"
    if hs.startswith("2530.90"):
        return "ore_concentrate"
    return HS_PRODUCT.get(hs, "compound_mixed")


END_USE = {
    "catalysts": "catalysts", "chemical_catalysts": "catalysts",
    "petroleum_refining_catalysts": "catalysts",
    "automotive_catalytic_converters": "catalysts",
    "automotive_catalysts": "catalysts", "petroleum_catalysts": "catalysts",
    "ceramics_and_glass": "glass_ceramics", "polishing": "glass_ceramics",
    "glass_polishing_and_ceramics": "glass_ceramics",
    "ceramics_and_polishing": "glass_ceramics", "glass_and_optics": "glass_ceramics",
    "ceramics": "glass_ceramics",
    "metallurgical_applications_alloys": "metallurgy", "metallurgy": "metallurgy",
    "metallurgical_alloying": "metallurgy",
    "magnets": "magnets", "permanent_magnets": "magnets", "NdFeB_magnets": "magnets",
    "phosphors": "other", "other": "other", "electronics": "other",
    # categories that straddle the model's end uses: end_use left blank
    "mechanical_metallurgical": "", "mature_markets": "", "new_markets": "",
    "new_materials": "",
}

USD_QUANTITIES = {
    "unit_value_apparent_consumption", "US_import_value_RE_compounds_metals",
    "US_import_value_refined_RE", "exports_customs_value",
}
STOCK_QUANTITIES = {"reserves", "reserve_base"}
# purchases into China's state stockpile: additions to the stock of the CN oxide market (data/ree/system.yaml)
STOCKPILE_QUANTITIES = {"state_reserve_purchase": "stockpile_purchase"}

ESTIMATE_QUANTITIES = {
    "illegal_share_of_china_supply", "illegal_share_of_total_production_Adamas",
    "illegal_share_of_total_production_Kingsnorth", "illegal_share_Kingsnorth_quote",
    "smuggled_exports_estimate", "smuggled_to_legal_export_ratio",
    "illegal_production_halted_crackdown", "illegal_production_change",
    "illegal_production_change_Adamas", "illegal_exports_estimate_BGR",
}

US_SIMPLE = {
    # facts quantity -> (out quantity, product, direction) ; direction: region|import|export
    "imports_total_REO": ("imports", "all", "import"),
    "exports_total_REO": ("exports", "all", "export"),
    "apparent_consumption": ("apparent_consumption", "all", "region"),
    "apparent_consumption_compounds_metals": ("apparent_consumption", "compound_mixed", "region"),
    "consumption_estimated": ("consumption_estimated", "all", "region"),
    "production_compounds_metals": ("production_compounds_metals", "compound_mixed", "region"),
    "net_import_reliance_compounds_metals": ("net_import_reliance", "compound_mixed", "region"),
    "exports_monazite_concentrates": ("exports", "ore_concentrate", "export"),
    "exports_cerium_compounds": ("exports", "compound_mixed", "export"),
    "exports_other_RE_compounds": ("exports", "compound_mixed", "export"),
    "exports_ferrocerium_alloys": ("exports", "metal", "export"),
    "exports_RE_metals_alloys": ("exports", "metal", "export"),
    "exports_RE_metals_Sc_Y": ("exports", "metal", "export"),
    "exports_compounds": ("exports", "compound_mixed", "export"),
    "exports_compounds_REO_all_destinations": ("exports", "compound_mixed", "export"),
    "exports_ores_compounds": ("exports", "compound_mixed", "export"),
    "imports_cerium_compounds": ("imports", "compound_mixed", "import"),
    "imports_other_RE_compounds": ("imports", "compound_mixed", "import"),
    "imports_ferrocerium_alloys": ("imports", "metal", "import"),
    "imports_RE_metals_alloys": ("imports", "metal", "import"),
    "imports_RE_metals_Sc_Y": ("imports", "metal", "import"),
    "imports_compounds": ("imports", "compound_mixed", "import"),
    "imports_compounds_REO_all_origins": ("imports", "compound_mixed", "import"),
    "imports_mixed_REOs": ("imports", "oxide", "import"),
    "imports_RE_chlorides": ("imports", "salt", "import"),
    "imports_RE_oxides_compounds": ("imports", "compound_mixed", "import"),
}


def out_row(**kw) -> dict:
    r = {c: "" for c in COLUMNS}
    r.update({k: ("" if v is None else v) for k, v in kw.items()})
    return r


def fmt(x: float) -> str:
    s = f"{round(x, 10):.10g}"
    return "0" if s in ("-0", "0") else s


def classify(i: int, f: dict) -> tuple[str, dict] | tuple[None, str]:
    """Return (table, row) or (None, reason-to-omit)."""
    q, reg, src, note = f["quantity"], f["region"], f["source"], f["note"]
    if q in USD_QUANTITIES:
        return None, "money value (USD); the tables keep masses, shares and ratios only"
    if q in STOCK_QUANTITIES:
        return None, "stock (reserves/stockpile), not an annual flow of the system"
    yp = parse_year(f["year"])
    if yp is None:
        return None, f"unparseable year '{f['year']}'"
    year, period = yp
    if not YEARS[0] <= year <= YEARS[1]:
        return None, f"period ends outside {YEARS[0]}-{YEARS[1]} ('{f['year']}')"
    if q == "US_import_source_share_compounds_metals":
        return None, "multi-year period ends after 2022"

    # ---- value, unit, range
    raw = f["value"].strip()
    low = high = ""
    status = "read"
    extra = []
    value = ""
    unit = f["unit"]
    if raw == "":
        status = "withheld"
        extra.append("source printed NA/withheld/n-a; value left blank")
    else:
        m = re.fullmatch(r"(-?[\d.]+)-([\d.]+)", raw)
        if m:
            a, b = float(m.group(1)), float(m.group(2))
            div = 100.0 if unit == "%" else 1.0
            low, high = fmt(a / div), fmt(b / div)
            value = fmt((a + b) / 2 / div)
            status = "derived"
            extra.append(f"published as range {raw}{' %' if unit == '%' else ''}; value = midpoint (derived), low/high = published bounds")
        else:
            v = float(raw)
            if unit == "%":
                v /= 100.0
            value = fmt(v)
    out_unit = {"kt": "kt", "%": "share", "ratio": "ratio"}.get(unit, unit)
    if q == "REO_content_factor_implied":
        out_unit = "ratio"
    basis = basis_code(f["basis"])
    if out_unit == "share":
        basis = "REO" if "reo" in f["basis"].lower() else "unspecified"
    if "published '>95'" in note or "published as '>95'" in note:
        low, high = value, "1"
        extra.append("'>95' = lower bound; low/high = [0.95, 1]")

    ed = edition_of(src, note)
    base = {"year": year, "period": period, "value": value, "low": low, "high": high,
                "unit": out_unit, "basis": basis, "status": status, "edition": ed,
                "source": src, "facts_quantity": q, "facts_row": i + 1}

    def note_with(*more: str) -> str:
        parts = [note] + list(more) + extra
        return "; ".join(p for p in parts if p)

    rc = region_code(reg) if "<-" not in reg and "->" not in reg and ":" not in reg else None

    # ------------------------------------------------ stockpile purchases
    if q in STOCKPILE_QUANTITIES:
        return "unregistered_estimates", out_row(
            quantity=STOCKPILE_QUANTITIES[q], region="CN", product="all", source_type="literature_estimate",
            note=note_with(), **base)

    # ------------------------------------------------ unregistered estimates
    if q in ESTIMATE_QUANTITIES:
        st = "estimated" if base["status"] != "withheld" else "withheld"
        qn = q
        more = []
        if q in ("illegal_production_change", "illegal_production_change_Adamas"):
            v = 1 + float(raw) / 100.0  # -50 % -> ratio 0.5
            base.update(value=fmt(v), unit="ratio", basis="unspecified")
            qn = "illegal_production_ratio_to_previous_year"
            more.append(f"published change {raw} %; value = 1 + change/100 = ratio of {year} to {year - 1} illegal output")
        elif q in ("smuggled_exports_estimate", "illegal_exports_estimate_BGR"):
            base.update(high=value)
            qn = "smuggled_exports"
            more.append("published as 'up to'; high = published figure (upper bound), low left blank")
        elif q == "illegal_production_halted_crackdown":
            qn = "illegal_production_halted"
        elif q == "smuggled_to_legal_export_ratio":
            qn = "smuggled_to_legal_exports_ratio"
        else:
            qn = "illegal_mining_share"
        if q == "illegal_share_of_total_production_Adamas":
            more.append("per Adamas via Mineral Economics 2019: below 20 % after 2014 (not entered as a row: no year/figure pair)")
        base["status"] = "derived" if False else st
        return "unregistered_estimates", out_row(
            quantity=qn, region="CN", product="ore_concentrate" if "share" in qn or "production" in qn else "all",
            source_type="literature_estimate", note=note_with(*more), **{k: v for k, v in base.items() if k != "status"},
            status=st)

    # ------------------------------------------------------ conversion factors
    if q == "REO_content_factor_implied":
        m = re.match(r"US (exports|imports): (.*) \(([\d.]+)\)", reg)
        flow, desc, hs = m.group(1), m.group(2), m.group(3)
        prod = product_from_hs(hs, desc)
        if hs == "2846.90.9000" and flow == "exports":
            prod = "ore_concentrate"
        base.update(status="derived")
        return "conversion_factors", out_row(
            quantity=f"reo_content_factor_us_{flow}", region="US", product=prod,
            basis="REO_per_gross_weight", source_type="conversion_factor", reporter="US",
            hs_code=hs, detail=desc,
            note=note_with("status derived: ratio of two printed MYB figures" +
                           ("; Schedule B 2846.90.9000 exports = Mountain Pass concentrate (MYB T4)" if prod == "ore_concentrate" else "")),
            **{k: v for k, v in base.items() if k != "basis"})

    # ------------------------------------------------------------ end use
    if q.startswith("end_use_share_") or q == "phosphor_share_of_demand_volume":
        cat = q[len("end_use_share_"):] if q.startswith("end_use_share_") else "phosphors"
        code = region_code(reg)
        more = []
        if q == "phosphor_share_of_demand_volume":
            more.append("share by volume of world demand")
        if period == "circa":
            more.append("source undated; year approximate (period 'circa')")
        return "end_use_shares", out_row(
            quantity="end_use_share", region=code[0], country=code[1], product="all",
            end_use=END_USE[cat], detail=cat, source_type="end_use_survey",
            note=note_with(*more), **base)

    # ------------------------------------------------------------- Lynas
    if q.startswith("lynas_"):
        more = []
        if "COMPUTED" in note:
            base["status"] = "derived"
        qn = {"lynas_REO_production": "lynas_reo_production",
              "lynas_REO_production_quarter": "lynas_reo_production",
              "lynas_ready_for_sale_production_quarter": "lynas_reo_ready_for_sale",
              "lynas_NdPr_production": "lynas_ndpr_oxide_production",
              "lynas_REO_sales": "lynas_reo_sales"}[q]
        return "lynas", out_row(
            quantity=qn, region="RoW", country="Australia/Malaysia (Lynas)", product="oxide",
            source_type="company_report", note=note_with(*more), **base)

    # ------------------------------------------------------ mine production
    if q.startswith("mine_production") or q in ("mountain_pass_production", "production_actual_REO", "world_production_share",
                                                 "world_production_share_BGR"):
        if rc is None:
            return None, "aggregate 'rest of world excl. China' (= US + RoW) has no region code"
        if q in ("world_production_share", "world_production_share_BGR"):
            qn = "mine_production_share_of_world"
        elif q == "mountain_pass_production":
            qn = "mine_production_mountain_pass"
        elif q == "production_actual_REO":
            qn = "mine_production"
        else:
            qn = "mine_production"
        if q.startswith("mine_production_") and q != "mine_production_concentrates":
            st_type = "compilation"
        elif q == "mountain_pass_production":
            st_type = "company_report"
        elif q == "production_actual_REO":
            st_type = "industry_statistics"
        elif ed.startswith(("DS140", "MCS", "MYB")):
            st_type = "usgs_production"
        else:
            st_type = "compilation"
        if not base["edition"]:
            base["edition"] = fallback_edition(src)
        more = []
        if qn == "mine_production" and rc[0] == "CN" and st_type == "usgs_production":
            more.append("USGS China figure = official quota (illegal output not included)")
        return "mine_production", out_row(
            quantity=qn, region=rc[0], country=rc[1], product="ore_concentrate",
            source_type=st_type, note=note_with(*more), **base)

    # ------------------------------------------------------------ quotas
    if "quota" in q or q.startswith("production_plan"):
        m = re.match(r"(mining_quota|smelting_separation_quota|export_quota|production_plan_mineral_products"
                     r"|production_plan_smelting_separation)(?:_(.*))?$", q)
        stem, sub = m.group(1), m.group(2) or ""
        qn = stem
        per = base["period"]
        if sub in ("light", "medium_heavy", "rock_type", "ionic"):
            qn = f"{stem}_{sub}"
        elif sub == "H1":
            per = "H1"
        elif sub == "H2":
            per = "H2"
        elif sub == "first_batch":
            per = "batch1"
        elif sub == "second_batch":
            per = "batch2"
        base["period"] = per
        prod = {"mining_quota": "ore_concentrate", "production_plan_mineral_products": "ore_concentrate",
                "smelting_separation_quota": "oxide", "production_plan_smelting_separation": "oxide",
                "export_quota": "all"}[stem]
        if "NOT a direct statement" in note:
            base["status"] = "derived"
        return "china_quotas", out_row(
            quantity=qn, region="CN", product=prod, source_type="quota", note=note_with(), **base)

    # ------------------------------------------------ China output/consumption
    if q in ("smelting_separation_output_actual", "magnet_production_product_weight",
             "phosphor_production", "hydrogen_storage_alloy_production", "consumption",
             "consumption_catalysts_REO", "market_size", "consumption_market_estimate_BCC",
             "demand_estimate_Adamas"):
        code = region_code(reg)
        qn, prod, eu, st_type = q, "all", "", "industry_statistics"
        if q == "smelting_separation_output_actual":
            qn, prod = "separation_output", "oxide"
        elif q == "magnet_production_product_weight":
            qn, prod = "magnet_production", "magnet"
        elif q == "phosphor_production":
            qn, prod = "phosphor_production", "compound_mixed"
        elif q == "hydrogen_storage_alloy_production":
            qn, prod = "hydrogen_storage_alloy_production", "metal"
        elif q == "consumption_catalysts_REO":
            qn, eu = "consumption", "catalysts"
        elif q in ("market_size", "consumption_market_estimate_BCC", "demand_estimate_Adamas"):
            qn, st_type = "consumption", "literature_estimate"
            base["status"] = "estimated" if base["status"] == "read" else base["status"]
        if q == "consumption" and "midpoint" in f["basis"]:
            base.update(low="11", high="11.5", status="derived")
            extra.append("published as range 11-11.5 kt; value = midpoint (derived)")
        if q == "consumption" and reg == "Japan":
            pass
        return "china_output_consumption", out_row(
            quantity=qn, region=code[0], country=code[1], product=prod, end_use=eu,
            source_type=st_type, note=note_with(), **base)

    # ------------------------------------------------------------- trade
    if "<-" in reg or "->" in reg:
        if "<-" in reg:
            rep, part = reg.split("<-")
            reporter_code, _ = region_code(rep)
            o, d = region_code(part), region_code(rep)
            flow = "import"
        else:
            rep, part = reg.split("->")
            reporter_code, _ = region_code(rep)
            o, d = region_code(rep), region_code(part)
            flow = "export"
        country = o[1] if o[0] == "RoW" else (d[1] if d[0] == "RoW" else "")
        hs = ""
        prod = "all"
        qn = "imports" if flow == "import" else "exports"
        detail = ""
        mg = ""
        st_type = "customs"
        more = []
        m = re.search(r"(\d{4}\.\d{2}\.\d{2,4})", note + " " + f["basis"])
        if q in ("imports_from_China_gross_weight", "exports_to_China_gross_weight"):
            dm = re.match(r"\[primary\] (.*?) HTS/Schedule B", note)
            detail = dm.group(1) if dm else ""
            hs = m.group(1) if m else ""
            prod = product_from_hs(hs, detail)
            if hs == "2846.90.9000" and flow == "export":
                prod = "ore_concentrate"
                more.append("coding trap: US Schedule B 2846.90.9000 'unspecified compounds' to China = Mountain Pass concentrate;"
                            " China records it as ore HS 2530.90")
        elif q in ("us_imports_HTS2846_quantity", "us_domestic_exports_HTS2846_quantity", "china_imports_HS2846_net_weight"):
            hs, prod = "2846", "compound_mixed"
            if q == "us_domestic_exports_HTS2846_quantity":
                more.append("domestic exports only (re-exports excluded); from 2018 mostly Mountain Pass concentrate coded under 2846"
                            " (China records it as ore HS 2530.90)")
            if q == "china_imports_HS2846_net_weight" and o[0] == "US" and year >= 2018:
                detail = "imports_HS2846_from_concentrate_exporter"
                more.append("after the 2018 Mountain Pass restart the US reports its concentrate exports under Schedule B 2846.90.9000"
                            " (MYB2022 T4) and China reports US concentrate under 2530.90 (Argus 2021-01-22); unit values of 1.5"
                            " (2018) and 2.9 (2022) USD/kg are concentrate prices, so these HS 2846 rows may hold part of the same"
                            " shipments and bound US->CN ores and compounds from below")
        elif q.startswith("imports_RE_metal_ore"):
            m = re.search(r"(2530\.90(?:\.\d{2})?)", note + " " + f["basis"])
            hs, prod = (m.group(1) if m else "2530.90"), "ore_concentrate"
            if not m:
                more.append("hs_code 2530.90 = China customs category 'rare earth metal ore' (code not printed in this source)")
        elif q.startswith("imports_unlisted_REO"):
            prod = "compound_mixed"
            hs = "2846.90.19" if "28469019" in f["basis"] else ""
        elif q == "imports_mixed_RE_carbonate":
            prod, hs = "salt", ("2846.90.48" if "28469048" in f["basis"] else "")
        elif q == "imports_RE_oxide_carbonate_compounds":
            prod, hs = "compound_mixed", "2846.90.19+2846.90.48+2846.90.99"
        elif q == "export_destination_share":
            qn = "export_destination_share"
        elif q == "US_import_share_from_China":
            qn, st_type = "import_source_share", "usgs_trade"
        elif q in ("imports_REO_equivalent_Adamas",):
            st_type = "literature_estimate"
            base["status"] = "estimated"
        elif q in ("imports_RE_products_ACREI", "imports_RE_oxides_metals_ACREI"):
            st_type = "industry_statistics"
            if "oxides_metals" in q:
                prod, detail = "all", "oxides and metals"
        if q.startswith("us_") or q.endswith("China_gross_weight"):
            reporter = "US"
        else:
            reporter = reporter_code
        pair = {o[0], d[0]}
        if pair == {"US", "CN"}:
            table = "mirror_trade"
            conc = prod == "ore_concentrate" or q == "us_domestic_exports_HTS2846_quantity"
            mg = f"{o[0]}->{d[0]} " + ("ore_concentrate" if conc and o[0] == "US" else prod)
        elif reporter == "US":
            table = "us_trade"
        else:
            table = "china_trade"
        if table == "us_trade" and q.startswith("us_imports"):
            more.append("USITC workbook covers 18 selected partners only (no World row)")
        if not base["edition"]:
            base["edition"] = ""
        return table, out_row(
            quantity=qn, origin=o[0], destination=d[0], country=country, product=prod,
            reporter=reporter, hs_code=hs, detail=detail, mirror_group=mg,
            source_type=st_type, note=note_with(*more), **base)

    # ------------------------------------------------------ US single-region
    if q in US_SIMPLE:
        qn, prod, dirn = US_SIMPLE[q]
        st_type = "usgs_trade"
        kw = {"region": "US"} if dirn == "region" else (
            {"origin": "World", "destination": "US"} if dirn == "import" else {"origin": "US", "destination": "World"})
        rep = "" if dirn == "region" else "US"
        return "us_trade", out_row(
            quantity=qn, product=prod, reporter=rep, source_type=st_type,
            detail=q, note=note_with(), **kw, **base)

    # -------------------------------------------------- China exports/imports
    if q.startswith(("exports", "imports")):
        code = region_code(reg)
        more = []
        qn = "exports" if q.startswith("exports") else "imports"
        prod, hs, detail = "all", "", q
        if q == "exports_compounds_HS2846":
            prod, hs = "compound_mixed", "2846"
        elif q == "exports_RE_metals_alloys_HS280530":
            prod, hs = "metal", "2805.30"
        elif q == "exports_RE_ferroalloy_HS72029991":
            prod, hs = "metal", "7202.99.91"
        elif q == "exports_by_element_group":
            detail = code[1].replace("China (", "").rstrip(")")
        elif q == "imports_REO_and_metals":
            detail = "oxides and metals"
        if code[1] and q != "exports_by_element_group":
            more.append(f"partial coverage: {code[1]}")
            detail = f"{q} ({code[1]})"
        if q == "exports_customs" and "REO" in f["basis"] and "Adamas" in f["basis"] + src:
            more.append("Adamas wording 'REO and oxide equivalents'; customs figures are product tonnes")
        kw = {"origin": "CN", "destination": "World"} if qn == "exports" else {"origin": "World", "destination": "CN"}
        return "china_trade", out_row(
            quantity=qn, product=prod, hs_code=hs, reporter="CN", detail=detail,
            source_type="customs" if "ACREI" not in src else "industry_statistics",
            note=note_with(*more), **kw, **base)

    return None, f"no table for quantity '{q}'"


# ======================================================= second compilation ===
# raw/more_facts.csv (copy of ../shared/data/ree-facts/more/facts.csv; raw/MORE_SOURCES.md, verbatim excerpts in
# raw/more/): 182 rows, columns quantity,region,partner,year,value,unit,basis,source,where_read,status,note.
# Values in t (-> kt exactly) or shares. Its rows are translated by the declarative tables below; every row
# number named in them is checked against the file (quantity, year, value or wording), so a changed compilation
# stops the build instead of silently changing a table. Provenance: facts_row = "more_facts.csv:<row>".
MORE_FACTS = REE / "raw" / "more_facts.csv"
MORE_FILE = "more_facts.csv"

# identical prints of a figure already in raw/facts.csv (the same article, or the same article reprinted at
# another address): kept once, as the raw/facts.csv row; listed in build/omitted.csv
MORE_SAME_PRINT = {
    8: 1047, 42: 1055, 53: 1032, 54: 1033, 55: 1034, 58: 1039, 59: 1040, 60: 1037, 61: 1036, 62: 1038,
    65: 1041, 66: 1042, 96: 649, 103: 661, 104: 662, 105: 663, 106: 664, 107: 665, 114: 643, 117: 1840,
    119: 642, 121: 644, 122: 646, 124: 647, 126: 650, 128: 651, 130: 656, 131: 658, 134: 659, 135: 653,
    136: 654, 137: 1373, 138: 1359, 139: 1358, 140: 1357, 141: 666, 142: 1360, 144: 667, 153: 1030,
    155: 744, 157: 745, 160: 751, 161: 746, 167: 1364, 175: 671,
}
# the same figure printed in a different article of raw/facts.csv: a separate row (as for different
# publications in raw/facts.csv), the note names the other print
MORE_RESTATED = {129: 655, 152: 748, 165: 1361, 168: 1362, 169: 1363}
# products of two figures that are both in the tables: a row of them would count the same figures twice
MORE_DOUBLE = {
    30: "79,000 t / 0.69 from IMCOA's China consumption (more_facts.csv row 46) and China's share (row 26)",
    51: "0.565 x 155,000 t from China's share (more_facts.csv row 25) and the atechmagnet world total (row 11)",
    109: "46,330 t x 33.4 % from China's 2019 export total (more_facts.csv row 129; raw/facts.csv row 655) and the US"
         " share of it (raw/facts.csv row 662)",
}
# rows no code of schema.yaml can hold
MORE_SCOPE = {
    170: "Myanmar's share of China's ion-adsorption RE consumption: no flow of the system has this scope",
    179: "Myanmar's share of China's heavy-RE feedstock: no flow of the system has this scope",
    174: "cumulative May 2017 - Oct 2021: not a span of calendar years",
    180: "grade (REO content of mixed RE carbonate, not Myanmar-specific, forum post): informs priors/ree/factors.yaml at"
         " most, not a record table",
    181: "grade (REO content of a Canadian mixed RE carbonate lab sample): informs priors/ree/factors.yaml at most, not a"
         " record table",
    182: "grade (ionic-phase REO grade of Laos ore): no flow of the system",
    78: "Japan's imports from Malaysia: trade within RoW, not a flow of the system (origin = destination = RoW)",
}
# part-year rows (the compiled year; the note says which months)
MORE_PERIOD = {81: "Jan-Jun", 93: "Jan-Sep", 94: "Jan-Sep", 97: "Jan-Nov", 98: "Jan-Nov", 99: "Jan-Nov",
               100: "Jan-Nov", 101: "Jan-Nov", 102: "Jan-Jun", 125: "Jan-Nov", 126: "Jan-Sep", 154: "circa",
               175: "Jan-Nov", 176: "Jan-Nov"}
MORE_PERIOD_WORDS = {"Jan-Jun": "H1", "Jan-Sep": "Jan-Sep", "Jan-Nov": "Jan-Nov", "circa": "recent years"}
# one-sided statements: "less than"/"as much as"/"below" -> high = value; "more than"/"above" -> low = value
MORE_BOUND = {16: ("high", "less than"), 44: ("low", "強"), 45: ("low", "強"), 111: ("low", "more than"),
              148: ("high", "as much as"), 150: ("low", "more than"), 151: ("low", "more than"),
              152: ("high", "as much as"), 156: ("high", "below"), 158: ("low", "above")}
# published ranges whose midpoint the compilation recorded (kt)
MORE_RANGE = {17: (50.0, 60.0), 43: (11.0, 13.0)}
# rows derived from other rows of the compilation (their publication is cited with the derived row)
MORE_PARENT = {77: (76, 75), 80: (79, 74), 88: (87,), 90: (89,), 92: (91,), 108: (129, 103), 118: (117,),
               123: (96,), 127: (128,), 166: (165,)}
# source_type where the default of the family does not fit (consultancy, traders, association, blog)
MORE_SOURCE_TYPE = {110: "industry_statistics", 111: "industry_statistics", 112: "industry_statistics",
                    113: "industry_statistics", 115: "industry_statistics", 116: "industry_statistics",
                    146: "industry_statistics", 178: "literature_estimate"}
# the compiled basis text read differently (with the reason, added to the note)
MORE_BASIS = {127: ("gross_weight", "Adamas wording 'REO/oxide equivalents', but the 2018 figure it is derived from is"
                                    " China customs tonnage (raw/facts.csv row 651: product tonnes)")}

# consumption and demand (china_output_consumption.csv, quantity consumption)
MORE_CONSUMPTION = {
    "world_REO_demand", "world_RE_demand", "world_TREO_consumption", "world_REO_consumption",
    "world_RE_consumption", "world_REE_demand", "world_RE_demand_upper_bound", "world_REO_demand_implied",
    "RoW_RE_demand", "RoW_REO_demand", "Japan_RE_demand", "Europe_RE_demand", "China_REO_consumption",
    "China_RE_consumption", "China_RE_catalyst_use",
}
#: the "RoW" of a demand figure outside China (US included): country of such rows (the record rule in
#: bayesmfa/cases/ree_records.py reads the same string)
NON_CHINA = "world excl. China (incl. US)"
MORE_OUTPUT = {  # facts quantity -> (quantity, product)
    "world_REO_refined_supply": ("separation_output", "oxide"),
    "China_separated_RE_output": ("separation_output", "oxide"),
    "Japan_NdFeB_magnet_production": ("magnet_production", "magnet"),
    "China_RE_magnet_production": ("magnet_production", "magnet"),
    "China_NdFeB_production": ("magnet_production", "magnet"),
    "China_RE_phosphor_output": ("phosphor_production", "compound_mixed"),
    "China_H2storage_alloy_output": ("hydrogen_storage_alloy_production", "metal"),
}
MORE_END_USE = {"world_enduse_share_catalysts": "catalysts", "world_enduse_share_magnets": "magnets",
                "world_enduse_share_NdFeB": "NdFeB_magnets", "China_enduse_share_magnets": "permanent_magnets"}
MORE_ESTIMATES = {  # facts quantity -> unregistered_estimates quantity
    "China_RE_smuggled": "smuggled_exports", "China_RE_illegal_exports_per_year": "smuggled_exports",
    "China_RE_black_market_volume": "black_market_volume",
    "China_illegal_production_share": "illegal_mining_share",
    "China_illegal_undocumented_supply_share": "illegal_mining_share",
    "China_illegal_production_change": "illegal_production_ratio_to_previous_year",
    "China_state_stockpile_purchase": "stockpile_purchase", "China_state_stockpile_plan": "stockpile_plan",
    "China_state_stockpile_rumour": "stockpile_rumour",
}
# trade: facts quantity -> (quantity, product, detail, hs_code)
MORE_TRADE = {
    "Japan_imports_RE_from_China": ("imports", "all", "", ""),
    "Japan_imports_RE_from_China_H1": ("imports", "all", "", ""),
    "Korea_imports_RE_from_China": ("imports", "all", "", ""),
    "EU_imports_REE_from_China": ("imports", "all", "", ""),
    "Japan_imports_RE_total": ("imports", "all", "", ""),
    "Korea_imports_RE_total": ("imports", "all", "", ""),
    "EU_imports_REE_total": ("imports", "all", "", ""),
    "Japan_imports_RE_China_share": ("import_source_share", "all", "", ""),
    "Korea_imports_RE_China_share": ("import_source_share", "all", "", ""),
    "China_exports_RE_to_Japan": ("exports", "all", "", ""),
    "China_exports_RE_to_US": ("exports", "all", "", ""),
    "China_exports_REoxide_to_US": ("exports", "oxide", "", ""),
    "China_exports_REoxide_to_Japan": ("exports", "oxide", "", ""),
    "China_exports_REoxide_to_Europe": ("exports", "oxide", "", ""),
    "China_exports_REoxide_to_Korea": ("exports", "oxide", "", ""),
    "China_exports_REoxide_to_Vietnam": ("exports", "oxide", "", ""),
    "China_exports_REsalts_to_Japan": ("exports", "salt", "", ""),
    "China_exports_RE_Japan_share": ("export_destination_share", "all", "", ""),
    "China_exports_RE_partner_share": ("export_destination_share", "all", "", ""),
    "US_imports_RE_compounds_total": ("imports", "compound_mixed", "", ""),
    "US_imports_La_compounds_from_China": ("imports", "compound_mixed", "La compounds", ""),
    "US_imports_Ce_compounds_from_China": ("imports", "compound_mixed", "Ce compounds", ""),
    "China_exports_RE_total": ("exports", "all", "exports_customs", ""),
    "China_exports_RE_total_Jan_Sep": ("exports", "all", "exports_customs", ""),
    "China_exports_RE_processed_products": ("exports", "all", "exports_processed_products", ""),
    "China_exports_REoxide": ("exports", "oxide", "", ""),
    "China_exports_RE_compounds": ("exports", "compound_mixed", "", ""),
    "China_exports_RE_metals": ("exports", "metal", "", ""),
    "China_imports_RE_products_total": ("imports", "all", "imports_RE_products", ""),
    "China_imports_REoxides_metals": ("imports", "all", "oxides and metals", ""),
    "China_imports_REO": ("imports", "all", "", ""),
    "China_imports_RE_ores_from_US": ("imports", "ore_concentrate", "", "2530.90"),
    "China_imports_RE_ores_total": ("imports", "ore_concentrate", "", "2530.90"),
    "China_imports_RE_oxide_carbonate_compounds": ("imports", "compound_mixed", "", "2846.90.19+2846.90.48+2846.90.99"),
    "China_imports_RE_compounds_metals": ("imports", "all", "compounds and metals", ""),
    "China_imports_unlisted_REO": ("imports", "compound_mixed", "", "2846.90.19"),
    "China_imports_RE_total": ("imports", "all", "", ""),
    "China_imports_RE_concentrate": ("imports", "ore_concentrate", "", ""),
    "China_imports_RE_from_Myanmar": ("imports", "compound_mixed", "", "2846.90.19+2846.90.48+2846.90.99"),
    "China_imports_REoxide_from_Myanmar": ("imports", "compound_mixed", "", "2846.90.19"),
    "China_imports_REcarbonate_from_Myanmar": ("imports", "salt", "", "2846.90.48"),
    "China_imports_HREO_from_Myanmar": ("imports", "oxide", "heavy RE oxides", ""),
    "China_imports_unlisted_REO_from_Myanmar": ("imports", "compound_mixed", "", "2846.90.19"),
    "China_imports_MREC_from_Myanmar": ("imports", "salt", "", "2846.90.48"),
    "Myanmar_Kachin_RE_to_China": ("imports", "all", "Kachin state", ""),
}
#: China's headline export totals not taken from customs releases (traders, the RE society): detail
MORE_EXPORTS_REPORTED = {115, 116}


def more_basis(text: str, unit: str) -> str:
    """Basis code of a compiled basis text: gross weight, REO/TREO, product weight, else unspecified."""
    t = text.lower()
    if unit == "share":
        return "REO" if "reo" in t else "unspecified"
    if "unclear" in t or "jsnm" in t or "n/a" in t or "not stated" in t:
        return "unspecified"
    if "gross" in t:
        return "gross_weight"
    if re.match(r"t?reo\b", t):  # "REO (separated products)", "TREO"
        return "REO"
    if "product" in t or "physical" in t or "实物" in t or "magnet" in t:
        return "product_weight"
    if "reo" in t or "oxide" in t or "酸化物" in t:
        return "REO"
    return "unspecified"


def more_partner(name: str) -> tuple[str, str]:
    """Region code and country of a more_facts region/partner name."""
    if name.startswith("RoW"):
        return "RoW", NON_CHINA
    if name == "Myanmar":
        return "RoW", "Burma"
    code = region_code(name)
    return code if code is not None else ("RoW", name)


def _more_source(i: int, facts: list[dict]) -> str:
    """Citation of a more_facts row: its source and where it was read (excerpts now in raw/more/); a row
    derived from other rows also cites theirs."""
    f = facts[i - 1]
    where = f["where_read"].replace("raw/", "raw/more/")
    parents = MORE_PARENT.get(i, ())
    if parents:
        cited = " + ".join(f"{facts[p - 1]['source']} ({first_url(facts[p - 1]['where_read']) or 'no URL'})" for p in parents)
        return f"{f['source']}; from: {cited}; {where}"
    return f"{f['source']}; {where}"


def check_more_tables(facts: list[dict]) -> None:
    """Stop if a row named in the tables above is not the row it was written for."""
    def row(i: int) -> dict:
        return facts[i - 1]
    for i, period in MORE_PERIOD.items():
        assert MORE_PERIOD_WORDS[period] in row(i)["note"], (i, period, row(i)["note"])
    for i, (_side, word) in MORE_BOUND.items():
        f = row(i)
        text = f["note"] + " " + f["basis"] + " " + f["source"]
        if word not in text:  # the wording is in the verbatim passage
            text = " ".join((REE / "raw" / "more" / Path(p.strip()).name).read_text(encoding="utf-8")
                            for p in f["where_read"].split(";") if p.strip().startswith("raw/"))
        assert word in text, (i, word)
    for i, (lo, hi) in MORE_RANGE.items():
        assert float(row(i)["value"]) / 1000 == (lo + hi) / 2 and "midpoint" in row(i)["note"], i
    for i in MORE_PARENT:
        assert row(i)["status"] == "inferred", i
    for i in MORE_DOUBLE:
        assert row(i)["status"] == "inferred", i
    assert row(127)["quantity"] == "China_exports_RE_total" and "Adamas" in row(127)["basis"]


def check_same_prints(facts: list[dict], first: list[dict]) -> None:
    """Each merged row has the year and value of the raw/facts.csv row it repeats."""
    for i, j in MORE_SAME_PRINT.items():
        f, g = facts[i - 1], first[j - 1]
        fv = float(f["value"]) / (1000.0 if f["unit"] == "t" else 1.0)
        gv = float(g["value"]) / (100.0 if g["unit"] == "%" and f["unit"] in ("share", "fraction") else 1.0)
        # the year is the same (157: Kingsnorth's "before 2013", compiled as 2012 here, as "pre-2013" there)
        assert f["year"] in g["year"] or (i, g["year"]) == (157, "pre-2013"), (i, j)
        assert abs(fv - gv) < 1e-9 * max(1.0, abs(gv)), (i, j, fv, gv)
    for i, j in MORE_RESTATED.items():
        f, g = facts[i - 1], first[j - 1]
        assert f["year"] == g["year"] and float(f["value"]) / 1000.0 == float(g["value"]), (i, j)


def classify_more(i: int, f: dict) -> tuple[str, dict] | tuple[None, str]:
    """Return (table, row) or (None, reason-to-omit) for data row ``i`` (1-based) of more_facts.csv."""
    q, status, note = f["quantity"], f["status"], f["note"]
    if status == "not found":
        return None, "marker of a figure searched for and not found (no value)"
    if i in MORE_SAME_PRINT:
        return None, (f"identical print of the figure in raw/facts.csv row {MORE_SAME_PRINT[i]} (the same article, or"
                      " a reprint of it); merged")
    if i in MORE_DOUBLE:
        return None, f"derived from figures already in the tables ({MORE_DOUBLE[i]}): not counted twice"
    if f["unit"] == "USD million" or q.endswith("_value"):
        return None, "money value (USD); the tables keep masses, shares and ratios only"
    if q.endswith("_forecast"):
        return None, "forecast made before the year: not an observation"
    if i in MORE_SCOPE:
        return None, MORE_SCOPE[i]
    if not re.fullmatch(r"\d{4}", f["year"]):
        return None, f"unparseable year '{f['year']}'"
    year = int(f["year"])
    if not YEARS[0] <= year <= YEARS[1]:
        return None, f"year outside {YEARS[0]}-{YEARS[1]} ('{f['year']}')"

    # ---- value, unit, status, bounds
    unit = {"t": "kt", "share": "share", "fraction": "share"}[f["unit"]]
    value = float(f["value"]) / (1000.0 if f["unit"] == "t" else 1.0)
    low = high = ""
    extra = [f"compiled basis: '{f['basis']}'"]
    basis = more_basis(f["basis"], unit)
    if i in MORE_BASIS:
        basis, why = MORE_BASIS[i]
        extra.append(f"basis read as {basis}: {why}")
    elif basis == "unspecified" and unit == "kt":
        extra.append("basis not stated in the source")
    st = {"read": "read", "inferred": "derived"}[status]
    if st == "derived":
        extra.append("compiled status 'inferred': derived from read figures (arithmetic in the note or source)")
    if i in MORE_RANGE:
        lo, hi = MORE_RANGE[i]
        low, high = fmt(lo), fmt(hi)
        extra.append(f"published as range {fmt(lo)}-{fmt(hi)} kt; value = midpoint (derived), low/high = published bounds")
    if i in MORE_BOUND:
        side, word = MORE_BOUND[i]
        if side == "high":
            high = fmt(value)
            extra.append(f"published as '{word}': high = published figure (upper bound), low left blank")
        else:
            low = fmt(value)
            extra.append(f"published as '{word}': low = published figure (lower bound), high left blank")
    if i in MORE_RESTATED:
        extra.append(f"the same figure is printed in another article, raw/facts.csv row {MORE_RESTATED[i]} (a separate row, as"
                     " for any two publications)")
    period = MORE_PERIOD.get(i, "")
    if period == "circa":
        extra.append("'in recent years' (undated; year = the compiled report year, period 'circa')")
    base = {"year": year, "period": period, "value": fmt(value), "low": low, "high": high, "unit": unit,
            "basis": basis, "status": st, "edition": "", "source": _more_source(i, MORE_ROWS),
            "facts_quantity": q, "facts_row": f"{MORE_FILE}:{i}"}

    def note_with(*more: str) -> str:
        return "; ".join(p for p in [note, *more, *extra] if p)

    region, country = more_partner(f["region"])

    # ---------------------------------------------------- consumption, demand
    if q in MORE_CONSUMPTION:
        more = []
        detail = ""
        eu = "catalysts" if q == "China_RE_catalyst_use" else ""
        if "confused with mine production" in f["basis"]:
            detail = "likely_mine_production"
        if country == NON_CHINA:
            more.append("demand outside China: the system's US and RoW together")
        return "china_output_consumption", out_row(
            quantity="consumption", region=region, country=country, product="all", end_use=eu, detail=detail,
            source_type="industry_statistics", note=note_with(*more), **base)
    if q == "China_share_world_consumption":
        return "china_output_consumption", out_row(
            quantity="consumption_share_of_world", region=region, country=country, product="all",
            source_type="industry_statistics", note=note_with(), **base)
    if q in MORE_OUTPUT:
        qn, prod = MORE_OUTPUT[q]
        return "china_output_consumption", out_row(
            quantity=qn, region=region, country=country, product=prod,
            source_type="industry_statistics", note=note_with(), **base)

    # ------------------------------------------------------------- end use
    if q in MORE_END_USE:
        cat = MORE_END_USE[q]
        return "end_use_shares", out_row(
            quantity="end_use_share", region=region, country=country, product="all", end_use=END_USE[cat],
            detail=cat, source_type="end_use_survey", note=note_with(), **base)

    # ----------------------------------------- unregistered, smuggling, stockpile
    if q in MORE_ESTIMATES:
        qn = MORE_ESTIMATES[q]
        stock = qn.startswith("stockpile")
        if not stock:
            base["status"] = "estimated"
        prod = "ore_concentrate" if qn == "illegal_mining_share" else "all"
        return "unregistered_estimates", out_row(
            quantity=qn, region="CN", product=prod, source_type="literature_estimate", note=note_with(), **base)

    # ---------------------------------------------------------------- trade
    if q in MORE_TRADE:
        qn, prod, detail, hs = MORE_TRADE[q]
        reg = region_code(f["region"]) or ("RoW", f["region"])
        par = more_partner(f["partner"])
        exporter = qn in ("exports", "export_destination_share") or q.startswith("Myanmar_")
        o, d = (reg, par) if exporter else (par, reg)
        country = o[1] if o[0] == "RoW" else (d[1] if d[0] == "RoW" else "")
        reporter = reg[0] if reg[0] in ("CN", "US") else "RoW"
        if q.startswith("Myanmar_"):  # Myanmar's flows as China records them ("officially imported")
            reporter = "CN"
        if i in MORE_EXPORTS_REPORTED:
            detail = "exports_reported"
        table = "mirror_trade" if {o[0], d[0]} == {"US", "CN"} else ("us_trade" if reporter == "US" else "china_trade")
        mg = f"{o[0]}->{d[0]} {prod}" if table == "mirror_trade" else ""
        return table, out_row(
            quantity=qn, origin=o[0], destination=d[0], country=country, product=prod, reporter=reporter,
            hs_code=hs, detail=detail, mirror_group=mg, source_type=MORE_SOURCE_TYPE.get(i, "customs"),
            note=note_with(), **base)

    return None, f"no table for quantity '{q}'"


MORE_ROWS: list[dict] = []


def read_more() -> list[dict]:
    """more_facts.csv rows (checked against the tables above)."""
    with MORE_FACTS.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    MORE_ROWS[:] = rows
    check_more_tables(rows)
    return rows


def facts_key(r: dict) -> tuple[int, int]:
    """Sort key of a facts_row cell: raw/facts.csv rows first, then raw/more_facts.csv rows."""
    cell = str(r["facts_row"])
    if cell.startswith(f"{MORE_FILE}:"):
        return 1, int(cell.split(":")[1])
    return 0, int(cell)


def _ident(r: dict) -> str:
    """The publication a row was printed in: its edition (USGS, compilations) or its first URL."""
    ident = r["edition"] or first_url(r["source"]) or r["source"]
    if r["edition"] and not r["edition"].startswith(("DS140", "MCS", "MYB", "EI", "BP", "WMD", "GeoPol", "Comtrade", "USITC")):
        ident = first_url(r["source"]) or r["source"]
    return ident


MERGE_KEY = ["quantity", "region", "origin", "destination", "country", "product", "year",
             "period", "reporter", "hs_code", "end_use", "detail", "value", "unit", "basis"]


def main() -> None:
    with FACTS.open(newline="", encoding="utf-8") as fh:
        facts = list(csv.DictReader(fh))
    more = read_more()
    check_same_prints(more, facts)
    tables: dict[str, list[dict]] = defaultdict(list)
    omitted = []
    for i, f in enumerate(facts):
        table, row = classify(i, f)
        if table is None:
            omitted.append({"facts_row": i + 1, "quantity": f["quantity"], "region": f["region"],
                            "year": f["year"], "value": f["value"], "reason": row})
            continue
        tables[table].append(row)

    # merge identical prints of one figure in one publication / one URL
    merged = 0
    seen_first: dict[tuple, dict] = {}
    for name, rows in tables.items():
        seen: dict[tuple, dict] = {}
        kept = []
        for r in rows:
            k = tuple(r[c] for c in MERGE_KEY) + (_ident(r),)
            if k in seen:
                first = seen[k]
                first["note"] += f"; same figure also printed in facts row {r['facts_row']} ({r['source'][:90]})"
                merged += 1
                omitted.append({"facts_row": r["facts_row"], "quantity": r["facts_quantity"],
                                "region": r["region"] or f"{r['origin']}->{r['destination']}",
                                "year": r["year"], "value": r["value"],
                                "reason": f"identical print of the figure in facts row {first['facts_row']} (same publication); merged"})
                continue
            seen[k] = r
            kept.append(r)
        tables[name] = kept
        seen_first.update({(name, *k): r for k, r in seen.items()})

    # the second compilation (raw/more_facts.csv): its prints of raw/facts.csv figures are listed in
    # MORE_SAME_PRINT (merged there, the raw/facts.csv rows stay as they were); an unlisted one stops the build
    seen_more: dict[tuple, dict] = {}
    for i, f in enumerate(more, start=1):
        table, row = classify_more(i, f)
        if table is None:
            omitted.append({"facts_row": f"{MORE_FILE}:{i}", "quantity": f["quantity"],
                            "region": f["region"] + (f" / {f['partner']}" if f["partner"] else ""),
                            "year": f["year"], "value": f["value"], "reason": row})
            continue
        k = (table, *(row[c] for c in MERGE_KEY), _ident(row))
        if k in seen_first:
            raise SystemExit(f"{MORE_FILE} row {i} repeats raw/facts.csv row {seen_first[k]['facts_row']}: "
                             "list it in MORE_SAME_PRINT")
        if k in seen_more:
            first = seen_more[k]
            first["note"] += f"; same figure also printed in {row['facts_row']} ({row['source'][:90]})"
            merged += 1
            omitted.append({"facts_row": row["facts_row"], "quantity": f["quantity"], "region": f["region"],
                            "year": f["year"], "value": f["value"],
                            "reason": f"identical print of the figure in {first['facts_row']} (same publication); merged"})
            continue
        seen_more[k] = row
        tables[table].append(row)

    for name in TABLES:
        rows = sorted(tables.get(name, []), key=lambda r: (r["quantity"], r["region"], r["origin"], r["destination"],
                                                         r["country"], r["product"], int(r["year"]), r["period"],
                                                         r["edition"], facts_key(r)))
        with (REE / f"{name}.csv").open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
        print(f"{name}.csv: {len(rows)} rows")

    def omitted_source(r: dict) -> str:
        cell = str(r["facts_row"])
        if cell.startswith(f"{MORE_FILE}:"):
            return f"data/ree/raw/{MORE_FILE} row {cell.split(':')[1]}"
        return f"data/ree/raw/facts.csv row {cell}"

    with (HERE / "omitted.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["facts_row", "quantity", "region", "year", "value", "reason", "source"],
                           lineterminator="\n")
        w.writeheader()
        w.writerows(sorted(({**r, "source": omitted_source(r)} for r in omitted), key=facts_key))
    print(f"omitted/merged: {len(omitted)} (merged duplicates: {merged})")
    print(Counter(r["reason"].split(";")[0][:60] for r in omitted))


# ------------------------------------------------------------ coverage ----
SERIES = [
    # label, table, filter (column -> value or callable)
    ("mine production CN, USGS", "mine_production", {"quantity": "mine_production", "region": "CN", "source_type": "usgs_production"}),
    ("mine production CN, any source", "mine_production", {"quantity": "mine_production", "region": "CN"}),
    ("mine production US, USGS", "mine_production", {"quantity": "mine_production", "region": "US", "source_type": "usgs_production"}),
    ("mine production RoW countries, USGS", "mine_production",
     {"quantity": "mine_production", "region": "RoW", "source_type": "usgs_production"}),
    ("mine production RoW countries, any", "mine_production", {"quantity": "mine_production", "region": "RoW"}),
    ("mine production Burma, any", "mine_production", {"quantity": "mine_production", "country": "Burma"}),
    ("mine production World, USGS", "mine_production",
     {"quantity": "mine_production", "region": "World", "source_type": "usgs_production"}),
    ("China mining quota (total)", "china_quotas", {"quantity": "mining_quota", "period": ""}),
    ("China separation quota (total)", "china_quotas", {"quantity": "smelting_separation_quota", "period": ""}),
    ("China export quota (total)", "china_quotas", {"quantity": "export_quota", "period": ""}),
    ("China exports, annual", "china_trade", {"quantity": "exports", "origin": "CN", "period": ""}),
    ("China exports, part-year", "china_trade", {"quantity": "exports", "origin": "CN", "period": lambda p: p != ""}),
    ("China imports (any partner), annual", "china_trade", {"quantity": "imports", "destination": "CN", "period": ""}),
    ("China separation output / consumption", "china_output_consumption", {"region": "CN"}),
    ("China consumption (kt)", "china_output_consumption", {"quantity": "consumption", "region": "CN"}),
    ("China share of world consumption", "china_output_consumption", {"quantity": "consumption_share_of_world"}),
    ("World consumption/demand", "china_output_consumption", {"quantity": "consumption", "region": "World"}),
    ("RoW demand (Japan, Europe, outside China)", "china_output_consumption", {"quantity": "consumption", "region": "RoW"}),
    ("partner-reported imports from China", "china_trade", {"quantity": "imports", "origin": "CN", "reporter": "RoW"}),
    ("US imports, USGS REO", "us_trade", {"quantity": "imports", "source_type": "usgs_trade"}),
    ("US exports, USGS REO", "us_trade", {"quantity": "exports", "source_type": "usgs_trade"}),
    ("US apparent consumption", "us_trade", {"quantity": "apparent_consumption"}),
    ("US net import reliance", "us_trade", {"quantity": "net_import_reliance"}),
    ("mirror US->CN (US report)", "mirror_trade", {"origin": "US", "reporter": "US"}),
    ("mirror US->CN (CN report)", "mirror_trade", {"origin": "US", "reporter": "CN"}),
    ("mirror CN->US (US report)", "mirror_trade", {"origin": "CN", "reporter": "US"}),
    ("mirror CN->US (CN report)", "mirror_trade", {"origin": "CN", "reporter": "CN"}),
    ("Lynas output (FY/quarters)", "lynas", {}),
    ("end-use shares CN", "end_use_shares", {"region": "CN"}),
    ("end-use shares US", "end_use_shares", {"region": "US"}),
    ("end-use shares World", "end_use_shares", {"region": "World"}),
    ("REO conversion factors", "conversion_factors", {}),
    ("unregistered mining/smuggling estimates", "unregistered_estimates", {}),
    ("smuggled exports (estimates)", "unregistered_estimates", {"quantity": "smuggled_exports"}),
    ("illegal share of China's mining (estimates)", "unregistered_estimates", {"quantity": "illegal_mining_share"}),
    ("China state stockpile purchases, plans", "unregistered_estimates", {"quantity": lambda q: q.startswith("stockpile")}),
]


def _load(name: str) -> list[dict]:
    with (REE / f"{name}.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _matches(r: dict, flt: dict) -> bool:
    for col, want in flt.items():
        if callable(want):
            if not want(r[col]):
                return False
        elif r[col] != want:
            return False
    return True


def coverage_markdown() -> str:
    years = list(range(YEARS[0], YEARS[1] + 1))
    head = "| family | " + " | ".join(f"{y % 100:02d}" for y in years) + " | total |"
    sep = "|---|" + "---:|" * (len(years) + 1)
    lines = [("Records with a value (status `withheld` not counted) per family and year "
             "(columns = 2000..2022, two-digit years; part-year, fiscal-year and multi-year "
             "rows are counted in the year their period ends):"), "", head, sep]
    data = {name: [r for r in _load(name) if r["status"] != "withheld"] for name in TABLES}
    for name in TABLES:
        cnt = Counter(int(r["year"]) for r in data[name])
        lines.append(f"| {name} | " + " | ".join(str(cnt.get(y, 0)) for y in years) + f" | {sum(cnt.values())} |")
    lines += ["", "Key series (same counting; 0 = no record for that year):", "", head, sep]
    for label, name, flt in SERIES:
        cnt = Counter(int(r["year"]) for r in data[name] if _matches(r, flt))
        lines.append(f"| {label} | " + " | ".join(str(cnt.get(y, 0)) for y in years) + f" | {sum(cnt.values())} |")
    return "\n".join(lines)


def write_coverage() -> None:
    readme = REE / "README.md"
    text = readme.read_text(encoding="utf-8")
    start, end = "<!-- coverage:start -->", "<!-- coverage:end -->"
    if start in text and end in text:
        pre, rest = text.split(start, 1)
        post = rest.split(end, 1)[1]
        readme.write_text(pre + start + "\n" + coverage_markdown() + "\n" + end + post, encoding="utf-8")
        print("README coverage tables updated")


if __name__ == "__main__":
    main()
    write_coverage()
