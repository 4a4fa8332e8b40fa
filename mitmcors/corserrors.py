"""Chromium's CORS error kinds: the text it prints for each, and the server-side fix.

One catalogue serves the break scenarios (which reproduce each kind) and the verdicts
(which explain each kind), so a kind reads the same in the rule file, the log, the
report and DevTools. Pure: no mitmproxy import.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFLIGHT_PREFIX = "Response to preflight request doesn't pass access control check: "
VALID_VALUE = " Have the server send the header with a valid value."
# The schemes Chromium's console lists for CorsDisabledScheme, as Debian's build prints them.
CORS_ENABLED_SCHEMES = ("chrome, chrome-experimental-site-token-provider, chrome-extension, "
                        "chrome-untrusted, data, http, https, isolated-app")


@dataclass(frozen=True)
class Kind:
    """One ``network::mojom::CorsError`` as DevTools names it.

    ``says`` and ``fix`` are templates: ``{value}`` is the offending header value (or
    method, or header name), ``{origin}`` the request's origin.
    """

    name: str
    says: str
    fix: str
    network_error: bool = False  # not a CORS error: the console shows only "net::ERR_..."

    def message(self, value: str = "…") -> str:
        return self.says.format(value=value)

    def fix_for(self, value: str = "…", origin: str = "…") -> str:
        return self.fix.format(value=value, origin=origin)


_ORIGIN_KINDS = (
    Kind("MissingAllowOriginHeader",
         "No 'Access-Control-Allow-Origin' header is present on the requested resource.",
         "send `Access-Control-Allow-Origin: {origin}` on this response (error responses need "
         "it too)"),
    Kind("AllowOriginMismatch",
         "The 'Access-Control-Allow-Origin' header has a value '{value}' that is not equal to "
         "the supplied origin." + VALID_VALUE,
         "send `Access-Control-Allow-Origin: {origin}` (the request's origin, byte for byte) "
         "instead of '{value}'"),
    Kind("MultipleAllowOriginValues",
         "The 'Access-Control-Allow-Origin' header contains multiple values '{value}', but only "
         "one is allowed." + VALID_VALUE,
         "send one `Access-Control-Allow-Origin: {origin}` line (the header is added twice, or "
         "lists several origins)"),
    Kind("InvalidAllowOriginValue",
         "The 'Access-Control-Allow-Origin' header contains the invalid value '{value}'." + VALID_VALUE,
         "send `Access-Control-Allow-Origin: {origin}`, a full origin with its scheme"),
    Kind("WildcardOriginNotAllowed",
         "The value of the 'Access-Control-Allow-Origin' header in the response must not be "
         "the wildcard '*' when the request's credentials mode is 'include'.",
         "send `Access-Control-Allow-Origin: {origin}` instead of `*` for credentialed requests"),
    Kind("InvalidAllowCredentials",
         "The value of the 'Access-Control-Allow-Credentials' header in the response is "
         "'{value}' which must be 'true' when the request's credentials mode is 'include'.",
         "send `Access-Control-Allow-Credentials: true` (lowercase)"),
)

_PREFLIGHT_KINDS = (
    Kind("PreflightInvalidStatus", PREFLIGHT_PREFIX + "It does not have HTTP ok status.",
         "answer the preflight (OPTIONS) with 204 or 200, before any authentication or routing "
         "that rejects it (it got {value})"),
    Kind("PreflightDisallowedRedirect",
         PREFLIGHT_PREFIX + "Redirect is not allowed for a preflight request.",
         "do not redirect the preflight (it was sent to {value}); call the final URL directly"),
    Kind("MethodDisallowedByPreflightResponse",
         "Method {value} is not allowed by Access-Control-Allow-Methods in preflight response.",
         "send `Access-Control-Allow-Methods: {value}` in the preflight response"),
    Kind("HeaderDisallowedByPreflightResponse",
         "Request header field {value} is not allowed by Access-Control-Allow-Headers in "
         "preflight response.",
         "send `Access-Control-Allow-Headers: {value}` in the preflight response"),
    Kind("InvalidAllowMethodsPreflightResponse",
         "Cannot parse Access-Control-Allow-Methods response header field in preflight response.",
         "send `Access-Control-Allow-Methods` as a comma-separated list of methods, not "
         "'{value}'"),
    Kind("InvalidAllowHeadersPreflightResponse",
         "Cannot parse Access-Control-Allow-Headers response header field in preflight response.",
         "send `Access-Control-Allow-Headers` as a comma-separated list of header names, not "
         "'{value}'"),
)


_REDIRECT_KINDS = (
    # Chromium leaves the location out of this message: it prints '' where it belongs.
    Kind("RedirectContainsCredentials",
         "Redirect location '' contains a username and password, which is disallowed for "
         "cross-origin requests.",
         "redirect to a URL without a user name or password (it redirected to {value})"),
    Kind("CorsDisabledScheme",
         "Cross origin requests are only supported for protocol schemes: "
         + CORS_ENABLED_SCHEMES + ".",
         "redirect to an http or https URL (it redirected to {value})"),
    Kind("TooManyRedirects", "net::ERR_TOO_MANY_REDIRECTS",
         "end the redirect chain sooner: browsers follow 20 redirects at most", True),
    Kind("InvalidRedirect", "net::ERR_INVALID_REDIRECT",
         "send a Location that is a valid URL (it sent {value})", True),
    Kind("UnsafeRedirect", "net::ERR_UNSAFE_REDIRECT",
         "redirect to an http or https URL (browsers never follow a redirect to {value})", True),
    Kind("UnknownUrlScheme", "net::ERR_UNKNOWN_URL_SCHEME",
         "redirect to an http or https URL; fetch cannot follow a redirect to {value}", True),
    Kind("UnsafePort", "net::ERR_UNSAFE_PORT",
         "redirect to a port browsers allow (they block {value}'s port)", True),
)


def _preflight_twin(kind: Kind) -> Kind:
    fix = kind.fix.replace("on this response", "on the preflight (OPTIONS) response")
    if fix == kind.fix:
        fix += " in the preflight (OPTIONS) response"
    return Kind("Preflight" + kind.name, PREFLIGHT_PREFIX + kind.says, fix)


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (*_ORIGIN_KINDS, *map(_preflight_twin, _ORIGIN_KINDS), *_PREFLIGHT_KINDS, *_REDIRECT_KINDS)
}
