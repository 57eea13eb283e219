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
    path = Path(path)
    if not path.is_file():
        raise error("file not found", file=str(path))
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506
    except yaml.YAMLError as exc:
        raise error(f"malformed YAML: {exc}", file=str(path)) from exc
