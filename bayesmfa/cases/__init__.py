"""Application cases: data + a thin module each. The core knows nothing about them.

A case is named either by a registered name (built in: ``demo``, ``ree``, whose
files ship with the package; or added by another package through the
``bayesmfa.cases`` entry-point group or :func:`register_case`) or by the path of
a *case folder* holding ``system.yaml``, ``priors/`` (or ``priors.yaml``) and
``records.csv`` (or several ``records*.csv``, or a ``records/`` folder): see
:class:`FolderCase`. Either way :func:`get_case` gives one
:class:`~bayesmfa.cases.contract.Case`, the typed contract the core works with.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import arviz as az
    import pandas as pd
    import xarray as xr

    from bayesmfa.cases.contract import Case, CaseFiles
    from bayesmfa.core.problem import Problem

#: Cases that ship with the package, by name (each module ``bayesmfa.cases.<name>`` has ``case() -> Case``).
CASES = ("demo", "ree")
#: Entry-point group through which another package adds cases (``name = "package.module:case_factory"``).
ENTRY_POINT_GROUP = "bayesmfa.cases"
_REGISTERED: dict[str, Callable[[], Case]] = {}
#: Where a wheel keeps the shipped ``data/`` and ``priors/`` (``setup.py`` copies them there).
BUNDLED = Path(__file__).resolve().parents[1] / "_bundled"


@dataclass(frozen=True)
class FolderCase:
    """A case read from one folder: ``system.yaml``, priors and records, nothing else.

    Layout (the files ``bayesmfa init`` writes)::

        NAME/
          system.yaml         the system (processes, flows, dims, years, unit)
          priors/*.yaml       prior files (or one priors.yaml)
          records.csv         records (or records*.csv, or records/*.csv)
          schema.yaml         optional: column rules for ``bayesmfa data check``
          labels.yaml         optional: report title, methods, sources, caveats, display names

    Attributes
    ----------
    folder : Path
        The case folder.
    """

    folder: Path

    @property
    def name(self) -> str:
        """The folder's name."""
        return self.folder.resolve().name

    def paths(self) -> tuple[Path, Path, list[Path]]:
        """System file, prior folder or file, and record files of the case.

        Raises
        ------
        FileNotFoundError
            Naming the folder and what is missing.
        """
        system = self.folder / "system.yaml"
        if not system.is_file():
            raise FileNotFoundError(f"{self.folder}: not a case folder: no system.yaml (see `bayesmfa init`)")
        priors = self.folder / "priors"
        if not priors.is_dir():
            priors = self.folder / "priors.yaml"
        if not priors.exists():
            raise FileNotFoundError(f"{self.folder}: no priors/ folder and no priors.yaml")
        records = sorted(self.folder.glob("records*.csv"))
        if (self.folder / "records").is_dir():
            records += sorted((self.folder / "records").glob("*.csv"))
        if not records:
            raise FileNotFoundError(f"{self.folder}: no records.csv, records*.csv or records/*.csv")
        return system, priors, records

    def load(self, root: Path | None = None) -> Problem:
        """The problem from the folder's files (``root`` is ignored: the folder is the root)."""
        from bayesmfa.core.datacheck import SCHEMA_FILE, require_valid
        from bayesmfa.core.priors import load_priors
        from bayesmfa.core.problem import make_problem
        from bayesmfa.core.records import read_records
        from bayesmfa.core.system import load_system

        system, priors, records = self.paths()
        if (self.folder / SCHEMA_FILE).is_file():
            require_valid(self.folder)
        return make_problem(load_system(system), load_priors(priors), read_records(records))

    def files(self, root: Path | None = None) -> CaseFiles:
        """The folder's inputs (``root`` is ignored: the folder is the root)."""
        from bayesmfa.cases.contract import CaseFiles

        system, priors, records = self.paths()
        return CaseFiles(system, priors, tuple(records), self.folder)

    def summary_table(self, idata: az.InferenceData, problem: Problem, prob: float = 0.9) -> pd.DataFrame:
        """Every flow and process total per year, with the prior's interval (as the demo's)."""
        from bayesmfa.cases import demo

        return demo.summary_table(idata, problem, prob)

    def labels_file(self, root: Path | None = None) -> Path:
        """The folder's optional ``labels.yaml`` (title, methods, sources, caveats, display names)."""
        return self.folder / "labels.yaml"

    def write_figures(self, derived: xr.Dataset, idata: az.InferenceData, problem: Problem, outdir: Path) -> list[Path]:
        """The generic figures (as the demo's), labelled from the folder's ``labels.yaml`` when there is one."""
        from bayesmfa.cases import demo
        from bayesmfa.reporting.plots import load_labels

        return demo.write_figures(derived, idata, problem, outdir, label_table=load_labels(self.labels_file()))

    def case(self) -> Case:
        """The folder as a :class:`~bayesmfa.cases.contract.Case`: generic summary, figures and sensitivity plan."""
        from bayesmfa.cases.contract import Case

        return Case(name=self.name, files=self.files, load=self.load, summary_table=self.summary_table,
                    labels_file=self.labels_file, write_figures=self.write_figures)


def is_case_folder(text: str | Path) -> bool:
    """Whether ``text`` names a folder holding a ``system.yaml``."""
    return (Path(text) / "system.yaml").is_file()


def register_case(name: str, factory: Callable[[], Case]) -> None:
    """Make ``factory()`` the case called ``name`` (for ``get_case``, ``bayesmfa run NAME`` and the CLI's choices).

    Raises
    ------
    ValueError
        When ``name`` is a built-in case's name or not a plain identifier.
    """
    if name in CASES:
        raise ValueError(f"case {name!r} is built in and cannot be replaced")
    if not name.replace("-", "_").isidentifier():
        raise ValueError(f"case name {name!r}: use letters, digits, '_' and '-'")
    _REGISTERED[name] = factory


def _entry_point_cases() -> dict[str, Callable[[], Case]]:
    found = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in CASES:
            found[ep.name] = ep.load
    return found


def case_names() -> tuple[str, ...]:
    """Every case that can be named without a path: built in, then registered, then from entry points."""
    extra = [n for n in (*_REGISTERED, *_entry_point_cases()) if n not in CASES]
    return CASES + tuple(dict.fromkeys(extra))


def get_case(name: str | Path) -> Case:
    """The case called ``name``: a built-in or registered case, or a case folder, as a :class:`~bayesmfa.cases.contract.Case`.

    A case name wins over a folder of the same name in the working directory;
    write ``./demo`` to mean the folder.

    Raises
    ------
    ValueError
        When ``name`` is neither a known case nor a folder holding ``system.yaml``.
    """
    from bayesmfa.cases.contract import Case

    text = str(name)
    if isinstance(name, str):
        if text in CASES:
            return importlib.import_module(f"bayesmfa.cases.{text}").case()
        factory = _REGISTERED.get(text) or _entry_point_cases().get(text)
        if factory is not None:
            made = factory()
            if callable(made) and not isinstance(made, Case):  # an entry point naming the factory's module attribute
                made = made()
            if not isinstance(made, Case):
                raise TypeError(f"case {text!r}: its factory returned {type(made).__name__}, not a bayesmfa Case")
            return made
    path = Path(text)
    if is_case_folder(path):
        return FolderCase(path).case()
    if path.is_dir():
        raise ValueError(f"{text}: not a case folder: no system.yaml (see `bayesmfa init`)")
    raise ValueError(f"unknown case {text!r}: neither a known case ({', '.join(case_names())}) nor a folder holding system.yaml")


def load_case(name: str | Path, root: str | Path | None = None) -> Problem:
    """The problem of a case (built-in name or case folder), as ``bayesmfa run`` loads it.

    Parameters
    ----------
    name : str or Path
        ``demo``, ``ree`` or the path of a case folder.
    root : str or Path, optional
        For built-in cases: the folder holding ``data/`` and ``priors/`` (default:
        see :func:`project_root`). Ignored for a case folder.
    """
    return get_case(name).load(project_root(root))


def labels_file(name: str | Path | Case, root: str | Path | None = None) -> Path | None:
    """Where a case keeps its optional ``labels.yaml`` (``None`` when the case names none)."""
    case = get_case(name) if isinstance(name, str | Path) else name
    return None if case.labels_file is None else case.labels_file(None if root is None else Path(root))


def project_root(root: str | Path | None = None) -> Path:
    """The folder holding the built-in cases' ``data/`` and ``priors/``.

    ``root`` when given; else the working directory when it holds both ``data/``
    and ``priors/``; else the source checkout this package runs from; else the
    copies that a wheel install ships inside the package (``bayesmfa/_bundled``).
    """
    if root is not None:
        if not Path(root).is_dir():
            raise FileNotFoundError(f"{root}: no such folder (the root must hold data/ and priors/)")
        return Path(root)
    for candidate in (Path.cwd(), Path(__file__).resolve().parents[2], BUNDLED):
        if (candidate / "data").is_dir() and (candidate / "priors").is_dir():
            return candidate
    raise FileNotFoundError(
        "the built-in cases' data/ and priors/ were found neither in the current folder, nor in a source checkout, "
        f"nor in {BUNDLED} (reinstall bayesmfa, or pass --root)"
    )
