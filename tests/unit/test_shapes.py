"""Outcomes remembered by a response's shape: a plan or a verdict worked out on one
response must be what working it out afresh gives for every response of that shape,
whatever its other values (Date, Content-Length, a request id)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from mitmcors import actions, cors, shapes, verdicts
from mitmcors.flows import byte_fields, decoded
from mitmcors.profiles import OTHER_PROFILES
from mitmcors.rules import parse_rules

ORIGIN = "http://localhost:3000"
URL = "http://api.test/v1/items"
ACTIONS = {
    rule.name: rule.action for rule in parse_rules("""
rules:
  - {name: allow, allow: {}}
  - {name: listed, allow: {origins: ['http://localhost:*'], credentials: false, methods: '*', headers: '*', expose: '*', max_age: 600}}
  - {name: exposed, allow: {credentials: true, expose: [x-total], private_network: true}}
  - {name: wildcard, allow: {origins: '*', credentials: false}}
  - {name: rewrite, strip: all, set: {Access-Control-Allow-Origin: '*', Vary: Origin}}
  - {name: strip some, strip: [x-total, access-control-allow-credentials]}
  - {name: set other, set: {Content-Type: text/plain, X-Total: '0'}}
""")
}

NAMES = [b"Content-Type", b"content-length", b"X-Total", b"Date", b"Set-Cookie", b"Vary", b"vary", b"Location",
         b"Access-Control-Allow-Origin", b"access-control-allow-credentials", b"Access-Control-Expose-Headers",
         b"Access-Control-Allow-Methods", b"Access-Control-Allow-Headers", b"Access-Control-Max-Age", b"ETag"]
VALUES = [b"", b"*", b"true", b"Origin", b"Accept, Origin", ORIGIN.encode(), b"x-total, etag", b"600", b"/login",
          b"text/plain", b"\xff", b"a\x00b"]

names = st.lists(st.sampled_from(NAMES), max_size=8)
values = st.one_of(st.sampled_from(VALUES), st.binary(max_size=12))
requests = st.builds(
    cors.CorsRequest,
    origin=st.sampled_from([ORIGIN, "null", "http://other.test"]),
    method=st.sampled_from(["GET", "PUT", "DELETE"]),
    preflight=st.booleans(),
    header_names=st.sampled_from([(), ("x-test",), ("content-type", "x-test")]),
    private_network=st.booleans(),
    carries_cookie=st.booleans(),
    mode=st.sampled_from(["cors", None]),
)


def of_shape(draw, line_names: list[bytes], like: tuple[tuple[bytes, bytes], ...] | None = None) -> tuple[tuple[bytes, bytes], ...]:
    """Header lines with these names; with ``like``, its values where a shape shows them."""
    return tuple(
        (name, like[index][1] if like and shapes.value_read(name) else draw(values))
        for index, name in enumerate(line_names)
    )


@settings(max_examples=300, deadline=None)
@given(data=st.data(), action=st.sampled_from(sorted(ACTIONS)), request=requests, line_names=names,
       status=st.sampled_from([200, 204, 302, 404]), lowercase=st.booleans())
def test_a_plan_writes_what_the_action_does_for_every_response_of_its_shape(data, action, request, line_names, status, lowercase):
    first = of_shape(data.draw, line_names)
    second = of_shape(data.draw, line_names, like=first)
    assert shapes.shape(first) == shapes.shape(second)
    plan = actions.plan(ACTIONS[action], request, URL, first, status, lowercase)
    for raw in (first, second) if plan.general else (first,):
        direct = actions.response_rewrite(ACTIONS[action], request, URL, decoded(raw), status)
        expected = byte_fields([(name.lower() if lowercase else name, value) for name, value in direct.fields])
        written = plan.fields(raw)
        if lowercase:  # a line kept keeps its own name, lowercased only when it was not
            written = tuple((name.lower(), value) for name, value in written)
        assert list(written) == expected
        assert (plan.outcome.what, plan.outcome.status) == (direct.what, direct.status)
        assert plan.shape in (None, shapes.shape(plan.fields(raw)))


@settings(max_examples=300, deadline=None)
@given(data=st.data(), request=requests, line_names=names, status=st.sampled_from([200, 204, 301, 307, 404]),
       redirects=st.sampled_from([0, 3]))
def test_a_verdict_is_the_same_for_every_response_of_its_shape(data, request, line_names, status, redirects):
    first = of_shape(data.draw, line_names)
    second = of_shape(data.draw, line_names, like=first)

    def decided(raw):
        exchange = verdicts.Exchange(
            ORIGIN, request.method, request.preflight, status, decoded(raw), request.header_names,
            True if request.carries_cookie else None, URL, redirects,
        )
        verdict = verdicts.decide(exchange)
        return verdict, [verdicts.decide_as(profile, exchange, verdict) for profile in OTHER_PROFILES]

    assert decided(first) == decided(second)


def test_a_break_is_planned_for_its_response_alone():
    raw = ((b"Content-Type", b"text/plain"),)
    request = cors.CorsRequest(ORIGIN, "GET", False, mode="cors")
    plan = actions.plan(parse_rules("rules: [{name: b, break: missing-allow-origin-header}]")[0].action,
                        request, URL, raw, 200, False)
    assert not plan.general and plan.shape is None


def test_a_value_from_the_network_never_passes_for_a_kept_line():
    """An Origin that spells a stand-in is echoed as it is, never swapped for a line of
    the response, and such a plan is not remembered."""
    raw = ((b"X-Total", b"42"),)
    request = cors.CorsRequest("\x00stand-in:0", "GET", False, mode="cors")
    plan = actions.plan(ACTIONS["allow"], request, URL, raw, 200, False)
    assert not plan.general
    assert (b"Access-Control-Allow-Origin", b"\x00stand-in:0") in plan.fields(raw)
    assert plan.unsafe and plan.unsafe[0][2] == "\x00"


def test_a_shape_is_the_names_and_the_values_read():
    raw = ((b"Date", b"Mon"), (b"Vary", b"Origin"), (b"ACCESS-CONTROL-ALLOW-ORIGIN", b"*"), (b"location", b"/x"))
    assert shapes.shape(raw) == (b"Date", (b"Vary", b"Origin"), (b"ACCESS-CONTROL-ALLOW-ORIGIN", b"*"), (b"location", b"/x"))
    assert shapes.shape(((b"Access-Control-Allow-Origin", b"x" * (shapes.LONGEST_VALUE + 1)),)) is None


def test_header_names_are_remembered_up_to_a_bound_and_judged_alike_past_it(monkeypatch):
    monkeypatch.setattr(shapes, "_values_read", {})
    for number in range(shapes.NAMES_REMEMBERED + 10):
        assert not shapes.value_read(b"X-Id-%d" % number)
    assert len(shapes._values_read) == shapes.NAMES_REMEMBERED
    assert shapes.value_read(b"Access-Control-Allow-Origin") and shapes.value_read(b"VARY")
    assert shapes.shape(((b"LOCATION", b"/x"), (b"X-Id-1", b"1"))) == ((b"LOCATION", b"/x"), b"X-Id-1")


def test_remembered_outcomes_are_bounded():
    remembered: shapes.Remembered[int, int] = shapes.Remembered(limit=3)
    for key in range(7):
        assert remembered.put(key, key * 10) == key * 10
        assert len(remembered) <= 3
    assert remembered.get(6) == 60 and remembered.get(0) is None


@pytest.mark.parametrize("raw", [(), ((b"X-A", b"1"),)])
def test_an_empty_or_bare_response_has_a_shape(raw):
    assert shapes.shape(raw) == tuple(name for name, _ in raw)
