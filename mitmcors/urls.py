"""URLs as a browser parses them: the WHATWG URL standard, through ``ada-url`` (the
parser Node.js uses), with the few places where Chromium's own parser differs.

The verdicts need URLs in three places: whether an ``Access-Control-Allow-Origin``
value is a URL at all, where a redirect's ``Location`` leads, and whether a redirect
target carries a user name or password. A hand-made pattern gets each of them wrong
on real values (ports out of range, bad IPv4 addresses, empty hosts). Pure: no
mitmproxy import.
"""

from __future__ import annotations

from typing import NamedTuple

import ipaddress

import ada_url


class Url(NamedTuple):
    """The parts of a parsed URL the CORS checks use."""

    href: str
    scheme: str  # without the colon, lowercased
    origin: str  # serialised as browsers send it in Origin; "null" when opaque
    has_credentials: bool
    port: int | None  # None when it is the scheme's default, or the scheme has none


def parse(text: str, base: str | None = None) -> Url | None:
    """``text`` parsed (against ``base`` when relative), or None when it is no URL.

    Header bytes that are not UTF-8 reach us as surrogate escapes; Chromium reads them
    as invalid UTF-8 and rejects the URL, so do we.
    """
    try:
        parsed = ada_url.parse_url(text) if base is None else ada_url.parse_url(ada_url.join_url(base, text))
    except (ValueError, UnicodeError):
        return None
    return Url(
        href=parsed["href"],
        scheme=parsed["protocol"].rstrip(":"),
        origin=parsed["origin"] or "null",
        has_credentials=bool(parsed["username"] or parsed["password"]),
        port=int(parsed["port"]) if parsed["port"] else None,
    )


def without_credentials(url: Url) -> str:
    """A parsed URL's href without its user name and password, as WebKit names it (a
    URL that cannot have them, such as mailto:, has none to drop)."""
    if not url.has_credentials:
        return url.href
    stripped = ada_url.URL(url.href)
    stripped.username = stripped.password = ""
    return stripped.href


def is_url(text: str) -> bool:
    """Whether Chromium's GURL would call ``text`` a valid URL."""
    return parse(text) is not None



# Ports browsers refuse to connect to (the Fetch standard's "bad port" list).
BAD_PORTS = frozenset({
    1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101,
    102, 103, 104, 109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389,
    427, 465, 512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563, 587, 601, 636,
    989, 990, 993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566,
    6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080,
})


def has_bad_port(url: Url) -> bool:
    """Whether the URL names a port browsers never connect to."""
    return url.port in BAD_PORTS


def is_potentially_trustworthy(url: str) -> bool:
    """Whether browsers treat the URL as secure: https, or a loopback host."""
    parsed = ada_url.parse_url(url) if ada_url.check_url(url) else None
    if parsed is None:
        return False
    if parsed["protocol"] in ("https:", "wss:"):
        return True
    host = parsed["hostname"].strip("[]")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
