"""Where Firefox and WebKit decide CORS differently from Chromium, as data.

The verdict engine (``verdicts``) is one model, Chromium's; a profile names the few points
where another engine departs from it, and the engine reads the profile instead of forking.
Each field was seen in the real browsers (Chromium 150/156, Firefox ESR 140/153, WebKitGTK
2.50) by the end-to-end tests or by hand; ``tests/unit/test_profiles.py`` holds one case per
field. Pure: no mitmproxy import.

Known differences no profile field carries, because they change what the browser sends
rather than how it judges an answer (the proxy sees the sending browser's own requests):
after a cross-origin redirect Firefox preflights the target with the page's origin where
Chromium sends ``null``; after a 302/303 turns a POST into a GET, Firefox and WebKit still
preflight the target; WebKit turns a DELETE into a GET across a cross-origin 307/308 and
keeps Authorization across one; Firefox drops a preflight cache entry when the actual
request fails.
"""

from __future__ import annotations

import re
from typing import NamedTuple

# The checks of a preflight's answer, by name (verdicts runs them in a profile's order;
# the requested headers are always checked last).
REDIRECT, ORIGIN, STATUS = "redirect", "origin", "status"
REDIRECT_STATUS = "redirect-status"  # a redirect's status is enough: no Location needed
METHODS_SYNTAX, HEADERS_SYNTAX, METHOD = "methods-syntax", "headers-syntax", "method"
# The checks of an actual request's redirect: the network stack's refusals (too many
# redirects, a Location that is no URL), the CORS check, where the redirect leads (user
# name or password, scheme, port, a loop), and some schemes refused on their own.
REFUSED, ACCESS, TARGET = "refused", "access", "target"
FTP_SCHEME, DATA_OR_WS_SCHEME = "ftp-scheme", "data-or-ws-scheme"
# Which of several requested headers missing from Allow-Headers an engine names: the first in
# Blink's header map (replayed by ``headerorder``), in sorted order (Firefox's own list, as its
# Access-Control-Request-Headers shows it), or in the order the page set them (WebKit's header
# map, which a preflight does not show: its sorted Access-Control-Request-Headers stands in).
BLINK_MAP, SORTED, PAGE_ORDER = "blink-map", "sorted", "page-order"


class Profile(NamedTuple):
    """How one engine decides where engines differ; Chromium's values are the model's."""

    name: str
    preflight_order: tuple[str, ...]
    """The preflight's checks, first to last, before the requested headers."""
    redirect_order: tuple[str, ...] = (REFUSED, ACCESS, TARGET)
    """A redirect's checks, first to last."""
    client_hints_safelisted: bool = True
    """DPR, Width, Viewport-Width, Device-Memory, RTT, Downlink, ECT, Save-Data and
    Intervention need no preflight, and count toward the 1,024-byte total."""
    range_unit_any_case: bool = True
    """``Range: BYTES=0-10`` is safelisted (only ``bytes=`` in Firefox)."""
    wildcard_covers_authorization: bool = True
    """``Access-Control-Allow-Headers: *`` lets Authorization through (a Firefox pref)."""
    max_preflight_cache: int = 7200
    """Seconds a preflight's answer is kept at most."""
    max_age_syntax: re.Pattern[str] = re.compile(r"[+-]?[0-9]+")
    """What a valid Max-Age looks like (a negative one means no caching)."""
    invalid_max_age_cache: int = 5
    """Seconds a preflight's answer is kept when Max-Age is present but not valid."""
    names_first_missing_in: str = BLINK_MAP
    """Which of several headers missing from Allow-Headers the console names."""
    caches_only_named_grants: bool = False
    """The cache keeps only methods and headers listed by name (no ``*``), and serves GET
    and POST without one: an answer that let the request through by ``*`` is not reused."""


CHROMIUM = Profile("chromium", (REDIRECT, ORIGIN, STATUS, METHODS_SYNTAX, HEADERS_SYNTAX, METHOD))
FIREFOX = Profile(
    "firefox", (ORIGIN, REDIRECT_STATUS, STATUS, METHODS_SYNTAX, METHOD, HEADERS_SYNTAX), (REFUSED, DATA_OR_WS_SCHEME, ACCESS, TARGET),
    client_hints_safelisted=False, range_unit_any_case=False, max_preflight_cache=86400,
    max_age_syntax=re.compile(r"[0-9]+"), invalid_max_age_cache=0, names_first_missing_in=SORTED,
    caches_only_named_grants=True,
)
FIREFOX_STRICT_AUTHORIZATION = FIREFOX._replace(wildcard_covers_authorization=False)
"""Firefox with ``network.cors_preflight.authorization_covered_by_wildcard`` set to false."""
WEBKIT = Profile(
    "webkit", (REDIRECT, STATUS, ORIGIN, METHODS_SYNTAX, HEADERS_SYNTAX, METHOD), (FTP_SCHEME, ACCESS, REFUSED, TARGET),
    client_hints_safelisted=False, max_preflight_cache=600, names_first_missing_in=PAGE_ORDER,
)

PROFILES: dict[str, Profile] = {profile.name: profile for profile in (CHROMIUM, FIREFOX, WEBKIT)}
"""The engines every report entry speaks for, by ``engines.ENGINES`` name, Chromium first."""
OTHER_PROFILES = tuple(profile for profile in PROFILES.values() if profile is not CHROMIUM)
