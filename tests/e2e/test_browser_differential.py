"""Differential test: every report field the wire can check, against what Chromium did.

A seeded generator draws calls (fetch and XMLHttpRequest; every credentials and cache
mode; no-cors; bodies that set Content-Type themselves; header values at and around
the length limits, in odd case, with spaces, empty items and invalid tokens) and
backends (every kind of Allow-Origin value, preflight statuses and redirects, lists
of methods and headers, Max-Age and Expose-Headers values, redirect chains across the
API, a second API, a third site and the page's own origin). Chromium runs each call
through mitmdump with the addon observing (report on) and, for comparison, through a
plain mitmdump. For every call:

- the report's verdict, reason and console message equal Chromium's (word for word);
- ``needs_preflight`` equals whether Chromium sent a preflight;
- ``unreadable_headers`` and what the page could read agree;
- ``preflight_cache_seconds`` agrees with whether an identical second call was
  preflighted again (0 means it was);
- the page saw the same with and without the addon.

Rerun with another seed or size:
    CORS_DIFF_SEED=7 CORS_DIFF_CASES=300 .venv/bin/python -m pytest tests/e2e/test_browser_differential.py -s
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from support.browser import proxied_context
from mitmcors.corserrors import VALID_VALUE
from support.calls import CallResult, call_from_page
from support.differential import Backends, Case, generate
from support.outcomes import chromium_outcome, predicted_outcome
from support.servers import ScriptedServer, running_mitmdump

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = [pytest.mark.browser, pytest.mark.integration]

SEED = int(os.environ.get("CORS_DIFF_SEED", "20261127"))
CASES = int(os.environ.get("CORS_DIFF_CASES", "100"))
# What Chromium adds to some messages about an XMLHttpRequest.
XHR_CREDENTIALS = (" The credentials mode of requests initiated by the XMLHttpRequest is controlled by the "
                   "withCredentials attribute.")


@dataclass
class Lab:
    browser: Browser
    backends: Backends
    observed_port: int
    plain_port: int

    def run(self, case: Case, proxy_port: int) -> tuple[CallResult, list[dict[str, Any]], CallResult | None, int]:
        """The call (and its twin), the report entries of the first, and how many
        preflights reached the first hop."""
        run = uuid.uuid4().hex[:8]
        url = self.backends.script(case, run)
        with proxied_context(self.browser, proxy_port) as context:
            context.add_cookies([{"name": "session", "value": "abc", "url": self.backends.servers["api"].base_url}])
            page = context.new_page()
            console: list[str] = []
            page.on("console", lambda message: console.append(message.text))
            page.goto(self.backends.page_url)
            first = call_from_page(page, url, case.call, console)
            entries = self.backends.entries(run)
            second = call_from_page(page, url, case.call, console) if case.twice and first.ok else None
        return first, entries, second, self.backends.preflights(run)


@pytest.fixture(scope="module")
def lab(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    report = Path(tmp_path_factory.mktemp("differential")) / "report.jsonl"
    with ScriptedServer() as page, ScriptedServer() as api, ScriptedServer() as second, ScriptedServer() as third, \
            running_mitmdump([], ["--set", f"cors_report={report}"]) as observed, \
            running_mitmdump([], with_addon=False) as plain:
        servers = {"page": page, "api": api, "second api": second, "third site": third}
        yield Lab(browser, Backends(servers, report), observed.port, plain.port)


def page_view(result: CallResult) -> tuple[Any, ...]:
    """What the page saw, with the per-run URLs taken out of the console text."""
    console = tuple(re.sub(r"'[a-z]+:[^']*'", "'URL'", line) for line in result.errors)
    return result.ok, result.status, result.response_type, tuple(sorted(result.readable)), console


def check_fields(case: Case, result: CallResult, entries: list[dict[str, Any]], second: CallResult | None, preflights: int) -> list[str]:
    """Every field of the report the wire can check, against what Chromium did."""
    problems = [] if entries or case.call.mode == "no-cors" else ["no report entry for a cross-origin call"]
    actual = [entry for entry in entries if not entry["preflight"]]
    for entry in actual:
        preflighted = any(e["preflight"] and e["url"] == entry["url"] for e in entries)
        if entry["needs_preflight"] != preflighted:
            problems.append(f"needs_preflight {entry['needs_preflight']}, Chromium sent a preflight: {preflighted}")
    if result.ok and actual and result.response_type == "cors":
        hidden = set(actual[-1]["unreadable_headers"]) & set(result.readable)
        if hidden:
            problems.append(f"unreadable_headers lists {sorted(hidden)}, which the page read")
        if "x-total" not in result.readable and "x-total" not in actual[-1]["unreadable_headers"]:
            problems.append(f"the page could not read x-total; unreadable_headers: {actual[-1]['unreadable_headers']}")
    first_preflight = next((entry for entry in entries if entry["preflight"]), None)
    if second is not None and first_preflight is not None:
        again = preflights > 1
        if (first_preflight["preflight_cache_seconds"] == 0) != again:
            problems.append(f"preflight_cache_seconds {first_preflight['preflight_cache_seconds']}, second call preflighted: {again}")
    return problems


def message_problem(case: Case, result: CallResult, entries: list[dict[str, Any]]) -> str | None:
    """The report's message against Chromium's console line, word for word."""
    blocked = next((entry for entry in entries if _outcome(entry, case.call.credentialed)[0] == "blocked"), None)
    if blocked is None or result.ok:
        return None
    chosen = blocked.get("with_credentials") if case.call.credentialed and "with_credentials" in blocked else None
    if chosen is not None:
        return None  # the report gives the credentialed reason, not its message
    expected = blocked["message"]
    if case.call.api == "xhr":  # Chromium words an XMLHttpRequest's messages a little differently
        expected = expected.replace("Access to fetch at", "Access to XMLHttpRequest at").replace(VALID_VALUE, "")
    if {expected, expected + XHR_CREDENTIALS} & set(result.errors):
        return None
    return f"message {expected!r}, Chromium printed {result.errors}"


def _outcome(entry: dict[str, Any], credentialed: bool) -> tuple[str, str | None]:
    chosen = entry["with_credentials"] if credentialed and "with_credentials" in entry else entry
    return chosen["verdict"], chosen["reason"]


def test_the_report_agrees_with_chromium_on_every_generated_call(lab: Lab) -> None:
    cases = generate(SEED, CASES)
    disagreements, changed, outcomes, checked = [], [], set(), 0
    for index, case in enumerate(cases):
        result, entries, second, preflights = lab.run(case, lab.observed_port)
        if index % 2 == 0:  # observing must change nothing the page sees
            unobserved, _, _, _ = lab.run(case, lab.plain_port)
            if page_view(result) != page_view(unobserved):
                changed.append(f"{case.describe()}\n  with addon: {page_view(result)}\n  without: {page_view(unobserved)}")
        try:
            expected = chromium_outcome(result, case.call.mode)
        except AssertionError as unreadable:
            disagreements.append(f"{case.describe()}\n  Chromium's outcome unreadable: {unreadable}; {result}\n  report: {entries}")
            continue
        outcomes.add(expected)
        predicted = predicted_outcome(entries, case.call.credentialed)
        problems = [] if predicted == expected else [f"verdict: Chromium {expected}, report {predicted}"]
        problems += check_fields(case, result, entries, second, preflights)
        problem = message_problem(case, result, entries)
        problems += [problem] if problem else []
        checked += 1 + (second is not None)
        if problems:
            disagreements.append(f"{case.describe()}\n  " + "\n  ".join(problems) + f"\n  report: {entries}")
    print(f"\nseed {SEED}: the report agreed with Chromium on {len(cases) - len(disagreements)} of {len(cases)} "
          f"cases ({checked} calls), {len(outcomes)} distinct outcomes")
    assert not disagreements, f"{len(disagreements)} disagreements (seed {SEED}):\n" + "\n".join(disagreements)
    assert not changed, "observe mode changed what the page saw:\n" + "\n".join(changed)
    # A matrix where everything passes, or everything fails the same way, proves little.
    assert ("allowed", None) in outcomes and len(outcomes) >= 10, outcomes
