"""Build hook: a wheel carries the built-in cases' ``data/`` and ``priors/`` as package data.

In the repository they stay at the top level (``data/``, ``priors/``); a built
wheel gets copies under ``bayesmfa/_bundled/`` so that ``bayesmfa run ree``
works from any folder after ``pip install bayesmfa``. Editable installs read
the checkout directly (see ``bayesmfa.cases.project_root``). Everything else
is declared in ``pyproject.toml``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
#: Top-level folders copied into the wheel, and what of them is left out.
BUNDLED = ("data", "priors")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


class BuildPyWithCases(build_py):
    """``build_py`` that also copies ``data/`` and ``priors/`` into ``bayesmfa/_bundled/``."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "bayesmfa" / "_bundled"
        for name in BUNDLED:
            src = HERE / name
            if not src.is_dir():
                raise FileNotFoundError(f"{src}: missing; a wheel must ship the built-in cases")
            dst = target / name
            if dst.exists():
                shutil.rmtree(dst)
            shutil.copytree(src, dst, ignore=SKIP)


setup(cmdclass={"build_py": BuildPyWithCases})
