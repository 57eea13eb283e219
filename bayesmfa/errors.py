"""Error types that name the file, row and field of bad input, and the result files or folders at fault."""

from __future__ import annotations


class BayesMFAError(ValueError):
    """Base class for every input error raised by bayesmfa."""


class LocatedError(BayesMFAError):
    """An input error located in a file, row and field.

    Parameters
    ----------
    message : str
        What is wrong.
    file : str, optional
        The file (or ``"<dict>"`` for in-memory specs).
    row : int, optional
        Line of a table as an editor shows it (the header is line 1); ``None`` for YAML.
    field : str, optional
        Column name (tables) or dotted key path (YAML).
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        field: str | None = None,
    ) -> None:
        self.file = file
        self.row = row
        self.field = field
        self.reason = message
        parts = []
        if file is not None:
            parts.append(str(file))
        if row is not None:
            parts.append(f"line {row}")
        if field is not None:
            parts.append(f"field '{field}'")
        where = " ".join(parts)
        super().__init__(f"{where}: {message}" if where else message)


class SpecError(LocatedError):
    """The system specification is invalid."""


class PriorError(LocatedError):
    """A prior specification is missing, malformed or impossible."""


class RecordError(LocatedError):
    """An observation record is invalid or matches nothing."""


class ProvenanceError(BayesMFAError):
    """A saved result was built from different inputs than the ones given."""


class DiagnosticsError(BayesMFAError):
    """Sampler diagnostics failed the configured thresholds."""


class OutputError(BayesMFAError):
    """An output path holds something bayesmfa may not replace (see :func:`bayesmfa.core.outputs.check_out`)."""


class ResultFileError(BayesMFAError):
    """A result file (e.g. ``posterior.nc``) exists but cannot be read as a bayesmfa result."""
