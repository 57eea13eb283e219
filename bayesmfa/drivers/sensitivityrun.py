"""``bayesmfa sensitivity``: a case's whole sensitivity study in one folder, as a user runs it.

Fits the case (or reuses a saved fit as the baseline), then writes power-scaling
(:mod:`bayesmfa.analysis.powerscaling`), predictive checks and value of information
(:mod:`bayesmfa.analysis.criticism`), the case's scenarios (:mod:`bayesmfa.drivers.scenariorun`) and
the refit sweeps of its plan (:mod:`bayesmfa.analysis.sensitivity`), each sweep written as it
finishes, here or on a Dask cluster. A driver: it reads the case contract
(:class:`~bayesmfa.cases.contract.Case`), which the analysis modules never do.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

from bayesmfa.analysis.criticism import plot_predictive_checks, predictive_checks, value_of_information
from bayesmfa.analysis.executors import make_executor, write_dataset
from bayesmfa.analysis.powerscaling import power_scaling
from bayesmfa.analysis.sensitivity import case_sweeps, default_plan, plot_sweep_intervals, run_sweep, sweep_summary
from bayesmfa.cases import get_case, project_root
from bayesmfa.cases.contract import Case
from bayesmfa.core.outputs import check_out, open_incremental
from bayesmfa.drivers.runner import RunSettings, fit_kwargs, resolve_settings
from bayesmfa.drivers.scenariorun import write_scenarios
from bayesmfa.inference.diagnostics import ConvergenceWarning
from bayesmfa.inference.io import load_result, save
from bayesmfa.inference.sampling import fit


def run_sensitivity(case: str | Path | Case, out: Path, *, scheduler: str | None = None, quick: bool = False, seed: int = 0,
                    root: Path | None = None, max_workers: int = 1, only: Sequence[str] | None = None,
                    baseline: str | Path | None = None, force: bool = False) -> Path:
    """Fit a case and write its sensitivity study into ``out``.

    Writes ``posterior.nc`` (the baseline fit), ``power_scaling.csv``,
    ``predictive_checks.csv`` (+ PNG), ``value_of_information.csv``,
    ``scenarios/`` (the case's scenarios on the baseline fit, see
    :mod:`bayesmfa.drivers.scenariorun`; no trade when the case names none), each
    sweep's ``<sweep>.nc``, ``sweeps.nc``, ``sweeps.csv`` and the plot of the
    key quantity per sweep (the case's :class:`~bayesmfa.cases.contract.SensitivityPlan`,
    else :func:`default_plan`). Sweeps (:func:`case_sweeps`): leave one record
    group out (``plan.group_by``; groups renamed by the plan answer a question by
    name), noise x2, prior widths x2, random-walk step scales x2, Student-t and
    lognormal likelihoods. The sampler settings are the case's, resolved as for
    ``bayesmfa run`` (:func:`bayesmfa.drivers.runner.resolve_settings`). Rerunning resumes:
    sweeps already on disk are kept.

    ``out`` must be an earlier sensitivity folder of bayesmfa (resumed), an
    empty folder or a new path; anything else is refused before anything is
    loaded or fitted unless ``force`` (see :func:`bayesmfa.core.outputs.check_out`).
    The folder gets its marker before the first result is written.

    Parameters
    ----------
    case : str, Path or Case
        A case name, a case folder or a :class:`~bayesmfa.cases.contract.Case`.
    out : Path
        Result folder.
    scheduler : str, optional
        dask.distributed scheduler address; default: fits run here.
    quick : bool
        Short chains (smoke runs, not for publication).
    seed : int
        Random seed of every fit.
    root : Path, optional
        Folder with ``data/`` and ``priors/``.
    max_workers : int
        Worker processes when no scheduler is given.
    only : sequence of str, optional
        Run only these sweeps (names as in ``sweeps.csv``, e.g.
        ``literature_dropped``); an unknown name raises before any fit.
    baseline : str or Path, optional
        A ``bayesmfa run`` result folder (or its ``posterior.nc``) to use as the
        baseline instead of fitting it again; refused when built from other
        data, priors or options.
    force : bool
        Replace whatever is at ``out`` when it is not a sensitivity folder
        (an earlier study is resumed, never replaced).

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    OutputError
        When ``out`` holds something else and ``force`` is false.
    """
    spec = case if isinstance(case, Case) else get_case(case)
    root = project_root(root)
    out = Path(out)
    check_out(out, "sensitivity", force=force)  # refused before anything is loaded
    problem = spec.load(root)
    settings = resolve_settings(spec, RunSettings(seed=seed, progressbar=False), quick=quick)
    options = settings.options
    baseline_kwargs = fit_kwargs(settings)
    # a refit keeps only its quantities' statistics: no prior draws (seconds per refit)
    refit_kwargs = {k: v for k, v in baseline_kwargs.items() if k not in ("prior_draws", "progressbar")}
    plan = (spec.sensitivity or default_plan)(problem)
    quantities, key, by = dict(plan.quantities), plan.key, plan.group_by
    sweeps = case_sweeps(plan, problem)
    if only is not None:
        names = [s.name for s in sweeps]
        unknown = [n for n in only if n not in names]
        if unknown:
            raise ValueError(f"unknown sweeps {unknown}; known for {spec.name}: {names}")
        sweeps = [s for s in sweeps if s.name in only]
    swept = {**quantities, "key": key}
    if baseline is not None:
        idata = load_result(baseline, problem, options, what="baseline fit")
        out = open_incremental(out, "sensitivity", force=force)
        write_dataset(sweep_summary(idata, swept), out / "baseline.nc")  # run_sweep reuses it instead of refitting
    else:
        out = open_incremental(out, "sensitivity", force=force)
        with warnings.catch_warnings():  # the baseline's diagnostics go into posterior.nc; a quick study fails them by design
            warnings.filterwarnings("ignore", category=ConvergenceWarning)
            idata = fit(problem, options=options, **baseline_kwargs)
    save(idata, out / "posterior.nc")
    power_scaling(idata, problem, quantities, by=by, options=options).to_csv(out / "power_scaling.csv", index=False)
    checks = predictive_checks(idata, problem, seed=seed, by=by, options=options)
    checks.to_csv(out / "predictive_checks.csv", index=False)
    if len(checks):
        plot_predictive_checks(checks, out / "predictive_checks.png")
    value_of_information(idata, problem, quantities, by=by).to_csv(out / "value_of_information.csv", index=False)
    write_scenarios(idata, problem, list(spec.scenarios), out / "scenarios")
    executor = make_executor(scheduler, max_workers=max_workers)
    try:
        ds, _ = run_sweep(problem, sweeps, swept, fit_kwargs=refit_kwargs, out_dir=out, executor=executor, options=options)
    finally:
        executor.close()
    key_df = ds["key"].to_dataset(dim="stat").to_dataframe().reset_index()
    plot_sweep_intervals(key_df, plan.key_label, out / plan.key_file)
    return out


__all__ = ["run_sensitivity"]
