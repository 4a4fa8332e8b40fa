"""The verdict engine, rule by rule, against the Fetch standard and Chromium's behaviour."""

from __future__ import annotations

import pytest

from mitmcors import verdicts
from mitmcors.verdicts import Exchange, Failure

O = "https://app.test"


def actual(*fields, credentialed=None, status=200, method="GET") -> Exchange:
    return Exchange(O, method, False, status, list(fields), credentialed=credentialed)


def preflight(*fields, method="PUT", headers=("x-test",), credentialed=None, status=204) -> Exchange:
    return Exchange(O, method, True, status, list(fields), tuple(headers), credentialed)


ACAO = "Access-Control-Allow-Origin"
ACAC = "Access-Control-Allow-Credentials"
ACAM = "Access-Control-Allow-Methods"
ACAH = "Access-Control-Allow-Headers"
GRANT = ((ACAO, O), (ACAC, "true"), (ACAM, "PUT"), (ACAH, "x-test"))


@pytest.mark.parametrize(
    "fields, credentialed, failure",
    [
        ([], False, Failure("MissingAllowOriginHeader")),
        ([(ACAO, "*")], False, None),
        ([(ACAO, "*"), (ACAC, "true")], True, Failure("WildcardOriginNotAllowed", "*")),
        ([(ACAO, O)], False, None),
        ([(ACAO, O)], True, Failure("InvalidAllowCredentials", "")),
        ([(ACAO, O), (ACAC, "True")], True, Failure("InvalidAllowCredentials", "True")),  # Fetch: byte-exact
        ([(ACAO, O), (ACAC, "true")], True, None),
        ([(ACAO, O + "/")], False, Failure("AllowOriginMismatch", O + "/")),  # Fetch: trailing slash
        ([(ACAO, "https://APP.test")], False, Failure("AllowOriginMismatch", "https://APP.test")),  # byte compare
        ([(ACAO, "https://other.test")], False, Failure("AllowOriginMismatch", "https://other.test")),
        ([(ACAO, "null")], False, Failure("AllowOriginMismatch", "null")),
        ([(ACAO, f"{O}, {O}")], False, Failure("MultipleAllowOriginValues", f"{O}, {O}")),
        ([(ACAO, O), (ACAO, O)], False, Failure("MultipleAllowOriginValues", f"{O}, {O}")),  # lines joined
        ([(ACAO, "not a url")], False, Failure("MultipleAllowOriginValues", "not a url")),
        ([(ACAO, "foo")], False, Failure("InvalidAllowOriginValue", "foo")),
        ([(ACAO, "")], False, Failure("InvalidAllowOriginValue", "")),
    ],
)
def test_the_cors_check(fields, credentialed, failure):
    assert verdicts.check_access(fields, O, credentialed) == failure


def test_null_matches_an_opaque_origin():
    assert verdicts.check_access([(ACAO, "null")], "null", False) is None


@pytest.mark.parametrize(
    "exchange, credentialed, kind",
    [
        (preflight(*GRANT), True, None),
        (preflight((ACAO, O), (ACAM, "PUT"), (ACAH, "x-test")), False, None),
        (preflight(*GRANT, ("Location", "https://x.test/"), status=301), False, "PreflightDisallowedRedirect"),
        (preflight(("Location", "https://x.test/"), status=302), False, "PreflightDisallowedRedirect"),  # before the origin
        (preflight(status=501), False, "PreflightMissingAllowOriginHeader"),  # origin before status
        (preflight(*GRANT, status=403), False, "PreflightInvalidStatus"),
        (preflight(*GRANT, status=304), False, "PreflightInvalidStatus"),  # 3xx without Location
        (preflight((ACAO, "*"), (ACAM, "PUT"), (ACAH, "x-test")), True, "PreflightWildcardOriginNotAllowed"),
        (preflight((ACAO, O), (ACAM, "PUT"), (ACAH, "x-test")), True, "PreflightInvalidAllowCredentials"),
        (preflight((ACAO, "foo"), status=403), False, "PreflightInvalidAllowOriginValue"),
        (preflight((ACAO, O), (ACAM, "PUT DELETE"), (ACAH, "x-test")), False, "InvalidAllowMethodsPreflightResponse"),
        (preflight((ACAO, O), (ACAM, "PUT"), (ACAH, "x-test;")), False, "InvalidAllowHeadersPreflightResponse"),
        (preflight((ACAO, O), (ACAM, "PUT, , GET"), (ACAH, "x-test")), False, None),  # empty items skipped
        (preflight((ACAO, O), (ACAM, "GET, POST"), (ACAH, "x-test")), False, "MethodDisallowedByPreflightResponse"),
        (preflight((ACAO, O), (ACAM, "put"), (ACAH, "x-test")), False, "MethodDisallowedByPreflightResponse"),  # case-sensitive
        (preflight((ACAO, O), (ACAH, "x-test"), method="POST"), False, None),  # safelisted method
        (preflight((ACAO, O), (ACAM, "*"), (ACAH, "x-test")), False, None),
        (preflight(*GRANT[:2], (ACAM, "*"), (ACAH, "x-test")), True, "MethodDisallowedByPreflightResponse"),  # * literal
        (preflight((ACAO, O), (ACAM, "PUT")), False, "HeaderDisallowedByPreflightResponse"),
        (preflight((ACAO, O), (ACAM, "PUT"), (ACAH, "X-TEST")), False, None),  # names case-insensitive
        (preflight((ACAO, O), (ACAM, "PUT"), (ACAH, "*")), False, None),
        (preflight(*GRANT[:3], (ACAH, "*")), True, "HeaderDisallowedByPreflightResponse"),  # * literal
        (preflight((ACAO, O), (ACAM, "PUT"), (ACAH, "x-test"), headers=("x-test", "x-other")), False, "HeaderDisallowedByPreflightResponse"),
    ],
)
def test_the_preflight_checks_in_chromium_order(exchange, credentialed, kind):
    failure, _ = verdicts.check_preflight(exchange, credentialed)
    assert (failure.kind if failure else None) == kind


def test_a_wildcard_covering_authorization_is_allowed_with_a_warning():
    exchange = preflight((ACAO, O), (ACAM, "PUT"), (ACAH, "*"), headers=("authorization",))
    verdict = verdicts.decide(exchange)
    assert verdict.allowed and verdict.warnings and "deprecated" in verdict.warnings[0]


def test_when_credentials_decide_both_outcomes_are_given():
    verdict = verdicts.decide(actual((ACAO, "*")))
    assert verdict.allowed and verdict.reason is None
    assert (verdict.with_credentials.allowed, verdict.with_credentials.reason) == (False, "WildcardOriginNotAllowed")


def test_when_credentials_do_not_matter_there_is_one_outcome():
    assert verdicts.decide(actual((ACAO, O), (ACAC, "true"))).with_credentials is None
    assert verdicts.decide(actual()).with_credentials is None


def test_a_cookie_makes_the_request_credentialed():
    verdict = verdicts.decide(actual((ACAO, "*"), credentialed=True))
    assert verdict.reason == "WildcardOriginNotAllowed" and verdict.with_credentials is None


@pytest.mark.parametrize(
    "fields, credentialed, hidden",
    [
        ([(ACAO, O), ("Content-Type", "a/b"), ("X-Total", "1")], False, ("x-total",)),
        ([(ACAO, O), ("X-Total", "1"), ("Access-Control-Expose-Headers", "X-Total")], False, ()),
        ([(ACAO, "*"), ("X-Total", "1"), ("Access-Control-Expose-Headers", "*")], False, ()),
        ([(ACAO, O), (ACAC, "true"), ("X-Total", "1"), ("Access-Control-Expose-Headers", "*")], True, ("x-total",)),
        ([(ACAO, O), ("Set-Cookie", "a=b")], False, ()),
    ],
)
def test_headers_the_page_cannot_read(fields, credentialed, hidden):
    assert verdicts.decide(actual(*fields, credentialed=credentialed or None)).hidden_headers == hidden


@pytest.mark.parametrize(
    "value, seconds",
    [
        (None, 5), ("600", 600), ("86400", 7200), ("abc", 5), ("0", 0),
        ("-1", 0), ("-0", 0),  # negative: not cached at all
        ("+10", 10), ("00010", 10),  # a 64-bit integer as StringToInt64 reads it
        ("5, 10", 5), ("10.5", 5), ("", 5),  # anything else means the default
        ("9" * 18, 7200), ("9" * 19, 5), ("9" * 5000, 5),  # overflow is invalid, however long
    ],
)
def test_preflight_cache_lifetime(value, seconds):
    fields = [] if value is None else [("Access-Control-Max-Age", value)]
    assert verdicts.preflight_cache_seconds(fields) == seconds


@pytest.mark.parametrize(
    "name, value, safelisted",
    [
        ("Accept", "application/json", True),
        ("Accept", "a(b)", False),
        ("Accept-Language", "en-US,en;q=0.9", True),
        ("Content-Language", "en@x", False),
        ("Content-Type", "text/plain;charset=UTF-8", True),
        ("Content-Type", "multipart/form-data; boundary=x", True),
        ("Content-Type", "application/json", False),
        ("Content-Type", "text/plain; a=\"b\"", False),  # an unsafe byte
        ("Range", "bytes=0-", True),
        ("Range", "bytes=0-99", True),
        ("Range", "bytes=-5", False),
        ("Range", "bytes=0-1,3-4", False),
        ("Accept", "a" * 128, True),
        ("Accept", "a" * 129, False),  # the 128-byte limit
        ("Save-Data", "on", True),
        ("DPR", "2.5", True),
        ("Width", "2.5", False),
        ("X-Test", "1", False),
        ("Authorization", "Bearer x", False),
    ],
)
def test_safelisted_request_headers(name, value, safelisted):
    assert verdicts.is_safelisted_request_header(name, value) is safelisted


@pytest.mark.parametrize(
    "method, headers, needed",
    [
        ("GET", [], False),
        ("POST", [("Content-Type", "application/x-www-form-urlencoded")], False),
        ("POST", [("Content-Type", "application/json")], True),
        ("PUT", [], True),
        ("DELETE", [], True),
        ("GET", [("X-Test", "1")], True),
        ("GET", [("Cookie", "a=b"), ("User-Agent", "x"), ("Sec-Fetch-Mode", "cors"), ("Origin", O), ("Referer", O)], False),
        ("GET", [("Accept", "a" * 120), ("Accept-Language", "b" * 100), ("Content-Language", "c" * 100),
                 ("Content-Type", "text/plain"), ("Range", "bytes=" + "1" * 100 + "-"), ("DPR", "1" * 100),
                 ("Width", "2" * 100), ("RTT", "3" * 100), ("Downlink", "4" * 100), ("Device-Memory", "5" * 100),
                 ("Viewport-Width", "6" * 100)], True),  # the 1,024-byte total
    ],
)
def test_which_requests_need_a_preflight(method, headers, needed):
    assert verdicts.needs_preflight(method, headers) is needed


@pytest.mark.parametrize(
    "origin, url_origin, mode, cross",
    [
        (None, "https://api.test", "cors", False),
        (O, O, "cors", False),
        (O, "https://api.test", "cors", True),
        (O, "https://api.test", "no-cors", False),
        (O, "https://api.test", "navigate", False),
        (O, "https://api.test", None, True),
    ],
)
def test_which_flows_the_browser_checks(origin, url_origin, mode, cross):
    assert verdicts.is_cross_origin(origin, url_origin, mode) is cross


def test_failures_read_as_chromium_prints_them():
    assert Failure("MethodDisallowedByPreflightResponse", "PUT").message() == (
        "Method PUT is not allowed by Access-Control-Allow-Methods in preflight response."
    )
    assert Failure("HeaderDisallowedByPreflightResponse", "x-test").fix(O) == (
        "send `Access-Control-Allow-Headers: x-test` in the preflight response"
    )


# Each row below was checked in Chromium 156: a page fetched from a backend sending the value.
@pytest.mark.parametrize(
    "value, kind",
    [
        ("http://127.0.0.1:99999", "InvalidAllowOriginValue"),  # port out of range
        ("http://", "InvalidAllowOriginValue"),
        ("https://:443", "InvalidAllowOriginValue"),  # no host
        ("http://256.256.256.256", "InvalidAllowOriginValue"),
        ("http://[::1", "InvalidAllowOriginValue"),
        ("http://1.2.3.4.5", "InvalidAllowOriginValue"),
        ("http://a^b.test", "InvalidAllowOriginValue"),  # a forbidden host code point
        ("http://a%zz.test", "InvalidAllowOriginValue"),
        ("http://x.test:65536", "InvalidAllowOriginValue"),
        ("//x.test", "InvalidAllowOriginValue"),  # no scheme
        ("+a:b", "InvalidAllowOriginValue"),
        ("http://\udce9.test", "InvalidAllowOriginValue"),  # a byte that is not UTF-8
        ("file:", "AllowOriginMismatch"),  # a URL all the same
        ("mailto:", "AllowOriginMismatch"),
        ("a+:b", "AllowOriginMismatch"),
        ("http://0x7f.1", "AllowOriginMismatch"),
        ("http:x.test", "AllowOriginMismatch"),
        ("http://x.test:0", "AllowOriginMismatch"),
        ("javascript:alert(1)", "AllowOriginMismatch"),
        ("null", "AllowOriginMismatch"),
        ("data:,", "MultipleAllowOriginValues"),  # a comma first
    ],
)
def test_whether_an_allow_origin_value_is_a_url_is_decided_by_a_url_parser(value, kind):
    assert verdicts.check_access([(ACAO, value)], O, False) == Failure(kind, value)


@pytest.mark.parametrize(
    "status, location, kind",
    [
        (300, "/x", "PreflightInvalidStatus"),  # 300 is shown, never followed
        (301, None, "PreflightInvalidStatus"),
        (301, "", "PreflightInvalidStatus"),  # an empty Location is no redirect
        (304, None, "PreflightInvalidStatus"),
        (399, "/x", "PreflightInvalidStatus"),
        (302, "/y", "PreflightDisallowedRedirect"),
        (303, "/y", "PreflightDisallowedRedirect"),
        (307, "/y", "PreflightDisallowedRedirect"),
        (308, "/y", "PreflightDisallowedRedirect"),
    ],
)
def test_which_preflight_answers_are_redirects(status, location, kind):
    fields = [*GRANT[:1], (ACAM, "PUT"), (ACAH, "x-test")] + ([("Location", location)] if location is not None else [])
    failure, _ = verdicts.check_preflight(preflight(*fields, status=status), False)
    assert failure.kind == kind


def test_a_redirecting_preflight_is_refused_before_its_origin_is_checked_and_an_other_3xx_after():
    other = (ACAO, "https://other.test")
    assert verdicts.check_preflight(preflight(other, ("Location", "/z"), status=301), False)[0].kind == "PreflightDisallowedRedirect"
    assert verdicts.check_preflight(preflight(other, ("Location", "/z"), status=300), False)[0].kind == "PreflightAllowOriginMismatch"


def redirect(location, *fields, redirects=0) -> Exchange:
    return Exchange(O, "GET", False, 302, [(ACAO, "*"), *fields, ("Location", location)],
                    url="https://api.test/a", redirects=redirects)


@pytest.mark.parametrize(
    "location, kind",
    [
        ("/b", None),
        ("https://other.test/b", None),
        ("https://user:pass@other.test/b", "RedirectContainsCredentials"),
        ("https://user@api.test/b", "RedirectContainsCredentials"),  # same origin as the hop, still refused
        ("ftp://other.test/b", "CorsDisabledScheme"),
        ("mailto:x@y", "CorsDisabledScheme"),
        ("javascript:1", "CorsDisabledScheme"),
        ("data:text/plain,hi", "UnsafeRedirect"),
        ("about:blank", "UnsafeRedirect"),
        ("file:///etc/hosts", "UnsafeRedirect"),
        ("blob:https://api.test/x", "UnsafeRedirect"),
        ("ws://other.test/", "UnknownUrlScheme"),
        ("https://other.test:1/", "UnsafePort"),
        ("http://[x/", "InvalidRedirect"),
        ("http://other.test:99999/", "InvalidRedirect"),
    ],
)
def test_where_a_cross_origin_request_may_be_redirected(location, kind):
    assert verdicts.decide(redirect(location)).reason == kind


def test_the_network_stack_refuses_a_bad_location_before_the_cors_check_and_a_scheme_after():
    missing_origin = Exchange(O, "GET", False, 302, [("Location", "http://[x/")], url="https://api.test/a")
    assert verdicts.decide(missing_origin).reason == "InvalidRedirect"
    missing_origin = Exchange(O, "GET", False, 302, [("Location", "data:,x")], url="https://api.test/a")
    assert verdicts.decide(missing_origin).reason == "MissingAllowOriginHeader"


def test_twenty_redirects_are_followed_and_the_twenty_first_is_not():
    assert verdicts.decide(redirect("/b", redirects=19)).allowed
    assert verdicts.decide(redirect("/b", redirects=20)).reason == "TooManyRedirects"


def test_a_redirect_status_without_location_is_an_ordinary_response():
    assert verdicts.redirect_location(302, [("Location", "")]) is None
    assert verdicts.redirect_location(300, [("Location", "/x")]) is None
    assert verdicts.redirect_location(302, [("Location", ""), ("Location", "/x")]) == "/x"


@pytest.mark.parametrize(
    "headers, needed",
    [
        ([("Pragma", "no-cache"), ("Cache-Control", "no-cache")], False),  # cache: 'no-store' or 'reload'
        ([("Cache-Control", "max-age=0")], False),  # cache: 'no-cache'
        ([("Cache-Control", "no-cache")], True),  # set by the page: preflighted
        ([("Pragma", "no-cache")], True),
        ([("DPR", "1" * 128), ("Width", "2" * 128), ("Viewport-Width", "3" * 128), ("Device-Memory", "4" * 128),
          ("RTT", "5" * 128), ("Downlink", "6" * 128), ("Accept", "a" * 128), ("Content-Language", "b" * 30),
          ("Accept-Language", "en-US,en;q=0.9")], False),  # 1,024 bytes without the default Accept-Language
        ([("Range", "bytes=10-5")], True),  # start after end
        ([("Range", "BYTES=0-10")], False),
        ([("Range", "bytes= 0-10")], True),
    ],
)
def test_headers_the_network_stack_adds_never_need_a_preflight(headers, needed):
    assert verdicts.needs_preflight("GET", headers) is needed


@pytest.mark.parametrize(
    "expose, readable",
    [
        ("X-Total", True), ("X-TOTAL", True), ("x-total,", True), (",x-total,,x-other", True),
        ("bad header, x-total", False), ("x-total, x@y", False), ("x-total x-other", False), ("x-total; x-other", False),
    ],
)
def test_one_bad_item_voids_the_whole_expose_list(expose, readable):
    fields = [(ACAO, O), ("X-Total", "1"), ("Access-Control-Expose-Headers", expose)]
    assert (verdicts.decide(actual(*fields)).hidden_headers == ()) is readable


def test_the_header_named_is_chromiums_choice_and_the_fix_lists_every_missing_one():
    exchange = Exchange(O, "PUT", True, 204, [(ACAO, O), (ACAM, "PUT")], ("content-type", "x-alpha", "x-request-id", "x-zeta"),
                        url="http://127.0.0.1:8000/items")
    verdict = verdicts.decide(exchange)
    assert verdict.failure.value == "x-zeta"  # what Chromium 156 printed for these four
    assert verdict.failure.fix(O) == (
        "send `Access-Control-Allow-Headers: x-zeta, x-alpha, x-request-id, content-type` in the preflight response"
    )
    assert verdict.warnings[0].startswith("4 requested headers are not allowed (x-zeta, x-alpha, x-request-id, content-type): "
                                          "Chromium names x-zeta")


@pytest.mark.parametrize(
    "failure, text",
    [
        (Failure("AllowOriginMismatch", "http://a"), "The 'Access-Control-Allow-Origin' header has a value 'http://a' that is "
         "not equal to the supplied origin. Have the server send the header with a valid value."),
        (Failure("PreflightMultipleAllowOriginValues", "a, b"), "Response to preflight request doesn't pass access control "
         "check: The 'Access-Control-Allow-Origin' header contains multiple values 'a, b', but only one is allowed. Have the "
         "server send the header with a valid value."),
        (Failure("InvalidAllowOriginValue", "foo"), "The 'Access-Control-Allow-Origin' header contains the invalid value "
         "'foo'. Have the server send the header with a valid value."),
        (Failure("MissingAllowOriginHeader"), "No 'Access-Control-Allow-Origin' header is present on the requested resource."),
        (Failure("RedirectContainsCredentials", "https://u:p@x.test/"), "Redirect location '' contains a username and "
         "password, which is disallowed for cross-origin requests."),
        (Failure("CorsDisabledScheme", "ftp://x.test/"), "Cross origin requests are only supported for protocol schemes: "
         "chrome, chrome-experimental-site-token-provider, chrome-extension, chrome-untrusted, data, http, https, isolated-app."),
        (Failure("TooManyRedirects"), "net::ERR_TOO_MANY_REDIRECTS"),
    ],
)
def test_messages_are_chromiums_word_for_word(failure, text):
    assert failure.message() == text


def test_a_permanent_redirect_to_itself_loops_in_the_browsers_cache():
    """Chromium caches the 301 and follows it 20 times without asking the proxy again."""
    looping = Exchange(O, "GET", False, 301, [(ACAO, "*"), ("Location", "/a")], url="https://api.test/a")
    assert verdicts.decide(looping).reason == "TooManyRedirects"
    assert verdicts.decide(Exchange(O, "GET", False, 302, [(ACAO, "*"), ("Location", "/a")], url="https://api.test/a")).allowed
