"""No arrow runs back up: each module imports only from its own layer or the layers below it.

The layers are the subpackages (README, "Layout"), bottom to top: the base modules at the package root
(errors, YAML reading, the version), ``core`` (system, priors, records, the model, result files),
``inference`` (sampling, diagnostics, io), ``analysis`` (summaries, the derived Dataset, scenarios,
sensitivity sweeps, criticism, calibration, executors), ``reporting`` (plots, report), ``cases`` (which use
all of these through one contract) and ``drivers`` (the CLI and the functions behind its commands). Imports
made only for type checkers (``if TYPE_CHECKING:``) are not arrows at run time and are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bayesmfa"
BASE = {"errors", "yamlio", "_version"}
LAYERS: dict[str, set[str]] = {
    "base": BASE,
    "core": {"core"},
    "inference": {"inference"},
    "analysis": {"analysis"},
    "reporting": {"reporting"},
    "cases": {"cases"},
    "drivers": {"drivers", "__main__"},  # python -m bayesmfa runs the CLI
}
ORDER = list(LAYERS)


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "bayesmfa":
        return None
    if len(parts) == 1:
        return "package"
    return next((name for name, members in LAYERS.items() if parts[1] in members), f"unlisted:{parts[1]}")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_submodule(name: str) -> bool:
    return (PACKAGE / f"{name}.py").is_file() or (PACKAGE / name / "__init__.py").is_file()


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skip


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_nodes(tree)
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "bayesmfa":  # from bayesmfa import forward: a submodule; from bayesmfa import X: the root
                found += [(node.lineno, f"bayesmfa.{a.name}" if _is_submodule(a.name) else "bayesmfa") for a in node.names]
            else:
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    return found


def test_the_scan_sees_what_it_must(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from typing import TYPE_CHECKING\nfrom bayesmfa import analysis, __version__\nimport bayesmfa.drivers.cli\n"
                     "from bayesmfa.reporting import plots\nif TYPE_CHECKING:\n    from bayesmfa.cases import Case\n")
    ours = [(line, m) for line, m in _imports(probe) if m.startswith("bayesmfa")]  # the TYPE_CHECKING import left out
    assert ours == [(2, "bayesmfa.analysis"), (2, "bayesmfa"), (3, "bayesmfa.drivers.cli"), (4, "bayesmfa.reporting")]
    assert [_layer(m) for _, m in ours] == ["analysis", "package", "drivers", "reporting"]


def test_the_package_root_holds_only_the_base_and_the_layers():
    loose = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in BASE | {"__init__", "__main__"})
    assert not loose, f"modules at the package root outside the base layer: {loose} (put them in their layer's subpackage)"
    packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    assert packages == sorted(set().union(*LAYERS.values()) - BASE - {"__main__"})


def test_every_module_has_a_layer():
    modules = {_module_name(p) for p in PACKAGE.rglob("*.py")} - {"bayesmfa"}
    unlisted = sorted(m for m in modules if _layer(m).startswith("unlisted"))
    assert not unlisted, f"modules in no layer of tests/test_layers.py: {unlisted}"


def test_no_import_runs_back_up():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        me = _module_name(path)
        mine = _layer(me)
        if mine == "package":  # the package root re-exports the public API, lazily
            continue
        for line, target in _imports(path):
            theirs = _layer(target)
            if theirs is None or theirs.startswith("unlisted"):
                continue
            if theirs == "package":
                upward.append(f"{me}:{line} imports the package root (import the module that defines the name)")
            elif ORDER.index(theirs) > ORDER.index(mine):
                upward.append(f"{me}:{line} [{mine}] imports {target} [{theirs}]")
    assert not upward, "imports that run back up:\n" + "\n".join(upward)


def test_library_code_chooses_no_matplotlib_backend():
    offenders = [str(p.relative_to(PACKAGE.parent)) for p in PACKAGE.rglob("*.py")
                 if "matplotlib.use(" in p.read_text(encoding="utf-8")]
    assert not offenders, f"library modules that call matplotlib.use(): {offenders}"
