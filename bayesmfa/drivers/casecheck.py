"""``bayesmfa check``: validate a case's system, priors and records together, listing every error at once.

The loaders raise on the first bad entry, which suits a fit but makes writing
a new case a loop of one error per attempt. :func:`check_case` runs the same
validation, unit by unit (the system file; each prior file and entry; the
case's ``labels.yaml``; each record file and record; the priors resolved onto
every node and edge, as a fit would resolve them; the noise and factor priors
the records need; the plausibility checks), collects what fails and goes on.
No model is built.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bayesmfa.cases import get_case, project_root
from bayesmfa.cases.contract import Case
from bayesmfa.core.datacheck import SCHEMA_FILE, check_data
from bayesmfa.core.graph import Graph
from bayesmfa.core.plausibility import PlausibilityWarning, check_problem
from bayesmfa.core.priors import Priors, add_prior_doc, prior_files, resolve_named, resolve_priors
from bayesmfa.core.records import CompiledRecords, compile_records, read_records
from bayesmfa.core.system import System, load_system
from bayesmfa.errors import BayesMFAError, LocatedError, PriorError, RecordError, SpecError
from bayesmfa.yamlio import read_yaml


@dataclass
class CaseCheck:
    """What :func:`check_case` found.

    Attributes
    ----------
    errors : list of BayesMFAError
        Every error, each naming its file (and line and field where known).
    warnings : list of str
        Plausibility findings that are not errors.
    n_records : int
        Records that compiled.
    """

    errors: list[BayesMFAError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    n_records: int = 0

    @property
    def ok(self) -> bool:
        """No errors."""
        return not self.errors


def check_case(case: str | Path, root: str | Path | None = None) -> CaseCheck:
    """Validate a case (a built-in name or a case folder) without building a model.

    Parameters
    ----------
    case : str or Path
        ``demo``, ``ree`` or a case folder (see :class:`~bayesmfa.cases.FolderCase`).
    root : str or Path, optional
        For built-in cases, the folder holding ``data/`` and ``priors/``.

    Returns
    -------
    CaseCheck
        Every error found, not only the first.
    """
    found = CaseCheck()
    resolved = get_case(case)
    base = project_root(root)
    try:
        files = resolved.files(base)
    except FileNotFoundError as err:
        found.errors.append(SpecError(str(err)))
        return found
    system_path, prior_path, data_folder = files.system, files.priors, files.data
    # record files are read as they are; a case with none builds its records from its tables: checked through its loader
    records = _folder_records(list(files.records), found) if files.records else None
    system = _system(system_path, found)
    priors = _priors(prior_path, found)
    _labels(resolved, base, found)
    if data_folder is not None and (Path(data_folder) / SCHEMA_FILE).is_file():
        found.errors.extend(_data_problem(p) for p in check_data(data_folder))
    if system is None:
        return found
    try:
        graph = Graph(system)
    except SpecError as err:  # the expansion: a process instance left without incoming or outgoing flow instances
        found.errors.append(err)
        return found
    if records is None:  # a case that builds its records: its loader compiles them
        if found.errors:
            return found
        compiled = _module_records(resolved, base, found)
    else:
        try:
            compiled = compile_records(records, graph, errors=found.errors)
        except RecordError as err:  # the header: unknown or missing columns
            found.errors.append(err)
            compiled = None
    if compiled is None:
        return found
    found.n_records = len(compiled.value)
    if priors is None:
        return found
    # a section with a bad entry (left out) would report its nodes as unmatched: say only what is wrong on its own
    broken = {str(e.field).split("[")[0].split(".")[0] for e in found.errors if isinstance(e, PriorError) and e.field}
    resolution: list[BayesMFAError] = []
    resolve_priors(priors, graph, errors=resolution)
    for section, names, selector in (("noise", compiled.source_types, "source_type"), ("factors", compiled.factors, "name")):
        for name in names:
            try:
                resolve_named(priors, section, [name], selector)
            except PriorError as err:
                resolution.append(err)
    found.errors.extend(e for e in resolution if not (isinstance(e, PriorError) and e.field in broken))
    if not found.errors:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PlausibilityWarning)
            try:
                found.warnings.extend(check_problem(system, priors, graph, compiled))
            except BayesMFAError as err:
                found.errors.append(err)
    return found


def _labels(case: Case, root: Path, found: CaseCheck) -> None:
    """The case's optional ``labels.yaml``, read as ``run`` and ``report`` read it (an error names the file and key)."""
    if case.labels_file is None:
        return
    from bayesmfa.reporting.plots.labels import load_labels

    try:
        load_labels(case.labels_file(root))
    except FileNotFoundError:  # no data folder to hold one: the loaders say so
        return
    except ValueError as err:
        found.errors.append(SpecError(str(err)))


def _system(path: Path, found: CaseCheck) -> System | None:
    try:
        return load_system(path)
    except BayesMFAError as err:
        found.errors.append(err)
        return None


def _priors(path: Path, found: CaseCheck) -> Priors | None:
    """The priors' good entries (every bad one recorded), or ``None`` when a whole file could not be read."""
    priors = Priors()
    before = len(found.errors)
    try:
        files = prior_files(path)
    except PriorError as err:
        found.errors.append(err)
        return None
    for f in files:
        try:
            doc = read_yaml(f, PriorError)
        except PriorError as err:
            found.errors.append(err)
            continue
        add_prior_doc(priors, doc, file=str(f), errors=found.errors)
    unreadable = any(isinstance(e, PriorError) and not e.field for e in found.errors[before:])  # a whole file is bad
    return None if unreadable else priors


def _folder_records(paths: list[Path], found: CaseCheck) -> pd.DataFrame | None:
    """Every readable record file of a folder case, concatenated (unreadable ones recorded)."""
    frames = []
    for path in paths:
        try:
            frames.append(read_records(path))
        except RecordError as err:
            found.errors.append(err)
    return pd.concat(frames, ignore_index=True).fillna("") if frames else None


def _module_records(case: Case, root: Path, found: CaseCheck) -> CompiledRecords | None:
    """The compiled records of a case that builds them, from its loader (the first error of the loader recorded)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PlausibilityWarning)
            return case.load(root).records
    except BayesMFAError as err:
        found.errors.append(err)
        return None


def _data_problem(problem: Any) -> BayesMFAError:
    """A :class:`~bayesmfa.core.datacheck.DataProblem` as an error naming file, line and field."""
    return LocatedError(problem.message, file=problem.file, row=problem.row, field=problem.field)
