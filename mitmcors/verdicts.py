"""Will a browser accept this cross-origin response? The Fetch standard's CORS protocol
as Chromium ships it, checked in Chromium's order, with Chromium's words.

The credentials mode of a request is not on the wire: a Cookie header proves it is
"include", nothing proves it is not, and a preflight never carries cookies. Where the
outcome depends on it, both outcomes are given. Pure: no mitmproxy import.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from mitmcors import cors
from mitmcors.cors import Fields
from mitmcors.corserrors import KINDS


REDIRECT_STATUSES = frozenset({300, 301, 302, 303, 307, 308})
DEFAULT_PREFLIGHT_CACHE = 5  # seconds, when Access-Control-Max-Age is missing or invalid
MAX_PREFLIGHT_CACHE = 7200

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
_SIMPLE_RANGE = re.compile(r"bytes=[0-9]+-[0-9]*")
_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")
_INTEGER = re.compile(r"[0-9]+")
_EFFECTIVE_CONNECTION_TYPES = frozenset({"slow-2g", "2g", "3g", "4g"})


def is_safelisted_request_header(name: str, value: str) -> bool:
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
        return _SIMPLE_RANGE.fullmatch(value.lower()) is not None
    if name in ("device-memory", "dpr", "downlink"):
        return _DECIMAL.fullmatch(value) is not None
    if name in ("width", "viewport-width", "rtt"):
        return _INTEGER.fullmatch(value) is not None
    if name == "ect":
        return value in _EFFECTIVE_CONNECTION_TYPES
    if name == "save-data":
        return value.lower() == "on"
    return name == "intervention"


def _byte_length(value: str) -> int:
    return len(value.encode("utf-8", "surrogateescape"))


def is_browser_set(name: str) -> bool:
    name = name.lower()
    return name in FORBIDDEN_REQUEST_HEADERS or name.startswith(FORBIDDEN_REQUEST_PREFIXES)


def unsafe_request_header_names(headers: Fields) -> list[str]:
    """The headers that need a preflight: not safelisted (the safelisted ones too when
    their values exceed 1,024 bytes together), lowercased, sorted, each once."""
    set_by_page = [(name.lower(), value) for name, value in headers if not is_browser_set(name)]
    unsafe = {name for name, value in set_by_page if not is_safelisted_request_header(name, value)}
    safelisted = [(name, value) for name, value in set_by_page if name not in unsafe]
    if sum(_byte_length(value) for _, value in safelisted) > 1024:
        unsafe.update(name for name, _ in safelisted)
    return sorted(unsafe)


def needs_preflight(method: str, headers: Fields) -> bool:
    return method.upper() not in cors.SAFELISTED_METHODS or bool(unsafe_request_header_names(headers))


@dataclass(frozen=True)
class Failure:
    """Why a browser blocks: the kind and the value it complains about."""

    kind: str
    value: str = ""

    def message(self) -> str:
        return KINDS[self.kind].message(self.value)

    def fix(self, origin: str) -> str:
        return KINDS[self.kind].fix_for(self.value, origin)


@dataclass(frozen=True)
class Exchange:
    """A cross-origin exchange as the proxy saw it leave.

    For a preflight, ``method`` and ``request_headers`` are what it announces.
    ``credentialed`` is True when known to be credentialed, None when unknown.
    """

    origin: str
    method: str
    preflight: bool
    status: int
    response_headers: Fields
    request_headers: tuple[str, ...] = ()
    credentialed: bool | None = None


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
    values = [value for key, value in fields if key.lower() == name.lower()]
    return ", ".join(values) if values else None


def check_access(fields: Fields, origin: str, credentialed: bool) -> Failure | None:
    """The CORS check (Fetch), in Chromium's order and with its classification."""
    allow_origin = header(fields, cors.ALLOW_ORIGIN)
    if allow_origin == "*":
        return Failure("WildcardOriginNotAllowed", "*") if credentialed else None
    if allow_origin is None:
        return Failure("MissingAllowOriginHeader")
    if allow_origin != origin:
        return Failure(_mismatch_kind(allow_origin), allow_origin)
    allow_credentials = header(fields, cors.ALLOW_CREDENTIALS)
    if credentialed and allow_credentials != "true":
        return Failure("InvalidAllowCredentials", allow_credentials or "")
    return None


def _mismatch_kind(allow_origin: str) -> str:
    if " " in allow_origin or "," in allow_origin:
        return "MultipleAllowOriginValues"
    if allow_origin == "null" or _parses_as_url(allow_origin):
        return "AllowOriginMismatch"
    return "InvalidAllowOriginValue"


def _parses_as_url(value: str) -> bool:
    """Roughly what GURL accepts: a scheme, then something."""
    return re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]*:.+", value) is not None


def parse_allow_list(value: str | None) -> list[str] | None:
    """The items of a comma-separated list of tokens (empty items skipped; a missing
    header is an empty list), or None when the value is not such a list."""
    if value is None:
        return []
    items = [item.strip(" \t") for item in value.split(",")]
    items = [item for item in items if item]
    return items if all(cors.is_token(item) for item in items) else None


def check_preflight(exchange: Exchange, credentialed: bool) -> tuple[Failure | None, tuple[str, ...]]:
    """The preflight's checks in Chromium's order; also returns any warnings."""
    fields = exchange.response_headers
    location = header(fields, "location")
    if exchange.status in REDIRECT_STATUSES and location is not None:
        return Failure("PreflightDisallowedRedirect", location), ()
    access = check_access(fields, exchange.origin, credentialed)
    if access is not None:
        return Failure("Preflight" + access.kind, access.value), ()
    if not 200 <= exchange.status < 300:
        return Failure("PreflightInvalidStatus", str(exchange.status)), ()
    allow_methods, allow_headers = header(fields, cors.ALLOW_METHODS), header(fields, cors.ALLOW_HEADERS)
    methods = parse_allow_list(allow_methods)
    if methods is None:
        return Failure("InvalidAllowMethodsPreflightResponse", allow_methods or ""), ()
    headers = parse_allow_list(allow_headers)
    if headers is None:
        return Failure("InvalidAllowHeadersPreflightResponse", allow_headers or ""), ()
    if not _method_allowed(exchange.method, methods, credentialed):
        return Failure("MethodDisallowedByPreflightResponse", exchange.method), ()
    return _check_request_headers(exchange.request_headers, {name.lower() for name in headers}, credentialed)


def _method_allowed(method: str, allowed: list[str], credentialed: bool) -> bool:
    """Case-sensitive; the safelisted methods always pass; '*' only without credentials."""
    return method in allowed or method.upper() in cors.SAFELISTED_METHODS or (
        "*" in allowed and not credentialed
    )


def _check_request_headers(
    requested: Iterable[str], allowed: set[str], credentialed: bool
) -> tuple[Failure | None, tuple[str, ...]]:
    wildcard = "*" in allowed and not credentialed
    for name in requested:
        if name not in allowed and not wildcard:
            return Failure("HeaderDisallowedByPreflightResponse", name), ()
    if wildcard and "authorization" in requested and "authorization" not in allowed:
        return None, (
            "Authorization is allowed only through '*' in Access-Control-Allow-Headers: "
            "Chromium still accepts it (deprecated), the Fetch standard does not; list "
            "authorization by name",
        )
    return None, ()


def preflight_cache_seconds(fields: Fields) -> int:
    """How long Chromium caches this preflight's result."""
    value = header(fields, cors.MAX_AGE)
    if value is None or not _INTEGER.fullmatch(value.strip()):
        return DEFAULT_PREFLIGHT_CACHE
    return min(int(value.strip()), MAX_PREFLIGHT_CACHE)


def readable_headers(fields: Fields, credentialed: bool) -> set[str] | None:
    """The response headers a page may read; None means all of them (``*``)."""
    exposed = {name.strip().lower() for name in (header(fields, cors.EXPOSE_HEADERS) or "").split(",")}
    if "*" in exposed and not credentialed:
        return None
    return (exposed - {""}) | cors.SAFELISTED_RESPONSE_HEADERS


def _decide(exchange: Exchange, credentialed: bool) -> Verdict:
    if exchange.preflight:
        failure, warnings = check_preflight(exchange, credentialed)
        return Verdict(failure is None, failure, warnings)
    failure = check_access(exchange.response_headers, exchange.origin, credentialed)
    if failure is not None:
        return Verdict(False, failure)
    readable = readable_headers(exchange.response_headers, credentialed)
    hidden = () if readable is None else tuple(dict.fromkeys(
        name.lower() for name, _ in exchange.response_headers
        if name.lower() not in readable and name.lower() not in cors.NEVER_EXPOSED
        and not cors.is_cors_header(name)
    ))
    return Verdict(True, None, hidden_headers=hidden)


def decide(exchange: Exchange) -> Verdict:
    """The browser's verdict; where the unknown credentials mode decides it, the verdict
    without credentials, carrying the credentialed one in ``with_credentials``."""
    if exchange.credentialed:
        return _decide(exchange, True)
    plain = _decide(exchange, False)
    credentialed = _decide(exchange, True)
    if (plain.allowed, plain.reason) == (credentialed.allowed, credentialed.reason):
        return plain
    return Verdict(plain.allowed, plain.failure, plain.warnings, credentialed, plain.hidden_headers)


def is_cross_origin(origin: str | None, url_origin: str, fetch_mode: str | None) -> bool:
    """Whether the browser runs the CORS check: a cors-mode request to another origin.

    Without Sec-Fetch-Mode (not a browser, or an old one), an Origin header is taken to
    mean cors mode.
    """
    if origin is None or (fetch_mode is not None and fetch_mode != "cors"):
        return False
    return origin != url_origin
