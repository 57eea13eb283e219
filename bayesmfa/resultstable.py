"""Key REE intervals as a Markdown table, written into the README between markers.

Each row shows the posterior interval, the prior's, the contraction and a
weakly-informed flag (:func:`bayesmfa.summaries.add_prior_columns`).

    python -m bayesmfa.resultstable results/ree/summary.csv README.md

The paragraph above the table (settings, wall time, diagnostics) is written
from the ``diagnostics.json`` beside ``summary.csv``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from bayesmfa.io import atomic_write
from bayesmfa.summaries import WEAKLY_INFORMED, normalise_summary, read_summary

START, END = "<!-- results:start -->", "<!-- results:end -->"

#: (label, quantity, dim filters, (year_start, year_end)) of the rows shown: a year is (y, y), a cumulative row (first, last).
KEY_ROWS: list[tuple[str, str, dict[str, str], tuple[int, int]]] = [
    ("Unregistered mining, China, cumulative (kt REO)", "unregistered_mining", {"region": "CN"}, (2000, 2022)),
    ("Unregistered mining, RoW, cumulative (kt REO)", "unregistered_mining", {"region": "RoW"}, (2000, 2022)),
    ("Unregistered mining, China, 2010 (kt REO)", "unregistered_mining", {"region": "CN"}, (2010, 2010)),
    ("Unregistered mining, China, 2022 (kt REO)", "unregistered_mining", {"region": "CN"}, (2022, 2022)),
    ("Unregistered share of world mining, 2010", "unregistered_mining_share", {"region": "World"}, (2010, 2010)),
    ("Unregistered share of world mining, 2022", "unregistered_mining_share", {"region": "World"}, (2022, 2022)),
    ("World mining, 2022 (kt REO)", "mining", {"region": "World"}, (2022, 2022)),
    ("China share of world mining, 2022", "mining_share", {"region": "CN"}, (2022, 2022)),
    ("China share of world refining, 2022", "refining_share", {"region": "CN"}, (2022, 2022)),
    ("China share of world mining, 2000-2022", "cumulative_mining_share", {"region": "CN"}, (2000, 2022)),
    ("China share of world refining, 2000-2022", "cumulative_refining_share", {"region": "CN"}, (2000, 2022)),
    ("China share of world consumption, 2000-2022", "cumulative_consumption_share", {"region": "CN"}, (2000, 2022)),
    ("China consumption, 2022 (kt REO)", "consumption_total", {"region": "CN"}, (2022, 2022)),
    ("US consumption, 2022 (kt REO)", "consumption_total", {"region": "US"}, (2022, 2022)),
    ("World consumption, 2022 (kt REO)", "consumption_total", {"region": "World"}, (2022, 2022)),
    ("World consumption of magnets, 2022 (kt REO)", "consumption", {"region": "World", "end_use": "magnets"}, (2022, 2022)),
    ("World consumption of catalysts, 2022 (kt REO)", "consumption", {"region": "World", "end_use": "catalysts"}, (2022, 2022)),
    ("China net stockpiling, cumulative (kt REO)", "stockpile_change", {"region": "CN"}, (2000, 2022)),
    ("Smuggling CN->RoW, cumulative (kt REO)", "smuggling", {"partner": "RoW"}, (2000, 2022)),
    ("Smuggling CN->US, cumulative (kt REO)", "smuggling", {"partner": "US"}, (2000, 2022)),
    ("Smuggling CN->RoW, 2022 (kt REO)", "smuggling", {"partner": "RoW"}, (2022, 2022)),
    ("Share of US imports from China, 2022", "import_share_from", {"region": "US", "partner": "CN"}, (2022, 2022)),
    ("Share of China's imports from the US, 2022", "import_share_from", {"region": "CN", "partner": "US"}, (2022, 2022)),
    ("Share of US-mined REO refined in China, 2022", "mined_refined_in_cn_share", {"region": "US"}, (2022, 2022)),
    ("P(US is a net exporter), 2022", "p_net_exporter", {"region": "US"}, (2022, 2022)),
    ("P(China is a net exporter), 2022", "p_net_exporter", {"region": "CN"}, (2022, 2022)),
]


def _fmt(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 1 else f"{x:,.1f}" if abs(x) < 100 else f"{x:,.0f}"


def _prior_cells(r: pd.Series) -> str:
    """Prior interval, contraction and weakly-informed flag cells of a row (blank where the summary lacks them)."""
    def num(col: str) -> float:
        try:
            return float(r.get(col, ""))
        except (TypeError, ValueError):
            return float("nan")

    lo, hi, c = num("prior_q05"), num("prior_q95"), num("contraction")
    prior = f"{_fmt(lo)} – {_fmt(hi)}" if np.isfinite(lo) and np.isfinite(hi) else ""
    if not np.isfinite(c):
        return f"{prior} | | |"
    flag = "**yes**" if c < WEAKLY_INFORMED else "no"
    return f"{prior} | {c:.2f} | {flag} |"


def key_results_markdown(summary: pd.DataFrame) -> str:
    """Markdown table of the key intervals from a REE ``summary.csv``.

    Rows are found by ``quantity``, their dims and the integer ``year_start``/``year_end``
    (:data:`KEY_ROWS`); a summary of the earlier layout (one ``year`` column with
    ``2000-2022`` for cumulative rows) is converted first
    (:func:`bayesmfa.summaries.normalise_summary`).

    Columns: median, 90% interval and mean of the posterior, the prior's 90%
    interval, the contraction (``1 - posterior width / prior width``) and
    whether the row is weakly informed (contraction below
    :data:`bayesmfa.summaries.WEAKLY_INFORMED`); a note under the table
    explains the last two.
    """
    summary = normalise_summary(summary) if "year" in summary.columns else summary
    lines = ["| quantity | median | 90% interval | mean | prior 90% interval | contraction | weakly informed |",
             "|---|---:|---:|---:|---:|---:|:---:|"]
    for label, quantity, filters, (start, end) in KEY_ROWS:
        rows = summary[(summary["quantity"].astype(str) == quantity) & (summary["year_start"] == start)
                       & (summary["year_end"] == end)]
        for col, val in filters.items():
            rows = rows[rows[col].astype(str) == val]
        if len(rows) != 1:
            continue
        r = rows.iloc[0]
        if quantity == "p_net_exporter":
            lines.append(f"| {label} | | | {_fmt(float(r['mean']))} | | | |")
        else:
            interval = f"{_fmt(float(r['q05']))} – {_fmt(float(r['q95']))}"
            lines.append(f"| {label} | {_fmt(float(r['q50']))} | {interval} | {_fmt(float(r['mean']))} | {_prior_cells(r)}")
    lines.append("")
    lines.append(f"Contraction = 1 − (posterior 90% interval width / prior 90% interval width), widths on the log scale "
                 "for positive quantities (linear for quantities of either sign): near 1 the records pin the quantity down "
                 f"relative to its prior, near 0 the interval restates the prior; **yes**: contraction below {WEAKLY_INFORMED:g}, "
                 "the records barely inform the quantity. A high contraction against a very wide prior still leaves a wide "
                 "posterior: read the interval itself.")
    return "\n".join(lines)


def diagnostics_paragraph(diagnostics: dict) -> str:
    """One paragraph on how the results were made and whether they passed the diagnostics."""
    st = diagnostics.get("settings", {})
    head = (
        f"Generated from `bayesmfa run ree --out results/ree` (backend {st.get('backend')}, {st.get('chains')} chains x "
        f"{st.get('draws')} draws after {st.get('tune')} tuning steps, target_accept {st.get('target_accept')}, "
        f"seed {st.get('seed')}; wall {diagnostics['wall_s']:.0f} s on this machine, bayesmfa {diagnostics.get('bayesmfa_version')}). "
    )
    figures = (
        f"max R-hat {diagnostics['max_rhat']:.3f}, min bulk ESS {diagnostics['min_ess_bulk']:.0f}, "
        f"min tail ESS {diagnostics['min_ess_tail']:.0f}, {diagnostics['divergences']} divergences over every reported quantity"
    )
    if diagnostics.get("passed"):
        return head + f"Diagnostics pass the package's bar: {figures}."
    failures = "; ".join(diagnostics.get("failures", []))
    return head + f"**Diagnostics of this run do not meet the package's bar** ({failures}): {figures}. Treat the intervals as provisional."


def update_readme(summary_csv: str | Path, readme: str | Path, header: str | None = None) -> None:
    """Replace the text between the results markers of ``readme`` by the key-interval table.

    ``header`` defaults to :func:`diagnostics_paragraph` of the run's ``diagnostics.json``.
    """
    if header is None:
        diag_path = Path(summary_csv).with_name("diagnostics.json")
        header = diagnostics_paragraph(json.loads(diag_path.read_text(encoding="utf-8"))) + "\n\n" if diag_path.exists() else ""
    summary = read_summary(summary_csv)
    text = Path(readme).read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise ValueError(f"{readme} has no {START} ... {END} markers")
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    block = f"{START}\n{header}{key_results_markdown(summary)}\n{END}"
    atomic_write(readme, lambda tmp: tmp.write_text(before + block + after, encoding="utf-8"))


if __name__ == "__main__":
    update_readme(sys.argv[1], sys.argv[2], sys.argv[3] + "\n\n" if len(sys.argv) > 3 else None)
