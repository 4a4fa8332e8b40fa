"""The pure CORS model: which headers a bypass sends, read off the Fetch standard."""

from __future__ import annotations

import re

import pytest

from mitmcors import cors
from mitmcors.cors import AllowPolicy, CorsRequest

ORIGIN = "http://localhost:3000"


def preflight(method: str = "PUT", headers: tuple[str, ...] = ("content-type", "x-test"), **kw) -> CorsRequest:
    return CorsRequest(origin=ORIGIN, method=method, preflight=True, header_names=headers, **kw)


def actual(origin: str | None = ORIGIN) -> CorsRequest:
    return CorsRequest(origin=origin, method="GET", preflight=False)


@pytest.mark.parametrize(
    "method, origin, requested, expected",
    [
        ("OPTIONS", ORIGIN, "PUT", True),
        ("OPTIONS", ORIGIN, None, False),  # a plain OPTIONS request, not a preflight
        ("OPTIONS", None, "PUT", False),
        ("GET", ORIGIN, "PUT", False),
    ],
)
def test_is_preflight(method, origin, requested, expected):
    assert cors.is_preflight(method, origin, requested) is expected


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, ()),
        ("", ()),
        ("content-type,x-test", ("content-type", "x-test")),
        (" X-Test , ,Authorization ", ("x-test", "authorization")),
    ],
)
def test_requested_header_names(value, expected):
    assert cors.requested_header_names(value) == expected


@pytest.mark.parametrize("text, expected", [("X-Test", True), ("GET", True), ("X Test", False), ("", False), ("a:b", False)])
def test_is_token(text, expected):
    assert cors.is_token(text) is expected


@pytest.mark.parametrize("value, expected", [("fine\tvalue", None), ("a\rb", "\r"), ("a\nb", "\n"), ("a\x00b", "\x00")])
def test_unsafe_value_character(value, expected):
    assert cors.unsafe_value_character(value) == expected


def test_defaults_let_a_credentialed_preflight_through():
    assert cors.granted_headers(AllowPolicy(), preflight()) == [
        ("Access-Control-Allow-Origin", ORIGIN),
        ("Access-Control-Allow-Credentials", "true"),
        ("Access-Control-Allow-Methods", "PUT"),
        ("Access-Control-Allow-Headers", "content-type, x-test"),
    ]


def test_defaults_expose_the_response_own_headers_but_not_cors_or_cookies():
    names = ["Content-Type", "X-Total", "Set-Cookie", "Access-Control-Allow-Origin", "x-total"]
    assert cors.granted_headers(AllowPolicy(), actual(), names) == [
        ("Access-Control-Allow-Origin", ORIGIN),
        ("Access-Control-Allow-Credentials", "true"),
        ("Access-Control-Expose-Headers", "content-type, x-total"),
    ]


def test_wildcards_are_literal_without_credentials():
    policy = AllowPolicy(origins="*", credentials=False, methods="*", headers="*", expose="*")
    assert cors.granted_headers(policy, preflight()) == [
        ("Access-Control-Allow-Origin", "*"),
        ("Access-Control-Allow-Methods", "*"),
        ("Access-Control-Allow-Headers", "*"),
    ]
    assert cors.granted_headers(policy, actual(), ["X-Total"]) == [
        ("Access-Control-Allow-Origin", "*"),
        ("Access-Control-Expose-Headers", "*"),
    ]


def test_wildcards_are_spelled_out_under_credentials():
    """Browsers read '*' literally on a credentialed response, so it would block."""
    policy = AllowPolicy(origins="*", credentials=True, methods="*", headers="*", expose="*")
    headers = dict(cors.granted_headers(policy, preflight(method="DELETE", headers=("authorization",))))
    assert headers["Access-Control-Allow-Origin"] == ORIGIN
    assert headers["Access-Control-Allow-Methods"] == "DELETE"
    assert headers["Access-Control-Allow-Headers"] == "authorization"
    exposed = dict(cors.granted_headers(policy, actual(), ["X-Total"]))
    assert exposed["Access-Control-Expose-Headers"] == "x-total"


def test_listed_methods_headers_and_exposed_are_sent_as_given():
    policy = AllowPolicy(methods=("GET", "PUT"), headers=("X-Test",), expose=("X-Total",), max_age=600)
    assert cors.granted_headers(policy, preflight())[2:] == [
        ("Access-Control-Allow-Methods", "GET, PUT"),
        ("Access-Control-Allow-Headers", "X-Test"),
        ("Access-Control-Max-Age", "600"),
    ]
    assert cors.granted_headers(policy, actual(), ["X-Other"])[2:] == [("Access-Control-Expose-Headers", "X-Total")]


def test_an_empty_expose_list_exposes_nothing():
    assert cors.granted_headers(AllowPolicy(expose=()), actual(), ["X-Total"]) == [
        ("Access-Control-Allow-Origin", ORIGIN),
        ("Access-Control-Allow-Credentials", "true"),
    ]


def test_a_preflight_asking_for_no_headers_gets_no_allow_headers():
    names = [name for name, _ in cors.granted_headers(AllowPolicy(), preflight(headers=()))]
    assert "Access-Control-Allow-Headers" not in names


@pytest.mark.parametrize("asks, policy_says, answered", [(True, True, True), (True, False, False), (False, True, False)])
def test_private_network_is_granted_only_when_asked_and_allowed(asks, policy_says, answered):
    headers = dict(cors.granted_headers(AllowPolicy(private_network=policy_says), preflight(private_network=asks)))
    assert ("Access-Control-Allow-Private-Network" in headers) is answered


@pytest.mark.parametrize(
    "written, sent",
    [("put", "PUT"), ("Get", "GET"), ("delete", "DELETE"), ("options", "OPTIONS"), ("patch", "patch"), ("PATCH", "PATCH")],
)
def test_a_method_is_sent_as_fetch_normalizes_it(written, sent):
    assert cors.normalize_method(written) == sent


@pytest.mark.parametrize(
    "origin, allowed",
    [("http://localhost:3000", True), ("http://LOCALHOST:8080", True), ("http://localhost", False), ("https://evil.test", False)],
)
def test_an_origin_list_is_matched_in_full(origin, allowed):
    policy = AllowPolicy(origins=re.compile(r"http://localhost:.*", re.IGNORECASE))
    headers = cors.granted_headers(policy, actual(origin))
    assert headers[:1] == ([("Access-Control-Allow-Origin", origin)] if allowed else [])
    assert bool(headers) is allowed


def test_a_request_without_origin_gets_nothing():
    assert cors.granted_headers(AllowPolicy(), actual(origin=None)) == []


@pytest.mark.parametrize(
    "policy, request_, tokens",
    [
        (AllowPolicy(), actual(), ("Origin",)),
        (AllowPolicy(origins="*", credentials=False), actual(), ()),
        (AllowPolicy(origins="*", credentials=True), actual(), ("Origin",)),
        (AllowPolicy(), preflight(), ("Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers")),
        (AllowPolicy(methods=("PUT",), headers="*"), preflight(), ("Origin",)),
    ],
)
def test_vary_names_what_the_answer_depends_on(policy, request_, tokens):
    assert cors.vary_on(policy, request_) == tokens


@pytest.mark.parametrize(
    "fields, expected",
    [
        ([], [("Vary", "Origin")]),
        ([("Vary", "Accept-Encoding")], [("Vary", "Accept-Encoding, Origin")]),
        ([("vary", "origin")], [("vary", "origin")]),
        ([("Vary", "*")], [("Vary", "*")]),
        ([("Vary", "Accept"), ("Vary", "Cookie")], [("Vary", "Accept, Origin"), ("Vary", "Cookie")]),
    ],
)
def test_vary_is_appended_never_overwritten(fields, expected):
    assert cors.with_vary(fields, ["Origin"]) == expected


def test_replace_cors_headers_drops_every_backend_cors_header():
    backend = [
        ("Content-Type", "application/json"),
        ("Access-Control-Allow-Origin", "http://wrong.example"),
        ("access-control-allow-origin", "*"),
        ("Access-Control-Allow-Methods", "GET"),
    ]
    ours = [("Access-Control-Allow-Origin", ORIGIN)]
    assert cors.replace_cors_headers(backend, ours, ["Origin"]) == [
        ("Content-Type", "application/json"),
        ("Access-Control-Allow-Origin", ORIGIN),
        ("Vary", "Origin"),
    ]
