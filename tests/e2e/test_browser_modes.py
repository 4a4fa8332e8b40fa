"""End to end in mitmproxy's other modes: as a reverse proxy (the page calls the proxy's
own address, no browser proxy settings) and behind a corporate proxy (upstream mode, a
second plain mitmdump in between). Bypass, break and verdicts work as in regular mode.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from support.browser import FetchResult, page_fetch, proxied_context
from support.outcomes import chromium_outcome
from support.servers import PAGE, PLAIN, ApiServer, MitmdumpProcess, PageServer, running_mitmdump

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext

pytestmark = [pytest.mark.browser, pytest.mark.integration]

PREFLIGHTED = {"method": "PUT", "headers": {"Content-Type": "application/json", "X-Test": "1"}, "body": "{}", "credentials": "include"}
INVALID_STATUS = "Response to preflight request doesn't pass access control check: It does not have HTTP ok status."
HEADER_DISALLOWED = "Request header field x-test is not allowed by Access-Control-Allow-Headers in preflight response."

# In reverse mode rules see the backend's host (from the --mode spec: 127.0.0.1), not the
# proxy's address the page calls (localhost here), just as mitmproxy's ~d does.
REVERSE_RULES = """\
rules:
  - name: auth wall
    match: {host: 127.0.0.1, path: "/plain/broken/*"}
    break: {scenario: preflight-invalid-status, status: 401}
  - name: bypass the backend
    match: {host: 127.0.0.1, path: "/plain/open/*"}
    allow: {}
  - name: never matches, the page's host is not the backend's
    match: {host: localhost}
    allow: {}
"""
UPSTREAM_RULES = """\
rules:
  - name: forgotten header
    match: {path: "/plain/broken/*"}
    break: header-disallowed-by-preflight-response
"""
BYPASS_ALL = Path(__file__).parents[2] / "rules" / "bypass-all.yaml"


def report_entries(report: Path, path: str) -> list[dict[str, Any]]:
    return [entry for entry in map(json.loads, report.read_text().splitlines()) if path in entry["url"]]


def printed(proxy: MitmdumpProcess, text: str, timeout: float = 5.0) -> bool:
    """Whether mitmdump prints ``text`` soon: it prints a flow after the browser has it."""
    deadline = time.monotonic() + timeout
    while text not in proxy.output():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def fetch(context: BrowserContext, page_url: str, api_url: str, path: str, **options: Any) -> tuple[FetchResult, str]:
    """Fetch a fresh URL under ``path`` (Chromium caches preflights per URL)."""
    path = f"{path}{uuid.uuid4().hex}"
    return page_fetch(context, page_url, api_url + path, **options), path


@pytest.fixture(scope="module")
def reverse_lab(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = Path(tmp_path_factory.mktemp("reverse"))
    (folder / "rules.yaml").write_text(REVERSE_RULES)
    report = folder / "report.jsonl"
    with ApiServer() as backend, PageServer() as page:
        options = ["--mode", f"reverse:{backend.base_url}", "--set", f"cors_report={report}"]
        with running_mitmdump([folder / "rules.yaml"], options) as proxy:
            context = browser.new_context()  # no proxy: the page calls the reverse proxy itself
            api = f"http://localhost:{proxy.port}"  # the page on localhost too: one site, so cookies go
            context.add_cookies([{"name": "session", "value": "abc", "url": api}])
            yield {"context": context, "page": f"http://localhost:{page.port}/", "api": api,
                   "backend": backend, "proxy": proxy, "report": report}
            context.close()


def test_reverse_mode_bypasses_a_block_for_a_page_calling_the_proxy(reverse_lab):
    lab = reverse_lab
    result, path = fetch(lab["context"], lab["page"], lab["api"], PLAIN + "open/", read_headers=["x-total"], **PREFLIGHTED)
    assert result.ok and result.status == 200, result.describe()
    assert result.json["cookie"] == "session=abc" and result.headers["x-total"] == "42"
    assert [r.method for r in lab["backend"].requests_to(path)] == ["PUT"], "the preflight is answered at the proxy"
    assert [(e["method"], e["verdict"], e["rule"]) for e in report_entries(lab["report"], path)] == [
        ("OPTIONS", "allowed", "bypass the backend"), ("PUT", "allowed", "bypass the backend")]


def test_reverse_mode_rules_match_the_backend_host_not_the_proxy_address(reverse_lab):
    lab = reverse_lab
    result, path = fetch(lab["context"], lab["page"], lab["api"], PLAIN + "unruled/")
    assert chromium_outcome(result) == ("blocked", "MissingAllowOriginHeader"), result.describe()
    (entry,) = report_entries(lab["report"], path)
    assert (entry["verdict"], entry["reason"], entry["rule"]) == ("blocked", "MissingAllowOriginHeader", None)


def test_reverse_mode_shows_a_break_scenario_word_for_word(reverse_lab):
    lab = reverse_lab
    result, path = fetch(lab["context"], lab["page"], lab["api"], PLAIN + "broken/", **PREFLIGHTED)
    origin = lab["page"].rstrip("/")
    assert [line for line in result.console if "blocked by CORS policy" in line] == [
        f"Access to fetch at '{lab['api']}{path}' from origin '{origin}' has been blocked by CORS policy: {INVALID_STATUS}"
    ], result.describe()
    (entry,) = report_entries(lab["report"], path)
    assert (entry["verdict"], entry["reason"]) == ("blocked", "PreflightInvalidStatus")


def test_reverse_mode_same_origin_pages_are_not_judged(reverse_lab):
    lab = reverse_lab
    result, path = fetch(lab["context"], f"{lab['api']}{PAGE}", lab["api"], PLAIN + "same/", method="PUT", body="{}")
    assert result.ok and result.status == 200, result.describe()
    assert [r.header("Origin") for r in lab["backend"].requests_to(path)] == [lab["api"]], "Chromium sent Origin"
    assert report_entries(lab["report"], path) == []


@pytest.fixture(scope="module")
def upstream_lab(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = Path(tmp_path_factory.mktemp("upstream"))
    (folder / "rules.yaml").write_text(UPSTREAM_RULES)
    report = folder / "report.jsonl"
    with ApiServer() as backend, PageServer() as page, running_mitmdump([], with_addon=False) as corporate:
        options = ["--mode", f"upstream:http://127.0.0.1:{corporate.port}", "--set", f"cors_report={report}"]
        with running_mitmdump([folder / "rules.yaml", BYPASS_ALL], options) as proxy:
            with proxied_context(browser, proxy.port) as context:
                context.add_cookies([{"name": "session", "value": "abc", "url": backend.base_url}])
                yield {"context": context, "page": page.url("/"), "api": backend.base_url,
                       "backend": backend, "corporate": corporate, "report": report}


def test_upstream_mode_bypasses_a_block_through_the_corporate_proxy(upstream_lab):
    lab = upstream_lab
    result, path = fetch(lab["context"], lab["page"], lab["api"], PLAIN + "open/", read_headers=["x-total"], **PREFLIGHTED)
    assert result.ok and result.status == 200, result.describe()
    assert result.json["cookie"] == "session=abc" and result.headers["x-total"] == "42"
    assert [r.method for r in lab["backend"].requests_to(path)] == ["PUT"], "the preflight is answered at the proxy"
    assert printed(lab["corporate"], f"PUT {lab['api']}{path[:30]}"), "the request went through the corporate proxy"
    assert [(e["method"], e["verdict"], e["rule"]) for e in report_entries(lab["report"], path)] == [
        ("OPTIONS", "allowed", "bypass CORS for every flow"), ("PUT", "allowed", "bypass CORS for every flow")]


def test_upstream_mode_shows_a_break_scenario_word_for_word(upstream_lab):
    lab = upstream_lab
    result, path = fetch(lab["context"], lab["page"], lab["api"], PLAIN + "broken/", **PREFLIGHTED)
    said = f"Access to fetch at '{lab['api']}{path}' from origin '{lab['page'].rstrip('/')}' has been blocked by CORS policy: {HEADER_DISALLOWED}"
    assert [line for line in result.console if "blocked by CORS policy" in line] == [said], result.describe()
    (entry,) = report_entries(lab["report"], path)
    assert (entry["verdict"], entry["reason"], entry["message"]) == ("blocked", "HeaderDisallowedByPreflightResponse", said)
