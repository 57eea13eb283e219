"""The core knows no commodity: no module outside ``bayesmfa/cases/`` names a region, product or quantity of the REE case.

Checked on the code, not the prose: every identifier and every string literal that is not a
docstring, in every module of the package outside ``cases/``. Words that are the vocabulary of
material flow analysis itself (``mining``, ``refining``, ``consumption``, ``exports``, ``imports``)
are allowed: a generic system has such processes and quantities too (the starter case, the
scenario engine's ``consumption``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from bayesmfa.cases import ree

PACKAGE = Path(__file__).resolve().parents[1] / "bayesmfa"
#: Words of any material flow analysis, not of the REE case.
GENERIC = {"mining", "refining", "consumption", "exports", "imports"}


def _vocabulary() -> set[str]:
    words = set(ree.REGIONS) | {"World"} | set(ree.PRODUCTS)
    words |= {name for names in ree.PRODUCTS.values() for name in names}
    words |= set(ree.QUANTITY_INFO)
    return words - GENERIC


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                found.add(id(first.value))
    return found


def _names_in_code(path: Path, vocabulary: set[str]) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = _docstrings(tree)
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", node.value))
        elif isinstance(node, ast.Name | ast.arg):
            words = {node.id if isinstance(node, ast.Name) else node.arg}
        elif isinstance(node, ast.Attribute):
            words = {node.attr}
        else:
            continue
        hits += [f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {w}" for w in sorted(words & vocabulary)]
    return hits


def test_the_vocabulary_is_the_ree_case():
    vocabulary = _vocabulary()
    assert {"CN", "RoW", "smuggled", "oxide_trade", "unregistered_mining", "mined_refined_in_cn_share"} <= vocabulary
    # and the scan finds it where it is: in the case's own module
    assert any("smuggled" in h for h in _names_in_code(PACKAGE / "cases" / "ree.py", vocabulary))


def test_no_module_outside_cases_names_the_ree_case():
    vocabulary = _vocabulary()
    hits = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "cases" not in path.relative_to(PACKAGE).parts:
            hits += _names_in_code(path, vocabulary)
    assert not hits, "REE names in the core:\n" + "\n".join(hits)
