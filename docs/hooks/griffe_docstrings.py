"""A griffe extension for the API pages: two rewrites of numpy-style docstrings before they are parsed.

1. Sphinx cross-reference roles (``:func:`x.y```, ``:class:`~a.B```), which mkdocstrings would
   print verbatim, become code spans (``~`` keeps the last component, as Sphinx shows it).
2. A paragraph that introduces a reST literal block (``Layout::``) ends with one colon: the
   indented block after it is already a code block in Markdown.
3. A parameter entry that names several parameters (``draws, tune, chains : int``) is split into
   one entry per name with the same type and description: griffe gives every name of a combined
   entry the default of the first one (``chains`` would show ``1000``), one entry each shows the
   default from the signature.

The package's source is not changed; this only affects the rendered documentation.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|data|attr|exc|obj|const):`(~?)([^`]+)`")
_COMBINED = re.compile(r"^(?P<names>[A-Za-z_*][\w*]*(?:\s*,\s*[A-Za-z_*][\w*]*)+)\s*:\s*(?P<rest>.*)$")
_HEADER_RULE = re.compile(r"^-{3,}\s*$")
_SPLIT_SECTIONS = {"parameters", "other parameters"}
_LITERAL_INTRO = re.compile(r"(?<=\S)::[ \t]*$", flags=re.MULTILINE)


def _role(match: re.Match[str]) -> str:
    target = match.group(2).strip()
    shown = target.rsplit(".", 1)[-1] if match.group(1) else target
    return f"`{shown}`"


def _split_combined(text: str) -> str:
    lines = text.splitlines()
    out: list[str] = []
    section = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if i + 1 < len(lines) and _HEADER_RULE.match(lines[i + 1]) and line.strip():
            section = line.strip().lower()
            out.extend([line, lines[i + 1]])
            i += 2
            continue
        m = _COMBINED.match(line) if section in _SPLIT_SECTIONS else None
        if m is None:
            out.append(line)
            i += 1
            continue
        body: list[str] = []
        j = i + 1
        while j < len(lines) and (not lines[j].strip() or lines[j].startswith((" ", "\t"))):
            if not lines[j].strip() and (j + 1 >= len(lines) or not lines[j + 1].startswith((" ", "\t"))):
                break
            body.append(lines[j])
            j += 1
        for name in (n.strip() for n in m.group("names").split(",")):
            out.append(f"{name} : {m.group('rest')}")
            out.extend(body)
        i = j
    return "\n".join(out)


class NumpyDocstringFixes(griffe.Extension):
    """Rewrite Sphinx roles and combined parameter entries in every docstring."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:  # noqa: D102
        doc = obj.docstring
        if doc is None or not doc.value:
            return
        doc.value = _split_combined(_LITERAL_INTRO.sub(":", _ROLE.sub(_role, doc.value)))
