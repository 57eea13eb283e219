"""bayesmfa: Bayesian material flow analysis with PyMC.

Flows are latent variables balanced by construction; priors and records are
data; results are ArviZ InferenceData with named dims and tidy summaries.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bayesmfa")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

from bayesmfa.balance import balance_residuals
from bayesmfa.cases import FolderCase, get_case, load_case
from bayesmfa.criticism import predictive_checks, value_of_information
from bayesmfa.diagnostics import Diagnostics, Thresholds, compute_diagnostics
from bayesmfa.errors import (
    BayesMFAError,
    DiagnosticsError,
    OutputError,
    PriorError,
    ProvenanceError,
    RecordError,
    ResultFileError,
    SpecError,
)
from bayesmfa.graph import Graph
from bayesmfa.inference import available_backends, fit, sample_prior
from bayesmfa.io import load, save
from bayesmfa.model import ModelOptions, build_model
from bayesmfa.plausibility import PlausibilityError, PlausibilityWarning
from bayesmfa.powerscaling import power_scaling
from bayesmfa.priors import Priors, load_priors, priors_from_dict
from bayesmfa.problem import Problem, load_problem, make_problem
from bayesmfa.records import compile_records, read_records
from bayesmfa.report import write_report
from bayesmfa.residuals import RecordChecks, check_records
from bayesmfa.runner import RunResult, RunSettings, run_case
from bayesmfa.scenariorun import ScenarioSpec, parse_restriction, run_scenarios, write_scenarios
from bayesmfa.scenarios import export_restriction, no_trade
from bayesmfa.sensitivity import Sweep, run_sensitivity, run_sweep, scale_prior_widths, scale_step_priors
from bayesmfa.simulate import simulate_records
from bayesmfa.summaries import prior_posterior_width, summarize, summarize_array, summarize_with_prior
from bayesmfa.sweeps import DaskExecutor, LocalExecutor
from bayesmfa.system import Stock, System, load_system, system_from_dict

__all__ = [
    "FolderCase",
    "get_case",
    "load_case",
    "RunResult",
    "RunSettings",
    "run_case",
    "RecordChecks",
    "Stock",
    "check_records",
    "prior_posterior_width",
    "sample_prior",
    "summarize_with_prior",
    "BayesMFAError",
    "DaskExecutor",
    "LocalExecutor",
    "ScenarioSpec",
    "Sweep",
    "export_restriction",
    "no_trade",
    "parse_restriction",
    "power_scaling",
    "predictive_checks",
    "run_scenarios",
    "run_sensitivity",
    "run_sweep",
    "scale_prior_widths",
    "scale_step_priors",
    "value_of_information",
    "write_report",
    "write_scenarios",
    "Diagnostics",
    "DiagnosticsError",
    "OutputError",
    "PlausibilityError",
    "PlausibilityWarning",
    "Graph",
    "ModelOptions",
    "PriorError",
    "Priors",
    "Problem",
    "ProvenanceError",
    "RecordError",
    "ResultFileError",
    "SpecError",
    "System",
    "Thresholds",
    "__version__",
    "available_backends",
    "balance_residuals",
    "build_model",
    "compile_records",
    "compute_diagnostics",
    "fit",
    "load",
    "load_priors",
    "load_problem",
    "load_system",
    "make_problem",
    "priors_from_dict",
    "read_records",
    "save",
    "simulate_records",
    "summarize",
    "summarize_array",
    "system_from_dict",
]
