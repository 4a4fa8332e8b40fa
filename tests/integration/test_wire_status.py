"""A status a rule gives a forwarded preflight really reaches the client, however
large the backend's body: mitmproxy streams bodies past ``stream_large_bodies``, and
a streamed response's status line leaves with its headers."""

from __future__ import annotations

import http.client
import json

import pytest

from support.servers import OPTIONS_405_CHUNKED, OPTIONS_405_LARGE, PLAIN, ApiServer, running_mitmdump
from support.wire import ORIGIN, PREFLIGHT, values

pytestmark = pytest.mark.integration

RULES = """\
rules:
  - name: forward
    match: {path: "*/forward"}
    allow: {preflight: forward}
  - name: auth wall
    match: {path: "*/status", filter: "~c 405"}
    break: {scenario: preflight-invalid-status, status: 401}
  - name: no origin on GET
    match: {path: "*/repair", filter: "~c 405"}
    break: missing-allow-origin-header
"""
# each rule's path: the status the client must get, and the report's verdict
REPAIRS = {"forward": (204, "allowed"), "status": (401, "blocked"), "repair": (204, "allowed")}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    folder = tmp_path_factory.mktemp("status")
    (folder / "rules.yaml").write_text(RULES)
    report = folder / "report.jsonl"
    options = ["--set", "stream_large_bodies=100", "--set", f"cors_report={report}"]
    with ApiServer() as backend, running_mitmdump([folder / "rules.yaml"], options) as proxy:
        yield backend, proxy, report


@pytest.mark.parametrize("prefix", [OPTIONS_405_LARGE, OPTIONS_405_CHUNKED])
@pytest.mark.parametrize("case", REPAIRS)
def test_a_new_status_reaches_the_client_when_the_body_is_streamed(lab, prefix, case):
    backend, proxy, report = lab
    status, verdict = REPAIRS[case]
    url = backend.url(f"{prefix}{case}")
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    try:
        connection.request("OPTIONS", url, headers=PREFLIGHT)
        response = connection.getresponse()
        got_status, reason, headers, body = response.status, response.reason, response.getheaders(), response.read()
        connection.request("GET", backend.url(PLAIN + "a"))  # the same connection: the framing held
        after = connection.getresponse()
        after_status = after.status
        after.read()
    finally:
        connection.close()
    assert (got_status, reason, body) == (status, http.client.responses[status], b"")
    assert values(headers, "Access-Control-Allow-Origin") == [ORIGIN]
    assert values(headers, "Content-Type") == [] and values(headers, "Transfer-Encoding") == [], "nothing describes the dropped body"
    assert after_status == 200
    assert f"(405 -> {status}) for OPTIONS {url} " in proxy.output()
    (entry,) = [json.loads(line) for line in report.read_text().splitlines() if f'"{url}"' in line]
    assert (entry["status"], entry["verdict"]) == (status, verdict)
