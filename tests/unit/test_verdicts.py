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
