"""End to end: the demo lab as the README walks a tester through it, in headless Chromium.

The lab runs as its own command, each proxy is the mitmdump command the lab printed, and
the page's "Run all" button makes every kind of call against both APIs; the test reads
what the page shows, what Chromium printed in its console, and what the proxy logged.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from mitmcors.lab import BREAK_SCENARIO
from support.browser import proxied_context
from support.drivers import CONSOLE_WAIT
from support.lab import LabProcess, running_lab
from support.outcomes import BLOCKED
from support.servers import MitmdumpProcess

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CHECKS = ("simple-get", "json-put", "credentialed-delete", "authorization", "read-header")
METHODS = {"simple-get": "GET", "json-put": "PUT", "credentialed-delete": "DELETE", "authorization": "GET",
           "read-header": "GET"}
TARGETS = ("plain", "cors")
NO_RULES, BYPASS_ALL, BREAK_EXAMPLE = range(3)  # the printed proxy commands, in order
FAILED_TO_FETCH = "\u2718 failed: TypeError: Failed to fetch"
MISSING_ALLOW_ORIGIN = "No 'Access-Control-Allow-Origin' header is present on the requested resource."
RUN_TIMEOUT_MS = 30_000


@dataclass
class LabRun:
    """What one "Run all" left: each output's outcome and text, and Chromium's CORS lines."""

    outputs: dict[tuple[str, str], tuple[str, str]]
    blocked_lines: list[str]

    def outcomes(self, target: str) -> list[str]:
        return [self.outputs[target, check][0] for check in CHECKS]

    def text(self, target: str, check: str) -> str:
        return self.outputs[target, check][1]


@pytest.fixture(scope="module")
def lab() -> Iterator[LabProcess]:
    with running_lab() as lab:
        yield lab


@contextmanager
def printed_proxy(lab: LabProcess, which: int) -> Iterator[MitmdumpProcess]:
    """Run one of the lab's printed mitmdump commands, word for word, from the repository."""
    proxy = MitmdumpProcess(shlex.split(lab.proxy_commands()[which]), lab.proxy_port)
    try:
        proxy.wait_until_listening()
        yield proxy
    finally:
        proxy.stop()
        print(f"--- {proxy.command} printed ---\n{proxy.output()}")


@contextmanager
def direct_context(browser: Browser) -> Iterator[BrowserContext]:
    """The proxy off: Chromium talks to the lab itself."""
    context = browser.new_context()
    try:
        yield context
    finally:
        context.close()


def run_all(context: BrowserContext, page_url: str) -> LabRun:
    """Open the lab's page, click "Run all", and wait for the page and for one console line
    per failed call."""
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.goto(page_url)
    page.click("#run-all")
    page.wait_for_selector("body[data-run='done']", timeout=RUN_TIMEOUT_MS)
    rows = page.eval_on_selector_all(
        "output[data-check]", "outputs => outputs.map(o => [o.dataset.target, o.dataset.check, o.dataset.outcome, o.textContent])")
    outputs = {(target, check): (outcome, text) for target, check, outcome, text in rows}
    failed = sum(outcome == "failed" for outcome, _ in outputs.values())
    deadline = time.monotonic() + CONSOLE_WAIT
    while sum(BLOCKED in line for line in console) < failed and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    page.close()
    return LabRun(outputs, [line for line in console if BLOCKED in line])


def assert_proxy_off_outcome(run: LabRun, lab: LabProcess) -> None:
    """Every call to the CORS-less API fails, each with Chromium's missing-header line;
    every call to the correct API passes."""
    assert run.outcomes("plain") == ["failed"] * len(CHECKS), run.outputs
    assert all(run.text("plain", check).startswith(FAILED_TO_FETCH) for check in CHECKS), run.outputs
    assert run.outcomes("cors") == ["passed"] * len(CHECKS), run.outputs
    assert len(run.blocked_lines) == len(CHECKS), run.blocked_lines
    plain_api = f"'http://127.0.0.1:{lab.api_port}/plain/"
    assert all(plain_api in line and line.endswith(MISSING_ALLOW_ORIGIN) for line in run.blocked_lines), run.blocked_lines


def test_without_the_proxy_the_cors_less_api_fails_and_the_correct_one_passes(
    browser: Browser, lab: LabProcess
) -> None:
    with direct_context(browser) as context:
        run = run_all(context, lab.page_url)
    assert_proxy_off_outcome(run, lab)


def test_the_proxy_without_rules_changes_nothing_and_logs_why(browser: Browser, lab: LabProcess) -> None:
    with printed_proxy(lab, NO_RULES) as proxy, proxied_context(browser, lab.proxy_port) as context:
        run = run_all(context, lab.page_url)
    assert_proxy_off_outcome(run, lab)
    explained = [line for line in proxy.output().splitlines() if "cors: blocked" in line]
    assert len(explained) == len(CHECKS), explained
    assert all(f"{MISSING_ALLOW_ORIGIN} Fix: " in line for line in explained), explained


def test_with_bypass_all_every_call_passes(browser: Browser, lab: LabProcess) -> None:
    with printed_proxy(lab, BYPASS_ALL), proxied_context(browser, lab.proxy_port) as context:
        run = run_all(context, lab.page_url)
    assert run.outcomes("plain") == run.outcomes("cors") == ["passed"] * len(CHECKS), run.outputs
    assert run.blocked_lines == []
    for target in TARGETS:
        assert "Cookie: lab_session=demo" in run.text(target, "credentialed-delete")
        assert "Authorization: Bearer lab-token" in run.text(target, "authorization")
        assert "the page read X-Total: 42" in run.text(target, "read-header")


def test_the_break_example_shows_its_failure_in_chromium_and_in_the_proxy_log(
    browser: Browser, lab: LabProcess
) -> None:
    with printed_proxy(lab, BREAK_EXAMPLE) as proxy, proxied_context(browser, lab.proxy_port) as context:
        run = run_all(context, lab.page_url)
    assert run.outcomes("plain") == run.outcomes("cors") == ["failed"] * len(CHECKS), run.outputs
    origin = lab.page_url.rstrip("/")
    said = (f"The 'Access-Control-Allow-Origin' header contains multiple values '{origin}, {origin}', "
            "but only one is allowed. Have the server send the header with a valid value.")
    assert len(run.blocked_lines) == 2 * len(CHECKS) and all(line.endswith(said) for line in run.blocked_lines), \
        run.blocked_lines
    logged = [line for line in proxy.output().splitlines() if f"broke the response ({BREAK_SCENARIO})" in line]
    for port, prefix in ((lab.api_port, "plain"), (lab.cors_api_port, "goodcors")):
        for check in CHECKS:
            assert any(f"for {METHODS[check]} http://127.0.0.1:{port}/{prefix}/{check}?" in line for line in logged), \
                (check, logged)
