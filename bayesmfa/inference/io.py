"""Saving and loading fits: atomic netCDF writes and a provenance check on load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import arviz as az
import yaml

from bayesmfa.core.forward import Layout, is_derived
from bayesmfa.core.model import ModelOptions
from bayesmfa.core.outputs import atomic_write, file_mode  # noqa: F401  (atomic_write: re-exported for callers of io)
from bayesmfa.core.problem import Problem
from bayesmfa.errors import ProvenanceError, ResultFileError


def save(idata: az.InferenceData, path: str | Path) -> Path:
    """Save a fit to netCDF atomically (write to a temporary file, then rename).

    The named arrays (``flow_*``, ``input_*``, ``output_*``, ``external_*``,
    ``share``) of the ``posterior`` and ``prior`` groups are not written when
    the parameters they derive from are in the file: :func:`load` recomputes
    them exactly, so the file holds the parameters only (about a tenth of the
    size), compressed. Every other group (``prior_predictive``,
    ``log_likelihood``, ...) is written as it is.
    """
    slim = _without_derived(idata)
    return atomic_write(path, lambda tmp: slim.to_netcdf(str(tmp), compress=True))


def _without_derived(idata: az.InferenceData) -> az.InferenceData:
    """A shallow copy of ``idata`` whose posterior and prior hold no recomputable named array."""
    groups = {}
    for g in idata.groups():
        ds = idata[g]
        if g in ("posterior", "prior") and "input_log_level" in ds and "system_yaml" in idata.posterior.attrs:
            ds = ds.drop_vars([v for v in ds.data_vars if is_derived(str(v))])
            ds.attrs = {**ds.attrs, "derived_arrays": "recomputed on load by bayesmfa.inference.io.load"}
        groups[g] = ds
    return az.InferenceData(**groups)


def with_derived(idata: az.InferenceData) -> az.InferenceData:
    """Recompute the named arrays of a fit saved without them (from its stored system and options)."""
    attrs = idata.posterior.attrs
    if "derived_arrays" not in attrs:
        return idata
    from bayesmfa.core.graph import Graph
    from bayesmfa.core.system import system_from_dict
    from bayesmfa.inference.sampling import add_derived

    options = stored_options(idata)
    system = system_from_dict(yaml.safe_load(attrs["system_yaml"]), file="posterior attrs", source_text=attrs["system_yaml"])
    add_derived(idata, Layout.from_options(Graph(system), options))
    for g in ("posterior", "prior"):
        if g in idata.groups():
            idata[g].attrs.pop("derived_arrays", None)
    return idata


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
    FileNotFoundError
        When there is no file at ``path``.
    ResultFileError
        When the file cannot be read as a fit (corrupt, truncated, not netCDF, no posterior).
    ProvenanceError
        When the file's content hash differs from the one of ``problem``.
    """
    idata = _read(Path(path))
    if problem is not None:
        _check_provenance(idata, path, problem, options or ModelOptions())
    return idata


def _read(path: Path) -> az.InferenceData:
    """Read a whole fit into memory, naming the file in any error."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if not path.is_file():
        raise ResultFileError(f"{path}: not a readable bayesmfa result (not a file)")
    try:
        idata = az.from_netcdf(str(path))
        idata.load()  # read everything so the file is not held open
    except Exception as exc:  # h5py, netCDF and arviz raise many types for a damaged file
        raise ResultFileError(f"{path}: not a readable bayesmfa result ({_brief(exc)})") from exc
    if "posterior" not in idata.groups():
        raise ResultFileError(f"{path}: not a readable bayesmfa result (no posterior group)")
    try:
        return with_derived(idata)
    except Exception as exc:  # a stored system or parameter set that does not fit together
        raise ResultFileError(f"{path}: not a readable bayesmfa result ({_brief(exc)})") from exc


def _brief(exc: BaseException, limit: int = 200) -> str:
    """``Type: first line of the message``, shortened to ``limit`` characters."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


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

    def frozen(value: Any) -> Any:  # JSON lists back to the tuples (of tuples) the options hold
        return tuple(frozen(v) for v in value) if isinstance(value, list) else value

    return ModelOptions(**{k: frozen(v) for k, v in raw.items()})


def fit_options(idata: az.InferenceData, options: ModelOptions | None = None) -> ModelOptions:
    """The model options an analysis of ``idata`` must use: the fit's own.

    An analysis that rebuilds the model (predictive checks, power-scaling) with other
    options than the fit's would silently analyse another model.

    Parameters
    ----------
    idata : InferenceData
        A fit of bayesmfa (its options are stored in ``posterior.attrs["model_options"]``).
    options : ModelOptions, optional
        Options the caller passes; they must equal the fit's when the fit stores its own.

    Returns
    -------
    ModelOptions
        The fit's options; ``options`` (or the defaults) for a fit that stores none.

    Raises
    ------
    ValueError
        When ``options`` differ from the fit's, naming the fields that differ.
    """
    if "model_options" not in idata.posterior.attrs:
        return options or ModelOptions()
    stored = stored_options(idata)
    if options is not None and options != stored:
        ours, theirs = options.as_dict(), stored.as_dict()
        fields = sorted(k for k in set(ours) | set(theirs) if json.dumps(ours.get(k)) != json.dumps(theirs.get(k)))
        raise ValueError(f"model options {fields} differ from those the fit was made with; pass the fit's options or none")
    return stored


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
    ResultFileError
        When the file cannot be read as a fit.
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
