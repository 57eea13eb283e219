"""Application cases: data + a thin module each. The core knows nothing about them."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

CASES = ("demo", "ree")


def get_case(name: str) -> ModuleType:
    """The case module ``bayesmfa.cases.<name>``.

    A case module provides ``load(root) -> Problem`` and
    ``summary_table(idata, problem, prob) -> DataFrame``; optionally
    ``write_figures(summary, idata, problem, outdir)``.
    """
    if name not in CASES:
        raise ValueError(f"unknown case {name!r}; known: {list(CASES)}")
    return importlib.import_module(f"bayesmfa.cases.{name}")


def project_root(root: str | Path | None = None) -> Path:
    """The folder holding ``data/`` and ``priors/``: ``root``, else the working directory, else the source checkout."""
    if root is not None:
        if not Path(root).is_dir():
            raise FileNotFoundError(f"{root}: no such folder (the root must hold data/ and priors/)")
        return Path(root)
    cwd = Path.cwd()
    if (cwd / "data").is_dir() and (cwd / "priors").is_dir():
        return cwd
    return Path(__file__).resolve().parents[2]
