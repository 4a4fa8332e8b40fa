"""Where Firefox and WebKit decide differently from Chromium: one case per profile field,
each as the real browsers showed it (see mitmcors/profiles.py)."""

from __future__ import annotations

import pytest

from mitmcors import verdicts
from mitmcors.profiles import CHROMIUM, FIREFOX, FIREFOX_STRICT_AUTHORIZATION, PROFILES, WEBKIT
from mitmcors.verdicts import Exchange

O = "https://app.test"
ACAO, ACAM, ACAH, MAX_AGE = "Access-Control-Allow-Origin", "Access-Control-Allow-Methods", "Access-Control-Allow-Headers", "Access-Control-Max-Age"
GRANT = ((ACAO, O), (ACAM, "PUT"), (ACAH, "x-test"))


def preflight(*fields, method="PUT", headers=("x-test",), status=204) -> Exchange:
    return Exchange(O, method, True, status, list(fields), tuple(headers), False)


def kinds(exchange: Exchange) -> dict[str, str | None]:
    return {name: verdicts.decide(exchange, profile).reason for name, profile in PROFILES.items()}


CLIENT_HINTS = [("DPR", "2"), ("Width", "100"), ("Viewport-Width", "100"), ("Device-Memory", "4"), ("RTT", "50"),
                ("Downlink", "1.5"), ("ECT", "4g"), ("Save-Data", "on"), ("Intervention", "x")]


@pytest.mark.parametrize("name, value", CLIENT_HINTS)
def test_only_chromium_safelists_the_client_hints(name, value):
    assert {p: verdicts.needs_preflight("GET", [(name, value)], profile) for p, profile in PROFILES.items()} == {
        "chromium": False, "firefox": True, "webkit": True}


def test_only_chromium_counts_client_hints_toward_the_safelisted_total():
    """900 bytes of Accept plus 200 of DPR: over 1,024 in Chromium, so Accept needs a
    preflight too; elsewhere only DPR does, and Accept stays within the total."""
    headers = [("Accept", "a" * 100)] * 9 + [("DPR", "1" * 100), ("DPR", "1" * 100)]
    assert verdicts.unsafe_request_header_names(headers) == ["accept", "dpr"]
    assert verdicts.unsafe_request_header_names(headers, FIREFOX) == ["dpr"]


@pytest.mark.parametrize("value, firefox", [("bytes=0-10", False), ("BYTES=0-10", True), ("Bytes=5-", True)])
def test_firefox_wants_the_range_unit_in_lower_case(value, firefox):
    assert not verdicts.needs_preflight("GET", [("Range", value)])
    assert not verdicts.needs_preflight("GET", [("Range", value)], WEBKIT)
    assert verdicts.needs_preflight("GET", [("Range", value)], FIREFOX) is firefox


def test_webkit_judges_a_preflight_status_before_its_headers():
    assert kinds(preflight(status=404)) == {
        "chromium": "PreflightMissingAllowOriginHeader", "firefox": "PreflightMissingAllowOriginHeader",
        "webkit": "PreflightInvalidStatus"}


def test_firefox_checks_allow_origin_before_a_preflight_redirect():
    assert kinds(preflight(("Location", "https://x.test/"), status=301)) == {
        "chromium": "PreflightDisallowedRedirect", "firefox": "PreflightMissingAllowOriginHeader",
        "webkit": "PreflightDisallowedRedirect"}
    assert {verdicts.decide(preflight(*GRANT, ("Location", "/y"), status=302), p).reason for p in PROFILES.values()} == {
        "PreflightDisallowedRedirect"}


def test_firefox_checks_the_method_before_an_unparsable_allow_headers():
    assert kinds(preflight((ACAO, O), (ACAM, "GET"), (ACAH, "x@y"))) == {
        "chromium": "InvalidAllowHeadersPreflightResponse", "firefox": "MethodDisallowedByPreflightResponse",
        "webkit": "InvalidAllowHeadersPreflightResponse"}


def redirect(allow_origin: str, location: str) -> Exchange:
    return Exchange(O, "GET", False, 302, [(ACAO, allow_origin), ("Location", location)], url="https://api.test/a")


@pytest.mark.parametrize("location, chromium, firefox, webkit", [
    ("ftp://x.test/", "AllowOriginMismatch", "AllowOriginMismatch", "CorsDisabledScheme"),  # WebKit fetches no ftp:
    ("data:text/plain,x", "AllowOriginMismatch", "UnsafeRedirect", "AllowOriginMismatch"),  # Firefox follows no data:
    ("ws://x.test/", "AllowOriginMismatch", "UnknownUrlScheme", "AllowOriginMismatch"),  # nor ws:
    ("http://[x/", "InvalidRedirect", "InvalidRedirect", "AllowOriginMismatch"),  # WebKit: the CORS check first
    ("http://x.test:1/", "AllowOriginMismatch", "AllowOriginMismatch", "AllowOriginMismatch"),
    ("mailto:x@y.test", "AllowOriginMismatch", "AllowOriginMismatch", "AllowOriginMismatch"),
])
def test_each_engine_checks_a_failing_redirect_in_its_own_order(location, chromium, firefox, webkit):
    assert kinds(redirect("null", location)) == {"chromium": chromium, "firefox": firefox, "webkit": webkit}
    assert len(set(kinds(redirect("*", location)).values())) == 1


def test_firefox_takes_a_preflight_redirect_status_without_location_for_a_redirect():
    assert kinds(preflight(*GRANT, ("Location", ""), status=302)) == {
        "chromium": "PreflightInvalidStatus", "firefox": "PreflightDisallowedRedirect", "webkit": "PreflightInvalidStatus"}


def test_a_firefox_pref_makes_the_wildcard_leave_out_authorization():
    exchange = preflight((ACAO, O), (ACAM, "PUT"), (ACAH, "*"), headers=("authorization", "x-test"))
    assert set(kinds(exchange).values()) == {None}
    verdict = verdicts.decide(exchange, FIREFOX_STRICT_AUTHORIZATION)
    assert verdict.reason == "HeaderDisallowedByPreflightResponse" and verdict.failure.value == "authorization"


@pytest.mark.parametrize("max_age, chromium, firefox, webkit", [
    (None, 5, 5, 5),
    ("99999", 7200, 86400, 600),
    ("abc", 5, 0, 5),
    ("5, 10", 5, 0, 5),
    ("+5", 5, 0, 5),
    ("-1", 0, 0, 0),
    ("0", 0, 0, 0),
])
def test_each_engine_caps_and_reads_max_age_its_own_way(max_age, chromium, firefox, webkit):
    fields = [] if max_age is None else [(MAX_AGE, max_age)]
    assert [verdicts.preflight_cache_seconds(fields, p) for p in (CHROMIUM, FIREFOX, WEBKIT)] == [chromium, firefox, webkit]


@pytest.mark.parametrize("fields, method, headers, reused", [
    (GRANT, "PUT", ("x-test",), True),
    (((ACAO, O), (ACAM, "*"), (ACAH, "x-test")), "PUT", ("x-test",), False),
    (((ACAO, O), (ACAM, "PUT"), (ACAH, "*")), "PUT", ("x-test",), False),
    (((ACAO, O), (ACAH, "X-TEST")), "GET", ("x-test",), True),
    (((ACAO, O), (ACAH, "x-test")), "POST", ("x-test",), True),
    (((ACAO, O), (ACAH, "x-test")), "HEAD", ("x-test",), False),
])
def test_firefox_reuses_only_what_a_preflight_named(fields, method, headers, reused):
    exchange = preflight(*fields, method=method, headers=headers)
    assert verdicts.decide(exchange, FIREFOX).allowed
    assert verdicts.reuses_preflight(exchange, FIREFOX) is reused
    assert verdicts.reuses_preflight(exchange, CHROMIUM) and verdicts.reuses_preflight(exchange, WEBKIT)


@pytest.mark.parametrize("exchange", [
    preflight(*GRANT), preflight(status=404), preflight((ACAO, O), (ACAM, "GET"), (ACAH, "x@y")),
    preflight((ACAO, "*"), (ACAM, "PUT"), (ACAH, "x-test")), preflight((ACAO, O), (ACAM, "*"), (ACAH, "*")),
    preflight((ACAO, O), ("Access-Control-Allow-Credentials", "true"), (ACAM, "*"), (ACAH, "*;")),
    preflight((ACAO, O), ("Access-Control-Allow-Credentials", "true"), (ACAM, "*"), (ACAH, "*")),
    Exchange(O, "GET", False, 200, [(ACAO, "*")]), Exchange(O, "GET", False, 200, []),
    redirect("null", "ftp://x.test/"), redirect("null", "http://[x/"), redirect("*", "ftp://x.test/"),
    redirect("null", "ws://x.test/"), preflight(*GRANT, ("Location", ""), status=302),
    redirect(O, "http://u:p@x.test/"),
])
@pytest.mark.parametrize("profile", list(PROFILES.values()) + [FIREFOX_STRICT_AUTHORIZATION], ids=lambda p: p.name)
def test_deciding_again_only_where_engines_differ_changes_nothing(exchange, profile):
    chromium = verdicts.decide(exchange)
    assert verdicts.decide_as(profile, exchange, chromium) == verdicts.decide(exchange, profile)


@pytest.mark.parametrize("headers", [
    [], [("X-Test", "1")], [("Range", "BYTES=0-1")], [("DPR", "2"), ("Accept", "a" * 100)], [("Accept", "a" * 129)],
    [("Accept", "a" * 100)] * 9 + [("DPR", "1" * 100), ("DPR", "1" * 100)],
])
@pytest.mark.parametrize("profile", list(PROFILES.values()), ids=lambda p: p.name)
def test_asking_again_only_where_safelists_differ_changes_nothing(headers, profile):
    chromium = verdicts.needs_preflight("GET", headers)
    assert verdicts.needs_preflight_as(profile, "GET", headers, chromium) == verdicts.needs_preflight("GET", headers, profile)


def test_each_engine_names_its_own_first_of_several_missing_headers():
    """Seen with the client hints (engine differential, seed 6): Chromium names the first in
    Blink's header map, Firefox the first in sorted order; WebKit the first the page set,
    which a preflight does not show, so its sorted list stands in."""
    requested = ("device-memory", "downlink", "dpr", "ect", "rtt", "save-data", "viewport-width", "width")
    exchange = Exchange(O, "GET", True, 204, [(ACAO, O), (ACAM, "GET"), (ACAH, "accept")], requested, False,
                        url="http://127.0.0.1:8000/x")
    named = {name: verdicts.decide(exchange, profile).failure.value for name, profile in PROFILES.items()}
    assert named == {"chromium": "viewport-width", "firefox": "device-memory", "webkit": "device-memory"}
