"""End to end: every `break` scenario makes Chromium, Firefox and WebKit each report its
error, in the engine's own words.

One mitmdump serves the whole module, with one rule per scenario matched by path, in
front of two backends: one with no CORS and no OPTIONS handler at all, and one with
perfect CORS. Whatever the backend does, the page's fetch must fail (or, for
header-not-exposed, the header must be unreadable) and the browser's console must name
the scenario's error as mitmcors.engines says that engine names it, and no error the
engine could tell apart from it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mitmcors.engines import kinds_printing
from mitmcors.scenarios import SCENARIOS, Scenario
from support.drivers import Engine, FetchResult
from support.outcomes import assert_engine_reports, assert_no_cors_error, predicted_outcome
from support.servers import GOOD_CORS, PLAIN, ApiServer, PageServer, running_mitmdump

pytestmark = [pytest.mark.browser, pytest.mark.integration]

BACKENDS = {"cors-less": PLAIN, "perfect-cors": GOOD_CORS}
REPORT_SETTLES = 5.0  # seconds to wait at most for a fetch's report entries
CREDENTIALED = {"wildcard-origin-not-allowed", "invalid-allow-credentials",
                "preflight-wildcard-origin-not-allowed", "preflight-invalid-allow-credentials"}

# Scenarios with options, each a rule of its own: (rule suffix, break mapping, the values an
# engine's message shows, where it has those placeholders; see mitmcors.engines.Message).
VARIANTS = [
    ("preflight-invalid-status", "status-401", {"status": 401}, {"status": "401"}),
    ("preflight-disallowed-redirect", "302-elsewhere", {"status": 302, "location": "http://127.0.0.1:9/elsewhere"},
     {"status": "302"}),
    ("allow-origin-mismatch", "given-origin", {"origin": "https://app.example.com"}, {"value": "https://app.example.com"}),
    ("multiple-allow-origin-values", "one-line", {"form": "one-line"}, {}),
    ("header-disallowed-by-preflight-response", "named", {"header": "X-Test"}, {"value": "x-test"}),
    ("header-not-exposed", "named", {"header": "X-Total"}, {}),
]


def rule_yaml(name: str, scenario: str, options: dict[str, Any]) -> str:
    spec = scenario if not options else "{" + ", ".join(f"{k}: {v!r}" for k, v in {"scenario": scenario, **options}.items()) + "}"
    return f"  - name: {name}\n    match: {{path: '/*/{name}/*'}}\n    break: {spec}\n"


@dataclass
class Lab:
    backend: ApiServer
    page: PageServer
    proxy_port: int
    report: Path | None = None

    def fetch(self, engine: Engine, rule: str, backend_prefix: str, scenario: Scenario, **kwargs: Any) -> FetchResult:
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
        with engine.session(self.proxy_port) as session:
            session.add_cookie(self.backend.base_url, "session", "abc")
            return session.fetch(self.page.url("/"), url, **options)

    def reported(self) -> list[dict[str, Any]]:
        """The report's entries for the last fetch (its preflight and its response), once they
        stop coming: a status a rule gives leaves with the headers, and the browser may fail
        on them before the proxy has judged the response it streams."""
        entries, deadline = self._entries(), time.monotonic() + REPORT_SETTLES
        while time.monotonic() < deadline:
            time.sleep(0.2)
            latest = self._entries()
            if latest and latest == entries:
                break
            entries = latest
        return entries

    def _entries(self) -> list[dict[str, Any]]:
        assert self.report is not None
        lines = [json.loads(line) for line in self.report.read_text().splitlines()]
        return [entry for entry in lines if entry["url"] == self.last_url]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    rules = "rules:\n" + "".join(rule_yaml(name, name, {}) for name in SCENARIOS)
    rules += "".join(rule_yaml(f"{name}-{suffix}", name, options) for name, suffix, options, _ in VARIANTS)
    folder = Path(tmp_path_factory.mktemp("break"))
    path, report = folder / "break.yaml", folder / "report.jsonl"
    path.write_text(rules)
    with ApiServer() as backend, PageServer() as page, \
            running_mitmdump([path], ["--set", f"cors_report={report}"]) as proxy:
        yield Lab(backend, page, proxy.port, report)


ERROR_SCENARIOS = [s for s in SCENARIOS.values() if s.kind is not None]


@pytest.mark.parametrize("backend", BACKENDS, ids=str)
@pytest.mark.parametrize("scenario", ERROR_SCENARIOS, ids=lambda s: s.name)
def test_each_engine_reports_the_scenario_in_its_own_words(lab: Lab, engine: Engine, scenario: Scenario, backend: str) -> None:
    assert scenario.kind is not None
    result = lab.fetch(engine, scenario.name, BACKENDS[backend], scenario)
    assert_engine_reports(result, engine.name, scenario.kind)
    # The verdicts judge the response as it leaves the proxy, and name the rule that shaped it.
    entries = lab.reported()
    assert predicted_outcome(entries, scenario.name in CREDENTIALED) == ("blocked", scenario.kind), json.dumps(entries, indent=1)
    assert {entry["rule"] for entry in entries} == {scenario.name}


@pytest.mark.parametrize("backend", BACKENDS, ids=str)
def test_header_not_exposed_lets_the_fetch_succeed_but_hides_the_header(lab: Lab, engine: Engine, backend: str) -> None:
    scenario = SCENARIOS["header-not-exposed"]
    for rule in ("header-not-exposed", "header-not-exposed-named"):
        result = lab.fetch(engine, rule, BACKENDS[backend], scenario)
        assert result.ok and result.status == 200, result.describe()
        assert result.headers["x-total"] is None, result.describe()
        assert_no_cors_error(result, engine.name)


@pytest.mark.parametrize("backend", BACKENDS, ids=str)
def test_the_same_request_passes_where_no_rule_breaks_it(lab: Lab, engine: Engine, backend: str) -> None:
    """Control: without a break rule, the perfect backend lets every request kind through
    and the CORS-less one blocks it, so the scenarios' failures are the rules' doing."""
    for scenario in (SCENARIOS["missing-allow-origin-header"], SCENARIOS["preflight-invalid-status"], SCENARIOS["invalid-allow-credentials"]):
        result = lab.fetch(engine, "no-rule", BACKENDS[backend], scenario)
        if backend == "perfect-cors":
            assert result.ok and result.status == 200 and result.headers["x-total"] == "42", result.describe()
        else:
            assert not result.ok and kinds_printing(next(iter(result.console), ""), engine.name), result.describe()


@pytest.mark.parametrize("backend", BACKENDS, ids=str)
@pytest.mark.parametrize("name, suffix, options, values", [v for v in VARIANTS if v[0] != "header-not-exposed"], ids=lambda v: v if isinstance(v, str) else "")
def test_scenario_options_change_what_the_engine_sees(lab: Lab, engine: Engine, backend: str, name: str, suffix: str,
                                                      options: dict, values: dict[str, str]) -> None:
    scenario = SCENARIOS[name]
    assert scenario.kind is not None
    result = lab.fetch(engine, f"{name}-{suffix}", BACKENDS[backend], scenario)
    assert_engine_reports(result, engine.name, scenario.kind, **values)


REPO_RULES = Path(__file__).parents[2] / "rules"
EXAMPLES = [
    ("double-allow-origin.yaml", "multiple-allow-origin-values", {}),
    ("preflight-behind-auth.yaml", "preflight-invalid-status", {"method": "PUT", "headers": {"X-Test": "1"}, "body": "{}"}),
    ("forgotten-custom-header.yaml", "header-disallowed-by-preflight-response",
     {"method": "POST", "headers": {"X-Request-Id": "7", "X-Test": "1"}, "body": "{}"}),
    ("wildcard-with-cookies.yaml", "wildcard-origin-not-allowed", {"credentials": "include"}),
]


@pytest.mark.parametrize("file, name, request_kind", EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_example_bug_files_reproduce_their_bug(engine: Engine, file: str, name: str, request_kind: dict) -> None:
    """Against the CORS-less backend: the example alone makes the browser show its bug."""
    scenario = SCENARIOS[name]
    assert scenario.kind is not None
    with ApiServer() as backend, PageServer() as page, running_mitmdump([REPO_RULES / file]) as proxy:
        result = Lab(backend, page, proxy.port).fetch(engine, "example", PLAIN, scenario, **request_kind)
    named = {"value": "x-request-id"} if name == "header-disallowed-by-preflight-response" else {}
    assert_engine_reports(result, engine.name, scenario.kind, **named)
