"""Linear quantity expressions of records: ``a``, ``a + b``, ``a - b``, ``2*a + 0.5*b``.

A record's ``quantity`` (and ``denominator``) is a linear combination of
named quantities with signed coefficients. This module only parses the text;
:mod:`bayesmfa.core.records` resolves the names against a system. It is shared by
the record compiler and ``bayesmfa data check``, so both read an expression
the same way.
"""

from __future__ import annotations

import re

#: A quantity name: a flow, process, group or stock, optionally with a part (``refining.input``, ``stockpile.change``).
NAME = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_]+)?"
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_TERM = re.compile(rf"\s*(?:({_NUMBER})\s*\*\s*)?({NAME})\s*")
_SIGN = re.compile(r"\s*([+-])")

SUPPORTED = "names joined by '+' or '-', each optionally times a number: 'a', 'a + b', 'a - b', '2*a + 0.5*b'"


class ExpressionError(ValueError):
    """A quantity expression that cannot be parsed; the message says what is supported."""


def parse(text: str) -> list[tuple[float, str]]:
    """The terms of a linear quantity expression as ``(coefficient, name)``, in order.

    Parameters
    ----------
    text : str
        E.g. ``"salt_trade + oxide_trade"``, ``"stockpile.change"``,
        ``"mining - 2*refining.input"``, ``"-a + b"``.

    Returns
    -------
    list of (float, str)
        One entry per term (a name given twice appears twice; the compiler
        adds their weights).

    Raises
    ------
    ExpressionError
        On an empty expression, a missing name, a dangling sign, a zero or
        non-finite coefficient, or any other text (e.g. ``a * b``, ``a / b``,
        brackets); the message quotes the expression and says what is supported.
    """
    s = str(text)
    pos, sign, out = 0, 1.0, []
    m = _SIGN.match(s, pos)
    if m and m.group(1) == "-":
        sign, pos = -1.0, m.end()
    elif m:
        pos = m.end()
    while True:
        m = _TERM.match(s, pos)
        if not m:
            raise ExpressionError(f"malformed quantity expression {s!r}: expected a name at position {pos + 1}; supported: {SUPPORTED}")
        coef = float(m.group(1)) if m.group(1) else 1.0
        if coef == 0.0 or coef != coef or coef == float("inf"):
            raise ExpressionError(f"malformed quantity expression {s!r}: coefficient {m.group(1)} must be a non-zero finite number")
        out.append((sign * coef, m.group(2)))
        pos = m.end()
        if pos == len(s):
            return out
        m = _SIGN.match(s, pos)
        if not m:
            raise ExpressionError(f"malformed quantity expression {s!r}: unexpected {s[pos:].strip()!r}; supported: {SUPPORTED}")
        sign, pos = (1.0 if m.group(1) == "+" else -1.0), m.end()


def names(text: str) -> list[str]:
    """The names of an expression's terms (for code checks), or ``[text]`` when it does not parse."""
    try:
        return [name for _, name in parse(text)]
    except ExpressionError:
        return [str(text).strip()]


def is_signed(terms: list[tuple[float, str]]) -> bool:
    """Whether an expression has a negative coefficient (its value can then take either sign)."""
    return any(c < 0 for c, _ in terms)
