"""bayesmfa: Bayesian material flow analysis with PyMC.

Flows are latent variables balanced by construction; priors and records are
data; results are ArviZ InferenceData with named dims, derived quantities as an xarray
Dataset (statistics on ``stat``, years and cumulative periods on ``period``) and their
export as a tidy summary table.

The public names below are imported on first use (PEP 562), so that
``import bayesmfa`` and ``bayesmfa --help`` do not load PyMC.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from bayesmfa._version import __version__

#: Public name -> module that defines it.
_PUBLIC: dict[str, str] = {
    "balance_residuals": "bayesmfa.analysis.balance",
    "calibrate": "bayesmfa.analysis.calibration",
    "Calibration": "bayesmfa.analysis.calibration",
    "Misspecification": "bayesmfa.analysis.calibration",
    "FolderCase": "bayesmfa.cases",
    "case_names": "bayesmfa.cases",
    "get_case": "bayesmfa.cases",
    "load_case": "bayesmfa.cases",
    "register_case": "bayesmfa.cases",
    "Case": "bayesmfa.cases.contract",
    "CaseFiles": "bayesmfa.cases.contract",
    "KeyRow": "bayesmfa.cases.contract",
    "SensitivityPlan": "bayesmfa.analysis.sensitivity",
    "load_derived": "bayesmfa.analysis.derived",
    "read_derived": "bayesmfa.analysis.derived",
    "summary_dataset": "bayesmfa.analysis.derived",
    "summary_frame": "bayesmfa.analysis.derived",
    "write_derived": "bayesmfa.analysis.derived",
    "predictive_checks": "bayesmfa.analysis.criticism",
    "value_of_information": "bayesmfa.analysis.criticism",
    "compute_diagnostics": "bayesmfa.inference.diagnostics",
    "diagnostics_table": "bayesmfa.inference.diagnostics",
    "Diagnostics": "bayesmfa.inference.diagnostics",
    "Thresholds": "bayesmfa.inference.diagnostics",
    "BayesMFAError": "bayesmfa.errors",
    "DiagnosticsError": "bayesmfa.errors",
    "OutputError": "bayesmfa.errors",
    "PriorError": "bayesmfa.errors",
    "ProvenanceError": "bayesmfa.errors",
    "RecordError": "bayesmfa.errors",
    "ResultFileError": "bayesmfa.errors",
    "SpecError": "bayesmfa.errors",
    "Graph": "bayesmfa.core.graph",
    "available_backends": "bayesmfa.inference.sampling",
    "compile_model": "bayesmfa.inference.sampling",
    "CompiledFit": "bayesmfa.inference.sampling",
    "fit": "bayesmfa.inference.sampling",
    "sample_prior": "bayesmfa.inference.sampling",
    "with_records": "bayesmfa.inference.sampling",
    "load": "bayesmfa.inference.io",
    "save": "bayesmfa.inference.io",
    "build_model": "bayesmfa.core.model",
    "ModelOptions": "bayesmfa.core.model",
    "PlausibilityError": "bayesmfa.core.plausibility",
    "PlausibilityWarning": "bayesmfa.core.plausibility",
    "power_scaling": "bayesmfa.analysis.powerscaling",
    "load_priors": "bayesmfa.core.priors",
    "Priors": "bayesmfa.core.priors",
    "priors_from_dict": "bayesmfa.core.priors",
    "load_problem": "bayesmfa.core.problem",
    "make_problem": "bayesmfa.core.problem",
    "Problem": "bayesmfa.core.problem",
    "compile_records": "bayesmfa.core.records",
    "read_records": "bayesmfa.core.records",
    "write_report": "bayesmfa.reporting.report",
    "check_records": "bayesmfa.analysis.residuals",
    "RecordChecks": "bayesmfa.analysis.residuals",
    "run_case": "bayesmfa.drivers.runner",
    "RunResult": "bayesmfa.drivers.runner",
    "RunSettings": "bayesmfa.drivers.runner",
    "resolve_settings": "bayesmfa.drivers.runner",
    "report_case": "bayesmfa.drivers.runner",
    "bands": "bayesmfa.reporting.plots",
    "default_panels": "bayesmfa.reporting.plots",
    "prior_posterior_bands": "bayesmfa.reporting.plots",
    "sankey": "bayesmfa.reporting.plots",
    "parse_restriction": "bayesmfa.analysis.scenarios",
    "run_scenarios": "bayesmfa.drivers.scenariorun",
    "ScenarioSpec": "bayesmfa.analysis.scenarios",
    "write_scenarios": "bayesmfa.drivers.scenariorun",
    "export_restriction": "bayesmfa.analysis.scenarios",
    "no_trade": "bayesmfa.analysis.scenarios",
    "summarize_scenario": "bayesmfa.analysis.scenarios",
    "run_sensitivity": "bayesmfa.drivers.sensitivityrun",
    "run_sweep": "bayesmfa.analysis.sensitivity",
    "scale_prior_widths": "bayesmfa.analysis.sensitivity",
    "scale_step_priors": "bayesmfa.analysis.sensitivity",
    "Sweep": "bayesmfa.analysis.sensitivity",
    "leave_one_out": "bayesmfa.analysis.sensitivity",
    "likelihood_sweep": "bayesmfa.analysis.sensitivity",
    "noise_multiplier": "bayesmfa.analysis.sensitivity",
    "simulate_records": "bayesmfa.inference.simulate",
    "prior_posterior_width": "bayesmfa.analysis.summaries",
    "summarize": "bayesmfa.analysis.summaries",
    "summarize_array": "bayesmfa.analysis.summaries",
    "summarize_with_prior": "bayesmfa.analysis.summaries",
    "summarize_quantities": "bayesmfa.analysis.summaries",
    "QuantityInfo": "bayesmfa.analysis.summaries",
    "DaskExecutor": "bayesmfa.analysis.executors",
    "LocalExecutor": "bayesmfa.analysis.executors",
    "load_system": "bayesmfa.core.system",
    "Stock": "bayesmfa.core.system",
    "System": "bayesmfa.core.system",
    "system_from_dict": "bayesmfa.core.system",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use."""
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'bayesmfa' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))


if TYPE_CHECKING:  # pragma: no cover  (static type checkers see the eager imports)
    from bayesmfa.analysis.balance import balance_residuals  # noqa: F401
    from bayesmfa.analysis.calibration import Calibration, Misspecification, calibrate  # noqa: F401
    from bayesmfa.analysis.criticism import predictive_checks, value_of_information  # noqa: F401
    from bayesmfa.analysis.derived import load_derived, read_derived, summary_dataset, summary_frame, write_derived  # noqa: F401
    from bayesmfa.analysis.executors import DaskExecutor, LocalExecutor  # noqa: F401
    from bayesmfa.analysis.powerscaling import power_scaling  # noqa: F401
    from bayesmfa.analysis.residuals import RecordChecks, check_records  # noqa: F401
    from bayesmfa.analysis.scenarios import ScenarioSpec, export_restriction, no_trade, parse_restriction, summarize_scenario  # noqa: F401
    from bayesmfa.analysis.sensitivity import (  # noqa: F401
        SensitivityPlan,
        Sweep,
        leave_one_out,
        likelihood_sweep,
        noise_multiplier,
        run_sweep,
        scale_prior_widths,
        scale_step_priors,
    )
    from bayesmfa.analysis.summaries import (  # noqa: F401
        QuantityInfo,
        prior_posterior_width,
        summarize,
        summarize_array,
        summarize_quantities,
        summarize_with_prior,
    )
    from bayesmfa.cases import FolderCase, case_names, get_case, load_case, register_case  # noqa: F401
    from bayesmfa.cases.contract import Case, CaseFiles, KeyRow  # noqa: F401
    from bayesmfa.core.graph import Graph  # noqa: F401
    from bayesmfa.core.model import ModelOptions, build_model  # noqa: F401
    from bayesmfa.core.plausibility import PlausibilityError, PlausibilityWarning  # noqa: F401
    from bayesmfa.core.priors import Priors, load_priors, priors_from_dict  # noqa: F401
    from bayesmfa.core.problem import Problem, load_problem, make_problem  # noqa: F401
    from bayesmfa.core.records import compile_records, read_records  # noqa: F401
    from bayesmfa.core.system import Stock, System, load_system, system_from_dict  # noqa: F401
    from bayesmfa.drivers.runner import RunResult, RunSettings, report_case, resolve_settings, run_case  # noqa: F401
    from bayesmfa.drivers.scenariorun import run_scenarios, write_scenarios  # noqa: F401
    from bayesmfa.drivers.sensitivityrun import run_sensitivity  # noqa: F401
    from bayesmfa.errors import (  # noqa: F401
        BayesMFAError,
        DiagnosticsError,
        OutputError,
        PriorError,
        ProvenanceError,
        RecordError,
        ResultFileError,
        SpecError,
    )
    from bayesmfa.inference.diagnostics import Diagnostics, Thresholds, compute_diagnostics, diagnostics_table  # noqa: F401
    from bayesmfa.inference.io import load, save  # noqa: F401
    from bayesmfa.inference.sampling import (  # noqa: F401
        CompiledFit,
        available_backends,
        compile_model,
        fit,
        sample_prior,
        with_records,
    )
    from bayesmfa.inference.simulate import simulate_records  # noqa: F401
    from bayesmfa.reporting.plots import bands, default_panels, prior_posterior_bands, sankey  # noqa: F401
    from bayesmfa.reporting.report import write_report  # noqa: F401
