"""What each engine prints per kind: complete, unambiguous, and traceable back from a real line."""

from __future__ import annotations

import pytest

from mitmcors.corserrors import KINDS
from mitmcors.engines import ENGINES, FIREFOX, SAID, console_line, kinds_printing, same_line_as

VALUES = {"url": "http://127.0.0.1:8001/plain/x", "origin": "http://127.0.0.1:8000", "value": "PUT", "status": "204"}
MDN_CODES = {
    "CORSMissingAllowOrigin", "CORSNotSupportingCredentials", "CORSAllowOriginNotMatchingOrigin",
    "CORSMultipleAllowOriginNotAllowed", "CORSMissingAllowCredentials", "CORSPreflightDidNotSucceed",
    "CORSExternalRedirectNotAllowed", "CORSMethodNotFound", "CORSMissingAllowHeaderFromPreflight",
    "CORSInvalidAllowMethod", "CORSInvalidAllowHeader", "CORSRequestNotHttp", "CORSDidNotSucceed",
}
SAIDS = [said for engine in SAID.values() for said in engine.values()]


@pytest.mark.parametrize("engine", ENGINES)
def test_every_kind_has_what_each_engine_prints(engine):
    assert set(SAID[engine]) == set(KINDS)


def test_firefox_messages_carry_mdns_reason_codes():
    assert set(FIREFOX) == MDN_CODES


@pytest.mark.parametrize("said", SAIDS, ids=lambda said: f"{said.engine}-{said.kind}")
def test_each_line_reads_back_as_its_kind_and_only_those_it_shares_the_line_with(said):
    for message in said.messages:
        line = message.format(**VALUES)
        kinds = kinds_printing(line, said.engine)
        assert said.kind in kinds, line
        assert set(kinds) - {said.kind} <= set(same_line_as(said.kind, said.engine)), line


# Lines as the browsers printed them (tests/e2e), and every kind each may stand for.
REAL_LINES = [
    ("firefox", "Cross-Origin Request Blocked: The Same Origin Policy disallows reading the remote resource at "
                "http://127.0.0.1:40000/plain/a. (Reason: CORS header ‘Access-Control-Allow-Origin’ missing). Status code: 200.",
     ("MissingAllowOriginHeader", "PreflightMissingAllowOriginHeader")),
    ("firefox", "Cross-Origin Request Blocked: The Same Origin Policy disallows reading the remote resource at "
                "‘http://127.0.0.1:40000/plain/a’. (Reason: Credential is not supported if the CORS header "
                "‘Access-Control-Allow-Origin’ is ‘*’).",
     ("WildcardOriginNotAllowed", "PreflightWildcardOriginNotAllowed")),
    ("firefox", "Cross-Origin Request Blocked: The Same Origin Policy disallows reading the remote resource at "
                "http://127.0.0.1:40000/plain/a. (Reason: invalid token ‘GET POST PUT’ in CORS header ‘Access-Control-Allow-Methods’).",
     ("InvalidAllowMethodsPreflightResponse",)),
    ("firefox", "Cross-Origin Request Blocked: The Same Origin Policy disallows reading the remote resource at "
                "ftp://127.0.0.1/x. (Reason: CORS request not http).", ("CorsDisabledScheme", "UnsafeRedirect")),
    ("webkit", "Origin http://127.0.0.1:40001 is not allowed by Access-Control-Allow-Origin. Status code: 200",
     ("MissingAllowOriginHeader", "AllowOriginMismatch", "MultipleAllowOriginValues", "InvalidAllowOriginValue",
      "PreflightMissingAllowOriginHeader", "PreflightAllowOriginMismatch", "PreflightMultipleAllowOriginValues",
      "PreflightInvalidAllowOriginValue")),
    # Found by the engines' differential: a list apart by spaces only, and a redirect's failed check.
    ("webkit", "Cross-origin redirection to http://localhost:36401/b denied by Cross-Origin Resource Sharing policy: "
               "Origin http://127.0.0.1:45103 is not allowed by Access-Control-Allow-Origin. Status code: 302",
     ("MissingAllowOriginHeader", "AllowOriginMismatch", "MultipleAllowOriginValues", "InvalidAllowOriginValue")),
    ("webkit", "Preflight response is not successful. Status code: 301", ("PreflightInvalidStatus", "PreflightDisallowedRedirect")),
    ("webkit", "Request header field X-Test is not allowed by Access-Control-Allow-Headers.", ("HeaderDisallowedByPreflightResponse",)),
    ("webkit", "Not allowed to use restricted network port 1: http://127.0.0.1:1/x", ("UnsafePort",)),
    ("chromium", "Access to fetch at 'ftp://127.0.0.1/x' (redirected from 'http://127.0.0.1:40000/a') from origin "
                 "'http://127.0.0.1:40001' has been blocked by CORS policy: Cross origin requests are only supported for "
                 "protocol schemes: chrome, chrome-experimental-site-token-provider, chrome-extension, chrome-untrusted, "
                 "data, http, https, isolated-app.", ("CorsDisabledScheme",)),
    ("chromium", "Failed to load resource: net::ERR_TOO_MANY_REDIRECTS", ("TooManyRedirects",)),
    ("webkit", "Fetch API cannot load http://127.0.0.1:40000/plain/a due to access control checks.", ()),
]


@pytest.mark.parametrize("engine, line, kinds", REAL_LINES)
def test_a_pasted_console_line_names_its_kinds(engine, line, kinds):
    assert kinds_printing(line, engine) == kinds


def test_a_line_gives_up_its_values():
    message = SAID["webkit"]["MethodDisallowedByPreflightResponse"].messages[0]
    match = message.match("Method PUT is not allowed by Access-Control-Allow-Methods.")
    assert match is not None and match["value"] == "PUT"


def test_formatting_leaves_unknown_values_as_an_ellipsis():
    message = SAID["firefox"]["MissingAllowOriginHeader"].messages[0]
    assert message.format(url="http://a.test/x") == (
        "Cross-Origin Request Blocked: The Same Origin Policy disallows reading the remote resource at http://a.test/x. "
        "(Reason: CORS header ‘Access-Control-Allow-Origin’ missing). Status code: ….")


@pytest.mark.parametrize("engine, kind, value, redirected_to, line", [
    ("webkit", "MultipleAllowOriginValues", "http://a.test http://b.test", None,
     "Origin http://o.test is not allowed by Access-Control-Allow-Origin. Status code: 200"),
    ("webkit", "MultipleAllowOriginValues", "http://a.test, http://b.test", None, "Access-Control-Allow-Origin cannot contain more than one origin."),
    ("webkit", "AllowOriginMismatch", "http://a.test", "http://t.test/b",
     "Cross-origin redirection to http://t.test/b denied by Cross-Origin Resource Sharing policy: "
     "Origin http://o.test is not allowed by Access-Control-Allow-Origin. Status code: 200"),
    ("webkit", "CorsDisabledScheme", "ftp://x.test/", "ftp://x.test/", "FTP URLs are disabled"),
    ("firefox", "UnsafeRedirect", "about:blank", "about:blank",
     "Cross-Origin Request Blocked: The Same Origin Policy disallows reading the remote resource at about:blank. "
     "(Reason: CORS request not http)."),
    ("firefox", "InvalidRedirect", "http://[x/", "http://[x/",
     "Cross-Origin Request Blocked: The Same Origin Policy disallows reading the remote resource at http://api.test/x. "
     "(Reason: CORS request did not succeed). Status code: (null)."),
    ("firefox", "InvalidAllowMethodsPreflightResponse", "PUT, x@y", None,
     "Cross-Origin Request Blocked: The Same Origin Policy disallows reading the remote resource at http://api.test/x. "
     "(Reason: invalid token ‘x@y’ in CORS header ‘Access-Control-Allow-Methods’)."),
])
def test_a_verdict_is_worded_as_each_engine_prints_it(engine, kind, value, redirected_to, line):
    printed, _ = console_line(engine, kind, value, url="http://api.test/x", origin="http://o.test", status=200,
                              redirected_to=redirected_to)
    assert printed == line
    assert kind in kinds_printing(printed, engine)


def test_webkit_names_a_refused_port_by_its_number_then_the_url():
    """Seen in WebKitGTK 2.50 (engine differential, seed 5): 'port 1', not the URL twice."""
    target = "http://127.0.0.1:1/x"
    line, code = console_line("webkit", "UnsafePort", target, url="http://api.test/a", origin="http://app.test",
                                      status=308, redirected_to=target)
    assert (line, code) == ("Not allowed to use restricted network port 1: http://127.0.0.1:1/x", None)
