"""A self-contained HTML report of a result folder (``bayesmfa run ... --out DIR``).

The report embeds its PNG figures as base64 and the interactive Sankey with
plotly.js inlined, so it opens offline as a single file. Anything missing
(a quantity, the posterior, plotly) skips the matching part with a note.
"""

from __future__ import annotations

import base64
import html
import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from bayesmfa.analysis.derived import read_derived, summary_dataset
from bayesmfa.analysis.summaries import (
    PERIOD_COLUMNS,
    WEAKLY_INFORMED,
    annual,
    cumulative,
    normalise_summary,
    period_label,
    read_summary,
)
from bayesmfa.core.graph import Graph
from bayesmfa.core.outputs import atomic_write
from bayesmfa.reporting import plots

MAX_TABLE_ROWS = 400
#: Rows of the key-interval table at most when the case names no key quantities (``key_quantities`` in its labels.yaml).
MAX_KEY_ROWS = 60

_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1250px;
       color: #222; line-height: 1.4; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; font-size: .8em; margin: .5em 0 1em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f3f3f3; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .9em; color: #555; }
.pass { color: #1a7f37; font-weight: bold; } .fail { color: #c62828; font-weight: bold; }
.banner { border-radius: 4px; padding: .5em 1em; margin: 1em 0; border: 1px solid; }
.banner ul { margin: .3em 0; } .banner.pass { background: #e8f5e9; border-color: #1a7f37; color: #14532d; }
.banner.fail { background: #fdecea; border-color: #c62828; color: #7f1d1d; }
.banner.unknown { background: #f3f3f3; border-color: #999; }
.folder { color: #666; font-size: .85em; }
.scroll { overflow-x: auto; } td.num { white-space: nowrap; }
.notes li { color: #8a5a00; }
.informed { background: #fff8e1; border-left: 4px solid #e0a800; padding: .4em .8em; }
"""


@dataclass
class _Report:
    """What the report collects before it is rendered."""

    title: str
    labels: plots.Labels = field(default_factory=plots.Labels)
    figures: list[tuple[str, str, str]] = field(default_factory=list)  # (name, caption, base64 png)
    sankeys: list[tuple[str, str]] = field(default_factory=list)  # (caption, html div)
    notes: list[str] = field(default_factory=list)
    informed: str = ""  # the sentence on weakly informed quantities
    contraction: pd.DataFrame | None = None  # per quantity: rows, contraction, weakly informed rows
    checks: dict[str, pd.DataFrame] = field(default_factory=dict)  # record checks: misfits, families, conflicts


# ---------------------------------------------------------------------------
# reading the result folder
# ---------------------------------------------------------------------------


def _read_derived(result_dir: Path, notes: list[str]) -> xr.Dataset:
    """The derived quantities: ``derived.nc``, else (a folder written before it) ``summary.csv`` converted
    (:func:`bayesmfa.analysis.derived.summary_dataset`; an earlier layout of it too). Empty, with a note, when neither can be read."""
    nc, csv = result_dir / "derived.nc", result_dir / "summary.csv"
    if nc.is_file():
        try:
            return read_derived(nc)
        except (OSError, ValueError) as exc:
            notes.append(f"derived.nc could not be read ({exc}): summary.csv used instead")
    if not csv.is_file():
        notes.append("derived.nc and summary.csv not found: no figures or key intervals from the derived quantities")
        return xr.Dataset()
    try:
        table = read_summary(csv)
        if set(PERIOD_COLUMNS) <= set(table.columns):
            undated = table[list(PERIOD_COLUMNS)].isna().any(axis=1)
            if undated.any():  # an earlier layout's rows with no year (sampler variables): said, then left out
                names = ", ".join(dict.fromkeys(table.loc[undated, "quantity"].astype(str)))
                notes.append(f"summary.csv: {int(undated.sum())} row(s) without a year or period left out ({names})")
                table = table[~undated]
        return summary_dataset(table)
    except ValueError as exc:
        notes.append(f"summary.csv ignored: {exc}")
        return xr.Dataset()


def _read_diagnostics(path: Path, notes: list[str]) -> dict[str, Any]:
    if not path.is_file():
        notes.append("diagnostics.json not found")
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        notes.append(f"diagnostics.json is not valid JSON ({exc})")
        return {}
    return doc if isinstance(doc, dict) else {"value": doc}


def _read_posterior(path: Path, notes: list[str]) -> az.InferenceData | None:
    """The fit in ``posterior.nc``; a missing file is a note, a damaged one an error.

    Raises
    ------
    ResultFileError
        When the file exists but cannot be read (a report without it would hide the damage).
    """
    from bayesmfa.inference.io import load

    if not path.exists():
        notes.append("posterior.nc not found: no Sankey or per-draw trade figures")
        return None
    return load(path)


def graph_from_posterior(idata: az.InferenceData) -> Graph | None:
    """The graph of a fit, rebuilt from the system YAML stored in the posterior's attrs (``None`` if absent).

    The stored text is the system file as the fit read it, so what it marks ``unregistered``
    (:attr:`bayesmfa.core.system.FlowType.unregistered`) comes back with it. A file written before
    that flag existed marks no flow: its Sankey draws no link red.
    """
    import yaml

    from bayesmfa.core.system import system_from_dict

    text = idata.posterior.attrs.get("system_yaml")
    if not text:
        return None
    return Graph(system_from_dict(yaml.safe_load(text), file="posterior.nc:system_yaml", source_text=text))


# ---------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------


def _png(fig: Figure) -> bytes:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


FigureSpec = plots.FigureSpec
#: A case's figure list: ``(summary, labels) -> [(name, caption, quantities needed, builder), ...]``.
FigureList = Callable[[pd.DataFrame, plots.Labels], list[FigureSpec]]


def _triangle_from_posterior(idata: az.InferenceData, prob: float, unit: str = "") -> FigureSpec | None:
    names = [str(n) for n, da in idata.posterior.data_vars.items()
             if str(n).startswith("flow_") and "origin" in da.dims and "destination" in da.dims]
    if not names:
        return None
    regions = [str(r) for r in idata.posterior["origin"].values]
    if len(regions) != 3:
        return None
    year = int(idata.posterior["year"].values[-1])
    return (f"trade_triangle_{year}", f"Net trade between regions, {year} (all traded flow types)", (),
            lambda: plots.trade_triangle(plots.net_pair_flows(idata, names, prob, year=year), year, unit=unit))


def _draw(report: _Report, specs: list[FigureSpec], summary: xr.Dataset, fig_dir: Path) -> int:
    drawn = 0
    for name, caption, needs, build in specs:
        missing = [q for q in needs if not plots.has_quantity(summary, q)]
        if missing:
            report.notes.append(f"figure '{caption}' skipped: {', '.join(missing)} not in the summary")
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fig = build()
                data = _png(fig)
        except (ValueError, KeyError, TypeError) as exc:
            report.notes.append(f"figure '{caption}' skipped: {exc}")
            continue
        atomic_write(fig_dir / f"{name}.png", lambda tmp, d=data: tmp.write_bytes(d))
        report.figures.append((name, caption, base64.b64encode(data).decode("ascii")))
        drawn += 1
    return drawn


def _sankeys(report: _Report, idata: az.InferenceData, graph: Graph, prob: float) -> None:
    try:
        import plotly  # noqa: F401
    except ImportError:
        report.notes.append("Sankey skipped: plotly is not installed (pip install bayesmfa[plots])")
        return
    years = list(graph.system.years)
    selections: list[tuple[int | tuple[int, int] | None, str]] = [(years[-1], f"Flows in {years[-1]}")]
    if len(years) > 1:
        selections.append((None, f"Flows summed over {years[0]}-{years[-1]} (per draw, then quantiles)"))
    for year, caption in selections:
        try:
            fig = plots.sankey(idata, graph, year, prob, labels=report.labels)
        except (ValueError, KeyError) as exc:
            report.notes.append(f"Sankey '{caption}' skipped: {exc}")
            continue
        div = fig.to_html(full_html=False, include_plotlyjs=not report.sankeys, default_width="100%")
        report.sankeys.append((caption, div))


PRIOR_POSTERIOR = ("prior_posterior", "Prior (grey) and posterior (coloured) intervals of key quantities: how far the records moved them")


def _prior_posterior_figure(report: _Report, derived: xr.Dataset, table: pd.DataFrame, fig_dir: Path) -> None:
    """The case's ``figures/prior_posterior.png`` when the run wrote one, else prior vs posterior of the process inputs
    (``table``: the derived quantities' rows)."""
    name, caption = PRIOR_POSTERIOR
    path = fig_dir / f"{name}.png"
    if path.is_file():
        data = path.read_bytes()
    else:
        if not len(_contraction_values(table)):
            return
        panels = plots.default_panels(derived, labels=report.labels)
        if not panels:
            return
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                data = _png(plots.prior_posterior_bands(derived, panels))
        except (ValueError, KeyError, TypeError) as exc:
            report.notes.append(f"figure '{caption}' skipped: {exc}")
            return
        atomic_write(path, lambda tmp: tmp.write_bytes(data))
    report.figures.append((name, caption, base64.b64encode(data).decode("ascii")))


# ---------------------------------------------------------------------------
# how far the records moved each quantity
# ---------------------------------------------------------------------------


def _contraction_values(summary: pd.DataFrame) -> pd.Series:
    """The ``contraction`` column as numbers, rows where it is defined (empty when the summary has none)."""
    if "contraction" not in summary.columns:
        return pd.Series(dtype=float)
    return pd.to_numeric(summary["contraction"], errors="coerce").dropna()


def weakly_informed_sentence(summary: plots.SummaryData, threshold: float = WEAKLY_INFORMED) -> str:
    """``"N of M reported quantities are barely informed by the records (contraction < 0.3): ..."``.

    Parameters
    ----------
    summary : Dataset or DataFrame
        Derived quantities (or their summary table) with a ``contraction`` stat; each row with a defined
        contraction (a quantity at one set of coords and period) counts once.
    threshold : float
        Contraction below which a row is barely informed.

    Returns
    -------
    str
        The sentence, naming each quantity with its count of such rows; empty
        when the summary has no contraction.
    """
    summary = plots.rows_of(summary)
    c = _contraction_values(summary)
    if not len(c):
        return ""
    weak = c < threshold
    qty = summary.loc[c.index, "quantity"].astype(str)
    head = f"{int(weak.sum())} of {len(c)} reported quantities are barely informed by the records (contraction < {threshold:g})"
    if not weak.any():
        return head + "."
    counts = pd.DataFrame({"q": qty, "weak": weak}).groupby("q", sort=False)["weak"].agg(["sum", "size"])
    counts = counts[counts["sum"] > 0].sort_values("sum", ascending=False, kind="stable")
    return head + ": " + "; ".join(f"{q} ({int(r['sum'])} of {int(r['size'])} rows)" for q, r in counts.iterrows()) + "."


def contraction_table(summary: plots.SummaryData, threshold: float = WEAKLY_INFORMED) -> pd.DataFrame:
    """Per quantity of the derived quantities (or a summary table): rows with a contraction, its median and range, and
    the rows below ``threshold``.

    Returns
    -------
    DataFrame
        Columns ``quantity, rows, median_contraction, min_contraction,
        max_contraction, weakly_informed_rows``, least informed first; empty
        when the summary has no contraction.
    """
    summary = plots.rows_of(summary)
    c = _contraction_values(summary)
    cols = ["quantity", "rows", "median_contraction", "min_contraction", "max_contraction", "weakly_informed_rows"]
    if not len(c):
        return pd.DataFrame(columns=cols)
    df = pd.DataFrame({"quantity": summary.loc[c.index, "quantity"].astype(str), "c": c, "weak": c < threshold})
    out = df.groupby("quantity", sort=False).agg(rows=("c", "size"), median_contraction=("c", "median"),
                                                 min_contraction=("c", "min"), max_contraction=("c", "max"),
                                                 weakly_informed_rows=("weak", "sum")).reset_index()
    return out.sort_values("median_contraction", kind="stable")[cols].reset_index(drop=True)


# ---------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------


def key_intervals(summary: plots.SummaryData, quantities: Sequence[str] | None = None, *,
                  max_rows: int = MAX_KEY_ROWS) -> pd.DataFrame:
    """Rows of the key quantities: their cumulative rows where present, else their last year.

    Parameters
    ----------
    summary : Dataset or DataFrame
        Derived quantities (:mod:`bayesmfa.analysis.derived`) or a tidy summary table (``year_start``/``year_end``, or an
        in-memory ``year``).
    quantities : sequence of str, optional
        Quantities to show, in this order (a case's ``key_quantities`` in its
        ``labels.yaml``, see :class:`bayesmfa.reporting.plots.Labels`); those absent from
        the summary are skipped. ``None``, or none of them present: every
        quantity of the summary in its order (not sampler variables ending in
        ``__``), at most ``max_rows`` rows.
    max_rows : int
        The cap on rows when the quantities are not named; ``attrs["rows_total"]``
        of the result says how many rows there were before it.

    Returns
    -------
    DataFrame
        ``quantity``, the dim columns that carry values, ``period`` (``2010`` or
        ``2000-2022``, for reading only), ``unit`` (when the summary has one) and
        the statistics (with the prior's interval, ``contraction`` and
        ``weakly_informed`` when the summary has them).
    """
    summary = plots.rows_of(summary)
    if summary.empty:
        return summary
    if "year" in summary.columns and not set(PERIOD_COLUMNS) <= set(summary.columns):
        summary = normalise_summary(summary)
    qcol = summary["quantity"].astype(str)
    present = [q for q in quantities or () if (qcol == q).any()]
    capped = not present
    if capped:  # no list, or none of it here: every quantity (not sampler variables such as input_step_log__)
        present = [q for q in dict.fromkeys(qcol) if not q.endswith("__")]
    parts = []
    for q in present:
        rows = summary[qcol == q]
        spans = cumulative(rows)
        if len(spans):
            rows = spans
        else:
            yearly = annual(rows)
            rows = yearly[yearly["year"] == yearly["year"].max()].drop(columns="year")
        parts.append(rows)
    out = pd.concat(parts, ignore_index=True) if parts else summary.iloc[0:0]
    total = len(out)
    if capped:
        out = out.head(max_rows)
    if set(PERIOD_COLUMNS) <= set(out.columns) and len(out):
        out = out.assign(period=[period_label(r) for _, r in out[list(PERIOD_COLUMNS)].iterrows()])
    stats = [c for c in out.columns if c in ("mean", "sd", "q50") or (isinstance(c, str) and c[:1] == "q" and c[1:].isdigit())]
    lo, hi = plots.quantile_columns(out) if len(out) else ("q05", "q95")
    stats = [c for c in ("mean", "sd", lo, "q50", hi) if c in stats]
    stats += [c for c in (f"prior_{lo}", "prior_q50", f"prior_{hi}", "contraction", "weakly_informed") if c in out.columns]
    dims = [c for c in plots.dim_columns(out) if c not in (*stats, "period")]
    cols = ["quantity", *dims, *(["period"] if "period" in out.columns else []), *(["unit"] if "unit" in out.columns else []), *stats]
    out = out[cols]
    out.attrs["rows_total"] = total
    return out


def _display_key(key: pd.DataFrame, labels: plots.Labels) -> pd.DataFrame:
    """The key-interval table as printed: labels for codes (``summary.md`` maps them back), the dims in one ``where`` column,
    the median and its interval first, no ``sd`` or prior median, ``q50`` as ``median``."""
    out = key.drop(columns=[c for c in ("sd", "prior_q50") if c in key.columns])
    if "quantity" in out.columns:
        out["quantity"] = [labels("quantity", q) for q in out["quantity"].astype(str)]
    dims = [c for c in out.columns if c not in ("quantity", "period", "unit") and not plots.is_stat_column(c)]
    if dims:  # one compact column: "China, partner: United States, Oxides"
        def where(row: pd.Series) -> str:
            parts = []
            for col in dims:
                value = "" if pd.isna(row[col]) else str(row[col]).strip()
                if value:
                    text = labels(plots.label_kind(col), value)
                    parts.append(f"partner: {text}" if col == "partner" else text)
            return ", ".join(parts)

        out.insert(out.columns.get_loc(dims[0]), "where", [where(r) for _, r in out.iterrows()])
        out = out.drop(columns=dims)
    if "period" in out.columns:  # 2000-2022 on one line
        out["period"] = out["period"].astype(str).str.replace("-", "\u2011")
    if "unit" in out.columns:  # a probability is the mean of a 0/1 indicator: its quantiles (0 or 1) say nothing
        prob_rows = out["unit"].astype(str).str.startswith("probability")
        stats = [c for c in out.columns if plots.is_stat_column(c) and c not in ("mean", "weakly_informed")]
        out[stats] = out[stats].astype(object)
        out.loc[prob_rows, stats] = None
    if "q50" in out.columns:  # the median first, then its interval, then the mean
        lo, hi = plots.quantile_columns(out)
        rest = [c for c in out.columns if c not in ("q50", lo, hi, "mean")]
        at = rest.index("unit") + 1 if "unit" in rest else len([c for c in rest if not plots.is_stat_column(c)])
        order = [*rest[:at], "q50", lo, hi, *(["mean"] if "mean" in out.columns else []), *rest[at:]]
        out = out[order]
    return out.rename(columns={"q50": "median", "weakly_informed": "weak"})


def _cell(value: Any) -> tuple[str, bool]:
    """HTML-escaped text of a table cell and whether it is a number."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "", False
    if isinstance(value, bool | np.bool_):
        return str(bool(value)), False
    if isinstance(value, int | np.integer):
        return str(value), True
    if isinstance(value, float | np.floating):
        return html.escape(plots.format_number(float(value))), True
    return html.escape(str(value)), False


def _table(df: pd.DataFrame, max_rows: int = MAX_TABLE_ROWS, css_class: str = "") -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = []
    for row in df.head(max_rows).itertuples(index=False):
        cells = []
        for v in row:
            text, num = _cell(v)
            cells.append(f'<td class="num">{text}</td>' if num else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = f"<p>… {len(df) - max_rows} more rows not shown.</p>" if len(df) > max_rows else ""
    cls = f' class="{css_class}"' if css_class else ""
    return f'<div class="scroll"><table{cls}><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>{more}'


def _flatten(doc: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in doc.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.extend(_flatten(v, f"{key}."))
        elif isinstance(v, list):
            out.append((key, "; ".join(str(x) for x in v) if v else "none"))
        else:
            out.append((key, v))
    return out


def _method_banner(diag: dict[str, Any]) -> list[str]:
    """A warning at the top when the fit is an approximation (``--method laplace``), not NUTS."""
    settings = diag.get("settings") or {}
    if settings.get("method", "nuts") == "nuts":
        return []
    k = diag.get("pareto_k")
    verdict = "usable (importance-corrected)" if k is not None and k <= 0.7 else "not to be trusted: a rough picture only"
    return [f'<p class="fail">Approximate fit ({html.escape(str(settings["method"]))}, Pareto k '
            f'{"n/a" if k is None else f"{k:.2f}"}: {verdict}). For iterating on priors and records; publish a NUTS fit.</p>']


def _exact(value: Any, digits: int = 5) -> str:
    """A diagnostic number printed exactly enough to judge it (R-hat 1.0044, not 1.00)."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return f"{float(value):.{digits}g}" if abs(value) < 1e4 else f"{float(value):,.0f}"
    return str(value)


def diagnostics_banner(diag: dict[str, Any]) -> str:
    """The verdict of the convergence checks, for the top of the report, with the exact numbers and thresholds.

    Parameters
    ----------
    diag : dict
        ``diagnostics.json`` of a run (``max_rhat, min_ess_bulk, min_ess_tail,
        divergences``, ``passed``, ``failures``, ``thresholds``).

    Returns
    -------
    str
        A ``<div class="banner pass|fail|unknown">`` naming each check and its value.
    """
    if not diag:
        return '<div class="banner unknown" id="verdict"><strong>Diagnostics: none found</strong> (no diagnostics.json); ' \
               "the convergence of this fit is unknown.</div>"
    th = diag.get("thresholds") or {}
    checks = [
        ("max R-hat", diag.get("max_rhat"), f"≤ {_exact(th['max_rhat'])}" if "max_rhat" in th else "", diag.get("worst_rhat")),
        ("min bulk ESS", diag.get("min_ess_bulk"), f"≥ {_exact(th['min_ess_bulk'])}" if "min_ess_bulk" in th else "",
         diag.get("worst_ess")),
        ("min tail ESS", diag.get("min_ess_tail"), f"≥ {_exact(th['min_ess_tail'])}" if "min_ess_tail" in th else "", None),
        ("divergences", diag.get("divergences"), f"≤ {_exact(th['max_divergences'])}" if "max_divergences" in th else "", None),
    ]
    items = []
    for name, value, bound, worst in checks:
        if value is None:
            continue
        extra = f" (required {bound})" if bound else ""
        where = f", worst: <code>{html.escape(str(worst))}</code>" if worst else ""
        items.append(f"<li>{name} <strong>{html.escape(_exact(value))}</strong>{html.escape(extra)}{where}</li>")
    passed = diag.get("passed")
    verdict = {True: ("pass", "Diagnostics passed"), False: ("fail", "Diagnostics FAILED: do not publish these intervals")}.get(
        passed, ("unknown", "Diagnostics: no verdict recorded"))
    fails = "".join(f"<li>{html.escape(str(f))}</li>" for f in diag.get("failures") or [])
    fails_html = f'<p>Failed checks:</p><ul class="failures">{fails}</ul>' if fails else ""
    return (f'<div class="banner {verdict[0]}" id="verdict"><strong>{verdict[1]}</strong> '
            f'(over every reported quantity; <a href="#diagnostics">details</a>)<ul>{"".join(items)}</ul>{fails_html}</div>')


def _diagnostics_html(diag: dict[str, Any]) -> str:
    if not diag:
        return "<p>No diagnostics.</p>"
    rows = pd.DataFrame([(k, _exact(v)) for k, v in _flatten({k: v for k, v in diag.items() if k != "failures"})],
                        columns=["item", "value"])
    return _table(rows, css_class="diagnostics")


def _intro_html(labels: plots.Labels, prob: float) -> list[str]:
    """Methods, data sources and caveats of the case (from its label table), and how to read the numbers."""
    methods = labels.methods or ("Every flow of the system is a latent variable; mass balance holds in every posterior draw; "
                                 "records observe sums of flows with learned noise.")
    parts = ['<h2 id="methods">Methods</h2>',
             f"<p>{html.escape(methods)} Numbers are posterior medians with {prob:.0%} equal-tailed intervals; every "
             "aggregate (sums over years, regions or flow types, shares of sums) is computed per draw before its quantiles "
             "are taken. Units are given in each table and on every figure.</p>"]
    if labels.sources:
        parts.append('<h2 id="sources">Data sources</h2><ul class="sources">'
                     + "".join(f"<li>{html.escape(x)}</li>" for x in labels.sources) + "</ul>")
    if labels.caveats:
        parts.append('<h2 id="caveats">Caveats</h2><ul class="caveats">'
                     + "".join(f"<li>{html.escape(x)}</li>" for x in labels.caveats) + "</ul>")
    return parts


# ---------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------


def _render(report: _Report, key: pd.DataFrame, diag: dict[str, Any], coverage: pd.DataFrame | None, prob: float,
            folder: str = "") -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(report.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(report.title)}</h1>",
        *_method_banner(diag),
        diagnostics_banner(diag),
    ]
    if folder:
        parts.append(f'<p class="folder">Result folder <code>{html.escape(folder)}</code>.</p>')
    if report.informed:
        parts.append(f'<p class="informed">{html.escape(report.informed)} Contraction = 1 - posterior {prob:.0%} interval width / '
                     "prior width, on the log scale for positive quantities: near 1 the records pin a quantity down, "
                     "near 0 its interval mostly restates the prior "
                     '(<a href="#contraction">per quantity</a>).</p>')
    parts.extend(_intro_html(report.labels, prob))
    if report.notes:
        parts.append('<h2 id="notes">Notes</h2><ul class="notes">' + "".join(f"<li>{html.escape(n)}</li>" for n in report.notes)
                     + "</ul>")
    parts.append('<h2 id="key">Key intervals</h2>')
    if len(key):
        lo, hi = plots.quantile_columns(key)
        parts.append(f"<p>Cumulative rows (period <code>start-end</code>: totals, or shares of totals, over those years) where "
                     f"a quantity has them, else its last year. <code>median</code>, <code>{lo}</code> and <code>{hi}</code> "
                     f"bound the posterior {prob:.0%} interval, <code>prior_*</code> the prior's; the unit of each row is in "
                     "<code>unit</code>. Every quantity is described in <code>summary.md</code>.</p>")
        parts.append(_table(_display_key(key, report.labels), css_class="key-intervals"))
        total = int(key.attrs.get("rows_total", len(key)))
        if total > len(key):
            parts.append(f"<p>The first {len(key)} of {total} rows: the case names no key quantities (<code>key_quantities</code> "
                         "in its <code>labels.yaml</code>); every row is in <code>summary.csv</code>.</p>")
    else:
        parts.append("<p>No key quantities in the summary.</p>")
    if report.contraction is not None and len(report.contraction):
        parts.append('<h2 id="contraction">How far the records moved each quantity</h2>')
        parts.append(f"<p>Contraction of each summary row (1 - posterior / prior {prob:.0%} interval width; no unit), by quantity, "
                     f"least informed first; rows below {WEAKLY_INFORMED:g} are flagged <code>weakly_informed</code> in "
                     "summary.csv.</p>")
        parts.append(_table(report.contraction, css_class="contraction"))
    parts.extend(_checks_html(report.checks))
    if report.sankeys:
        parts.append('<h2 id="sankey">System flows</h2>')
        for caption, div in report.sankeys:
            parts.append(f'<figure class="sankey">{div}<figcaption>{html.escape(caption)}; link width = posterior median, '
                         f"hover for the {prob:.0%} interval; colour = product (pale: within a region, strong: trade between "
                         "regions), red = unregistered flows.</figcaption></figure>")
    if report.figures:
        parts.append('<h2 id="figures">Figures</h2>')
        for name, caption, b64 in report.figures:
            parts.append(f'<figure id="fig-{html.escape(name)}"><img alt="{html.escape(caption)}" src="data:image/png;base64,{b64}">'
                         f"<figcaption>{html.escape(caption)} (<code>figures/{html.escape(name)}.png</code>)</figcaption></figure>")
    parts.append('<h2 id="diagnostics">Diagnostics</h2>')
    parts.append(_diagnostics_html(diag))
    if coverage is not None:
        parts.append('<h2 id="coverage">Data coverage</h2>')
        parts.append(_table(coverage, css_class="coverage"))
    parts.append("</body></html>")
    return "\n".join(parts)


#: Columns of the misfit table in the report
MISFIT_COLUMNS = ["record_id", "file", "row", "family", "quantity", "region", "origin", "destination", "end_use", "year", "bound",
                  "observed", "model_q05", "model_q50", "model_q95", "z"]


def read_record_checks(result_dir: Path) -> dict[str, pd.DataFrame]:
    """The record checks a run wrote (``record_checks.csv``, ``record_families.csv``, ``record_conflicts.csv``), if any."""
    out = {}
    for key, name in (("records", "record_checks.csv"), ("families", "record_families.csv"), ("conflicts", "record_conflicts.csv")):
        if (result_dir / name).is_file():
            out[key] = _numbers_as_numbers(pd.read_csv(result_dir / name, keep_default_na=False, dtype=str))
    return out


def _numbers_as_numbers(df: pd.DataFrame) -> pd.DataFrame:
    """Columns whose every non-blank cell is a number become floats (printed like the figures: 0.515, not 0.5152279940180373);
    identifiers (``row``, ``year``, ``record_id``, ...) stay text."""
    out = df.copy()
    for col in out.columns:
        if col in ("row", "year", "record_id", "record_id_high", "record_id_low", "file", "misfit", "flag"):
            continue
        text = out[col].astype(str).str.strip()
        num = pd.to_numeric(text, errors="coerce")
        if (num.notna() | (text == "")).all() and num.notna().any():
            whole = num.notna().all() and bool((num == num.round()).all()) and bool((num.abs() < 2**53).all())
            out[col] = num.astype(int) if whole else num
    return out


def _checks_html(checks: dict[str, pd.DataFrame]) -> list[str]:
    """Sections naming the records the fit cannot reproduce and the records that conflict."""
    if "records" not in checks:
        return []
    rec = checks["records"]
    z = pd.to_numeric(rec["z"], errors="coerce")
    bad = rec[rec["misfit"].astype(str) == "True"].assign(_abs=z.abs()).sort_values("_abs", ascending=False)
    parts = ['<h2 id="misfits">Records the fit cannot reproduce</h2>',
             f"<p>{len(bad)} of {len(rec)} records lie more than 3 predictive sd from the fit (|z| &gt; 3; for caps and floors: "
             "the fit on the wrong side by more than 3 sd). z = (log record - mean replicated) / sd replicated, from posterior "
             "draws with fresh record noise. All records: <code>record_checks.csv</code>.</p>"]
    if len(bad):
        if "file" in bad.columns:  # the table's name; record_checks.csv keeps the full path
            bad = bad.assign(file=[Path(str(f)).name if str(f) else "" for f in bad["file"]])
        parts.append(_table(bad[[c for c in MISFIT_COLUMNS if c in bad]], css_class="misfits"))
    if "families" in checks and len(checks["families"]):
        parts.append("<h3>Predictive checks per record family</h3><p>Mean standardised residual of each family (its bias) and "
                     "the two-sided predictive p-value of that mean; <code>flag</code> below 0.05.</p>")
        parts.append(_table(checks["families"], css_class="families"))
    if "conflicts" in checks:
        conf = checks["conflicts"]
        parts.append('<h3 id="conflicts">Records that conflict with each other</h3>')
        parts.append(f"<p>{len(conf)} pairs of records of the same quantity, year and factor that the fit misses on opposite "
                     "sides by more than 2 sd each (one above, one below).</p>")
        if len(conf):
            parts.append(_table(conf, css_class="conflicts"))
    return parts


def write_report(
    result_dir: str | Path,
    *,
    graph: Graph | None = None,
    prob: float = 0.9,
    title: str | None = None,
    labels: plots.Labels | None = None,
    figures: FigureList | None = None,
) -> Path:
    """Write ``figures/*.png`` and a self-contained ``report.html`` into a result folder.

    The report opens with the verdict of the convergence checks (exact R-hat,
    ESS and divergences against their thresholds), then the case's methods,
    data sources and caveats (from its label table), the key intervals with
    their units, the record checks, the Sankeys and the figures (one file
    each in ``figures/``, the same names ``bayesmfa run`` writes).

    Parameters
    ----------
    result_dir : str or Path
        A folder written by ``bayesmfa run``: ``derived.nc`` (or, written before it, ``summary.csv``),
        ``diagnostics.json``, optionally ``posterior.nc`` (for the Sankey and
        per-draw net trade) and ``data_coverage.csv``.
    graph : Graph, optional
        The graph of the fit (default: rebuilt from the system stored in
        ``posterior.nc``).
    prob : float
        Interval mass for quantities computed here from the posterior.
    title : str, optional
        Report title (default: the case's title from its label table, else "Results of the <case> case").
    labels : Labels, optional
        Display labels (default: the ``labels.yaml`` the run copied into ``result_dir``, else code
        names; :func:`bayesmfa.drivers.runner.report_case` passes the case's own). Its ``key_quantities``
        choose the key-interval table's rows (:func:`key_intervals`).
    figures : callable, optional
        ``figures(derived, labels) -> list of FigureSpec``: the case's figures, from the derived Dataset
        (:attr:`~bayesmfa.cases.contract.Case.report_figures`, which
        :func:`bayesmfa.drivers.runner.report_case` passes; default: the process inputs,
        :func:`bayesmfa.reporting.plots.generic_figures`).

    Returns
    -------
    Path
        The path of ``report.html``.

    Raises
    ------
    FileNotFoundError
        When ``result_dir`` is not a folder.
    ResultFileError
        When ``posterior.nc`` exists but cannot be read (nothing is written then).
    """
    result_dir = Path(result_dir)
    if not result_dir.is_dir():
        raise FileNotFoundError(f"result folder {result_dir} not found")
    notes: list[str] = []
    derived = _read_derived(result_dir, notes)
    summary = plots.rows_of(derived) if derived.data_vars else pd.DataFrame(columns=["quantity"])
    diag = _read_diagnostics(result_dir / "diagnostics.json", notes)
    idata = _read_posterior(result_dir / "posterior.nc", notes)
    if idata is not None and graph is None:
        try:
            graph = graph_from_posterior(idata)
        except Exception as exc:  # a stored system that no longer validates
            notes.append(f"the system stored in posterior.nc could not be rebuilt ({exc})")
        if graph is None:
            notes.append("posterior.nc stores no system: Sankey skipped")
    coverage = None
    if (result_dir / "data_coverage.csv").is_file():
        coverage = pd.read_csv(result_dir / "data_coverage.csv", keep_default_na=False)
    name = str(diag.get("case") or "") or (graph.system.name if graph is not None else "")
    if labels is None and (result_dir / "labels.yaml").is_file():  # the case's label table, copied by the run
        labels = plots.load_labels(result_dir / "labels.yaml")
    if labels is None:
        labels = plots.Labels()
    report = _Report(title or labels.title or (f"Results of the {name} case" if name else "Results"), labels=labels, notes=notes)

    if idata is not None and graph is not None:
        _sankeys(report, idata, graph, prob)
    fig_dir = result_dir / "figures"
    fig_dir.mkdir(exist_ok=True)
    specs = figures(derived, labels) if len(summary) and figures is not None else []
    if idata is not None and not plots.has_quantity(derived, "net_trade"):
        tri = _triangle_from_posterior(idata, prob, labels.unit or (graph.system.unit if graph is not None else ""))
        if tri is not None:
            specs.append(tri)
    if not any(needs and all(plots.has_quantity(derived, q) for q in needs) for _, _, needs, _ in specs):
        # none of the case's figures has its quantities here: draw generic process bands, and note that once
        specs = [s for s in specs if not s[2]] + (plots.generic_figures(derived, labels) if len(summary) else [])
        notes.append("the summary has none of the quantities of the case's figures: process inputs drawn instead" if figures
                     else "the case has no figure list of its own: process inputs drawn instead")
    _draw(report, specs, derived, fig_dir)
    _prior_posterior_figure(report, derived, summary, fig_dir)
    report.informed = weakly_informed_sentence(summary)
    report.contraction = contraction_table(summary)
    report.checks = read_record_checks(result_dir)
    if not report.informed and len(summary):
        notes.append("summary.csv has no contraction column (a fit without prior draws): how far the records moved each "
                     "quantity is not shown")
    key = key_intervals(summary, labels.key_quantities or None, max_rows=MAX_KEY_ROWS)
    text = _render(report, key, diag, coverage, prob, result_dir.name)
    return atomic_write(result_dir / "report.html", lambda tmp: tmp.write_text(text, encoding="utf-8"))


__all__ = [
    "MAX_KEY_ROWS",
    "contraction_table",
    "diagnostics_banner",
    "graph_from_posterior",
    "key_intervals",
    "weakly_informed_sentence",
    "write_report",
]
