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
    "balance_residuals": "bayesmfa.balance",
    "calibrate": "bayesmfa.calibration",
    "Calibration": "bayesmfa.calibration",
    "Misspecification": "bayesmfa.calibration",
    "FolderCase": "bayesmfa.cases",
    "case_names": "bayesmfa.cases",
    "get_case": "bayesmfa.cases",
    "load_case": "bayesmfa.cases",
    "register_case": "bayesmfa.cases",
    "Case": "bayesmfa.cases.contract",
    "CaseFiles": "bayesmfa.cases.contract",
    "KeyRow": "bayesmfa.cases.contract",
    "SensitivityPlan": "bayesmfa.sensitivity",
    "load_derived": "bayesmfa.derived",
    "read_derived": "bayesmfa.derived",
    "summary_dataset": "bayesmfa.derived",
    "summary_frame": "bayesmfa.derived",
    "write_derived": "bayesmfa.derived",
    "predictive_checks": "bayesmfa.criticism",
    "value_of_information": "bayesmfa.criticism",
    "compute_diagnostics": "bayesmfa.diagnostics",
    "diagnostics_table": "bayesmfa.diagnostics",
    "Diagnostics": "bayesmfa.diagnostics",
    "Thresholds": "bayesmfa.diagnostics",
    "BayesMFAError": "bayesmfa.errors",
    "DiagnosticsError": "bayesmfa.errors",
    "OutputError": "bayesmfa.errors",
    "PriorError": "bayesmfa.errors",
    "ProvenanceError": "bayesmfa.errors",
    "RecordError": "bayesmfa.errors",
    "ResultFileError": "bayesmfa.errors",
    "SpecError": "bayesmfa.errors",
    "Graph": "bayesmfa.graph",
    "available_backends": "bayesmfa.inference",
    "compile_model": "bayesmfa.inference",
    "CompiledFit": "bayesmfa.inference",
    "fit": "bayesmfa.inference",
    "sample_prior": "bayesmfa.inference",
    "with_records": "bayesmfa.inference",
    "load": "bayesmfa.io",
    "save": "bayesmfa.io",
    "build_model": "bayesmfa.model",
    "ModelOptions": "bayesmfa.model",
    "PlausibilityError": "bayesmfa.plausibility",
    "PlausibilityWarning": "bayesmfa.plausibility",
    "power_scaling": "bayesmfa.powerscaling",
    "load_priors": "bayesmfa.priors",
    "Priors": "bayesmfa.priors",
    "priors_from_dict": "bayesmfa.priors",
    "load_problem": "bayesmfa.problem",
    "make_problem": "bayesmfa.problem",
    "Problem": "bayesmfa.problem",
    "compile_records": "bayesmfa.records",
    "read_records": "bayesmfa.records",
    "write_report": "bayesmfa.report",
    "check_records": "bayesmfa.residuals",
    "RecordChecks": "bayesmfa.residuals",
    "run_case": "bayesmfa.runner",
    "RunResult": "bayesmfa.runner",
    "RunSettings": "bayesmfa.runner",
    "resolve_settings": "bayesmfa.runner",
    "report_case": "bayesmfa.runner",
    "bands": "bayesmfa.plots",
    "default_panels": "bayesmfa.plots",
    "prior_posterior_bands": "bayesmfa.plots",
    "sankey": "bayesmfa.plots",
    "parse_restriction": "bayesmfa.scenarios",
    "run_scenarios": "bayesmfa.scenariorun",
    "ScenarioSpec": "bayesmfa.scenarios",
    "write_scenarios": "bayesmfa.scenariorun",
    "export_restriction": "bayesmfa.scenarios",
    "no_trade": "bayesmfa.scenarios",
    "summarize_scenario": "bayesmfa.scenarios",
    "run_sensitivity": "bayesmfa.sensitivityrun",
    "run_sweep": "bayesmfa.sensitivity",
    "scale_prior_widths": "bayesmfa.sensitivity",
    "scale_step_priors": "bayesmfa.sensitivity",
    "Sweep": "bayesmfa.sensitivity",
    "leave_one_out": "bayesmfa.sensitivity",
    "likelihood_sweep": "bayesmfa.sensitivity",
    "noise_multiplier": "bayesmfa.sensitivity",
    "simulate_records": "bayesmfa.simulate",
    "prior_posterior_width": "bayesmfa.summaries",
    "summarize": "bayesmfa.summaries",
    "summarize_array": "bayesmfa.summaries",
    "summarize_with_prior": "bayesmfa.summaries",
    "summarize_quantities": "bayesmfa.summaries",
    "QuantityInfo": "bayesmfa.summaries",
    "DaskExecutor": "bayesmfa.sweeps",
    "LocalExecutor": "bayesmfa.sweeps",
    "load_system": "bayesmfa.system",
    "Stock": "bayesmfa.system",
    "System": "bayesmfa.system",
    "system_from_dict": "bayesmfa.system",
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
    from bayesmfa.balance import balance_residuals  # noqa: F401
    from bayesmfa.calibration import Calibration, Misspecification, calibrate  # noqa: F401
    from bayesmfa.cases import FolderCase, case_names, get_case, load_case, register_case  # noqa: F401
    from bayesmfa.cases.contract import Case, CaseFiles, KeyRow  # noqa: F401
    from bayesmfa.criticism import predictive_checks, value_of_information  # noqa: F401
    from bayesmfa.derived import load_derived, read_derived, summary_dataset, summary_frame, write_derived  # noqa: F401
    from bayesmfa.diagnostics import Diagnostics, Thresholds, compute_diagnostics, diagnostics_table  # noqa: F401
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
    from bayesmfa.graph import Graph  # noqa: F401
    from bayesmfa.inference import (  # noqa: F401
        CompiledFit,
        available_backends,
        compile_model,
        fit,
        sample_prior,
        with_records,
    )
    from bayesmfa.io import load, save  # noqa: F401
    from bayesmfa.model import ModelOptions, build_model  # noqa: F401
    from bayesmfa.plausibility import PlausibilityError, PlausibilityWarning  # noqa: F401
    from bayesmfa.plots import bands, default_panels, prior_posterior_bands, sankey  # noqa: F401
    from bayesmfa.powerscaling import power_scaling  # noqa: F401
    from bayesmfa.priors import Priors, load_priors, priors_from_dict  # noqa: F401
    from bayesmfa.problem import Problem, load_problem, make_problem  # noqa: F401
    from bayesmfa.records import compile_records, read_records  # noqa: F401
    from bayesmfa.report import write_report  # noqa: F401
    from bayesmfa.residuals import RecordChecks, check_records  # noqa: F401
    from bayesmfa.runner import RunResult, RunSettings, report_case, resolve_settings, run_case  # noqa: F401
    from bayesmfa.scenariorun import run_scenarios, write_scenarios  # noqa: F401
    from bayesmfa.scenarios import ScenarioSpec, export_restriction, no_trade, parse_restriction, summarize_scenario  # noqa: F401
    from bayesmfa.sensitivity import (  # noqa: F401
        SensitivityPlan,
        Sweep,
        leave_one_out,
        likelihood_sweep,
        noise_multiplier,
        run_sweep,
        scale_prior_widths,
        scale_step_priors,
    )
    from bayesmfa.sensitivityrun import run_sensitivity  # noqa: F401
    from bayesmfa.simulate import simulate_records  # noqa: F401
    from bayesmfa.summaries import (  # noqa: F401
        QuantityInfo,
        prior_posterior_width,
        summarize,
        summarize_array,
        summarize_quantities,
        summarize_with_prior,
    )
    from bayesmfa.sweeps import DaskExecutor, LocalExecutor  # noqa: F401
    from bayesmfa.system import Stock, System, load_system, system_from_dict  # noqa: F401
