"""Named CORS failures: each injects exactly one fault into an otherwise correct answer.

A scenario's name is the kebab-case form of the error kind Chromium reports (DevTools'
``Network.CorsError``), so the word in the rule file is the word in DevTools. The addon
first makes the exchange correct for the request (the allow defaults), then hands that
answer to the scenario, which breaks one thing. Pure: no mitmproxy import.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from mitmcors.cors import (
    ALLOW_CREDENTIALS,
    ALLOW_HEADERS,
    ALLOW_METHODS,
    ALLOW_ORIGIN,
    EXPOSE_HEADERS,
    SAFELISTED_METHODS,
    SAFELISTED_RESPONSE_HEADERS,
    CorsRequest,
    Fields,
)
from mitmcors import urls, verdicts
from mitmcors.corserrors import KINDS
from mitmcors.engines import SAID, same_line_as

Options = Mapping[str, Any]

OTHER_ORIGIN = "https://other-origin.invalid"
INVALID_ORIGIN = "not-an-origin"  # no scheme: does not parse as a URL, has no space or comma
CREDENTIALED_ONLY = (
    "shows only on a credentialed request (credentials: 'include'), and that is not on the wire"
)


@dataclass(frozen=True)
class Answer:
    """A correct answer the addon built, and what it answers."""

    request: CorsRequest
    url: str
    fields: Fields


@dataclass(frozen=True)
class Faulted:
    """The answer with its one fault: new headers, maybe a new status, and a caveat
    saying why this particular flow may not show the failure."""

    fields: Fields
    status: int | None = None
    caveat: str | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str | None  # Chromium's CorsError; None where the browser reports no error
    on_preflight: bool  # faults the preflight (else the actual response)
    chromium_says: str  # after "Access to fetch at ... has been blocked by CORS policy: "
    imitates: str
    fix: str
    options: tuple[str, ...]
    inject: Callable[[Answer, Options], Faulted]


def kebab(kind: str) -> str:
    """'PreflightInvalidStatus' -> 'preflight-invalid-status'."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", kind).lower()


def _replaced(fields: Fields, name: str, values: list[str]) -> Fields:
    kept = [(key, value) for key, value in fields if key.lower() != name.lower()]
    return kept + [(name, value) for value in values]


def _without(fields: Fields, name: str) -> Fields:
    return _replaced(fields, name, [])


def _value(fields: Fields, name: str) -> str | None:
    return next((value for key, value in fields if key.lower() == name.lower()), None)


def _credentials_caveat(request: CorsRequest) -> str | None:
    """The credentials mode is not on the wire; a Cookie header proves it, nothing disproves it."""
    if request.preflight:
        return f"{CREDENTIALED_ONLY}; a preflight never carries cookies"
    return None if request.carries_cookie else f"{CREDENTIALED_ONLY}; this request carries no Cookie"


def _missing_allow_origin(answer: Answer, options: Options) -> Faulted:
    return Faulted(_without(answer.fields, ALLOW_ORIGIN))


def _allow_origin_mismatch(answer: Answer, options: Options) -> Faulted:
    other = options.get("origin", OTHER_ORIGIN)
    caveat = "the given origin is the request's own" if other == answer.request.origin else None
    return Faulted(_replaced(answer.fields, ALLOW_ORIGIN, [other]), caveat=caveat)


def _multiple_allow_origin_values(answer: Answer, options: Options) -> Faulted:
    origin = answer.request.origin or ""
    if options.get("form", "two-lines") == "two-lines":
        values = [origin, origin]  # as when a reverse proxy and the app both add it
    else:
        values = [f"{origin}, {OTHER_ORIGIN}"]
    return Faulted(_replaced(answer.fields, ALLOW_ORIGIN, values))


def _invalid_allow_origin_value(answer: Answer, options: Options) -> Faulted:
    return Faulted(_replaced(answer.fields, ALLOW_ORIGIN, [INVALID_ORIGIN]))


def _wildcard_origin_not_allowed(answer: Answer, options: Options) -> Faulted:
    fields = _replaced(_replaced(answer.fields, ALLOW_ORIGIN, ["*"]), ALLOW_CREDENTIALS, ["true"])
    return Faulted(fields, caveat=_credentials_caveat(answer.request))


def _invalid_allow_credentials(answer: Answer, options: Options) -> Faulted:
    return Faulted(_without(answer.fields, ALLOW_CREDENTIALS), caveat=_credentials_caveat(answer.request))


def _invalid_status(answer: Answer, options: Options) -> Faulted:
    return Faulted(answer.fields, status=options.get("status", 403))


def _disallowed_redirect(answer: Answer, options: Options) -> Faulted:
    location = options.get("location", answer.url)
    return Faulted(_replaced(answer.fields, "Location", [location]), status=options.get("status", 301))


def _redirect(location: str, answer: Answer, options: Options, kind: str) -> Faulted:
    """A redirect that passes the CORS check (the answer's own headers) to a target the
    browser refuses; a location given in the rule that the browser would refuse otherwise,
    or follow, says so."""
    location = options.get("location", location)
    fields = _replaced(answer.fields, "Location", [location])
    status = options.get("status", DEFAULT_REDIRECT_STATUS)
    if kind == "TooManyRedirects":
        return Faulted(fields, status)
    target = urls.parse(location, answer.url)
    failure = verdicts.refuse_redirect(target, location, 0) or (target and verdicts.check_redirect_target(target))
    if failure is None:
        return Faulted(fields, status, f"the browser follows a redirect to {location}: no {kind}")
    return Faulted(fields, status, None if failure.kind == kind else f"a redirect to {location} fails as {failure.kind}, not {kind}")


def _with_credentials(url: str) -> str:
    split = urlsplit(url)
    return urlunsplit(split._replace(netloc=f"user:password@{split.netloc.rpartition('@')[2]}"))


def _own_host_with_port(url: str, port: int) -> str:
    split = urlsplit(url)
    host = f"[{split.hostname}]" if split.hostname and ":" in split.hostname else split.hostname
    return urlunsplit(split._replace(netloc=f"{host}:{port}"))


def _redirect_with_credentials(answer: Answer, options: Options) -> Faulted:
    return _redirect(_with_credentials(answer.url), answer, options, "RedirectContainsCredentials")


def _redirect_to_disabled_scheme(answer: Answer, options: Options) -> Faulted:
    return _redirect("mailto:support@example.invalid", answer, options, "CorsDisabledScheme")


def _redirect_forever(answer: Answer, options: Options) -> Faulted:
    return _redirect(answer.url, answer, options, "TooManyRedirects")


def _redirect_to_invalid_url(answer: Answer, options: Options) -> Faulted:
    return _redirect("http://[broken/", answer, options, "InvalidRedirect")


def _redirect_to_unsafe_scheme(answer: Answer, options: Options) -> Faulted:
    return _redirect("data:text/plain,redirected", answer, options, "UnsafeRedirect")


def _redirect_to_websocket(answer: Answer, options: Options) -> Faulted:
    return _redirect(answer.url.replace("http", "ws", 1), answer, options, "UnknownUrlScheme")


def _redirect_to_blocked_port(answer: Answer, options: Options) -> Faulted:
    return _redirect(_own_host_with_port(answer.url, BLOCKED_PORT), answer, options, "UnsafePort")


def _method_disallowed(answer: Answer, options: Options) -> Faulted:
    method = answer.request.method
    others = [allowed for allowed in sorted(SAFELISTED_METHODS) if allowed != method]
    caveat = f"{method} always passes the method check" if method in SAFELISTED_METHODS else None
    return Faulted(_replaced(answer.fields, ALLOW_METHODS, [", ".join(others)]), caveat=caveat)


def _header_disallowed(answer: Answer, options: Options) -> Faulted:
    requested = answer.request.header_names
    named = options.get("header", "").lower()
    allowed = [name for name in requested if named and name != named]
    if named and named not in requested:
        caveat: str | None = f"the preflight does not ask for {named}"
    else:
        caveat = None if requested else "the preflight asks for no headers"
    values = [", ".join(allowed)] if allowed else []
    return Faulted(_replaced(answer.fields, ALLOW_HEADERS, values), caveat=caveat)


def _invalid_allow_methods(answer: Answer, options: Options) -> Faulted:
    # A space-separated list: a real misconfiguration, and no longer a list of tokens.
    methods = dict.fromkeys(["GET", "POST", answer.request.method])
    return Faulted(_replaced(answer.fields, ALLOW_METHODS, [" ".join(methods)]))


def _invalid_allow_headers(answer: Answer, options: Options) -> Faulted:
    names = dict.fromkeys([*answer.request.header_names, "content-type", "x-requested-with"])
    return Faulted(_replaced(answer.fields, ALLOW_HEADERS, [" ".join(names)]))


def _header_not_exposed(answer: Answer, options: Options) -> Faulted:
    named = options.get("header", "").lower()
    if not named:
        return Faulted(_without(answer.fields, EXPOSE_HEADERS))
    exposed = [name.strip() for name in (_value(answer.fields, EXPOSE_HEADERS) or "").split(",")]
    kept = [name for name in exposed if name and name.lower() != named]
    caveat = None
    if named in SAFELISTED_RESPONSE_HEADERS:
        caveat = f"{named} is a CORS-safelisted response header, always readable"
    elif named not in (name.lower() for name in exposed):
        caveat = f"the response has no {named} header"
    return Faulted(_replaced(answer.fields, EXPOSE_HEADERS, [", ".join(kept)] if kept else []), caveat=caveat)


# Chromium's CorsError, the bug it imitates, the scenario's options, and its fault.
_ORIGIN_FAULTS = (
    ("MissingAllowOriginHeader",
     "The backend (or its error pages) sends no CORS headers: middleware missing, or skipped "
     "on this route or status.", (), _missing_allow_origin),
    ("AllowOriginMismatch",
     "A hard-coded origin (production's, or a trailing slash, or http vs https).",
     ("origin",), _allow_origin_mismatch),
    ("MultipleAllowOriginValues",
     "A reverse proxy and the app both add the header, or a list of origins is sent.",
     ("form",), _multiple_allow_origin_values),
    ("InvalidAllowOriginValue",
     "A bare host name or a templating mistake instead of a scheme://host[:port] origin.",
     (), _invalid_allow_origin_value),
    ("WildcardOriginNotAllowed",
     "`*` kept from a public-API setup while the frontend sends cookies.",
     (), _wildcard_origin_not_allowed),
    ("InvalidAllowCredentials",
     "Allow-Credentials forgotten (or sent as `TRUE`) while the frontend sends cookies.",
     (), _invalid_allow_credentials),
)

_PREFLIGHT_ONLY = (
    ("PreflightInvalidStatus",
     "The OPTIONS request hits authentication (401/403), a router without an OPTIONS route "
     "(404/405/501), or an error.", ("status",), _invalid_status),
    ("PreflightDisallowedRedirect",
     "An http-to-https or trailing-slash redirect, or a login redirect, in front of the API.",
     ("status", "location"), _disallowed_redirect),
    ("MethodDisallowedByPreflightResponse",
     "A new PUT/PATCH/DELETE endpoint left out of the allowed methods.", (), _method_disallowed),
    ("HeaderDisallowedByPreflightResponse",
     "A new custom header (X-Request-Id, Authorization, Content-Type: application/json) left "
     "out of the allowed headers.", ("header",), _header_disallowed),
    ("InvalidAllowMethodsPreflightResponse",
     "Methods separated by spaces or other characters instead of commas.", (), _invalid_allow_methods),
    ("InvalidAllowHeadersPreflightResponse",
     "Header names separated by spaces or other characters instead of commas.", (), _invalid_allow_headers),
)

DEFAULT_REDIRECT_STATUS = 307  # keeps the method and body, as the request came
BLOCKED_PORT = 6000  # X11's: every engine refuses to connect to it
_REDIRECTS = (
    ("RedirectContainsCredentials",
     "A redirect to a URL with a user name and password in it (a basic-auth link to a file "
     "store or a legacy service).", ("status",), _redirect_with_credentials),
    ("CorsDisabledScheme",
     "A redirect out of http(s): a `mailto:` contact, an `ftp:` download, an app's custom scheme.",
     ("status", "location"), _redirect_to_disabled_scheme),
    ("TooManyRedirects",
     "A redirect loop: a login redirect the API's cookie never stops, two canonical-URL rules "
     "undoing each other.", ("status",), _redirect_forever),
    ("InvalidRedirect",
     "A Location header from a broken template or an unescaped value: not a URL.",
     ("status", "location"), _redirect_to_invalid_url),
    ("UnsafeRedirect",
     "A redirect to a `data:`, `file:` or `about:` URL.", ("status", "location"), _redirect_to_unsafe_scheme),
    ("UnknownUrlScheme",
     "A redirect to the WebSocket endpoint (`ws:`/`wss:`) instead of its HTTP URL.", ("status",),
     _redirect_to_websocket),
    ("UnsafePort",
     "A redirect to a service on a port browsers refuse (6000, 6666, 10080, ...).", ("status",),
     _redirect_to_blocked_port),
)
_PREFLIGHT_TWIN = "As above, on the preflight only: OPTIONS is often answered by another handler or a gateway."


def _scenario(kind_name: str, on_preflight: bool, imitates: str, options: tuple[str, ...],
              inject: Callable[[Answer, Options], Faulted]) -> Scenario:
    kind = KINDS[kind_name]
    return Scenario(kebab(kind_name), kind_name, on_preflight, kind.message(), imitates,
                    kind.fix_for(origin="<origin>"), options, inject)


def _build() -> dict[str, Scenario]:
    scenarios = [_scenario(kind, False, *rest) for kind, *rest in _ORIGIN_FAULTS]
    scenarios += [_scenario("Preflight" + kind, True, _PREFLIGHT_TWIN, *rest[1:]) for kind, *rest in _ORIGIN_FAULTS]
    scenarios += [_scenario(kind, True, *rest) for kind, *rest in _PREFLIGHT_ONLY]
    scenarios += [_scenario(kind, False, *rest) for kind, *rest in _REDIRECTS]
    scenarios.append(
        Scenario("header-not-exposed", None, False,
                 "(no error: the fetch succeeds, but `response.headers.get(name)` is null)",
                 "A custom response header (X-Total-Count, ETag for a script) the page must read.",
                 "list it in `Access-Control-Expose-Headers`", ("header",), _header_not_exposed)
    )
    return {scenario.name: scenario for scenario in scenarios}


SCENARIOS: dict[str, Scenario] = _build()
REDIRECTING = frozenset({"preflight-disallowed-redirect", *(kebab(kind) for kind, *_ in _REDIRECTS)})
"""The scenarios whose fault is a redirect: their status is a redirect's."""


def scenario_table() -> str:
    """The README's scenario table, made from the registry and what each engine prints."""
    rows = [
        f"| `{s.name}`{_options_note(s)} | {s.chromium_says} | {_says(s, 'firefox')} | {_says(s, 'webkit')} "
        f"| {s.imitates} | {s.fix} |"
        for s in SCENARIOS.values()
    ]
    header = "| scenario | Chromium prints | Firefox prints | WebKit prints | the bug it imitates | the fix |"
    return "\n".join([header, "|---|---|---|---|---|---|", *rows]) + "\n"


def _says(scenario: Scenario, engine: str) -> str:
    """An engine's line for the scenario, and the scenarios it prints that same line for."""
    if scenario.kind is None:
        return "(no error, as in Chromium)"
    said = SAID[engine][scenario.kind]
    cell = said.messages[0].short() + (f" ({said.when})" if said.when else "")
    alike = same_line_as(scenario.kind, engine)
    return cell + (f" **Same line as** `{'`, `'.join(map(kebab, alike))}`." if alike else "")


def _options_note(scenario: Scenario) -> str:
    return f" (`{'`, `'.join(scenario.options)}`)" if scenario.options else ""


if __name__ == "__main__":
    print(scenario_table(), end="")
