"""Scenarios on a saved fit, as a user runs them: parse, propagate per draw, write tables and figures atomically.

``bayesmfa scenario CASE --fit results/ree --out results/ree-scenarios --no-trade
--restrict CN:oxide_trade,metal_trade:0.5:2010`` loads ``posterior.nc`` of a
``bayesmfa run`` result (refusing one built from other inputs), re-runs the
mass balance per posterior draw under each scenario (no refit) and writes

* ``scenarios.csv`` -- per scenario: ``consumption`` (by region),
  ``baseline_consumption``, ``change`` and, per sink process,
  ``sink_<process>`` / ``baseline_sink_<process>`` / ``change_sink_<process>``
  on the process's dims (REE: region x end use), with mean, sd and interval;
* ``<scenario>.png`` -- baseline vs scenario supply by region and end use in
  one year (the last year of the period unless told).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import arviz as az
import pandas as pd

from bayesmfa.analysis.scenarios import ScenarioSpec, apply_scenario, summarize_scenario
from bayesmfa.cases import get_case, project_root
from bayesmfa.core.outputs import check_out, staged_dir
from bayesmfa.core.problem import Problem
from bayesmfa.inference.io import load_result


def run_scenarios(
    case: str,
    fit_dir: str | Path,
    out: str | Path,
    specs: Sequence[ScenarioSpec],
    *,
    root: str | Path | None = None,
    year: int | None = None,
    prob: float = 0.9,
    force: bool = False,
) -> Path:
    """Apply scenarios to a saved fit and write ``scenarios.csv`` and one figure per scenario into ``out``.

    Parameters
    ----------
    case : str
        Case whose data and priors the fit must come from.
    fit_dir : str or Path
        A ``bayesmfa run`` result folder (holding ``posterior.nc``), or the file itself.
    out : str or Path
        Result folder, replaced atomically (an earlier one survives a failure);
        only an earlier scenario result, an empty folder or a new path is
        replaced unless ``force`` (checked before the fit is read).
    specs : sequence of ScenarioSpec
        Scenarios; names must be distinct.
    root : str or Path, optional
        Folder with ``data/`` and ``priors/``.
    year : int, optional
        Year of the figures (default: the last year).
    prob : float
        Interval mass (0.9 gives q05 and q95).
    force : bool
        Replace whatever is at ``out``.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    OutputError
        When ``out`` holds something else and ``force`` is false.
    ResultFileError
        When the fit's ``posterior.nc`` cannot be read.
    """
    _check_specs(specs)
    check_out(out, "scenario", force=force)
    problem = get_case(case).load(project_root(root))
    idata = load_result(fit_dir, problem)
    return write_scenarios(idata, problem, specs, out, year=year, prob=prob, force=force)


def _check_specs(specs: Sequence[ScenarioSpec]) -> None:
    if not specs:
        raise ValueError("no scenario given (use --no-trade and/or --restrict)")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"scenario names repeat: {names}")


def write_scenarios(
    idata: az.InferenceData,
    problem: Problem,
    specs: Sequence[ScenarioSpec],
    out: str | Path,
    *,
    year: int | None = None,
    prob: float = 0.9,
    force: bool = False,
) -> Path:
    """Apply scenarios to a fit at hand; write ``scenarios.csv`` and figures into ``out`` (replaced atomically).

    ``out`` must be an earlier scenario result, an empty folder or a new path
    unless ``force`` (see :func:`bayesmfa.core.outputs.check_out`); it is checked
    before the scenarios are computed.

    Returns
    -------
    Path
        ``out``.
    """
    _check_specs(specs)
    check_out(out, "scenario", force=force)
    year = year or problem.system.years[-1]
    tables = []
    for spec in specs:
        table = summarize_scenario(apply_scenario(idata, problem, spec), prob)
        tables.append(table.assign(scenario=spec.name))
    out = Path(out)
    summary = pd.concat(tables, ignore_index=True)
    summary = summary[["scenario", *[c for c in summary.columns if c != "scenario"]]]
    with staged_dir(out, "scenario", force=force) as stage:
        summary.to_csv(stage.path / "scenarios.csv", index=False)
        _figures(summary, problem, specs, year, stage.path)
    return out


def _figures(summary: pd.DataFrame, problem: Problem, specs: Sequence[ScenarioSpec], year: int, folder: Path) -> None:
    """Baseline vs scenario per sink process with two dims (panels x bars), one PNG per scenario and sink."""
    from bayesmfa.reporting.plots import counterfactual

    for spec in specs:
        rows = summary[summary["scenario"] == spec.name]
        for sink in problem.system.sinks:
            dims = problem.system.processes[sink].dims
            if len(dims) != 2:  # the figure needs one dim for panels and one for bars; the table has the rest
                continue
            fig = counterfactual(rows, year, unit=problem.system.unit, actual=f"baseline_sink_{sink}",
                                 no_trade=f"sink_{sink}", legend_labels=("baseline", spec.name), panel=dims[0],
                                 category=dims[1], title=f"{sink} in {year}: baseline vs scenario {spec.name}")
            suffix = "" if len(problem.system.sinks) == 1 else f"_{sink}"
            fig.savefig(folder / f"{spec.name}{suffix}.png", dpi=120)
