"""Saving and loading fits: atomic netCDF writes and a provenance check on load."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import arviz as az

from bayesmfa.errors import ProvenanceError
from bayesmfa.model import ModelOptions
from bayesmfa.problem import Problem


def atomic_write(path: str | Path, writer: Callable[[Path], None]) -> Path:
    """Write a file through ``writer(tmp_path)`` then rename it into place.

    A failure leaves any earlier file at ``path`` untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        writer(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save(idata: az.InferenceData, path: str | Path) -> Path:
    """Save a fit to netCDF atomically (write to a temporary file, then rename)."""
    return atomic_write(path, lambda tmp: idata.to_netcdf(str(tmp)))


def load(path: str | Path, problem: Problem | None = None, options: ModelOptions | None = None) -> az.InferenceData:
    """Load a fit; with ``problem``, refuse a file built from different inputs.

    Parameters
    ----------
    path : str or Path
        A netCDF file written by :func:`save`.
    problem : Problem, optional
        The inputs the caller expects the fit to come from.
    options : ModelOptions, optional
        The model options expected (defaults when omitted).

    Raises
    ------
    ProvenanceError
        When the file's content hash differs from the one of ``problem``.
    """
    idata = az.from_netcdf(str(path))
    idata.load()  # read everything so the file is not held open
    if problem is not None:
        _check_provenance(idata, path, problem, options or ModelOptions())
    return idata


def _check_provenance(idata: az.InferenceData, path: str | Path, problem: Problem, options: ModelOptions) -> None:
    stored = idata.posterior.attrs.get("content_hash")
    expected = problem.content_hash(options.as_dict())
    if stored != expected:
        raise ProvenanceError(
            f"{path} was built from different inputs (hash {str(stored)[:12]}… vs expected {expected[:12]}…): "
            "system, priors, records or model options changed; refit"
        )


def stored_options(idata: az.InferenceData) -> ModelOptions:
    """The model options a fit was made with (from its provenance attrs)."""
    raw = json.loads(idata.posterior.attrs.get("model_options", "{}"))
    return ModelOptions(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})


def load_result(path: str | Path, problem: Problem, options: ModelOptions | None = None, *, what: str = "fit") -> az.InferenceData:
    """Load the fit of a ``bayesmfa run`` result folder (its ``posterior.nc``) or of the file itself, checked against ``problem``.

    Parameters
    ----------
    path : str or Path
        Result folder or netCDF file.
    problem : Problem
        The inputs the fit must come from.
    options : ModelOptions, optional
        The model options expected; default: those stored in the file.
    what : str
        What the caller calls the fit, for the error message.

    Raises
    ------
    FileNotFoundError
        When there is no fit at ``path``.
    ProvenanceError
        When the fit was built from other inputs.
    """
    file = Path(path)
    file = file / "posterior.nc" if file.is_dir() else file
    if not file.exists():
        raise FileNotFoundError(f"{file}: no {what} here (expected a 'bayesmfa run' result folder or its posterior.nc)")
    idata = load(file)
    _check_provenance(idata, file, problem, options or stored_options(idata))
    return idata
