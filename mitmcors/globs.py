"""Globs of the rule files, compiled once to anchored regular expressions that cannot
backtrack more than once over the text.

Deliberately smaller than fnmatch: ``*`` (any run of characters, ``/`` included),
``?`` (one character) and ``[...]`` classes (``[!...]`` negates). Unlike fnmatch, an
unclosed ``[`` is an error rather than a literal, so a typo is reported, not ignored.

A glob is runs of one-character atoms separated by stars. Translated naively (a ``.*``
per star), a failing match tries every way of sharing the text among the stars: n to
the power of the stars, on the event loop, for a text the client chose. Instead every
run between two stars is placed at its leftmost occurrence, for good: that is always
right for a glob, since the next star absorbs whatever the run leaves behind. Python
3.10's ``re`` has no atomic groups, so the run sits in a lookahead the engine never
re-enters (``(?=(?P<g>.*?RUN))(?P=g)``, as ``fnmatch.translate`` did before 3.11).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

GLOB_CHARACTERS = frozenset("*?[")


def is_literal(glob: str) -> bool:
    """True when the glob matches exactly one string (itself), so it can be indexed."""
    return not GLOB_CHARACTERS.intersection(glob)


def glob_to_regex(glob: str, group: str = "g") -> str:
    """Translate one glob to a regular expression; raise ValueError when it is malformed.

    For a text of n characters, ``fullmatch`` costs at most O(n·L), L the longest run
    after a star (each such run is searched for once, from where the previous one
    ended), whatever the number of stars. ``group`` prefixes the names of the capturing
    groups, which must differ between the globs of one pattern.
    """
    if not glob:
        raise ValueError("empty glob")
    first, *rest = _runs(glob)
    regex = first
    if rest:
        *middle, last = rest
        for index, run in enumerate(filter(None, middle)):
            regex += f"(?=(?P<{group}{index}>.*?{run}))(?P={group}{index})"
        regex += f".*{last}"
    return regex


def _runs(glob: str) -> list[str]:
    """The regular expressions of the runs between stars (empty ones included)."""
    runs: list[str] = []
    atoms: list[str] = []
    i = 0
    while i < len(glob):
        char = glob[i]
        if char == "*":
            runs.append("".join(atoms))
            atoms = []
        elif char == "?":
            atoms.append(".")
        elif char == "[":
            end = _class_end(glob, i)
            atoms.append(_class_to_regex(glob, glob[i + 1 : end]))
            i = end
        else:
            atoms.append(re.escape(char))
        i += 1
    return [*runs, "".join(atoms)]


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


def _class_to_regex(glob: str, body: str) -> str:
    """The class as a regular expression, checked on its own: the only part that can be
    malformed, and compiling it alone (cached when repeated) is cheaper than the glob."""
    negate = body.startswith("!")
    if negate:
        body = body[1:]
    escaped = body.replace("\\", "\\\\").replace("^", "\\^").replace("[", "\\[")
    regex = f"[{'^' if negate else ''}{escaped}]"
    try:
        re.compile(regex)
    except re.error as e:  # a reversed range such as [z-a]
        raise ValueError(f"invalid character class in {glob!r}: {e.msg}") from None
    return regex


def compile_globs(globs: Iterable[str], ignore_case: bool) -> re.Pattern[str]:
    """One pattern matching (with ``fullmatch``) any of the globs; it costs the sum of theirs."""
    return _compiled(tuple(globs), ignore_case)


@functools.lru_cache(maxsize=1024)  # rule files repeat their globs ('/api/*' rule after rule)
def _compiled(globs: tuple[str, ...], ignore_case: bool) -> re.Pattern[str]:
    alternatives = "|".join(f"(?:{glob_to_regex(glob, f'g{i}_')})" for i, glob in enumerate(globs))
    return re.compile(alternatives, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)
