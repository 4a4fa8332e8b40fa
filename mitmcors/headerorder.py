"""The order in which Chromium checks a request's headers against a preflight's
``Access-Control-Allow-Headers``, so that the report names the header Chromium names.

When several requested headers are missing, Chromium names the first in the order of
its request header list, which is neither the page's order nor alphabetical: Blink
puts the page's headers (sorted, ignoring case) into a hash map (WTF's HashMap keyed
by a case-folding rapidhash), then adds the client hints it sends to trustworthy URLs
and User-Agent, and copies the map out in slot order. This module replays that map.
Checked against Chromium 156 on 130 header sets, over http://127.0.0.1 and over
http://*.test (no client hints); the sources are Blink's ``http_header_map.h``,
``fetch_header_list.h``, ``case_folding_hash.h``, ``string_hasher.h``, ``hash_table.h``
and the rapidhash copy in ``third_party/rapidhash``.

Pure: no mitmproxy import. Used only when two or more headers are missing.
"""

from __future__ import annotations

from collections.abc import Iterable

_MASK64 = (1 << 64) - 1
_SEED = 0xBDD89AA982704029
_SECRET = (0x2D358DCCAA6C78A5, 0x8BB84B93962EACC9, 0x4B33A62ED433D4A3)
_MINIMUM_TABLE_SIZE = 8
CLIENT_HINTS = ("sec-ch-ua", "sec-ch-ua-mobile", "sec-ch-ua-platform")


def check_order(page_headers: Iterable[str], client_hints: bool) -> list[str]:
    """The page's header names (lowercased) in the order Chromium checks them."""
    names = sorted({name.lower() for name in page_headers})
    table: list[str | None] = []
    for name in [*names, *(CLIENT_HINTS if client_hints else ()), "user-agent"]:
        table = _insert(table, name)
    wanted = set(names)
    return [name for name in table if name in wanted]


def _insert(table: list[str | None], name: str) -> list[str | None]:
    """WTF::HashTable's insert: quadratic probing, growing once half full."""
    table = table or [None] * _MINIMUM_TABLE_SIZE
    slot = _slot(table, name)
    if table[slot] == name:
        return table
    table[slot] = name
    keys = sum(1 for key in table if key is not None)
    if keys * 2 >= len(table):
        table = _rehashed(table, len(table) * 2)
    return table


def _rehashed(table: list[str | None], size: int) -> list[str | None]:
    """A table of ``size`` slots holding the keys, reinserted in slot order."""
    new: list[str | None] = [None] * size
    for key in table:
        if key is not None:
            new[_slot(new, key)] = key
    return new


def _slot(table: list[str | None], name: str) -> int:
    mask = len(table) - 1
    index, probe = _hash(name) & mask, 0
    while table[index] is not None and table[index] != name:
        probe += 1
        index = (index + probe) & mask
    return index


def _hash(name: str) -> int:
    """WTF's CaseFoldingHash: rapidhash of the lowercased name as UTF-16, 24 bits."""
    units = [ord(char) for char in name.lower()]
    folded = b"".join(unit.to_bytes(2, "little") for unit in units)
    hashed = _rapidhash(folded, units[0] if units else 0) & 0xFFFFFF
    return hashed or 0x800000


def _rapidhash(data: bytes, first_unit: int) -> int:
    length = len(data)
    seed = _SEED ^ _mix(_SEED ^ _SECRET[0], _SECRET[1]) ^ length
    if length <= 16:
        a, b = _short_input(data, first_unit)
    else:
        seed, offset, remaining = _long_input(data, seed)
        a, b = _read64(data, offset + remaining - 16), _read64(data, offset + remaining - 8)
    a, b = _multiply(a ^ _SECRET[1], b ^ seed)
    return _mix(a ^ _SECRET[0] ^ length, b ^ _SECRET[1])


def _short_input(data: bytes, first_unit: int) -> tuple[int, int]:
    length = len(data)
    if length < 4:  # one UTF-16 unit: Blink's reader hands over the folded unit itself
        return (first_unit, 0) if length else (0, 0)
    last, delta = length - 4, (length & 24) >> (length >> 3)
    return (
        (_read32(data, 0) << 32) | _read32(data, last),
        (_read32(data, delta) << 32) | _read32(data, last - delta),
    )


def _long_input(data: bytes, seed: int) -> tuple[int, int, int]:
    """rapidhash's loop over inputs longer than 16 bytes: the seed, and where the
    last 16 bytes end (offset + remaining)."""
    offset, remaining = 0, len(data)
    if remaining > 48:
        seed1 = seed2 = seed
        while remaining >= 48:
            seed = _mix(_read64(data, offset) ^ _SECRET[0], _read64(data, offset + 8) ^ seed)
            seed1 = _mix(_read64(data, offset + 16) ^ _SECRET[1], _read64(data, offset + 24) ^ seed1)
            seed2 = _mix(_read64(data, offset + 32) ^ _SECRET[2], _read64(data, offset + 40) ^ seed2)
            offset, remaining = offset + 48, remaining - 48
        seed ^= seed1 ^ seed2
    if remaining > 16:
        seed = _mix(_read64(data, offset) ^ _SECRET[2], _read64(data, offset + 8) ^ seed ^ _SECRET[1])
        if remaining > 32:
            seed = _mix(_read64(data, offset + 16) ^ _SECRET[2], _read64(data, offset + 24) ^ seed)
    return seed, offset, remaining


def _multiply(a: int, b: int) -> tuple[int, int]:
    product = a * b
    return product & _MASK64, product >> 64 & _MASK64


def _mix(a: int, b: int) -> int:
    low, high = _multiply(a, b)
    return low ^ high


def _read32(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset:offset + 4], "little")


def _read64(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset:offset + 8], "little")
