"""The CORS protocol as browsers apply it, written as small pure functions.

Nothing here imports mitmproxy: requests and responses are reduced to plain values
(an origin string, a method, header names and ``(name, value)`` lists), so every rule
of the Fetch standard can be unit-tested on its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

ALLOW_ORIGIN = "Access-Control-Allow-Origin"
ALLOW_CREDENTIALS = "Access-Control-Allow-Credentials"
ALLOW_METHODS = "Access-Control-Allow-Methods"
ALLOW_HEADERS = "Access-Control-Allow-Headers"
EXPOSE_HEADERS = "Access-Control-Expose-Headers"
MAX_AGE = "Access-Control-Max-Age"
ALLOW_PRIVATE_NETWORK = "Access-Control-Allow-Private-Network"
REQUEST_METHOD = "Access-Control-Request-Method"
REQUEST_HEADERS = "Access-Control-Request-Headers"
REQUEST_PRIVATE_NETWORK = "Access-Control-Request-Private-Network"

CORS_HEADER_PREFIX = "access-control-"

SAFELISTED_METHODS = frozenset({"GET", "HEAD", "POST"})
# Methods a browser upper-cases however the page wrote them (Fetch: normalize a method).
NORMALIZED_METHODS = frozenset({"DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"})

# Response headers a page may always read, exposed or not (Fetch: CORS-safelisted).
SAFELISTED_RESPONSE_HEADERS = frozenset(
    {"cache-control", "content-language", "content-length", "content-type", "expires",
     "last-modified", "pragma"}
)

# Response headers a page may never read, whatever Expose-Headers says (Fetch: forbidden
# response-header names); listing them would only mislead whoever reads the headers.
NEVER_EXPOSED = frozenset({"set-cookie", "set-cookie2"})

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Controls other than horizontal tab can split or truncate a header on the wire.
_UNSAFE_VALUE_CHARACTER = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

Fields = list[tuple[str, str]]  # a message's header lines, in order, as text
Wildcard = Literal["*"]
Reflect = Literal["reflect"]


def is_token(text: str) -> bool:
    """An HTTP token (RFC 9110): what header names and methods are made of."""
    return _TOKEN.fullmatch(text) is not None


def unsafe_value_character(value: str) -> str | None:
    """The first character that must never appear in a header value (CR, LF, NUL, ...)."""
    found = _UNSAFE_VALUE_CHARACTER.search(value)
    return found.group() if found else None


def normalize_method(method: str) -> str:
    """The method as a browser sends it: the six standard ones upper-cased, others as written."""
    upper = method.upper()
    return upper if upper in NORMALIZED_METHODS else method


def is_cors_header(name: str) -> bool:
    return name.lower().startswith(CORS_HEADER_PREFIX)


def is_preflight(method: str, origin: str | None, requested_method: str | None) -> bool:
    """A preflight is an OPTIONS carrying Origin and Access-Control-Request-Method."""
    return method == "OPTIONS" and origin is not None and requested_method is not None


def requested_header_names(value: str | None) -> tuple[str, ...]:
    """The names in Access-Control-Request-Headers, lowercased, in the order sent."""
    if not value:
        return ()
    names = (name.strip().lower() for name in value.split(","))
    return tuple(name for name in names if name)


class CorsRequest(NamedTuple):
    """What the CORS protocol needs to know of a request (a tuple: read on every flow,
    and a key to remember outcomes by).

    For a preflight, ``method`` and ``header_names`` are what it announces
    (Access-Control-Request-Method/-Headers), not the OPTIONS itself. The credentials
    mode is not on the wire; a Cookie header is the one proof of it. ``mode`` is the
    request's mode as Sec-Fetch-Mode says it (None from clients that do not send it).
    """

    origin: str | None
    method: str
    preflight: bool
    header_names: tuple[str, ...] = ()
    private_network: bool = False
    carries_cookie: bool = False
    mode: str | None = None

    @property
    def cors_mode(self) -> bool:
        """A request in cors mode; without Sec-Fetch-Mode (not a browser), one with Origin."""
        return self.mode == "cors" if self.mode is not None else self.origin is not None


@dataclass(frozen=True)
class AllowPolicy:
    """A compiled ``allow`` action: which CORS headers a matching response gets.

    ``origins`` is ``"reflect"``, ``"*"`` or a compiled pattern of allowed origins;
    ``expose`` of ``None`` means "every header of the response itself".
    """

    origins: Reflect | Wildcard | re.Pattern[str] = "reflect"
    credentials: bool = True
    methods: Reflect | Wildcard | tuple[str, ...] = "reflect"
    headers: Reflect | Wildcard | tuple[str, ...] = "reflect"
    expose: Wildcard | tuple[str, ...] | None = None
    max_age: int | None = None
    private_network: bool = False

    def allows_origin(self, origin: str) -> bool:
        if isinstance(self.origins, str):
            return True
        return self.origins.fullmatch(origin) is not None

    def depends_on_origin(self) -> bool:
        """Whether two origins can get different answers (then caches must Vary on it)."""
        return not (self.origins == "*" and not self.credentials)


def granted_headers(
    policy: AllowPolicy, request: CorsRequest, response_header_names: Iterable[str] = ()
) -> Fields:
    """The CORS headers that make a browser accept this response under ``policy``.

    Empty when the request is not cross-origin or its origin is not allowed: a strict
    server answers such an origin with no CORS headers at all. Under credentials a
    browser reads ``*`` literally, so every wildcard is then spelled out instead.
    """
    origin = request.origin
    if origin is None or not policy.allows_origin(origin):
        return []
    headers = [(ALLOW_ORIGIN, _allowed_origin(policy, origin))]
    if policy.credentials:
        headers.append((ALLOW_CREDENTIALS, "true"))
    if request.preflight:
        headers += _preflight_grants(policy, request)
    else:
        headers += _exposed(policy, response_header_names)
    return headers


def _allowed_origin(policy: AllowPolicy, origin: str) -> str:
    if policy.origins == "*" and not policy.credentials:
        return "*"
    return origin


def _preflight_grants(policy: AllowPolicy, request: CorsRequest) -> Fields:
    grants: Fields = []
    methods = _granted(policy.methods, (request.method,), policy.credentials)
    if methods:
        grants.append((ALLOW_METHODS, methods))
    headers = _granted(policy.headers, request.header_names, policy.credentials)
    if headers:
        grants.append((ALLOW_HEADERS, headers))
    if policy.max_age is not None:
        grants.append((MAX_AGE, str(policy.max_age)))
    if policy.private_network and request.private_network:
        grants.append((ALLOW_PRIVATE_NETWORK, "true"))
    return grants


def _granted(
    setting: Reflect | Wildcard | tuple[str, ...], requested: Sequence[str], credentials: bool
) -> str:
    """The value granting ``requested`` under a methods/headers setting."""
    if setting == "*" and not credentials:
        return "*"
    if isinstance(setting, str):  # reflect, or a wildcard that credentials make literal
        return ", ".join(requested)
    return ", ".join(setting)


def _exposed(policy: AllowPolicy, response_header_names: Iterable[str]) -> Fields:
    if policy.expose == "*" and not policy.credentials:
        names: Sequence[str] = ("*",)
    elif policy.expose is None or policy.expose == "*":
        names = _own_header_names(response_header_names)
    else:
        names = policy.expose
    return [(EXPOSE_HEADERS, ", ".join(names))] if names else []


def _own_header_names(names: Iterable[str]) -> list[str]:
    """The response's own header names worth exposing, lowercased, each once."""
    own: dict[str, None] = {}
    for name in names:
        lowered = name.lower()
        if not lowered.startswith(CORS_HEADER_PREFIX) and lowered not in NEVER_EXPOSED:
            own[lowered] = None
    return list(own)


def vary_on(policy: AllowPolicy, request: CorsRequest) -> tuple[str, ...]:
    """The request headers the answer under ``policy`` depends on, for ``Vary``."""
    tokens: list[str] = []
    if policy.depends_on_origin():
        tokens.append("Origin")
    if request.preflight and policy.methods == "reflect":
        tokens.append(REQUEST_METHOD)
    if request.preflight and policy.headers == "reflect":
        tokens.append(REQUEST_HEADERS)
    return tuple(tokens)


def with_vary(fields: Fields, tokens: Iterable[str]) -> Fields:
    """Append tokens to the response's Vary, never replacing what it already varies on."""
    present = {
        token.strip().lower()
        for name, value in fields
        if name.lower() == "vary"
        for token in value.split(",")
    }
    missing = [token for token in tokens if token.lower() not in present]
    if not missing or "*" in present:
        return fields
    merged = ", ".join(missing)
    for index, (name, value) in enumerate(fields):
        if name.lower() == "vary":
            updated = list(fields)
            updated[index] = (name, f"{value}, {merged}" if value.strip() else merged)
            return updated
    return [*fields, ("Vary", merged)]


def replace_cors_headers(
    fields: Fields, cors: Fields, vary: Iterable[str]
) -> Fields:
    """The response's headers with every CORS header it had replaced by ``cors``."""
    kept = [(name, value) for name, value in fields if not is_cors_header(name)]
    return with_vary(kept + cors, vary)


def allow_response(
    policy: AllowPolicy, request: CorsRequest, fields: Fields
) -> Fields:
    """A response's headers as ``policy`` makes them.

    A request without Origin is not a CORS request: its response is left as it is.
    """
    if request.origin is None:
        return fields
    granted = granted_headers(policy, request, (name for name, _ in fields))
    return replace_cors_headers(fields, granted, vary_on(policy, request))
