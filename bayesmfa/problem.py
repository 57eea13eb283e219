"""A problem: system + priors + compiled records, with a content hash for provenance."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bayesmfa.graph import Graph
from bayesmfa.priors import Priors, load_priors
from bayesmfa.records import CompiledRecords, compile_records, read_records
from bayesmfa.system import System, load_system


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
    """

    system: System
    priors: Priors
    graph: Graph
    records: CompiledRecords

    def content_hash(self, options: dict[str, Any] | None = None) -> str:
        """SHA-256 over the system text, prior text, records and model options."""
        h = hashlib.sha256()
        h.update(self.system.to_yaml().encode())
        h.update(self.priors.text.encode())
        h.update(self.records.digest().encode())
        h.update(json.dumps(options or {}, sort_keys=True, default=str).encode())
        return h.hexdigest()


def make_problem(system: System, priors: Priors, records: pd.DataFrame) -> Problem:
    """Expand the system and compile the records against it.

    Parameters
    ----------
    system : System
        The validated system.
    priors : Priors
        Prior tables.
    records : DataFrame
        Record table (see :mod:`bayesmfa.records`).
    """
    graph = Graph(system)
    return Problem(system, priors, graph, compile_records(records, graph))


def load_problem(system: str | Path, priors: str | Path, records: str | Path) -> Problem:
    """Load a problem from files: a system YAML, a prior file or directory, a record CSV or directory."""
    return make_problem(load_system(system), load_priors(priors), read_records(records))
