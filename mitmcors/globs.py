"""Globs of the rule files, compiled once to anchored regular expressions.

Deliberately smaller than fnmatch: ``*`` (any run of characters, ``/`` included),
``?`` (one character) and ``[...]`` classes (``[!...]`` negates). Unlike fnmatch, an
unclosed ``[`` is an error rather than a literal, so a typo is reported, not ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

GLOB_CHARACTERS = frozenset("*?[")


def is_literal(glob: str) -> bool:
    """True when the glob matches exactly one string (itself), so it can be indexed."""
    return not GLOB_CHARACTERS.intersection(glob)


def glob_to_regex(glob: str) -> str:
    """Translate one glob to a regular expression; raise ValueError when it is malformed."""
    if not glob:
        raise ValueError("empty glob")
    parts: list[str] = []
    i = 0
    while i < len(glob):
        char = glob[i]
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        elif char == "[":
            end = _class_end(glob, i)
            parts.append(_class_to_regex(glob[i + 1 : end]))
            i = end
        else:
            parts.append(re.escape(char))
        i += 1
    regex = "".join(parts)
    try:
        re.compile(regex)
    except re.error as e:  # a reversed range such as [z-a]
        raise ValueError(f"invalid character class in {glob!r}: {e.msg}") from None
    return regex


def _class_end(glob: str, start: int) -> int:
    """Index of the ``]`` closing the class opened at ``start``; a leading ``]`` is literal."""
    i = start + 1
    if i < len(glob) and glob[i] == "!":
        i += 1
    if i < len(glob) and glob[i] == "]":
        i += 1
    end = glob.find("]", i)
    if end < 0:
        raise ValueError(f"unclosed '[' at position {start + 1} in {glob!r}")
    return end


def _class_to_regex(body: str) -> str:
    negate = body.startswith("!")
    if negate:
        body = body[1:]
    escaped = body.replace("\\", "\\\\").replace("^", "\\^").replace("[", "\\[")
    return f"[{'^' if negate else ''}{escaped}]"


def compile_globs(globs: Iterable[str], ignore_case: bool) -> re.Pattern[str]:
    """One pattern matching (with ``fullmatch``) any of the globs."""
    alternatives = "|".join(f"(?:{glob_to_regex(glob)})" for glob in globs)
    return re.compile(alternatives, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)
