"""The case contract: what a case gives the core, as one frozen, typed object.

A case is data plus a thin module. The core (runner, sensitivity, scenarios,
report, benchmarks) asks a :class:`Case` for everything case-specific and
knows no commodity, region or product by name. Built-in cases build theirs in
``bayesmfa/cases/<name>.py`` (``def case() -> Case``); a case folder gets one
from :meth:`bayesmfa.cases.FolderCase.case`; a package can add its own through the
``bayesmfa.cases`` entry-point group or :func:`bayesmfa.cases.register_case`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from bayesmfa.analysis.powerscaling import Quantity
from bayesmfa.analysis.scenarios import NO_TRADE, ScenarioSpec
from bayesmfa.analysis.sensitivity import SensitivityPlan
from bayesmfa.analysis.summaries import QuantityInfo
from bayesmfa.core.model import ModelOptions

if TYPE_CHECKING:  # pragma: no cover
    import arviz as az
    import pandas as pd
    import xarray as xr

    from bayesmfa.core.problem import Problem

#: The sampler settings a case may set (the fields of :class:`bayesmfa.drivers.runner.RunSettings` a fit takes).
SAMPLER_FIELDS = ("draws", "tune", "chains", "target_accept", "min_tree_depth", "max_tree_depth", "thin", "backend")


@dataclass(frozen=True)
class CaseFiles:
    """Where a case's inputs are.

    Attributes
    ----------
    system : Path
        The system file (``system.yaml``).
    priors : Path
        The prior folder, or one prior file.
    records : tuple of Path
        Record files read as they are (a case folder); empty when the case builds
        its records from its own tables (see ``data``).
    data : Path or None
        The folder of the case's data tables (checked by ``bayesmfa data check``
        when it holds a ``schema.yaml``).
    """

    system: Path
    priors: Path
    records: tuple[Path, ...] = ()
    data: Path | None = None


@dataclass(frozen=True)
class KeyRow:
    """One row of a case's key-results table (README, report).

    Attributes
    ----------
    label : str
        What the row says, with its unit, e.g. ``"World mining, 2022 (kt REO)"``.
    quantity : str
        The ``quantity`` of the ``summary.csv`` row.
    filters : mapping
        Column -> value the row must match (``region``, ``partner``, ``end_use``...).
    years : tuple of int
        ``(year_start, year_end)``: one year, or the span of a cumulative row.
    mean_only : bool
        Show the mean alone (a probability, the mean of an indicator), no interval.
    """

    label: str
    quantity: str
    filters: Mapping[str, str]
    years: tuple[int, int]
    mean_only: bool = False


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class Case:
    """Everything the core needs from a case, resolved once.

    Attributes
    ----------
    name : str
        The case's name (a built-in name, a registered name, or the case folder's name).
    files : callable
        ``files(root) -> CaseFiles``: where its inputs are (``root``: the folder holding
        the built-in cases' ``data/`` and ``priors/``; a case folder ignores it).
    load : callable
        ``load(root) -> Problem``: system, priors and records, validated.
    summary_table : callable
        ``summary_table(idata, problem, prob) -> DataFrame``: its derived quantities, one row per quantity, dims
        and period in the published layout (:func:`bayesmfa.analysis.summaries.summary_columns`). A run turns them into
        the derived Dataset (:func:`bayesmfa.analysis.derived.summary_dataset`, ``derived.nc``) that figures and the
        report read; ``summary.csv`` is its export (:func:`bayesmfa.analysis.derived.summary_frame`).
    options : ModelOptions
        The case's model options.
    sampler : mapping
        Sampler settings of the case's publishable fit (keys in :data:`SAMPLER_FIELDS`); what
        a caller leaves at the generic default takes these (see :func:`bayesmfa.drivers.runner.resolve_settings`).
    labels_file : callable or None
        ``labels_file(root) -> Path``: its optional ``labels.yaml`` (title, methods, sources,
        caveats, display names, region order, key quantities); ``root`` may be ``None`` (the
        default root, see :func:`bayesmfa.cases.project_root`).
    write_figures : callable or None
        ``write_figures(derived, idata, problem, outdir) -> list[Path]``: the figures a run writes, from the
        derived Dataset.
    report_figures : callable or None
        ``report_figures(derived, labels) -> list of FigureSpec``: the figures of its report, from the derived Dataset
        (:func:`bayesmfa.reporting.report.write_report`; default: the process inputs).
    reported_dataset : callable or None
        ``reported_dataset(idata, problem) -> xarray.Dataset``: the quantities the convergence gate
        checks (default: every posterior variable).
    annotate : callable or None
        ``annotate(idata, root)``: attributes stored with the fit (e.g. a quota series its
        quantities need).
    write_extras : callable or None
        ``write_extras(out, root)``: extra files of a run (e.g. the data rows not used).
    scenarios : tuple of ScenarioSpec
        The scenarios the sensitivity study propagates on its baseline fit.
    sensitivity : callable or None
        ``sensitivity(problem) -> SensitivityPlan`` (default:
        :func:`bayesmfa.analysis.sensitivity.default_plan`; see :class:`bayesmfa.analysis.sensitivity.SensitivityPlan`).
    key_rows : tuple of KeyRow
        Rows of the key-results table (empty: none).
    quantities : mapping of name -> QuantityInfo
        The quantities of interest of its summary, typed: unit, one-sentence description, whether a
        cumulative row (the sum over the years, per draw) is reported, whether it is a 0/1 indicator
        (:class:`bayesmfa.analysis.summaries.QuantityInfo`; :func:`bayesmfa.analysis.summaries.summarize_quantities` builds a
        summary table from them and a function computing them per draw). Empty: the system's flows and process
        totals (:func:`bayesmfa.analysis.summaries.summarize_system` describes them). A run refuses a summary with a
        quantity missing from a non-empty mapping.
    """

    name: str
    files: Callable[[Path], CaseFiles]
    load: Callable[[Path], Problem]
    summary_table: Callable[[az.InferenceData, Problem, float], pd.DataFrame]
    options: ModelOptions = field(default_factory=ModelOptions)
    sampler: Mapping[str, Any] = field(default_factory=dict)
    labels_file: Callable[[Path | None], Path] | None = None
    write_figures: Callable[[xr.Dataset, az.InferenceData, Problem, Path], list[Path]] | None = None
    report_figures: Callable[..., list[Any]] | None = None
    reported_dataset: Callable[[az.InferenceData, Problem], xr.Dataset] | None = None
    annotate: Callable[[az.InferenceData, Path], None] | None = None
    write_extras: Callable[[Path, Path], None] | None = None
    scenarios: tuple[ScenarioSpec, ...] = (NO_TRADE,)
    sensitivity: Callable[[Problem], SensitivityPlan] | None = None
    key_rows: tuple[KeyRow, ...] = ()
    quantities: Mapping[str, QuantityInfo] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Freeze the sampler mapping and refuse settings no fit takes.

        Raises
        ------
        ValueError
            Naming the case and the unknown sampler setting.
        """
        unknown = sorted(set(self.sampler) - set(SAMPLER_FIELDS))
        if unknown:
            raise ValueError(f"case {self.name}: unknown sampler settings {unknown}; known: {list(SAMPLER_FIELDS)}")
        object.__setattr__(self, "sampler", _frozen(self.sampler))
        object.__setattr__(self, "scenarios", tuple(self.scenarios))
        object.__setattr__(self, "key_rows", tuple(self.key_rows))
        object.__setattr__(self, "quantities", _frozen(self.quantities))


__all__ = ["SAMPLER_FIELDS", "Case", "CaseFiles", "KeyRow", "Quantity", "SensitivityPlan"]
