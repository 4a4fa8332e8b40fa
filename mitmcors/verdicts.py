"""Will a browser accept this cross-origin response? The Fetch standard's CORS protocol
as Chromium ships it, checked in Chromium's order, with Chromium's words.

The credentials mode of a request is not on the wire: a Cookie header proves it is
"include", nothing proves it is not, and a preflight never carries cookies. Where the
outcome depends on it, both outcomes are given. Where Firefox or WebKit decide
otherwise, a profile (``profiles``) says so and the same checks read it. Pure: no
mitmproxy import.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from mitmcors import cors, headerorder, profiles, urls
from mitmcors.cors import Fields
from mitmcors.corserrors import KINDS
from mitmcors.profiles import BLINK_MAP, CHROMIUM, Profile

# What the network stack follows as a redirect: 300 is shown to the page instead, and
# a redirect status without a non-empty Location is an ordinary response.
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
DEFAULT_PREFLIGHT_CACHE = 5  # seconds, when Access-Control-Max-Age is missing (or, in Chromium, invalid)
MAX_PREFLIGHT_CACHE = CHROMIUM.max_preflight_cache
MAX_REDIRECTS = 20  # Chromium follows 20 redirects and fails on the 21st
PERMANENT_REDIRECT_STATUSES = frozenset({301, 308})  # cached by browsers unless told otherwise
# Schemes the browser itself serves, which no network redirect may lead to; any other
# scheme it does not fetch fails the CORS check instead (CorsDisabledScheme).
UNSAFE_REDIRECT_SCHEMES = frozenset({
    "about", "blob", "chrome", "chrome-untrusted", "data", "devtools", "file", "filesystem",
    "view-source",
})
_INT64_MAX = 2**63 - 1
_ALLOW_ORIGIN, _ALLOW_CREDENTIALS = cors.ALLOW_ORIGIN.lower(), cors.ALLOW_CREDENTIALS.lower()
_ALLOW_METHODS, _ALLOW_HEADERS = "access-control-allow-methods", "access-control-allow-headers"

# Request headers the browser sets itself (forbidden to scripts, or always added by
# Chromium): they never make a request need a preflight.
FORBIDDEN_REQUEST_HEADERS = frozenset({
    "accept-charset", "accept-encoding", "access-control-request-headers",
    "access-control-request-method", "connection", "content-length", "cookie", "cookie2",
    "date", "dnt", "expect", "host", "keep-alive", "origin", "referer", "set-cookie", "te",
    "trailer", "transfer-encoding", "upgrade", "via", "user-agent", "priority",
})
FORBIDDEN_REQUEST_PREFIXES = ("proxy-", "sec-")

SAFELISTED_CONTENT_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"})
_UNSAFE_BYTE = re.compile(r'[\x00-\x08\x0a-\x1f"():<>?@\[\\\]{}\x7f]')
_LANGUAGE = re.compile(r"[0-9A-Za-z *,\-.;=]*")
_INT64 = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")
_INTEGER = re.compile(r"[0-9]+")
_EFFECTIVE_CONNECTION_TYPES = frozenset({"slow-2g", "2g", "3g", "4g"})
# The request headers whose safelisting the profiles disagree on.
_SAFELISTED_BY_SOME = frozenset({
    "range", "intervention", "device-memory", "dpr", "downlink", "width", "viewport-width", "rtt", "ect", "save-data",
})


Parse = TypeVar("Parse", bound=Callable[[Any], Any])


def _memoized(parse: Parse) -> Parse:
    """Remember what a header value parses to: a backend sends the same few values again
    and again. Long values (hostile ones among them) are parsed afresh, never kept."""
    remembered = functools.lru_cache(maxsize=1024)(parse)

    @functools.wraps(parse)
    def parsed(value: str | None) -> Any:
        return remembered(value) if value is None or len(value) <= 256 else parse(value)

    return cast(Parse, parsed)


def is_safelisted_request_header(name: str, value: str, profile: Profile = CHROMIUM) -> bool:
    """A header a page may send without a preflight: the Fetch standard's five, with
    their value rules, plus the intervention and client-hint headers Chromium adds."""
    name = name.lower()
    if _byte_length(value) > 128:
        return False
    if name == "accept":
        return not _UNSAFE_BYTE.search(value)
    if name in ("accept-language", "content-language"):
        return _LANGUAGE.fullmatch(value) is not None
    if name == "content-type":
        essence = value.split(";", 1)[0].strip().lower()
        return not _UNSAFE_BYTE.search(value) and essence in SAFELISTED_CONTENT_TYPES
    if name == "range":
        return _is_simple_range(value, profile.range_unit_any_case)
    if not profile.client_hints_safelisted:
        return False
    if name in ("device-memory", "dpr", "downlink"):
        return _DECIMAL.fullmatch(value) is not None
    if name in ("width", "viewport-width", "rtt"):
        return _INTEGER.fullmatch(value) is not None
    if name == "ect":
        return value in _EFFECTIVE_CONNECTION_TYPES
    if name == "save-data":
        return value.lower() == "on"
    return name == "intervention"


def _is_simple_range(value: str, unit_any_case: bool = True) -> bool:
    """One byte range with a start (``bytes=N-`` or ``bytes=N-M``, M not before N), as
    Chromium parses it: case-insensitive, no whitespace, numbers as 64-bit integers.
    Firefox wants the unit in lower case."""
    lowered = value.lower()
    if not (lowered if unit_any_case else value).startswith("bytes=") or any(c in lowered for c in " \t,"):
        return False
    first, dash, last = lowered[len("bytes="):].partition("-")
    start, end = parse_int64(first), parse_int64(last)
    if not dash or start is None or start < 0:
        return False
    # An end of -1 is Chromium's "no end given", so "bytes=5--1" reads as "bytes=5-".
    return last == "" or (end is not None and (end == -1 or end >= start))


def parse_int64(text: str) -> int | None:
    """The number Chromium's StringToInt64 reads: an optional sign, digits, nothing else,
    within 64 bits. Bounded work whatever the length (a hostile header can be long)."""
    if not _INT64.fullmatch(text) or len(text.lstrip("+-").lstrip("0")) > 19:
        return None
    number = int(text)
    return number if -_INT64_MAX - 1 <= number <= _INT64_MAX else None


def _byte_length(value: str) -> int:
    return len(value.encode("utf-8", "surrogateescape"))


def is_browser_set(name: str) -> bool:
    name = name.lower()
    return name in FORBIDDEN_REQUEST_HEADERS or name.startswith(FORBIDDEN_REQUEST_PREFIXES)


def unsafe_request_header_names(headers: Fields, profile: Profile = CHROMIUM) -> list[str]:
    """The headers that need a preflight: not safelisted (the safelisted ones too when
    their values exceed 1,024 bytes together), lowercased, sorted, each once.

    Headers the network stack adds after the page's are judged never count: the cache
    mode's Pragma and Cache-Control, and the default Accept-Language (not told apart on
    the wire from one the page set, so it is left out of the total either way).
    """
    set_by_page = [
        (name.lower(), value) for name, value in headers
        if not is_browser_set(name) and not _added_for_cache_mode(name, headers)
    ]
    unsafe = {name for name, value in set_by_page if not is_safelisted_request_header(name, value, profile)}
    safelisted = [(name, value) for name, value in set_by_page if name not in unsafe]
    if sum(_byte_length(value) for name, value in safelisted if name != "accept-language") > 1024:
        unsafe.update(name for name, _ in safelisted)
    return sorted(unsafe)


def bypasses_preflight_cache(headers: Fields) -> bool:
    """Whether the request's cache mode (no-store, reload, no-cache) makes Chromium skip
    its preflight cache: it then sends the headers of ``_added_for_cache_mode``."""
    return any(_added_for_cache_mode(name, headers) for name, _ in headers)


def _added_for_cache_mode(name: str, headers: Fields) -> bool:
    """Chromium's network stack adds ``Pragma: no-cache`` with ``Cache-Control: no-cache``
    for the no-store and reload cache modes, and ``Cache-Control: max-age=0`` for
    no-cache; a page that sets these itself is preflighted, which the wire then shows."""
    lowered = name.lower()
    if lowered not in ("pragma", "cache-control"):
        return False
    pragma, cache_control = header(headers, "pragma"), header(headers, "cache-control")
    return (pragma, cache_control) in (("no-cache", "no-cache"), (None, "max-age=0"))


def needs_preflight(method: str, headers: Fields, profile: Profile = CHROMIUM) -> bool:
    return method.upper() not in cors.SAFELISTED_METHODS or bool(unsafe_request_header_names(headers, profile))


def needs_preflight_as(profile: Profile, method: str, headers: Fields, chromium: bool) -> bool:
    """Another engine's ``needs_preflight``, given Chromium's: the others safelist less,
    so only a request Chromium sends bare, with a header they disagree on, is asked again."""
    if chromium or profile is CHROMIUM or not any(name.lower() in _SAFELISTED_BY_SOME for name, _ in headers):
        return chromium
    return needs_preflight(method, headers, profile)


@dataclass(frozen=True)
class Failure:
    """Why a browser blocks: the kind and the value it complains about."""

    kind: str
    value: str = ""
    fix_value: str | None = None  # what the fix names, when it is more than ``value``

    def message(self) -> str:
        return KINDS[self.kind].message(self.value)

    def fix(self, origin: str) -> str:
        return KINDS[self.kind].fix_for(self.value if self.fix_value is None else self.fix_value, origin)

    @property
    def network_error(self) -> bool:
        return KINDS[self.kind].network_error


@dataclass(frozen=True)
class Exchange:
    """A cross-origin exchange as the proxy saw it leave.

    For a preflight, ``method`` and ``request_headers`` are what it announces.
    ``credentialed`` is True when known to be credentialed, None when unknown.
    ``redirects`` counts the redirects the browser followed before this request.
    """

    origin: str
    method: str
    preflight: bool
    status: int
    response_headers: Fields
    request_headers: tuple[str, ...] = ()
    credentialed: bool | None = None
    url: str = ""
    redirects: int = 0

    @functools.cached_property
    def headers(self) -> dict[str, str]:
        """The response headers as Chromium reads them: by lowercase name, lines joined."""
        return joined_headers(self.response_headers)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    failure: Failure | None
    warnings: tuple[str, ...] = ()
    with_credentials: Verdict | None = None  # the other outcome, when credentials decide it
    hidden_headers: tuple[str, ...] = ()  # response headers the page cannot read

    @property
    def reason(self) -> str | None:
        return self.failure.kind if self.failure else None


def header(fields: Fields, name: str) -> str | None:
    """A header's value as Chromium reads it: repeated lines joined with ', '."""
    return joined_headers(fields).get(name.lower())


def joined_headers(fields: Fields) -> dict[str, str]:
    """Every header's value as Chromium reads it, by lowercase name, in one pass."""
    joined: dict[str, str] = {}
    for name, value in fields:
        key = name.lower()
        joined[key] = f"{joined[key]}, {value}" if key in joined else value
    return joined


def check_access(fields: Fields, origin: str, credentialed: bool) -> Failure | None:
    """The CORS check (Fetch), in Chromium's order and with its classification."""
    return _check_access(joined_headers(fields), origin, credentialed)


def _check_access(headers: dict[str, str], origin: str, credentialed: bool) -> Failure | None:
    allow_origin = headers.get(_ALLOW_ORIGIN)
    if allow_origin == "*":
        return Failure("WildcardOriginNotAllowed", "*") if credentialed else None
    if allow_origin is None:
        return Failure("MissingAllowOriginHeader")
    if allow_origin != origin:
        return Failure(_mismatch_kind(allow_origin), allow_origin)
    allow_credentials = headers.get(_ALLOW_CREDENTIALS)
    if credentialed and allow_credentials != "true":
        return Failure("InvalidAllowCredentials", allow_credentials or "")
    return None


@_memoized
def _mismatch_kind(allow_origin: str) -> str:
    if " " in allow_origin or "," in allow_origin:
        return "MultipleAllowOriginValues"
    if allow_origin == "null" or urls.is_url(allow_origin):
        return "AllowOriginMismatch"
    return "InvalidAllowOriginValue"


@_memoized
def parse_allow_list(value: str | None) -> tuple[str, ...] | None:
    """The items of a comma-separated list of tokens (empty items skipped; a missing
    header is an empty list), or None when the value is not such a list."""
    if value is None:
        return ()
    items = tuple(item for item in (part.strip(" \t") for part in value.split(",")) if item)
    return items if all(cors.is_token(item) for item in items) else None


def check_preflight(
    exchange: Exchange, credentialed: bool, profile: Profile = CHROMIUM
) -> tuple[Failure | None, tuple[str, ...]]:
    """The preflight's checks in the engine's order (Chromium's unless told), the
    requested headers last; also returns any warnings."""
    for step in profile.preflight_order:
        failure = _PREFLIGHT_CHECKS[step](exchange, credentialed)
        if failure is not None:
            return failure, ()
    allowed = {name.lower() for name in parse_allow_list(exchange.headers.get(_ALLOW_HEADERS)) or ()}
    return _check_request_headers(exchange.request_headers, allowed, credentialed, exchange.url, profile)


PreflightCheck = Callable[[Exchange, bool], Failure | None]


def _preflight_redirect(exchange: Exchange, credentialed: bool) -> Failure | None:
    location = redirect_location(exchange.status, exchange.response_headers)
    return None if location is None else Failure("PreflightDisallowedRedirect", location)


def _preflight_redirect_status(exchange: Exchange, credentialed: bool) -> Failure | None:
    """Firefox's redirect: a redirect's status, with a Location or without."""
    if exchange.status not in REDIRECT_STATUSES:
        return None
    return Failure("PreflightDisallowedRedirect", redirect_location(exchange.status, exchange.response_headers) or "")


def _preflight_origin(exchange: Exchange, credentialed: bool) -> Failure | None:
    access = _check_access(exchange.headers, exchange.origin, credentialed)
    return None if access is None else Failure("Preflight" + access.kind, access.value)


def _preflight_status(exchange: Exchange, credentialed: bool) -> Failure | None:
    """A 2xx; a redirect that is none for the network stack (300, no Location) fails here."""
    return None if 200 <= exchange.status < 300 else Failure("PreflightInvalidStatus", str(exchange.status))


def _list_syntax(header_name: str, kind: str) -> PreflightCheck:
    """The check that a header is a comma list of tokens."""
    def check(exchange: Exchange, credentialed: bool) -> Failure | None:
        value = exchange.headers.get(header_name)
        return Failure(kind, value or "") if parse_allow_list(value) is None else None

    return check


def _preflight_method(exchange: Exchange, credentialed: bool) -> Failure | None:
    methods = parse_allow_list(exchange.headers.get(_ALLOW_METHODS)) or ()
    return None if _method_allowed(exchange.method, methods, credentialed) else Failure(
        "MethodDisallowedByPreflightResponse", exchange.method
    )


_PREFLIGHT_CHECKS: dict[str, PreflightCheck] = {
    profiles.REDIRECT: _preflight_redirect,
    profiles.REDIRECT_STATUS: _preflight_redirect_status,
    profiles.ORIGIN: _preflight_origin,
    profiles.STATUS: _preflight_status,
    profiles.METHODS_SYNTAX: _list_syntax(_ALLOW_METHODS, "InvalidAllowMethodsPreflightResponse"),
    profiles.HEADERS_SYNTAX: _list_syntax(_ALLOW_HEADERS, "InvalidAllowHeadersPreflightResponse"),
    profiles.METHOD: _preflight_method,
}


def _method_allowed(method: str, allowed: tuple[str, ...], credentialed: bool) -> bool:
    """Case-sensitive; the safelisted methods always pass; '*' only without credentials."""
    return method in allowed or method.upper() in cors.SAFELISTED_METHODS or (
        "*" in allowed and not credentialed
    )


def _check_request_headers(
    requested: Sequence[str], allowed: set[str], credentialed: bool, url: str, profile: Profile = CHROMIUM
) -> tuple[Failure | None, tuple[str, ...]]:
    """Every requested header must be allowed; the engine names the first one missing in
    its own order (Chromium's: see ``headerorder``, which depends on whether the URL is
    secure), the fix names them all."""
    wildcard = "*" in allowed and not credentialed
    missing = _not_covered_by_wildcard(requested, allowed, profile.wildcard_covers_authorization) if wildcard else [
        name for name in requested if name not in allowed
    ]
    if len(missing) > 1:
        missing = _in_naming_order(missing, requested, url, profile)
    if missing:
        return Failure("HeaderDisallowedByPreflightResponse", missing[0], ", ".join(missing)), _which_named(missing)
    if wildcard and "authorization" in requested and "authorization" not in allowed:
        return None, (
            "Authorization is allowed only through '*' in Access-Control-Allow-Headers: "
            "Chromium still accepts it (deprecated), the Fetch standard does not; list "
            "authorization by name",
        )
    return None, ()


def _in_naming_order(missing: list[str], requested: Sequence[str], url: str, profile: Profile) -> list[str]:
    """The missing headers, the one the engine's console names first."""
    if profile.names_first_missing_in == BLINK_MAP:
        return [name for name in headerorder.check_order(requested, urls.is_potentially_trustworthy(url)) if name in missing]
    return sorted(missing)


def _not_covered_by_wildcard(requested: Sequence[str], allowed: set[str], covers_authorization: bool) -> list[str]:
    """'*' covers every header, Authorization too unless the engine is told otherwise."""
    if covers_authorization or "authorization" not in requested or "authorization" in allowed:
        return []
    return ["authorization"]


def _which_named(missing: list[str]) -> tuple[str, ...]:
    if len(missing) < 2:
        return ()
    return (
        f"{len(missing)} requested headers are not allowed ({', '.join(missing)}): Chromium names "
        f"{missing[0]}, or another of them if the page also set CORS-safelisted headers (Accept, "
        "Content-Language, ...), which a preflight does not show; allow them all",
    )


def redirect_location(status: int, fields: Fields) -> str | None:
    """The Location the network stack follows, or None when this is no redirect: the
    status must be a redirect's and some Location line must be non-empty."""
    if status not in REDIRECT_STATUSES:
        return None
    return next((value for name, value in fields if name.lower() == "location" and value.strip()), None)


def refuse_redirect(target: urls.Url | None, location: str, redirects: int) -> Failure | None:
    """The network stack's own refusals, made before the CORS check sees the redirect."""
    if redirects >= MAX_REDIRECTS:
        return Failure("TooManyRedirects")
    return Failure("InvalidRedirect", location) if target is None else None


def check_redirect_target(target: urls.Url) -> Failure | None:
    """Where a cross-origin request may be redirected, once the CORS check on the
    redirect response passed: no credentials in the target, a scheme fetch can follow,
    a port browsers connect to."""
    if target.has_credentials:
        return Failure("RedirectContainsCredentials", target.href)
    if target.scheme in ("http", "https"):
        return Failure("UnsafePort", target.href) if urls.has_bad_port(target) else None
    if target.scheme in ("ws", "wss"):
        return Failure("UnknownUrlScheme", target.href)
    if target.scheme in UNSAFE_REDIRECT_SCHEMES:
        return Failure("UnsafeRedirect", target.href)
    return Failure("CorsDisabledScheme", target.href)


def _check_redirect(exchange: Exchange, location: str, credentialed: bool, profile: Profile) -> Failure | None:
    """A redirect's checks in the engine's order (Chromium: the network stack's refusals,
    the CORS check, then where the redirect leads)."""
    target = urls.parse(location.strip(), exchange.url)
    for step in profile.redirect_order:
        failure = _REDIRECT_CHECKS[step](exchange, location, target, credentialed)
        if failure is not None:
            return failure
    return None


RedirectCheck = Callable[[Exchange, str, urls.Url | None, bool], Failure | None]


def _redirect_refused(exchange: Exchange, location: str, target: urls.Url | None, credentialed: bool) -> Failure | None:
    return refuse_redirect(target, location, exchange.redirects)


def _redirect_access(exchange: Exchange, location: str, target: urls.Url | None, credentialed: bool) -> Failure | None:
    return _check_access(exchange.headers, exchange.origin, credentialed)


def _redirect_target(exchange: Exchange, location: str, target: urls.Url | None, credentialed: bool) -> Failure | None:
    return None if target is None else check_redirect_target(target) or _loops_from_cache(exchange, target)


def _refused_first(schemes: frozenset[str]) -> RedirectCheck:
    """The check that refuses a target of these schemes whatever the redirect's headers
    (WebKit fetches no ftp:, Firefox follows no redirect to data: or ws:)."""
    def check(exchange: Exchange, location: str, target: urls.Url | None, credentialed: bool) -> Failure | None:
        return check_redirect_target(target) if target is not None and target.scheme in schemes else None

    return check


_REDIRECT_CHECKS: dict[str, RedirectCheck] = {
    profiles.REFUSED: _redirect_refused,
    profiles.ACCESS: _redirect_access,
    profiles.TARGET: _redirect_target,
    profiles.FTP_SCHEME: _refused_first(frozenset({"ftp"})),
    profiles.DATA_OR_WS_SCHEME: _refused_first(frozenset({"data", "ws", "wss"})),
}


def _loops_from_cache(exchange: Exchange, target: urls.Url) -> Failure | None:
    """A permanent redirect to its own URL: the browser caches it and follows it from
    its cache, without asking the proxy again, until it gives up."""
    if exchange.status not in PERMANENT_REDIRECT_STATUSES:
        return None
    own = urls.parse(exchange.url)
    return Failure("TooManyRedirects") if own is not None and own.href == target.href else None


def preflight_cache_seconds(fields: Fields, profile: Profile = CHROMIUM) -> int:
    """How long the engine caches this preflight's result. Chromium reads Max-Age as a
    64-bit integer (anything else, several values included, means the default), a
    negative value means not at all, and two hours at most; the profile says where
    another engine's syntax, limit and answer to an invalid value differ."""
    value = header(fields, cors.MAX_AGE)
    if value is None:
        return DEFAULT_PREFLIGHT_CACHE
    value = value.strip(" \t")
    seconds = parse_int64(value) if profile.max_age_syntax.fullmatch(value) else None
    if seconds is None:
        return profile.invalid_max_age_cache
    return min(max(seconds, 0), profile.max_preflight_cache)


def reuses_preflight(exchange: Exchange, profile: Profile) -> bool:
    """Whether the engine's cached answer lets the same request through again. Firefox
    keeps only the methods and headers the answer names (no '*'), and lets GET and POST
    through without a named method."""
    if not profile.caches_only_named_grants:
        return True
    methods = parse_allow_list(exchange.headers.get(_ALLOW_METHODS)) or ()
    headers = {name.lower() for name in parse_allow_list(exchange.headers.get(_ALLOW_HEADERS)) or ()}
    method_named = exchange.method in ("GET", "POST") or exchange.method in methods
    return method_named and all(name in headers for name in exchange.request_headers)


def readable_headers(fields: Fields, credentialed: bool) -> frozenset[str] | None:
    """The response headers a page may read; None means all of them (``*``).

    One item that is not a token makes Chromium ignore the whole Expose-Headers list;
    empty items are skipped. Under credentials ``*`` is just a name.
    """
    return _readable(exposed_names(joined_headers(fields).get("access-control-expose-headers")), credentialed)


@_memoized
def exposed_names(value: str | None) -> frozenset[str]:
    """The names Access-Control-Expose-Headers lists, lowercased; none when it does not parse."""
    return frozenset(name.lower() for name in parse_allow_list(value) or ())


@functools.lru_cache(maxsize=256)
def _readable(exposed: frozenset[str], credentialed: bool) -> frozenset[str] | None:
    if "*" in exposed and not credentialed:
        return None
    return exposed | cors.SAFELISTED_RESPONSE_HEADERS


def _decide(exchange: Exchange, credentialed: bool, profile: Profile) -> Verdict:
    if exchange.preflight:
        failure, warnings = check_preflight(exchange, credentialed, profile)
        return Verdict(failure is None, failure, warnings)
    location = redirect_location(exchange.status, exchange.response_headers)
    if location is None:
        failure = _check_access(exchange.headers, exchange.origin, credentialed)
    else:
        failure = _check_redirect(exchange, location, credentialed, profile)
    if failure is not None:
        return Verdict(False, failure)
    readable = _readable(exposed_names(exchange.headers.get("access-control-expose-headers")), credentialed)
    hidden = () if readable is None else tuple(
        name for name in exchange.headers
        if name not in readable and name not in cors.NEVER_EXPOSED and not cors.is_cors_header(name)
    )
    return Verdict(True, None, hidden_headers=hidden)


def decide(exchange: Exchange, profile: Profile = CHROMIUM) -> Verdict:
    """The browser's verdict; where the unknown credentials mode decides it, the verdict
    without credentials, carrying the credentialed one in ``with_credentials``."""
    if exchange.credentialed:
        return _decide(exchange, True, profile)
    plain = _decide(exchange, False, profile)
    credentialed = _decide(exchange, True, profile)
    if (plain.allowed, plain.reason) == (credentialed.allowed, credentialed.reason):
        return plain
    return Verdict(plain.allowed, plain.failure, plain.warnings, credentialed, plain.hidden_headers)


def decide_as(profile: Profile, exchange: Exchange, chromium: Verdict) -> Verdict:
    """Another engine's verdict, given Chromium's: decided again only where it can differ.
    The profiles judge the same answer alike except in the order of a preflight's or a
    redirect's checks, which shows only when one fails without credentials, and in
    Authorization under '*'."""
    if profile is CHROMIUM or (not exchange.preflight and redirect_location(exchange.status, exchange.response_headers) is None):
        return chromium
    if chromium.allowed and profile.wildcard_covers_authorization:
        # Every check passed without credentials; with them, only the Allow-Origin check
        # and a literal '*' can fail, and every order checks Allow-Origin first.
        return chromium
    return decide(exchange, profile)


def is_cross_origin(origin: str | None, url_origin: str, fetch_mode: str | None) -> bool:
    """Whether the browser runs the CORS check: a cors-mode request to another origin.

    Without Sec-Fetch-Mode (not a browser, or an old one), an Origin header is taken to
    mean cors mode.
    """
    if origin is None or (fetch_mode is not None and fetch_mode != "cors"):
        return False
    return origin != url_origin
