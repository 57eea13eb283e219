"""A case's key intervals as a Markdown table, written into the README between markers.

Each row shows the posterior interval, the prior's, the contraction and a
weakly-informed flag (:func:`bayesmfa.analysis.summaries.add_prior_columns`).

    python -m bayesmfa.drivers.resultstable results/ree/summary.csv README.md

The rows are the case's :attr:`~bayesmfa.cases.contract.Case.key_rows` (the case
named in the ``diagnostics.json`` beside ``summary.csv``). The paragraph above
the table (settings, wall time, diagnostics) is written from that file too.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayesmfa.analysis.derived import summary_frame
from bayesmfa.analysis.summaries import WEAKLY_INFORMED, normalise_summary, read_summary
from bayesmfa.cases import get_case
from bayesmfa.cases.contract import KeyRow
from bayesmfa.core.outputs import atomic_write

START, END = "<!-- results:start -->", "<!-- results:end -->"

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


def key_results_markdown(summary: pd.DataFrame | xr.Dataset, rows: Sequence[KeyRow]) -> str:
    """Markdown table of the key intervals of a ``summary.csv`` (or of the derived quantities, :mod:`bayesmfa.analysis.derived`).

    Rows are found by ``quantity``, their dims and the integer ``year_start``/``year_end``
    (``rows``, a case's key rows; a row the summary lacks is left out); a summary of the earlier layout (one ``year`` column with
    ``2000-2022`` for cumulative rows) is converted first
    (:func:`bayesmfa.analysis.summaries.normalise_summary`).

    Columns: median, 90% interval and mean of the posterior, the prior's 90%
    interval, the contraction (``1 - posterior width / prior width``) and
    whether the row is weakly informed (contraction below
    :data:`bayesmfa.analysis.summaries.WEAKLY_INFORMED`); a note under the table
    explains the last two.
    """
    summary = summary_frame(summary) if isinstance(summary, xr.Dataset) else summary
    summary = normalise_summary(summary) if "year" in summary.columns else summary
    lines = ["| quantity | median | 90% interval | mean | prior 90% interval | contraction | weakly informed |",
             "|---|---:|---:|---:|---:|---:|:---:|"]
    for key in rows:
        start, end = key.years
        match = summary[(summary["quantity"].astype(str) == key.quantity) & (summary["year_start"] == start)
                        & (summary["year_end"] == end)]
        for col, val in key.filters.items():
            match = match[match[col].astype(str) == val]
        if len(match) != 1:
            continue
        r = match.iloc[0]
        label = key.label
        if key.mean_only:
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


def _depth_text(low: int | None, high: int | None) -> str:
    """The NUTS tree depths a run set, as a clause (empty when it set none)."""
    if low is not None and low == high:
        return f", NUTS tree depth fixed at {low} ({2 ** low - 1} leapfrog steps per draw)"
    if low is not None or high is not None:
        return f", NUTS tree depth {low or 0} to {high or 10}"
    return ""


def diagnostics_paragraph(diagnostics: dict) -> str:
    """One paragraph on how the results were made and whether they passed the diagnostics."""
    st = diagnostics.get("settings", {})
    case = diagnostics.get("case") or "CASE"
    head = (
        f"Generated from `bayesmfa run {case} --out results/{case}` (backend {st.get('backend')}, {st.get('chains')} chains x "
        f"{st.get('draws')} draws after {st.get('tune')} tuning steps, target_accept {st.get('target_accept')}"
        f"{_depth_text(st.get('min_tree_depth'), st.get('max_tree_depth'))}, seed {st.get('seed')}; "
        f"wall {diagnostics['wall_s']:.0f} s on this machine, bayesmfa {diagnostics.get('bayesmfa_version')}). "
    )
    figures = (
        f"max R-hat {diagnostics['max_rhat']:.3f}, min bulk ESS {diagnostics['min_ess_bulk']:.0f}, "
        f"min tail ESS {diagnostics['min_ess_tail']:.0f}, {diagnostics['divergences']} divergences over every reported quantity"
    )
    if diagnostics.get("passed"):
        return head + f"Diagnostics pass the package's bar: {figures}."
    failures = "; ".join(diagnostics.get("failures", []))
    return head + f"**Diagnostics of this run do not meet the package's bar** ({failures}): {figures}. Treat the intervals as provisional."


def update_readme(summary_csv: str | Path, readme: str | Path, header: str | None = None, *,
                  rows: Sequence[KeyRow] | None = None) -> None:
    """Replace the text between the results markers of ``readme`` by the key-interval table.

    ``header`` defaults to :func:`diagnostics_paragraph` of the run's ``diagnostics.json``;
    ``rows`` to the key rows of the case that file names.

    Raises
    ------
    ValueError
        When no rows are given and ``diagnostics.json`` names no case, or when ``readme``
        has no results markers.
    """
    diag_path = Path(summary_csv).with_name("diagnostics.json")
    diagnostics = json.loads(diag_path.read_text(encoding="utf-8")) if diag_path.exists() else {}
    if header is None:
        header = diagnostics_paragraph(diagnostics) + "\n\n" if diagnostics else ""
    if rows is None:
        if not diagnostics.get("case"):
            raise ValueError(f"{diag_path}: names no case, so the key rows are unknown (pass rows=)")
        rows = get_case(diagnostics["case"]).key_rows
    summary = read_summary(summary_csv)
    text = Path(readme).read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise ValueError(f"{readme} has no {START} ... {END} markers")
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    block = f"{START}\n{header}{key_results_markdown(summary, rows)}\n{END}"
    atomic_write(readme, lambda tmp: tmp.write_text(before + block + after, encoding="utf-8"))


if __name__ == "__main__":
    update_readme(sys.argv[1], sys.argv[2], sys.argv[3] + "\n\n" if len(sys.argv) > 3 else None)
