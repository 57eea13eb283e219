"""YAML reading that refuses duplicate keys (plain PyYAML keeps the last one silently)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bayesmfa.errors import LocatedError


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that raises on a repeated mapping key."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_text(path: str | Path, error: type[LocatedError]) -> str:
    """The text of a UTF-8 file (a byte-order mark is dropped), raising ``error`` naming the file otherwise.

    Parameters
    ----------
    path : str or Path
        The file to read.
    error : type of LocatedError
        The error class to raise for a missing file or one that is not UTF-8.

    Returns
    -------
    str
        The decoded text, without a leading byte-order mark.
    """
    path = Path(path)
    if not path.is_file():
        raise error("file not found", file=str(path))
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 text (byte {exc.start}: {exc.reason}); save the file as UTF-8", file=str(path)) from None


def read_yaml(path: str | Path, error: type[LocatedError]) -> Any:
    """Read a YAML file, raising ``error`` (naming the file) when it is malformed.

    Parameters
    ----------
    path : str or Path
        The file to read.
    error : type of LocatedError
        The error class to raise (``SpecError``, ``PriorError``...).

    Returns
    -------
    Any
        The parsed document.
    """
    text = read_text(path, error)
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506  (a SafeLoader: no '!!python' tag is ever constructed)
    except yaml.YAMLError as exc:
        raise error(f"malformed YAML: {_one_line(exc)}", file=str(path)) from exc


def _one_line(exc: yaml.YAMLError) -> str:
    """A YAML error on one line: the problem and where (PyYAML spreads them over several lines)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"
