"""Over HTTP/2 the addon writes header names as the connection expects them (lowercase),
so mitmproxy has nothing to correct and the log shows only the addon's own lines."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from support.http2 import Http2ApiServer
from support.servers import running_mitmdump
from support.wire import ORIGIN

pytestmark = pytest.mark.integration

RULES = "rules:\n  - name: mark\n    match: {path: /set}\n    set: {X-Lab: '1'}\n  - name: bypass\n    allow: {}\n"


def curl_http2(proxy_port: int, url: str, *headers: str, method: str = "GET") -> str:
    """One request through the proxy with curl over HTTP/2; the response head, lowercased by HTTP/2."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl not installed: apt-get install curl")
    command = [curl, "--http2", "-k", "-s", "-D", "-", "-o", "/dev/null", "-X", method, "--proxy", f"http://127.0.0.1:{proxy_port}", url]
    for header in headers:
        command += ["-H", header]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=True).stdout


def test_headers_added_to_an_http2_response_are_lowercase_and_mitmproxy_says_nothing(write_rules):
    with Http2ApiServer() as backend, running_mitmdump([write_rules(RULES)], ["--set", "ssl_insecure=true"]) as proxy:
        allowed = curl_http2(proxy.port, backend.url("/items"), f"Origin: {ORIGIN}")
        preflight = curl_http2(proxy.port, backend.url("/items"), f"Origin: {ORIGIN}", "Access-Control-Request-Method: PUT", method="OPTIONS")
        marked = curl_http2(proxy.port, backend.url("/set"))
    output = proxy.output()
    assert "\nHTTP/2 200" in allowed and f"\naccess-control-allow-origin: {ORIGIN}\n" in allowed
    assert "\nHTTP/2 204" in preflight and f"\naccess-control-allow-origin: {ORIGIN}\n" in preflight
    assert "\nx-lab: 1\n" in marked
    assert "rewrote the response for GET" in output and "HTTP/2.0" in output, output
    assert "Lowercased" not in output, output
