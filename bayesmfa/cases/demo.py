"""The bundled synthetic demo: two regions, four processes, ten years, trade both ways.

Its records (``data/demo/records.csv``) were simulated from a known truth
drawn from the priors (:func:`make_records`, seed in the ``source`` column),
so a fit can be checked against that truth.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import arviz as az
import pandas as pd

from bayesmfa.analysis.summaries import summarize_system
from bayesmfa.cases.contract import Case, CaseFiles
from bayesmfa.core.priors import load_priors
from bayesmfa.core.problem import Problem, load_problem, make_problem
from bayesmfa.core.records import mirror_trade_rows
from bayesmfa.core.system import load_system
from bayesmfa.inference.simulate import simulate_records

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

    from bayesmfa.reporting.plots import Labels

SEED = 20240101


def paths(root: Path) -> tuple[Path, Path, Path]:
    """System file, prior folder and record file of the demo under ``root``."""
    return root / "data" / "demo" / "system.yaml", root / "priors" / "demo", root / "data" / "demo" / "records.csv"


def files(root: Path) -> CaseFiles:
    """The demo's inputs under ``root``: its system, priors and one record file."""
    system, priors, records = paths(root)
    return CaseFiles(system, priors, (records,), root / "data" / "demo")


def load(root: Path) -> Problem:
    """The demo problem from the files under ``root``."""
    return load_problem(*paths(root))


def template(years: range) -> pd.DataFrame:
    """Which records the demo has: production, use, mirror trade records, end-use shares."""
    rows = []
    for y in years:
        for r in "AB":
            rows.append({"quantity": "mining", "region": r, "year": y, "source_type": "production"})
            rows.append({"quantity": "refining", "region": r, "year": y, "source_type": "production"})
            rows.append({"quantity": "use", "region": r, "year": y, "source_type": "survey"})
        rows.extend(mirror_trade_rows(("ore_trade", "refined_trade"), (("A", "B"), ("B", "A")), y))
        if y % 3 == 0:
            for r in "AB":
                rows.append({"quantity": "end_use", "region": r, "end_use": "magnets", "share_of": "end_use", "year": y,
                             "source_type": "survey", "unit": "share", "value": 0.5})
    df = pd.DataFrame(rows)
    df["unit"] = df["unit"].fillna("kt")
    df["value"] = df["value"].fillna(1.0)
    df["source"] = f"synthetic: simulated by bayesmfa.cases.demo.make_records (seed {SEED})"
    cols = ["quantity", "region", "origin", "destination", "end_use", "year", "value", "unit", "share_of", "factor",
            "source_type", "source", "note"]
    return df.reindex(columns=cols).fillna("").astype(str)


def make_records(root: Path, seed: int = SEED) -> pd.DataFrame:
    """Simulate the demo records from a truth drawn from the priors and write ``records.csv``."""
    system_path, prior_path, record_path = paths(root)
    system = load_system(system_path)
    problem = make_problem(system, load_priors(prior_path), template(range(system.years[0], system.years[-1] + 1)))
    _, table = simulate_records(problem, seed=seed)
    out = table.drop(columns=["file", "row", "record_id"])
    out.to_csv(record_path, index=False)
    return out


def summary_table(idata: az.InferenceData, problem: Problem, prob: float = 0.9) -> pd.DataFrame:
    """Every flow and process total of the demo, per year, in the layout of every case's ``summary.csv``.

    See :func:`bayesmfa.analysis.summaries.summarize_system`: ``quantity, region, partner, product, end_use,
    year_start, year_end, unit, description, mean, sd, q05, q50, q95, prior_q05, prior_q50,
    prior_q95, contraction, weakly_informed`` (kt; ``region`` the origin and ``partner`` the
    destination of a traded flow).
    """
    return summarize_system(idata, problem.system, prob)


def labels(root: Path | None = None) -> Labels:
    """Display labels, title and caveats of the demo (``data/demo/labels.yaml``)."""
    from bayesmfa.reporting.plots import load_labels

    return load_labels(labels_file(root))


def labels_file(root: Path | None = None) -> Path:
    """The demo's ``labels.yaml``."""
    from bayesmfa.cases import project_root

    return project_root(root) / "data" / "demo" / "labels.yaml"

def write_figures(derived: xr.Dataset, idata: az.InferenceData, problem: Problem, outdir: Path,
                  label_table: Labels | None = None) -> list[Path]:
    """Bands of each process input of the derived quantities (:func:`bayesmfa.reporting.plots.generic_figures`) and, with a prior,
    ``prior_posterior.png``.

    ``label_table``: display names (default: the demo's for the demo system, else code names).
    """
    from bayesmfa.reporting import plots

    outdir.mkdir(parents=True, exist_ok=True)
    lab = label_table if label_table is not None else (labels() if problem.system.name == "demo" else plots.Labels())
    figures = [(name, build) for name, _, _, build in plots.generic_figures(derived, lab)]
    panels = plots.default_panels(derived, unit=problem.system.unit, labels=lab)
    if "prior" in idata.groups() and panels:
        figures.append(("prior_posterior", lambda: plots.prior_posterior_bands(derived, panels)))
    written = []
    for name, make in figures:
        make().savefig(outdir / f"{name}.png", dpi=110)
        written.append(outdir / f"{name}.png")
    return written


def case() -> Case:
    """The demo as a :class:`~bayesmfa.cases.contract.Case`: generic summary, figures and sensitivity plan."""
    return Case(name="demo", files=files, load=load, summary_table=summary_table, labels_file=labels_file,
                write_figures=write_figures)


if __name__ == "__main__":  # regenerate the demo records
    from bayesmfa.cases import project_root

    make_records(project_root())
