"""End to end over HTTPS: Chromium speaks TLS (and HTTP/2) to mitmproxy, which speaks TLS
to the backend. The rules and the verdicts must work on intercepted HTTPS as on HTTP."""

from __future__ import annotations

import json
import uuid
from urllib.parse import urlsplit
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from support.browser import FetchResult, page_fetch, proxied_context
from support.outcomes import chromium_outcome
from support.servers import PLAIN, HttpsApiServer, HttpsPageServer, running_mitmdump

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = [pytest.mark.browser, pytest.mark.integration]

RULES = """\
rules:
  - name: auth wall
    match: {path: "/plain/broken/*"}
    break: {scenario: preflight-invalid-status, status: 401}
  - name: bypass
    match: {path: "/plain/open/*"}
    allow: {}
"""


@pytest.fixture(scope="module")
def https_lab(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = Path(tmp_path_factory.mktemp("https"))
    (folder / "rules.yaml").write_text(RULES)
    report = folder / "report.jsonl"
    options = ["--set", "ssl_insecure=true", "--set", f"cors_report={report}"]  # the backend's certificate is self-signed
    with HttpsApiServer() as backend, HttpsPageServer() as page, running_mitmdump([folder / "rules.yaml"], options) as proxy:
        yield {"browser": browser, "backend": backend, "page": page, "proxy": proxy, "report": report}


def fetch(lab: dict[str, Any], path: str, **options: Any) -> tuple[FetchResult, str]:
    url = lab["backend"].url(f"{path}{uuid.uuid4().hex}")
    with proxied_context(lab["browser"], lab["proxy"].port, trust_proxy_certificates=True) as context:
        context.add_cookies([{"name": "session", "value": "abc", "url": lab["backend"].base_url}])
        return page_fetch(context, lab["page"].url("/"), url, **options), url


PREFLIGHTED = {"method": "PUT", "headers": {"Content-Type": "application/json", "X-Test": "1"}, "body": "{}", "credentials": "include"}


def test_a_bypass_works_over_https_and_http2(https_lab):
    result, url = fetch(https_lab, PLAIN + "open/", read_headers=["x-total"], **PREFLIGHTED)
    assert result.ok and result.status == 200, result.describe()
    assert result.json["cookie"] == "session=abc" and result.headers["x-total"] == "42"
    assert [r.method for r in https_lab["backend"].requests_to(urlsplit(url).path)] == ["PUT"]  # preflight answered
    (line,) = [line for line in https_lab["proxy"].output().splitlines() if f": PUT {url[:50]}" in line]
    assert line.endswith("HTTP/2.0"), f"Chromium should talk HTTP/2 to mitmproxy over TLS: {line}"


def test_a_break_scenario_shows_over_https(https_lab):
    result, _ = fetch(https_lab, PLAIN + "broken/", **PREFLIGHTED)
    assert chromium_outcome(result) == ("blocked", "PreflightInvalidStatus"), result.describe()


def test_verdicts_explain_https_flows(https_lab):
    result, url = fetch(https_lab, PLAIN + "unruled/")
    assert chromium_outcome(result) == ("blocked", "MissingAllowOriginHeader"), result.describe()
    (entry,) = [json.loads(line) for line in https_lab["report"].read_text().splitlines() if url in line]
    assert (entry["url"], entry["reason"]) == (url, "MissingAllowOriginHeader")
