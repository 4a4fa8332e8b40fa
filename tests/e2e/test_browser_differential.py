"""Differential test: the report's verdicts against what real Chromium does.

A seeded generator draws request kinds (simple, preflighted, credentialed, with
Authorization, ...) and backend behaviours (every kind of Allow-Origin, credentials,
preflight status, redirect, methods and headers, valid or not). Each case is fetched by
a real Chromium page through mitmdump with the addon in observe mode (no rules, report
on) and, for comparison, through a plain mitmdump. For every case the report's verdict
and reason must equal Chromium's outcome (the page's fetch plus its console message), its
word on whether the request needs a preflight must match whether Chromium sent one, and
the page must see exactly the same thing with and without the addon.

Rerun with another seed or size:
    CORS_DIFF_SEED=7 CORS_DIFF_CASES=200 python -m pytest tests/e2e/test_browser_differential.py
"""

from __future__ import annotations

import json
import os
import random
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from support.browser import FetchResult, page_fetch, proxied_context
from support.outcomes import chromium_outcome, predicted_outcome
from support.servers import Behaviour, PageServer, ScriptedServer, running_mitmdump

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = [pytest.mark.browser, pytest.mark.integration]

SEED = int(os.environ.get("CORS_DIFF_SEED", "20261127"))
CASES = int(os.environ.get("CORS_DIFF_CASES", "72"))

# What the page does: fetch() options; "include" requests also carry a cookie.
REQUEST_KINDS: dict[str, dict[str, Any]] = {
    "simple GET": {},
    "GET with credentials": {"credentials": "include"},
    "GET with X-Test": {"headers": {"X-Test": "1"}},
    "GET with Authorization": {"headers": {"Authorization": "Bearer t"}},
    "POST text/plain": {"method": "POST", "headers": {"Content-Type": "text/plain"}, "body": "x"},
    "POST JSON": {"method": "POST", "headers": {"Content-Type": "application/json"}, "body": "{}"},
    "PUT JSON with X-Test": {"method": "PUT", "headers": {"Content-Type": "application/json", "X-Test": "1"}, "body": "{}"},
    "PUT with credentials": {"method": "PUT", "credentials": "include", "body": "{}"},
    "DELETE with credentials and X-Test": {"method": "DELETE", "credentials": "include", "headers": {"X-Test": "1"}},
    "PATCH": {"method": "PATCH", "body": "{}"},
}

ALLOW_ORIGIN = ["missing", "origin", "*", "other", "null", "twice", "list", "foo", "trailing slash"]
ALLOW_CREDENTIALS = ["missing", "true", "TRUE"]
PREFLIGHT_STATUS = [204, 204, 200, 403, 501, 301]
ALLOW_METHODS = ["missing", "reflect", "GET, POST", "*", "invalid"]
ALLOW_HEADERS = ["missing", "reflect", "*", "invalid"]
STATUS = [200, 200, 500]


@dataclass(frozen=True)
class Case:
    name: str
    kind: str
    behaviour: Behaviour

    def describe(self) -> str:
        return f"{self.name} [{self.kind}] {self.behaviour}"


def allow_origin(choice: str, origin: str) -> list[tuple[str, str]]:
    values = {
        "missing": [], "origin": [origin], "*": ["*"], "other": ["https://other.test"], "null": ["null"],
        "twice": [origin, origin], "list": [f"{origin} https://other.test"], "foo": ["foo"],
        "trailing slash": [origin + "/"],
    }[choice]
    return [("Access-Control-Allow-Origin", value) for value in values]


def generate(page_origin: str) -> list[Case]:
    """The seeded matrix: every request kind, each with random backend behaviours."""
    rng = random.Random(SEED)
    kinds = list(REQUEST_KINDS)
    cases = []
    for index in range(CASES):
        kind = kinds[index % len(kinds)]
        origin_headers = allow_origin(rng.choice(ALLOW_ORIGIN), page_origin)
        credentials = rng.choice(ALLOW_CREDENTIALS)
        common = origin_headers + ([] if credentials == "missing" else [("Access-Control-Allow-Credentials", credentials)])
        request = REQUEST_KINDS[kind]
        method = request.get("method", "GET")
        asked = ",".join(sorted(name.lower() for name in request.get("headers", {}) if not _safelisted(name, request)))
        preflight = list(common)
        methods = rng.choice(ALLOW_METHODS)
        if methods != "missing":
            preflight.append(("Access-Control-Allow-Methods", {"reflect": method, "invalid": f"GET {method}"}.get(methods, methods)))
        headers = rng.choice(ALLOW_HEADERS)
        if headers != "missing":
            preflight.append(("Access-Control-Allow-Headers", {"reflect": asked or "x-none", "invalid": "x-test;"}.get(headers, headers)))
        preflight_status = rng.choice(PREFLIGHT_STATUS)
        if preflight_status == 301:
            preflight.append(("Location", "http://127.0.0.1:9/elsewhere"))
        behaviour = Behaviour(preflight_status, tuple(preflight), rng.choice(STATUS), tuple(common))
        cases.append(Case(f"case{index:03d}", kind, behaviour))
    return cases


def _safelisted(name: str, request: dict[str, Any]) -> bool:
    return name.lower() == "content-type" and request["headers"][name] == "text/plain"


def page_view(result: FetchResult) -> tuple[Any, ...]:
    """What the page saw, with the per-run URL taken out of the console text."""
    console = tuple(re.sub(r"'http://[^']*'", "'URL'", line) for line in result.console)
    return result.ok, result.status, result.text, tuple(sorted(result.headers.items())), console


@dataclass
class Lab:
    browser: Browser
    backend: ScriptedServer
    page: PageServer
    observed_port: int
    plain_port: int
    report: Path

    def fetch(self, case: Case, proxy_port: int) -> FetchResult:
        url = self.backend.url(f"/{case.name}/{uuid.uuid4().hex}")
        with proxied_context(self.browser, proxy_port) as context:
            context.add_cookies([{"name": "session", "value": "abc", "url": self.backend.base_url}])
            return page_fetch(context, self.page.url("/"), url, read_headers=["x-total"], **REQUEST_KINDS[case.kind])

    def entries(self, path_prefix: str) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.report.read_text().splitlines()]
        return [entry for entry in lines if f"/{path_prefix}/" in entry["url"]]


@pytest.fixture(scope="module")
def lab(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    report = Path(tmp_path_factory.mktemp("differential")) / "report.jsonl"
    with ScriptedServer() as backend, PageServer() as page, \
            running_mitmdump([], ["--set", f"cors_report={report}"]) as observed, \
            running_mitmdump([], with_addon=False) as plain:
        yield Lab(browser, backend, page, observed.port, plain.port, report)


def test_the_report_agrees_with_chromium_on_every_generated_case(lab: Lab) -> None:
    cases = generate(lab.page.base_url)
    disagreements, changed, outcomes = [], [], set()
    for case in cases:
        lab.backend.script(case.name, case.behaviour)
        seen = lab.fetch(case, lab.observed_port)
        unobserved = lab.fetch(case, lab.plain_port)
        if page_view(seen) != page_view(unobserved):
            changed.append(f"{case.describe()}\n  with addon: {page_view(seen)}\n  without: {page_view(unobserved)}")
        credentialed = REQUEST_KINDS[case.kind].get("credentials") == "include"
        expected = chromium_outcome(seen)
        outcomes.add(expected)
        entries = lab.entries(case.name)
        predicted = predicted_outcome(entries, credentialed)
        if predicted != expected:
            disagreements.append(f"{case.describe()}\n  Chromium: {expected}\n  report: {predicted}")
        preflighted = any(entry["preflight"] for entry in entries)
        for entry in entries:
            if not entry["preflight"] and entry["needs_preflight"] != preflighted:
                disagreements.append(f"{case.describe()}\n  Chromium sent a preflight: {preflighted}; report: {entry}")
    print(f"\nseed {SEED}: the report agreed with Chromium on {len(cases) - len(disagreements)} of "
          f"{len(cases)} cases, {len(outcomes)} distinct outcomes")
    assert not disagreements, f"{len(disagreements)} disagreements (seed {SEED}):\n" + "\n".join(disagreements)
    assert not changed, "observe mode changed what the page saw:\n" + "\n".join(changed)
    # A matrix where everything passes, or everything fails the same way, proves little.
    assert ("allowed", None) in outcomes and len(outcomes) >= 8, outcomes
