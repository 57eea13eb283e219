"""A problem: system + priors + compiled records, with a content hash for provenance."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bayesmfa.core.datacheck import SCHEMA_FILE, require_valid
from bayesmfa.core.flowpriors import compile_flow_priors
from bayesmfa.core.graph import Graph
from bayesmfa.core.likelihoods import RecordLikelihoods, resolve_likelihoods
from bayesmfa.core.plausibility import check_problem
from bayesmfa.core.priors import Priors, load_priors, resolve_named, resolve_priors
from bayesmfa.core.records import CompiledRecords, compile_records, read_records
from bayesmfa.core.system import System, load_system


@dataclass(frozen=True)
class Problem:
    """Everything the model is built from.

    Attributes
    ----------
    system : System
    priors : Priors
    graph : Graph
        Node/edge expansion of ``system``.
    records : CompiledRecords
        Records compiled against ``graph``.
    warnings : tuple of str
        Findings of the plausibility checks that are not errors, one line
        each (see :mod:`bayesmfa.core.plausibility`), for a runner to list.
    flow_priors : (CompiledRecords, RecordLikelihoods) or None
        The ``flows`` priors compiled like records (see :mod:`bayesmfa.core.flowpriors`).
    """

    system: System
    priors: Priors
    graph: Graph
    records: CompiledRecords
    warnings: tuple[str, ...] = ()
    flow_priors: tuple[CompiledRecords, RecordLikelihoods] | None = None

    def content_hash(self, options: dict[str, Any] | None = None) -> str:
        """SHA-256 over the system text, prior text, records and model options."""
        h = hashlib.sha256()
        h.update(self.system.to_yaml().encode())
        h.update(self.priors.text.encode())
        h.update(self.records.digest().encode())
        h.update(json.dumps(options or {}, sort_keys=True, default=str).encode())
        return h.hexdigest()


def make_problem(system: System, priors: Priors, records: pd.DataFrame) -> Problem:
    """Expand the system, compile the records against it and check that the inputs are plausible.

    Parameters
    ----------
    system : System
        The validated system.
    priors : Priors
        Prior tables.
    records : DataFrame
        Record table (see :mod:`bayesmfa.core.records`).

    Returns
    -------
    Problem
        With the plausibility warnings (also issued as
        :class:`~bayesmfa.core.plausibility.PlausibilityWarning`) in ``warnings``.

    Raises
    ------
    RecordError
        A bad record (also a record that can take either sign without a
        normal likelihood), or (:class:`~bayesmfa.core.plausibility.PlausibilityError`)
        records that contradict each other or are implausible.
    PriorError
        A prior entry whose selectors select nothing, a node or edge without a
        prior, or a source type or factor of the records without a ``noise`` or
        ``factors`` prior: here, before any model is built.
    """
    graph = Graph(system)
    compiled = compile_records(records, graph)
    found = check_problem(system, priors, graph, compiled)
    resolve_priors(priors, graph)  # a missing prior fails here, not when a model is built
    resolve_named(priors, "factors", compiled.factors, "name")
    resolve_likelihoods(priors, compiled)  # a signed record without a normal likelihood fails here, not at fit time
    return Problem(system, priors, graph, compiled, found, compile_flow_priors(priors, graph))


def load_problem(system: str | Path, priors: str | Path, records: str | Path) -> Problem:
    """Load a problem from files: a system YAML, a prior file or directory, a record CSV or directory.

    Where a ``schema.yaml`` sits in the records' folder, the records first pass the same checks
    as ``bayesmfa data check`` (the first problem is raised, naming file, line and field).
    """
    folder = Path(records) if Path(records).is_dir() else Path(records).parent
    if (folder / SCHEMA_FILE).is_file():
        require_valid(records)
    return make_problem(load_system(system), load_priors(priors), read_records(records))
