"""End to end: every `break` scenario makes real Chromium report exactly its error.

One mitmdump serves the whole module, with one rule per scenario matched by path, in
front of two backends: one with no CORS and no OPTIONS handler at all, and one with
perfect CORS. Whatever the backend does, the page's fetch must fail (or, for
header-not-exposed, the header must be unreadable) and Chromium's console must name
the scenario's error and no other.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from mitmcors.scenarios import SCENARIOS, Scenario
from support.browser import FetchResult, page_fetch, proxied_context
from support.outcomes import predicted_outcome
from support.servers import GOOD_CORS, PLAIN, ApiServer, PageServer, running_mitmdump

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = [pytest.mark.browser, pytest.mark.integration]

BACKENDS = {"cors-less": PLAIN, "perfect-cors": GOOD_CORS}
BLOCKED = "has been blocked by CORS policy: "
CREDENTIALED = {"wildcard-origin-not-allowed", "invalid-allow-credentials",
                "preflight-wildcard-origin-not-allowed", "preflight-invalid-allow-credentials"}

# Scenarios with options, each a rule of its own: (rule suffix, break mapping, expected text).
VARIANTS = [
    ("preflight-invalid-status", "status-401", {"status": 401}, None),
    ("preflight-disallowed-redirect", "302-elsewhere", {"status": 302, "location": "http://127.0.0.1:9/elsewhere"}, None),
    ("allow-origin-mismatch", "given-origin", {"origin": "https://app.example.com"},
     "The 'Access-Control-Allow-Origin' header has a value 'https://app.example.com' that is not equal to the supplied origin."),
    ("multiple-allow-origin-values", "one-line", {"form": "one-line"}, "contains multiple values '"),
    ("header-disallowed-by-preflight-response", "named", {"header": "X-Test"},
     "Request header field x-test is not allowed by Access-Control-Allow-Headers in preflight response."),
    ("header-not-exposed", "named", {"header": "X-Total"}, None),
]


def said_pattern(scenario: Scenario) -> re.Pattern[str]:
    """What Chromium prints for the scenario, '…' standing for the values it quotes."""
    return re.compile(re.escape(scenario.chromium_says).replace("…", ".*?"))


def rule_yaml(name: str, scenario: str, options: dict[str, Any]) -> str:
    spec = scenario if not options else "{" + ", ".join(f"{k}: {v!r}" for k, v in {"scenario": scenario, **options}.items()) + "}"
    return f"  - name: {name}\n    match: {{path: '/*/{name}/*'}}\n    break: {spec}\n"


@dataclass
class Lab:
    browser: Browser
    backend: ApiServer
    page: PageServer
    proxy_port: int
    report: Path | None = None

    def fetch(self, rule: str, backend_prefix: str, scenario: Scenario, **kwargs: Any) -> FetchResult:
        """A fetch from the page that exposes the scenario: preflighted where it must be,
        credentialed (with a cookie) where it must be."""
        url = self.backend.url(f"{backend_prefix}{rule}/{uuid.uuid4().hex}")
        self.last_url = url
        options: dict[str, Any] = {"read_headers": ["x-total"]}
        if scenario.on_preflight:
            options.update(method="PUT", headers={"Content-Type": "application/json", "X-Test": "1"}, body="{}")
        if scenario.name in CREDENTIALED:
            options["credentials"] = "include"
        options.update(kwargs)
        with proxied_context(self.browser, self.proxy_port) as context:
            context.add_cookies([{"name": "session", "value": "abc", "url": self.backend.base_url}])
            return page_fetch(context, self.page.url("/"), url, **options)

    def reported(self) -> list[dict[str, Any]]:
        """The report's entries for the last fetch (its preflight and its response)."""
        assert self.report is not None
        lines = [json.loads(line) for line in self.report.read_text().splitlines()]
        return [entry for entry in lines if entry["url"] == self.last_url]


@pytest.fixture(scope="module")
def lab(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    rules = "rules:\n" + "".join(rule_yaml(name, name, {}) for name in SCENARIOS)
    rules += "".join(rule_yaml(f"{name}-{suffix}", name, options) for name, suffix, options, _ in VARIANTS)
    folder = Path(tmp_path_factory.mktemp("break"))
    path, report = folder / "break.yaml", folder / "report.jsonl"
    path.write_text(rules)
    with ApiServer() as backend, PageServer() as page, \
            running_mitmdump([path], ["--set", f"cors_report={report}"]) as proxy:
        yield Lab(browser, backend, page, proxy.port, report)


def blocked_messages(result: FetchResult) -> list[str]:
    return [line.split(BLOCKED, 1)[1] for line in result.console if BLOCKED in line]


def assert_chromium_reports(result: FetchResult, scenario: Scenario, exact: str | None = None) -> None:
    """The fetch failed, with exactly one CORS error, which is this scenario's and no other's."""
    assert not result.ok, result.describe()
    (message,) = blocked_messages(result) or [""]
    assert said_pattern(scenario).match(message), result.describe()
    others = [s.name for s in SCENARIOS.values() if s is not scenario and s.kind and said_pattern(s).match(message)]
    assert others == [], f"{message!r} also reads as {others}"
    if exact is not None:
        assert exact in message, result.describe()


ERROR_SCENARIOS = [s for s in SCENARIOS.values() if s.kind is not None]


@pytest.mark.parametrize("backend", BACKENDS, ids=str)
@pytest.mark.parametrize("scenario", ERROR_SCENARIOS, ids=lambda s: s.name)
def test_chromium_reports_exactly_the_scenario(lab: Lab, scenario: Scenario, backend: str) -> None:
    result = lab.fetch(scenario.name, BACKENDS[backend], scenario)
    assert_chromium_reports(result, scenario)
    # The verdicts judge the response as it leaves the proxy, and name the rule that shaped it.
    entries = lab.reported()
    assert predicted_outcome(entries, scenario.name in CREDENTIALED) == ("blocked", scenario.kind), entries
    assert {entry["rule"] for entry in entries} == {scenario.name}


@pytest.mark.parametrize("backend", BACKENDS, ids=str)
def test_header_not_exposed_lets_the_fetch_succeed_but_hides_the_header(lab: Lab, backend: str) -> None:
    scenario = SCENARIOS["header-not-exposed"]
    for rule in ("header-not-exposed", "header-not-exposed-named"):
        result = lab.fetch(rule, BACKENDS[backend], scenario)
        assert result.ok and result.status == 200, result.describe()
        assert result.headers["x-total"] is None, result.describe()
        assert blocked_messages(result) == [], result.describe()


@pytest.mark.parametrize("backend", BACKENDS, ids=str)
def test_the_same_request_passes_where_no_rule_breaks_it(lab: Lab, backend: str) -> None:
    """Control: without a break rule, the perfect backend lets every request kind through
    and the CORS-less one blocks it, so the scenarios' failures are the rules' doing."""
    for scenario in (SCENARIOS["missing-allow-origin-header"], SCENARIOS["preflight-invalid-status"], SCENARIOS["invalid-allow-credentials"]):
        result = lab.fetch("no-rule", BACKENDS[backend], scenario)
        if backend == "perfect-cors":
            assert result.ok and result.status == 200 and result.headers["x-total"] == "42", result.describe()
        else:
            assert not result.ok and len(blocked_messages(result)) == 1, result.describe()


@pytest.mark.parametrize("backend", BACKENDS, ids=str)
@pytest.mark.parametrize("name, suffix, options, exact", [v for v in VARIANTS if v[0] != "header-not-exposed"], ids=lambda v: v if isinstance(v, str) else "")
def test_scenario_options_change_what_chromium_sees(lab: Lab, backend: str, name: str, suffix: str, options: dict, exact: str | None) -> None:
    scenario = SCENARIOS[name]
    result = lab.fetch(f"{name}-{suffix}", BACKENDS[backend], scenario)
    assert_chromium_reports(result, scenario, exact)


REPO_RULES = Path(__file__).parents[2] / "rules"
EXAMPLES = [
    ("double-allow-origin.yaml", "multiple-allow-origin-values", {}),
    ("preflight-behind-auth.yaml", "preflight-invalid-status", {"method": "PUT", "headers": {"X-Test": "1"}, "body": "{}"}),
    ("forgotten-custom-header.yaml", "header-disallowed-by-preflight-response",
     {"method": "POST", "headers": {"X-Request-Id": "7", "X-Test": "1"}, "body": "{}"}),
    ("wildcard-with-cookies.yaml", "wildcard-origin-not-allowed", {"credentials": "include"}),
]


@pytest.mark.parametrize("file, name, request_kind", EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_example_bug_files_reproduce_their_bug_in_chromium(browser: Browser, file: str, name: str, request_kind: dict) -> None:
    """Against the CORS-less backend: the example alone makes Chromium show its bug."""
    with ApiServer() as backend, PageServer() as page, running_mitmdump([REPO_RULES / file]) as proxy:
        lab = Lab(browser, backend, page, proxy.port)
        result = lab.fetch("example", PLAIN, SCENARIOS[name], **request_kind)
    assert_chromium_reports(result, SCENARIOS[name])
    if name == "header-disallowed-by-preflight-response":
        assert "x-request-id" in blocked_messages(result)[0]
