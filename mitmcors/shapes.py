"""A response's shape: what the CORS actions and verdicts read of its header lines,
as a key to remember their outcomes by.

A backend answers the same few shapes again and again: Date, Content-Length, ETag or a
request id differ from one response to the next, but the header names and the CORS
headers do not. So an outcome worked out for one shape (a verdict, a rewrite) is looked
up for the next response of that shape instead of worked out again. Pure: no mitmproxy
import.
"""

from __future__ import annotations

from typing import Hashable, TypeVar, Union

RawFields = tuple[tuple[bytes, bytes], ...]  # header lines as they came, as mitmproxy holds them
Shape = tuple[Union[bytes, tuple[bytes, bytes]], ...]

_VALUES_READ = (b"access-control-", b"vary", b"location")
"""The lines whose values, not only names, an action or a verdict reads: the CORS
headers, Vary (a rewrite appends to it), Location (where a redirect leads)."""
LONGEST_VALUE = 256
"""Longer values read (hostile ones among them) make a shape of their own: never remembered."""


def as_text(data: bytes) -> str:
    """Header bytes as text, losslessly (mitmproxy's own convention), to reason on them."""
    return data.decode("utf-8", "surrogateescape")


def as_bytes(text: str) -> bytes:
    """``as_text`` undone."""
    return text.encode("utf-8", "surrogateescape")


def value_read(name: bytes) -> bool:
    """Whether the actions or verdicts may read this line's value (else only its name)."""
    read = _values_read.get(name)
    return _learn_value_read(name) if read is None else read


def shape(fields: RawFields) -> Shape | None:
    """Every header name, in order and as sent, with the value of the lines read; None
    when a value read is too long to be worth remembering."""
    found: list[bytes | tuple[bytes, bytes]] = []
    for line in fields:
        name = line[0]
        read = _values_read.get(name)  # value_read, spared a call a line
        if read is None:
            read = _learn_value_read(name)
        if read:
            if len(line[1]) > LONGEST_VALUE:
                return None
            found.append(line)
        else:
            found.append(name)
    return tuple(found)


NAMES_REMEMBERED = 1024
"""Header names, as sent, whose ``value_read`` is remembered: a backend sends the same few
again and again. Past this many (a hostile backend's ever new names), the others are
worked out each time."""
_values_read: dict[bytes, bool] = {}


def _learn_value_read(name: bytes) -> bool:
    """``value_read`` worked out, and remembered while there is room. (Looking a name up
    computes its hash, which the bytes object keeps: the shape's key then reuses it.)"""
    read = name.lower().startswith(_VALUES_READ)
    if len(_values_read) < NAMES_REMEMBERED:
        _values_read[name] = read
    return read


Key = TypeVar("Key", bound=Hashable)
Value = TypeVar("Value")


class Remembered(dict[Key, Value]):
    """Outcomes by key (``get`` is the dict's own, for speed), at most ``limit`` of them:
    when full, forgotten all at once (a burst of odd keys costs a few misses, never memory)."""

    def __init__(self, limit: int = 1024) -> None:
        super().__init__()
        self._limit = limit

    def put(self, key: Key, outcome: Value) -> Value:
        if len(self) >= self._limit:
            self.clear()
        self[key] = outcome
        return outcome
