"""Run a case end to end and write its results atomically into one folder."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import arviz as az

from bayesmfa.cases import get_case, project_root
from bayesmfa.diagnostics import Diagnostics, Thresholds, compute_diagnostics
from bayesmfa.inference import fit
from bayesmfa.io import save
from bayesmfa.model import ModelOptions


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
    prob: float = 0.9
    progressbar: bool = True
    options: ModelOptions = field(default_factory=ModelOptions)

    @classmethod
    def quick(cls, **overrides) -> RunSettings:
        """Short chains for smoke runs and CI (not for publication)."""
        base = {"draws": 200, "tune": 300, "chains": 2}
        base.update(overrides)
        return cls(**base)


@dataclass(frozen=True)
class RunResult:
    """What a run wrote and how the sampler did."""

    out: Path
    diagnostics: Diagnostics
    failures: list[str]


def replace_dir(tmp: Path, out: Path) -> None:
    """Move ``tmp`` to ``out``, replacing an earlier ``out`` only once ``tmp`` is complete."""
    out.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{time.time_ns()}")
        out.rename(old)
    try:
        tmp.rename(out)
    except BaseException:
        if old is not None:
            old.rename(out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def staged_dir(out: Path) -> Iterator[Path]:
    """A temporary folder beside ``out``, moved into place when the block completes.

    On any failure the temporary folder is removed and an earlier ``out`` is left untouched.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield tmp
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def run_case(
    case: str,
    out: str | Path,
    settings: RunSettings | None = None,
    *,
    root: str | Path | None = None,
    thresholds: Thresholds | None = None,
) -> RunResult:
    """Fit a case and write ``posterior.nc``, ``summary.csv``, ``diagnostics.json`` (and figures).

    Everything is written into a temporary folder beside ``out`` and moved into
    place at the end: a failed or interrupted run leaves an earlier result intact.

    Parameters
    ----------
    case : str
        Case name (``demo``, ``ree``).
    out : str or Path
        Result folder.
    settings : RunSettings, optional
        Sampler settings.
    root : str or Path, optional
        Folder with ``data/`` and ``priors/`` (default: see :func:`project_root`).
    thresholds : Thresholds, optional
        Diagnostic limits reported in ``diagnostics.json``.
    """
    thresholds = thresholds or Thresholds()
    module = get_case(case)
    root = project_root(root)
    settings = settings or RunSettings()
    if hasattr(module, "options") and settings.options == ModelOptions():
        settings = replace(settings, options=module.options())
    if hasattr(module, "sampler_defaults"):  # case defaults for what the caller left at the generic default
        generic = RunSettings()
        chosen = {k: v for k, v in module.sampler_defaults().items() if getattr(settings, k) == getattr(generic, k)}
        settings = replace(settings, **chosen)
    problem = module.load(root)
    out = Path(out)
    with staged_dir(out) as tmp:
        start = time.perf_counter()
        idata = fit(
            problem,
            options=settings.options,
            backend=settings.backend,
            draws=settings.draws,
            tune=settings.tune,
            chains=settings.chains,
            seed=settings.seed,
            target_accept=settings.target_accept,
            min_tree_depth=settings.min_tree_depth if settings.backend in ("auto", "nutpie") else None,
            progressbar=settings.progressbar,
            thresholds=thresholds,
        )
        wall = time.perf_counter() - start
        if hasattr(module, "annotate"):
            module.annotate(idata, root)
        save(idata, tmp / "posterior.nc")
        summary = module.summary_table(idata, problem, settings.prob)
        summary.to_csv(tmp / "summary.csv", index=False)
        diag = _diagnostics(idata, module, wall)
        if hasattr(module, "write_extras"):
            module.write_extras(tmp, root)
        failures = diag.failures(thresholds)
        _write_json(tmp / "diagnostics.json", diag, settings, idata, failures, thresholds)
        if hasattr(module, "write_figures"):
            module.write_figures(summary, idata, problem, tmp / "figures")
    return RunResult(out, diag, failures)


def _diagnostics(idata: az.InferenceData, module, wall: float) -> Diagnostics:
    """Diagnostics over the case's reported quantities (or every posterior variable)."""
    dataset = module.reported_dataset(idata) if hasattr(module, "reported_dataset") else None
    return compute_diagnostics(idata, dataset=dataset, wall_s=wall)


def _write_json(path: Path, diag: Diagnostics, settings: RunSettings, idata: az.InferenceData, failures, thresholds) -> None:
    attrs = idata.posterior.attrs
    doc = json.loads(diag.to_json())
    doc.update(
        {
            "settings": json.loads(attrs["settings"]),
            "model_options": json.loads(attrs["model_options"]),
            "bayesmfa_version": attrs["bayesmfa_version"],
            "content_hash": attrs["content_hash"],
            "thresholds": thresholds.__dict__,
            "passed": not failures,
            "failures": failures,
        }
    )
    path.write_text(json.dumps(doc, indent=2))
