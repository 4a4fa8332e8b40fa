"""Break scenarios on the wire: a real mitmdump in front of a backend with no CORS at all."""

from __future__ import annotations

import re

import pytest

from support.servers import PLAIN, running_mitmdump
from support.wire import ORIGIN, PREFLIGHT, send, values

pytestmark = pytest.mark.integration


def test_a_preflight_scenario_is_answered_at_the_proxy_with_its_status(backend, write_rules):
    rules = write_rules("rules:\n  - name: auth wall\n    break: {scenario: preflight-invalid-status, status: 401}\n")
    with running_mitmdump([rules]) as proxy:
        status, headers, body = send(proxy, "OPTIONS", backend.url(PLAIN + "a"), PREFLIGHT)
    assert (status, body) == (401, b"")
    assert values(headers, "Access-Control-Allow-Origin") == [ORIGIN]
    assert backend.requests == []
    assert "cors: rule 'auth wall' broke the preflight (preflight-invalid-status) with 401 for OPTIONS" in proxy.output()


def test_a_redirect_scenario_sends_a_location(backend, write_rules):
    rules = write_rules("rules:\n  - name: redirect\n    break: preflight-disallowed-redirect\n")
    url = backend.url(PLAIN + "b")
    with running_mitmdump([rules]) as proxy:
        status, headers, _ = send(proxy, "OPTIONS", url, PREFLIGHT)
    assert status == 301 and values(headers, "Location") == [url]


def test_a_response_scenario_answers_the_preflight_and_faults_the_response(backend, write_rules):
    rules = write_rules("rules:\n  - name: no origin\n    break: missing-allow-origin-header\n")
    with running_mitmdump([rules]) as proxy:
        status, preflight_headers, _ = send(proxy, "OPTIONS", backend.url(PLAIN + "c"), PREFLIGHT)
        put_status, put_headers, _ = send(proxy, "PUT", backend.url(PLAIN + "c"), {"Origin": ORIGIN})
    assert status == 204 and values(preflight_headers, "Access-Control-Allow-Methods") == ["PUT"]
    assert put_status == 200 and values(put_headers, "Access-Control-Allow-Origin") == []
    assert values(put_headers, "Access-Control-Allow-Credentials") == ["true"]
    output = proxy.output()
    assert "rule 'no origin' answered the preflight for missing-allow-origin-header with 204" in output
    assert "rule 'no origin' broke the response (missing-allow-origin-header) for PUT" in output


@pytest.mark.parametrize(
    "scenario, headers, caveat",
    [
        ("preflight-invalid-status", {"Origin": ORIGIN},
         "[may not show: preflight-invalid-status faults the preflight, and this request needs none]"),
        ("wildcard-origin-not-allowed", {"Origin": ORIGIN},
         "[may not show: shows only on a credentialed request (credentials: 'include'), and that is not on the wire; this request carries no Cookie]"),
    ],
)
def test_a_flow_that_cannot_show_the_scenario_is_logged(backend, write_rules, scenario, headers, caveat):
    rules = write_rules(f"rules:\n  - name: the bug\n    break: {scenario}\n")
    with running_mitmdump([rules]) as proxy:
        status, _, _ = send(proxy, "GET", backend.url(PLAIN + "d"), headers)
    assert status == 200
    (line,) = [line for line in proxy.output().splitlines() if "cors: rule 'the bug'" in line]
    assert line.endswith(caveat)


def test_a_preflight_that_could_not_show_the_fault_is_named_on_the_request_after_it(backend, write_rules):
    rules = write_rules("rules:\n  - name: the bug\n    break: {scenario: header-disallowed-by-preflight-response, header: X-Other}\n")
    url = backend.url(PLAIN + "e")
    with running_mitmdump([rules]) as proxy:
        send(proxy, "OPTIONS", url, PREFLIGHT)
        send(proxy, "PUT", url, {"Origin": ORIGIN, "X-Test": "1"})
    (line,) = [line for line in proxy.output().splitlines() if "cors: rule 'the bug' made the response correct for PUT" in line]
    assert re.search(r"\[may not show: header-disallowed-by-preflight-response faults the preflight; this request's came "
                     r"\d+ ms earlier, but the preflight does not ask for x-other\]$", line), line
