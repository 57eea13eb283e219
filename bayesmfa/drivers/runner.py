"""Run a case end to end and write its results atomically into one folder."""

from __future__ import annotations

import json
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from numbers import Integral, Real
from pathlib import Path
from typing import TYPE_CHECKING, Any

import arviz as az

from bayesmfa.analysis.derived import summary_dataset, summary_frame, write_derived
from bayesmfa.analysis.residuals import check_records
from bayesmfa.analysis.summaries import write_summary_markdown
from bayesmfa.cases import get_case, labels_file, project_root
from bayesmfa.cases.contract import Case
from bayesmfa.core.model import ModelOptions
from bayesmfa.core.outputs import check_out, staged_dir
from bayesmfa.inference.diagnostics import ConvergenceWarning, Diagnostics, Thresholds, compute_diagnostics
from bayesmfa.inference.io import save
from bayesmfa.inference.sampling import METHODS, check_tree_depths, fit

if TYPE_CHECKING:  # pragma: no cover
    from bayesmfa.reporting.plots import Labels

#: NUTS backends a run may ask for.
BACKENDS = ("auto", "pymc", "nutpie", "numpyro")


@dataclass(frozen=True)
class RunSettings:
    """Sampler settings of a run (the defaults give a publishable fit)."""

    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    seed: int = 0
    backend: str = "auto"
    target_accept: float = 0.9
    min_tree_depth: int | None = None
    max_tree_depth: int | None = None
    thin: int = 1
    prob: float = 0.9
    progressbar: bool = True
    options: ModelOptions = field(default_factory=ModelOptions)
    #: Draws from the prior (same model, same seed) for the prior columns and contraction of
    #: ``summary.csv`` and ``figures/prior_posterior.png``; 0 draws none.
    prior_draws: int = 1000
    #: ``nuts`` (publishable) or ``laplace`` (a PSIS-checked approximation in seconds, for iteration).
    method: str = "nuts"

    def __post_init__(self) -> None:
        """Refuse settings no sampler can run, naming the field.

        Raises
        ------
        ValueError
            When a count or the seed is out of range, ``target_accept`` or
            ``prob`` is not strictly between 0 and 1, or the backend is unknown.
        """
        _check_int("draws", self.draws, 1)
        _check_int("tune", self.tune, 0)
        _check_int("chains", self.chains, 1)
        _check_int("seed", self.seed, 0)
        if self.min_tree_depth is not None:
            _check_int("min_tree_depth", self.min_tree_depth, 1)
        if self.max_tree_depth is not None:
            _check_int("max_tree_depth", self.max_tree_depth, 1)
        check_tree_depths(self.min_tree_depth, self.max_tree_depth, owner="RunSettings.")
        _check_int("thin", self.thin, 1)
        _check_int("prior_draws", self.prior_draws, 0)
        _check_open_unit("target_accept", self.target_accept)
        _check_open_unit("prob", self.prob)
        if self.backend not in BACKENDS:
            raise ValueError(f"RunSettings.backend must be one of {list(BACKENDS)}, got {self.backend!r}")
        if self.method not in METHODS:
            raise ValueError(f"RunSettings.method must be one of {list(METHODS)}, got {self.method!r}")

    @classmethod
    def quick(cls, **overrides) -> RunSettings:
        """Short chains for smoke runs and CI (not for publication)."""
        base = {"draws": 200, "tune": 300, "chains": 2, "thin": 1}
        base.update(overrides)
        return cls(**base)


@dataclass(frozen=True)
class RunResult:
    """What a run wrote and how the sampler did."""

    out: Path
    diagnostics: Diagnostics
    failures: list[str]
    input_warnings: tuple[str, ...] = ()


def _check_int(name: str, value: object, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < least:
        raise ValueError(f"RunSettings.{name} must be an integer >= {least}, got {value!r}")


def _check_open_unit(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 < float(value) < 1.0:
        raise ValueError(f"RunSettings.{name} must be a number strictly between 0 and 1, got {value!r}")


def fit_kwargs(settings: RunSettings) -> dict[str, Any]:
    """The keyword arguments of :func:`bayesmfa.fit` that ``settings`` set (all but ``options`` and ``prob``).

    ``min_tree_depth`` is passed only to the backends that know it (``auto``, ``nutpie``), ``max_tree_depth``
    to ``auto``, ``nutpie`` and ``pymc``.
    """
    return {
        "backend": settings.backend,
        "draws": settings.draws,
        "tune": settings.tune,
        "chains": settings.chains,
        "seed": settings.seed,
        "target_accept": settings.target_accept,
        "min_tree_depth": settings.min_tree_depth if settings.backend in ("auto", "nutpie") else None,
        "max_tree_depth": settings.max_tree_depth if settings.backend in ("auto", "nutpie", "pymc") else None,
        "thin": settings.thin,
        "progressbar": settings.progressbar,
        "prior_draws": settings.prior_draws,
        "method": settings.method,
    }


def resolve_settings(case: Case, settings: RunSettings | None = None, *, quick: bool = False) -> RunSettings:
    """A run's settings: what the caller set, then the case's own, then the generic defaults.

    The one place where a case's model options and sampler settings meet the caller's
    (``bayesmfa run``, ``bayesmfa sensitivity``, the benchmarks). A field the caller left
    at the generic default of :class:`RunSettings` takes the case's value; the case's
    model options replace the generic :class:`~bayesmfa.core.model.ModelOptions`. The case's
    thinning goes with the case's draws: it is dropped when the caller chose the draws. The
    case's minimum and maximum tree depths go together: both are dropped when the caller chose
    either (a caller's ``min_tree_depth`` 9 is not capped by a case's maximum of 8).

    Parameters
    ----------
    case : Case
        The case (see :func:`bayesmfa.cases.get_case`).
    settings : RunSettings, optional
        The caller's settings (default: the generic defaults).
    quick : bool
        Then short chains for smoke runs (:meth:`RunSettings.quick`: 2 x 200 draws after 300
        tuning steps) and no forced trajectory length, whatever the case sets.

    Returns
    -------
    RunSettings
    """
    settings = settings or RunSettings()
    if settings.options == ModelOptions():
        settings = replace(settings, options=case.options)
    generic = RunSettings()
    chosen = {k: v for k, v in case.sampler.items() if getattr(settings, k) == getattr(generic, k)}
    if settings.draws != generic.draws:  # the case's thinning goes with the case's draws, not with draws chosen by the caller
        chosen.pop("thin", None)
    if (settings.min_tree_depth, settings.max_tree_depth) != (generic.min_tree_depth, generic.max_tree_depth):
        chosen.pop("min_tree_depth", None)
        chosen.pop("max_tree_depth", None)
    settings = replace(settings, **chosen)
    if quick:
        settings = replace(RunSettings.quick(), **{k: getattr(settings, k) for k in ("seed", "backend", "target_accept", "prob",
                                                                                   "progressbar", "options", "method")})
    return settings


def failed_path(out: str | Path) -> Path:
    """Where a run that fails its diagnostics gate goes: ``<out>.failed`` beside ``out``."""
    out = Path(out)
    return out.with_name(f"{out.name}.failed")


def run_case(
    case: str | Path | Case,
    out: str | Path,
    settings: RunSettings | None = None,
    *,
    root: str | Path | None = None,
    thresholds: Thresholds | None = None,
    force: bool = False,
    divert_failed: bool = False,
) -> RunResult:
    """Fit a case and write ``posterior.nc``, ``derived.nc``, ``summary.csv``, ``diagnostics.json`` (and figures).

    The fit draws from the prior too (``settings.prior_draws``): ``posterior.nc``
    holds its ``prior`` and ``prior_predictive`` groups; ``derived.nc`` the case's derived
    quantities (:mod:`bayesmfa.analysis.derived`: statistics on ``stat``, years and cumulative periods on
    ``period``, with the prior's interval and the contraction), which the figures are drawn from;
    ``summary.csv`` is their export as a table.

    Everything is written into a temporary folder beside ``out`` and moved into
    place at the end: a failed or interrupted run leaves an earlier result intact.
    ``out`` is checked before anything is loaded or compiled (see
    :func:`bayesmfa.core.outputs.check_out`): only an earlier run result, an empty
    folder or a new path is replaced unless ``force``.

    Parameters
    ----------
    case : str, Path or Case
        A case name (``demo``, ``ree``, a registered one), a case folder holding
        ``system.yaml``, ``priors/`` and ``records*.csv`` (see :class:`~bayesmfa.cases.FolderCase`),
        or a :class:`~bayesmfa.cases.contract.Case`.
    out : str or Path
        Result folder.
    settings : RunSettings, optional
        Sampler settings; what is left at the generic default takes the case's own
        (see :func:`resolve_settings`).
    root : str or Path, optional
        For built-in cases: the folder with ``data/`` and ``priors/`` (default: see
        :func:`~bayesmfa.cases.project_root`); ignored for a case folder.
    thresholds : Thresholds, optional
        Diagnostic limits reported in ``diagnostics.json``.
    force : bool
        Replace whatever is at ``out`` (and at ``<out>.failed``).
    divert_failed : bool
        When the diagnostics fail ``thresholds``, write the result to
        ``<out>.failed`` (see :func:`failed_path`) and leave ``out`` as it was.

    Returns
    -------
    RunResult
        ``out`` is where the result went.

    Raises
    ------
    OutputError
        When ``out`` (or, with ``divert_failed``, ``<out>.failed``) holds
        something that is not an earlier run result, before anything is fitted.
    """
    thresholds = thresholds or Thresholds()
    spec = case if isinstance(case, Case) else get_case(case)
    out = Path(out)
    check_out(out, "run", force=force)
    if divert_failed:
        check_out(failed_path(out), "run", force=force)
    root = project_root(root)
    settings = resolve_settings(spec, settings)
    problem = spec.load(root)
    with staged_dir(out, "run", force=force) as stage:
        tmp = stage.path
        start = time.perf_counter()
        with warnings.catch_warnings():  # a failed gate is reported once, by the result (diagnostics.json, OUT.failed)
            warnings.filterwarnings("ignore", category=ConvergenceWarning)
            idata = fit(problem, options=settings.options, thresholds=thresholds, **fit_kwargs(settings))
        wall = time.perf_counter() - start
        if spec.annotate is not None:
            spec.annotate(idata, root)
        save(idata, tmp / "posterior.nc")
        table = spec.summary_table(idata, problem, settings.prob)
        unknown = sorted(set(table["quantity"].astype(str)) - set(spec.quantities)) if spec.quantities else []
        if unknown:
            raise ValueError(f"case {spec.name}: its summary has quantities {unknown} that are not among its quantities of interest")
        derived = summary_dataset(table)
        write_derived(derived, tmp / "derived.nc")
        summary = summary_frame(derived)  # summary.csv: the export of the derived quantities
        summary.to_csv(tmp / "summary.csv", index=False)
        labels = labels_file(spec, root)
        if labels is not None and labels.is_file():  # the report reads the case's title, methods, sources and caveats from here
            shutil.copyfile(labels, tmp / "labels.yaml")
        write_summary_markdown(summary, tmp / "summary.md", title=f"Quantities in summary.csv ({spec.name})")
        diag = _diagnostics(idata, spec, problem, wall)
        _write_record_checks(tmp, idata, problem, settings)
        if spec.write_extras is not None:
            spec.write_extras(tmp, root)
        failures = diag.failures(thresholds)
        _write_json(tmp / "diagnostics.json", diag, settings, idata, failures, thresholds, problem.warnings,
                    case=spec.name)
        if spec.write_figures is not None:
            spec.write_figures(derived, idata, problem, tmp / "figures")
        if failures and divert_failed:
            stage.redirect(failed_path(out))
    return RunResult(stage.target if failures and divert_failed else out, diag, failures, problem.warnings)


def case_labels(name: str, root: str | Path | None = None) -> Labels:
    """The display labels of the case called ``name`` (its ``labels.yaml``); code names when it is no known case or has none."""
    from bayesmfa.cases import case_names
    from bayesmfa.reporting.plots import Labels, load_labels

    if name not in case_names():
        return Labels()
    try:
        path = labels_file(name, root)
        return load_labels(path) if path is not None else Labels()
    except FileNotFoundError:  # no data/ folder to be found: code names
        return Labels()


def case_figures(name: str) -> Callable[..., list] | None:
    """The report's figure list of the case called ``name`` (:attr:`~bayesmfa.cases.contract.Case.report_figures`);
    ``None`` for a name that is no known case (a case folder's, a system's) or a case without one."""
    from bayesmfa.cases import case_names

    return get_case(name).report_figures if name and name in case_names() else None


def report_case(result_dir: str | Path, *, prob: float = 0.9, root: str | Path | None = None) -> Path:
    """Write ``report.html`` and ``figures/`` for a result folder, with its case's labels and figures (``bayesmfa report``).

    The case is the one ``diagnostics.json`` names. Labels: the ``labels.yaml`` the run copied
    into the folder, else the case's own; figures: the case's report figures, else the process
    inputs (see :func:`bayesmfa.reporting.report.write_report`, which this calls).

    Returns
    -------
    Path
        The path of ``report.html``.
    """
    from bayesmfa.reporting.report import write_report

    result_dir = Path(result_dir)
    diag_path = result_dir / "diagnostics.json"
    try:
        name = str(json.loads(diag_path.read_text(encoding="utf-8")).get("case") or "") if diag_path.is_file() else ""
    except (json.JSONDecodeError, AttributeError):  # write_report says what is wrong with the file
        name = ""
    labels = None if (result_dir / "labels.yaml").is_file() or not name else case_labels(name, root)
    return write_report(result_dir, prob=prob, labels=labels, figures=case_figures(name))


def _write_record_checks(out: Path, idata: az.InferenceData, problem, settings: RunSettings) -> None:  # noqa: ANN001
    """``record_checks.csv`` (every record: fit, z, p-value, misfit), ``record_families.csv`` and
    ``record_conflicts.csv`` (see :func:`bayesmfa.analysis.residuals.check_records`); acyclic systems only."""
    if problem.graph.depth is None:
        return
    checks = check_records(idata, problem, settings.options, seed=settings.seed)
    checks.records.to_csv(out / "record_checks.csv", index=False)
    checks.families.to_csv(out / "record_families.csv", index=False)
    checks.conflicts.to_csv(out / "record_conflicts.csv", index=False)


def _diagnostics(idata: az.InferenceData, case: Case, problem, wall: float) -> Diagnostics:  # noqa: ANN001
    """Diagnostics over the case's reported quantities (or every posterior variable)."""
    dataset = case.reported_dataset(idata, problem) if case.reported_dataset is not None else None
    diag = compute_diagnostics(idata, dataset=dataset, wall_s=wall)
    fitted = json.loads(idata.posterior.attrs.get("diagnostics") or "{}")  # an approximate fit's Pareto k and importance ESS
    if fitted.get("pareto_k") is not None:
        diag = replace(diag, pareto_k=float(fitted["pareto_k"]), min_ess_bulk=min(diag.min_ess_bulk, fitted["min_ess_bulk"]),
                       min_ess_tail=min(diag.min_ess_tail, fitted["min_ess_tail"]))
    return diag


def _write_json(path: Path, diag: Diagnostics, settings: RunSettings, idata: az.InferenceData, failures, thresholds,
                input_warnings: tuple[str, ...] = (), case: str = "") -> None:
    attrs = idata.posterior.attrs
    doc = json.loads(diag.to_json())
    doc.update(
        {
            "settings": json.loads(attrs["settings"]),
            "model_options": json.loads(attrs["model_options"]),
            "bayesmfa_version": attrs["bayesmfa_version"],
            "content_hash": attrs["content_hash"],
            # the case: a built-in name, or the name of the case folder
            "case": case,
            "thresholds": thresholds.__dict__,
            "passed": not failures,
            "failures": failures,
            # plausibility findings on the inputs that were not errors (bayesmfa.core.plausibility)
            "input_warnings": list(input_warnings),
        }
    )
    path.write_text(json.dumps(doc, indent=2))
