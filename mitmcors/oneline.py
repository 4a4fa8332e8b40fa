"""Text for one line of a log or a terminal, whatever it holds. Pure: no mitmproxy import."""

from __future__ import annotations


def one_line(text: str) -> str:
    """Every character that is not printable (CR, LF, ESC, NEL, bidi controls, line
    separators) becomes its escape (``\\r``, ``\\x1b``, ``\\u202e``), so no value can end
    the line and forge the next, colour the terminal, or turn the text around."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)
