"""The documentation site (mkdocs.yml, docs/) against the code it documents.

Every key the loaders accept must appear on its format page, every public name must have an API entry,
and the tutorial's case must load and pass its data check. The keys are read from the code (the loaders'
own sets and tables), so a key added to a loader without a line in the docs fails here.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import bayesmfa as bm
from bayesmfa.core import datacheck, distributions, priors, records, system

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
TUTORIAL = DOCS / "tutorial" / "twolands"


def _page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def _documented(page: str) -> set[str]:
    """Every name written as inline code on a page (`` `key` ``, `` `key: value` `` counts for ``key``)."""
    spans = re.findall(r"`([^`\n]+)`", page)
    return {s.strip() for s in spans} | {s.split(":")[0].strip() for s in spans}


def _system_keys() -> set[str]:
    """Keys read by bayesmfa.core.system: sets of allowed keys, ``_need(doc, "key", ...)`` and ``x.get("key")``."""
    tree = ast.parse(Path(system.__file__).read_text(encoding="utf-8"))
    keys: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub) and isinstance(node.right, ast.Set):
            keys |= {e.value for e in node.right.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            if isinstance(func, ast.Name) and func.id == "_need" and len(node.args) > 1:
                arg = node.args[1]
            elif isinstance(func, ast.Attribute) and func.attr == "get":
                arg = node.args[0]
            else:
                continue
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                keys.add(arg.value)
        elif isinstance(node, ast.Compare) and isinstance(node.left, ast.Constant) and isinstance(node.left.value, str):
            if any(isinstance(op, ast.In) for op in node.ops):
                keys.add(node.left.value)
    return keys


def test_system_page_lists_every_key_the_loader_reads():
    keys = _system_keys()
    assert {"name", "flows", "cross", "from_coords", "stocks", "years"} <= keys  # the parser found the loader's keys
    missing = sorted(keys - _documented(_page("formats/system.md")))
    assert not missing, f"keys of bayesmfa/core/system.py missing from docs/formats/system.md: {missing}"


def test_priors_page_lists_every_section_key_and_distribution():
    keys = set(priors.SECTIONS) | set(priors.META_KEYS) | set(priors.LIKELIHOODS) | set(priors.STEP_DISTS)
    for table in (priors._SELECT_KEYS, priors._EXTRA_KEYS, priors._ALLOWED):
        for values in table.values():
            keys |= set(values)
    for dist, params in distributions.PARAMS.items():
        keys |= {dist, *params}
    keys |= {"median", "sd_logit", "shares", "target"}
    missing = sorted(keys - _documented(_page("formats/priors.md")))
    assert not missing, f"prior keys missing from docs/formats/priors.md: {missing}"


def test_records_page_lists_every_column_unit_and_bound():
    keys = set(records.REQUIRED) | set(records.OPTIONAL) | set(records.DEFAULT_META) | set(records.SHARE_UNITS)
    keys |= {b for b in records.BOUNDS if b} | set(system.MASS_UNITS_IN_KT)
    missing = sorted(keys - _documented(_page("formats/records.md")))
    assert not missing, f"record columns or units missing from docs/formats/records.md: {missing}"


def test_schema_page_lists_every_schema_key():
    missing = sorted(set(datacheck.DEFAULT_SCHEMA) - _documented(_page("formats/schema.md")))
    assert not missing, f"schema keys missing from docs/formats/schema.md: {missing}"


def test_every_public_name_has_an_api_entry():
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted((DOCS / "api").glob("*.md")))
    entries = set(re.findall(r"^::: bayesmfa\.(\w+)\s*$", text, flags=re.MULTILINE))
    public = set(bm.__all__) - {"__version__"}
    assert not sorted(public - entries), f"public names without an API entry in docs/api/: {sorted(public - entries)}"
    assert not sorted(entries - public), f"API entries that are not public: {sorted(entries - public)}"


def test_every_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    missing = sorted(p for p in pages if p not in nav)
    assert not missing, f"pages missing from the nav of mkdocs.yml: {missing}"


def test_snippets_exist():
    for page in DOCS.rglob("*.md"):
        for path in re.findall(r'--8<-- "([^"]+)"', page.read_text(encoding="utf-8")):
            assert (ROOT / path).is_file(), f"{page}: included file {path} not found"


def test_tutorial_case_loads_and_passes_its_checks():
    assert datacheck.check_data(TUTORIAL) == []
    problem = bm.load_problem(TUTORIAL / "system.yaml", TUTORIAL / "priors", TUTORIAL)
    assert problem.warnings == ()
    tables = {Path(f).name for f in problem.records.table["file"]}
    assert tables == {"records_production.csv", "records_trade.csv"}
    assert set(problem.records.source_types) == {"customs", "production", "quota", "survey"}
    assert set(problem.records.factors) == {"exporter_reporting", "metal_content"}
    assert problem.records.is_share.sum() == 3 and (problem.records.bound == 1).sum() == 2


def test_documented_examples_load():
    """The shipped examples the format pages quote (REE keys: stocks, restricted flow ends, studentt)."""
    ree = bm.load_system(ROOT / "data" / "ree" / "system.yaml")
    assert "stockpile" in ree.stocks and ree.flows["concentrate_unregistered_trade"].to_coords == {"region": ("CN",)}
    bm.load_priors(ROOT / "priors" / "ree")
    bm.load_problem(ROOT / "data/demo/system.yaml", ROOT / "priors/demo", ROOT / "data/demo/records.csv")


@pytest.mark.skipif(shutil.which("mkdocs") is None and not (Path(sys.executable).parent / "mkdocs").exists(),
                    reason="mkdocs is not installed (pip install -e '.[dev]')")
def test_site_builds_strict(tmp_path):
    pytest.importorskip("mkdocstrings")
    pytest.importorskip("material")
    exe = Path(sys.executable).parent / "mkdocs"
    cmd = [str(exe) if exe.exists() else "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
