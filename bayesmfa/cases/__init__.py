"""Application cases: data + a thin module each. The core knows nothing about them.

A case is named either by a built-in name (``demo``, ``ree``: a module
``bayesmfa.cases.<name>`` whose files ship with the package) or by the path
of a *case folder* holding ``system.yaml``, ``priors/`` (or ``priors.yaml``)
and ``records.csv`` (or several ``records*.csv``, or a ``records/`` folder):
see :class:`FolderCase`. Both answer the same calls, ``load(root)``,
``options()``, ``summary_table(idata, problem, prob)`` and, optionally,
``write_figures(summary, idata, problem, outdir)`` and ``sampler_defaults()``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import arviz as az
    import pandas as pd

    from bayesmfa.model import ModelOptions
    from bayesmfa.problem import Problem

#: Cases that ship with the package, by name.
CASES = ("demo", "ree")
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
        from bayesmfa.datacheck import SCHEMA_FILE, require_valid
        from bayesmfa.priors import load_priors
        from bayesmfa.problem import make_problem
        from bayesmfa.records import read_records
        from bayesmfa.system import load_system

        system, priors, records = self.paths()
        if (self.folder / SCHEMA_FILE).is_file():
            require_valid(self.folder)
        return make_problem(load_system(system), load_priors(priors), read_records(records))

    def options(self) -> ModelOptions:
        """Model options: the defaults of :class:`~bayesmfa.model.ModelOptions`."""
        from bayesmfa.model import ModelOptions

        return ModelOptions()

    def summary_table(self, idata: az.InferenceData, problem: Problem, prob: float = 0.9) -> pd.DataFrame:
        """Every flow and process total per year, with the prior's interval (as the demo's)."""
        from bayesmfa.cases import demo

        return demo.summary_table(idata, problem, prob)

    def labels_file(self) -> Path:
        """The folder's optional ``labels.yaml`` (title, methods, sources, caveats, display names)."""
        return self.folder / "labels.yaml"

    def write_figures(self, summary: pd.DataFrame, idata: az.InferenceData, problem: Problem, outdir: Path) -> list[Path]:
        """The generic figures (as the demo's), labelled from the folder's ``labels.yaml`` when there is one."""
        from bayesmfa.cases import demo
        from bayesmfa.plots import load_labels

        return demo.write_figures(summary, idata, problem, outdir, label_table=load_labels(self.labels_file()))


def is_case_folder(text: str | Path) -> bool:
    """Whether ``text`` names a folder holding a ``system.yaml``."""
    return (Path(text) / "system.yaml").is_file()


def get_case(name: str | Path) -> Any:
    """The case called ``name``: a built-in case's module, or a :class:`FolderCase`.

    A built-in name (``demo``, ``ree``) wins over a folder of the same name in the
    working directory; write ``./demo`` to mean the folder.

    Raises
    ------
    ValueError
        When ``name`` is neither a built-in case nor a folder holding ``system.yaml``.
    """
    text = str(name)
    if isinstance(name, str) and text in CASES:
        return importlib.import_module(f"bayesmfa.cases.{text}")
    path = Path(text)
    if is_case_folder(path):
        return FolderCase(path)
    if path.is_dir():
        raise ValueError(f"{text}: not a case folder: no system.yaml (see `bayesmfa init`)")
    raise ValueError(f"unknown case {text!r}: neither a built-in case ({', '.join(CASES)}) nor a folder holding system.yaml")


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


def labels_file(name: str | Path, root: str | Path | None = None) -> Path:
    """Where a case keeps its optional ``labels.yaml``: in a case folder, or ``data/<name>/`` for a built-in case."""
    case = get_case(name)
    if isinstance(case, FolderCase):
        return case.labels_file()
    return project_root(root) / "data" / str(name) / "labels.yaml"


def case_label(name: str | Path) -> str:
    """A short name of the case for titles: the built-in name or the folder's name."""
    case = get_case(name)
    return case.name if isinstance(case, FolderCase) else str(name)


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
