"""Never let one odd flow take the proxy down: arbitrary bytes in every CORS request and
response header, through every kind of rule, never make a hook of either addon fail,
and nothing the addon writes into a header carries CR, LF or NUL."""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st
from mitmproxy import http
from mitmproxy.test import taddons, tflow, tutils

from mitmcors.addon import CorsRules
from mitmcors.observer import CorsVerdicts
from mitmcors.scenarios import SCENARIOS

ORIGIN = b"http://localhost:3000"
PLAUSIBLE = [b"", b"*", b"null", b"true", b"TRUE", ORIGIN, b"http://other.test", b"GET", b"PUT", b"put",
             b"x-test, content-type", b"authorization", b"*, x-test", b"600", b"-1", b"86400", b"Origin",
             b"http://api.test/v1/items", b"a b", b"a,b", b" ", b"\xff\xfe", b"\x00", b"\r", b"\x1b[2J"]
UNSAFE = (b"\r", b"\n", b"\x00")

# One rule per kind of action, chosen by path (and a filter): (name, more to match, action).
ACTIONS = [
    ("allow", "", "allow: {}"),
    ("forward", "", "allow: {preflight: forward}"),
    ("listed", "", "allow: {origins: ['http://localhost:*'], credentials: false, methods: '*', headers: '*', expose: '*', max_age: 600}"),
    ("rewrite", "", "strip: all\n    set: {Access-Control-Allow-Origin: '*', Vary: Origin}"),
    ("on-error", ", filter: '~c 405'", "break: preflight-invalid-status"),
    *((f"break-{name}", "", f"break: {name}") for name in SCENARIOS),
]
RULES = "rules:\n" + "".join(
    f"  - name: {name}\n    match: {{path: '/{name}'{more}}}\n    {action}\n" for name, more, action in ACTIONS
)
PATHS = [f"/{name}" for name, _, _ in ACTIONS] + ["/unruled"]

RESPONSE_HEADERS = [b"Access-Control-Allow-Origin", b"Access-Control-Allow-Credentials", b"Access-Control-Allow-Methods",
                    b"Access-Control-Allow-Headers", b"Access-Control-Expose-Headers", b"Access-Control-Max-Age",
                    b"Vary", b"Location"]
REQUEST_HEADERS = [b"Origin", b"Access-Control-Request-Method", b"Access-Control-Request-Headers"]

values = st.one_of(st.binary(max_size=40), st.sampled_from(PLAUSIBLE),
                   st.tuples(st.sampled_from(PLAUSIBLE), st.binary(max_size=8)).map(b"".join))
present = st.one_of(st.none(), values)


@pytest.fixture(scope="module")
def addons(tmp_path_factory) -> Iterator[tuple[CorsRules, CorsVerdicts]]:
    folder = tmp_path_factory.mktemp("properties")
    (folder / "rules.yaml").write_text(RULES)
    rules, verdicts = CorsRules(), CorsVerdicts()
    with taddons.context(rules, verdicts) as tctx:
        tctx.configure(rules, cors_rules=[str(folder / "rules.yaml")])
        tctx.configure(verdicts, cors_report=str(folder / "report.jsonl"))  # the report's path too
        assert len(rules.rules) == len(PATHS) - 1
        yield rules, verdicts


@contextmanager
def errors_logged() -> Iterator[list[str]]:
    """Every error either addon logs meanwhile (an internal error is logged, not raised)."""
    seen: list[str] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("mitmcors")
    logger.addHandler(handler)
    try:
        yield seen
    finally:
        logger.removeHandler(handler)


def make_flow(method: str, path: str, request_values: list[bytes | None]) -> http.HTTPFlow:
    headers = [(name, value) for name, value in zip(REQUEST_HEADERS, request_values) if value is not None]
    request = tutils.treq(method=method.encode(), headers=http.Headers([(b"Host", b"api.test"), *headers]), content=b"")
    request.url = f"http://api.test{path}"
    return tflow.tflow(req=request)


def added_lines(before: list[tuple[bytes, bytes]], after: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return list((collections.Counter(after) - collections.Counter(before)).elements())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(  # the response's own unsafe line, which a rule may keep, written twice: once more than it came
    method="OPTIONS", path="/break-multiple-allow-origin-values", request_values=[b"\x00", None, None], status=200,
    response_values=[b"\x00", None, None, None, None, None, None, None], cookie=False,
)
@given(
    method=st.sampled_from(["OPTIONS", "OPTIONS", "GET", "PUT", "POST"]),
    path=st.sampled_from(PATHS),
    request_values=st.lists(present, min_size=3, max_size=3),
    status=st.sampled_from([200, 204, 301, 403, 405, 501]),
    response_values=st.lists(present, min_size=8, max_size=8),
    cookie=st.booleans(),
)
def test_no_header_value_makes_a_hook_fail_or_the_addon_write_a_control_character(
    addons, method, path, request_values, status, response_values, cookie
):
    rules, verdicts = addons
    f = make_flow(method, path, request_values)
    if cookie:
        f.request.headers["Cookie"] = "session=abc"
    backend = [(name, value) for name, value in zip(RESPONSE_HEADERS, response_values) if value is not None]
    with errors_logged() as errors:
        rules.request(f)
        if f.response is None:
            f.response = tutils.tresp(status_code=status, headers=http.Headers(backend), content=b"backend body")
            rules.responseheaders(f)
            sent = added_lines(backend, f.response.headers.fields)
        else:
            sent = list(f.response.headers.fields)
        verdicts.response(f)
    assert errors == []
    for name, value in sent:
        assert not any(unsafe in name + value for unsafe in UNSAFE), f"the addon wrote {name!r}: {value!r}"


@settings(max_examples=100, deadline=None)
@given(request_values=st.lists(present, min_size=3, max_size=3), message=st.text(max_size=40))
def test_no_request_makes_the_error_hook_fail(addons, request_values, message):
    _, verdicts = addons
    f = make_flow("OPTIONS", "/allow", request_values)
    f.error = tflow.terr(message or "connection refused")
    with errors_logged() as errors:
        verdicts.error(f)
    assert errors == []


def test_a_max_age_past_pythons_digit_limit_is_judged(addons):
    _, verdicts = addons
    f = make_flow("OPTIONS", "/unruled", [ORIGIN, b"PUT", None])
    f.response = tutils.tresp(status_code=204, headers=http.Headers([
        (b"Access-Control-Allow-Origin", ORIGIN), (b"Access-Control-Allow-Methods", b"PUT"),
        (b"Access-Control-Max-Age", b"9" * 5000)]), content=b"")
    with errors_logged() as errors:
        verdicts.response(f)
    assert errors == []
