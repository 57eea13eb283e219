"""Saving and loading fits: atomic netCDF writes and a provenance check on load."""

from __future__ import annotations

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
        stored = idata.posterior.attrs.get("content_hash")
        expected = problem.content_hash((options or ModelOptions()).as_dict())
        if stored != expected:
            raise ProvenanceError(
                f"{path} was built from different inputs (hash {str(stored)[:12]}… vs expected {expected[:12]}…): "
                "system, priors, records or model options changed; refit"
            )
    return idata
