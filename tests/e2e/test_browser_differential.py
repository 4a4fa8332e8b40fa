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

import json
import os
import random
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from support.browser import proxied_context
from mitmcors.corserrors import VALID_VALUE
from support.calls import Call, CallResult, call_from_page
from support.outcomes import chromium_outcome, predicted_outcome
from support.servers import Behaviour, ScriptedServer, running_mitmdump

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = [pytest.mark.browser, pytest.mark.integration]

SEED = int(os.environ.get("CORS_DIFF_SEED", "20261127"))
CASES = int(os.environ.get("CORS_DIFF_CASES", "100"))
ORIGIN = "{origin}"  # the page's origin, filled in per hop
ACAO = "Access-Control-Allow-Origin"

CALLS = [
    Call(), Call(credentials="include"), Call(credentials="omit"), Call(api="xhr"), Call(api="xhr", credentials="include"),
    Call(headers=(("X-Test", "1"),)), Call(headers=(("Authorization", "Bearer t"),), credentials="include"),
    Call(headers=(("X-Zeta", "1"), ("X-Alpha", "1"))), Call(api="xhr", method="PUT", headers=(("X-Test", "1"),), body="json"),
    Call(method="POST", headers=(("Content-Type", "text/plain;charset=UTF-8"),), body="text"),
    Call(method="POST", headers=(("Content-Type", "application/json"),), body="json"),
    Call(method="POST", body="formdata"), Call(method="POST", body="urlsearchparams"), Call(method="POST", body="blob_json"),
    Call(method="POST", body="blob_plain"), Call(method="POST", body="blob_untyped"),
    Call(method="PUT", headers=(("Content-Type", "application/json"), ("X-Test", "1")), body="json"),
    Call(method="PUT", credentials="include", body="json"), Call(method="DELETE", credentials="include", headers=(("X-Test", "1"),)),
    Call(method="PATCH", body="json"), Call(method="patch", body="json"), Call(method="delete"),
    Call(cache="no-store"), Call(cache="reload"), Call(cache="no-cache"), Call(cache="force-cache"),
    Call(method="PUT", cache="no-store"), Call(method="PUT", cache="no-cache"),
    Call(mode="no-cors"), Call(mode="no-cors", method="POST", body="text"),
    Call(headers=(("Range", "bytes=0-10"),)), Call(headers=(("Range", "bytes=10-5"),)), Call(headers=(("Range", "BYTES=0-10"),)),
    Call(headers=(("Range", "bytes=-5"),)), Call(headers=(("Accept", "a" * 128),)), Call(headers=(("Accept", "a" * 129),)),
    Call(headers=(("Content-Language", "en @x"),)), Call(headers=(("DPR", "1" * 128), ("Width", "2" * 128), ("Viewport-Width", "3" * 128),
         ("Device-Memory", "4" * 128), ("RTT", "5" * 128), ("Downlink", "6" * 128), ("Accept", "a" * 128), ("Content-Language", "b" * 30))),
]

ALLOW_ORIGIN = [
    [], [ORIGIN], [ORIGIN], ["*"], ["null"], ["http://other.test"], [ORIGIN, ORIGIN], [f"{ORIGIN} http://other.test"],
    ["foo"], [""], [ORIGIN + "/"], ["HTTP://127.0.0.1"], ["http://127.0.0.1:99999"], ["http://"], ["https://:443"],
    ["http://256.256.256.256"], ["file:"], ["mailto:"], ["http://[::1"],
]
ALLOW_CREDENTIALS = [None, "true", "true", "TRUE"]
PREFLIGHT_STATUS = [(204, None), (204, None), (200, None), (403, None), (300, None), (301, "/elsewhere"), (302, ""), (307, "/elsewhere")]
ALLOW_METHODS = [None, "reflect", "reflect", "GET, POST", "*", "GET PUT", "lower", " PUT ,, DELETE, PATCH", "x@y"]
ALLOW_HEADERS = [None, "reflect", "reflect", "first", "*", "x-test;", "UPPER", ",, reflect", "x-test x-other"]
MAX_AGE = [None, None, "0", "-1", "10", "abc", "5, 10", "+5", "99999"]
EXPOSE = [None, "X-Total", "x-total, x@y", "*", "X-TOTAL", ",x-total,", "x-total x-other"]
STATUS = [200, 200, 200, 500, 300]
REDIRECT_STATUS = [301, 302, 303, 307, 308]
# What Chromium adds to some messages about an XMLHttpRequest.
XHR_CREDENTIALS = (" The credentials mode of requests initiated by the XMLHttpRequest is controlled by the "
                   "withCredentials attribute.")
SERVERS = ("page", "api", "second api", "third site")
HOP_TARGETS = ["api", "second api", "third site", "page", "relative", "credentials", "itself", "elsewhere"]
# Where an "elsewhere" hop leads: each fails in its own way, past the CORS check.
ELSEWHERE = ["ftp://127.0.0.1/x", "data:text/plain,x", "ws://127.0.0.1/x", "http://127.0.0.1:1/x", "http://[x/",
             "mailto:x@y.test", "about:blank"]


@dataclass(frozen=True)
class Hop:
    """One server's part in a case: where it lives and how it answers."""

    server: str
    behaviour: Behaviour


@dataclass(frozen=True)
class Case:
    name: str
    call: Call
    hops: tuple[Hop, ...]
    twice: bool
    elsewhere: str = ""

    def describe(self) -> str:
        hops = " -> ".join(f"{hop.server} {hop.behaviour}" for hop in self.hops)
        return f"{self.name} {self.call} twice={self.twice} elsewhere={self.elsewhere}\n  {hops}"


def cors_headers(rng: random.Random, requested: list[str], method: str, preflight: bool) -> list[tuple[str, str]]:
    headers = [(ACAO, value) for value in rng.choice(ALLOW_ORIGIN)]
    credentials = rng.choice(ALLOW_CREDENTIALS)
    if credentials is not None:
        headers.append(("Access-Control-Allow-Credentials", credentials))
    if preflight:
        headers += _preflight_grants(rng, requested, method)
    else:
        expose = rng.choice(EXPOSE)
        headers += [] if expose is None else [("Access-Control-Expose-Headers", expose)]
    return headers


def _preflight_grants(rng: random.Random, requested: list[str], method: str) -> list[tuple[str, str]]:
    asked = ",".join(requested) or "x-none"
    grants = []
    methods = rng.choice(ALLOW_METHODS)
    if methods is not None:
        grants.append(("Access-Control-Allow-Methods", {"reflect": method, "lower": method.lower()}.get(methods, methods)))
    headers = rng.choice(ALLOW_HEADERS)
    if headers is not None:
        value = {"reflect": asked, "first": asked.split(",")[0], "UPPER": asked.upper()}.get(headers, headers)
        grants.append(("Access-Control-Allow-Headers", value.replace("reflect", asked)))
    max_age = rng.choice(MAX_AGE)
    return grants + ([] if max_age is None else [("Access-Control-Max-Age", max_age)])


def behaviour(rng: random.Random, call: Call, location: str | None) -> Behaviour:
    requested = sorted(name.lower() for name, _ in call.headers)
    preflight_status, preflight_location = rng.choice(PREFLIGHT_STATUS)
    preflight = cors_headers(rng, requested, call.method, True)
    if preflight_location is not None:
        preflight.append(("Location", preflight_location))
    response = cors_headers(rng, requested, call.method, False)
    status = rng.choice(STATUS)
    if location is not None:
        status = rng.choice(REDIRECT_STATUS)
        response.append(("Location", location))
    return Behaviour(preflight_status, tuple(preflight), status, tuple(response))


def generate() -> list[Case]:
    """The seeded matrix; hop locations are templates filled in per run (ports vary)."""
    rng = random.Random(SEED)
    cases = []
    for index in range(CASES):
        call = CALLS[index % len(CALLS)] if index < len(CALLS) else rng.choice(CALLS)
        if call.api == "fetch" and call.mode == "cors" and rng.random() < 0.15:
            call = replace(call, credentials=rng.choice(["omit", "same-origin", "include"]))
        targets = rng.choice([[], [], [], [rng.choice(HOP_TARGETS)], [rng.choice(HOP_TARGETS), rng.choice(HOP_TARGETS[:4])]])
        if call.mode == "no-cors":  # never reported (no CORS check): a network error there is out of scope
            targets = [target for target in targets if target not in ("credentials", "elsewhere", "itself")]
        servers = ["api", *(target if target in SERVERS else "api" for target in targets)]
        hops = tuple(
            Hop(server, behaviour(rng, call, targets[position] if position < len(targets) else None))
            for position, server in enumerate(servers)
        )
        twice = not targets and rng.random() < 0.3
        cases.append(Case(f"case{index:03d}", call, hops, twice, rng.choice(ELSEWHERE)))
    return cases


@dataclass
class Lab:
    browser: Browser
    servers: dict[str, ScriptedServer]
    observed_port: int
    plain_port: int
    report: Path

    @property
    def page_url(self) -> str:
        return self.servers["page"].url("/")

    def base(self, server: str) -> str:
        url = self.servers[server].base_url
        return url.replace("127.0.0.1", "localhost") if server == "third site" else url

    def script(self, case: Case, run: str) -> str:
        """Register every hop on its server; the URL of the first hop."""
        urls = [f"{self.base(hop.server)}/{case.name}-{position}-{run}/x" for position, hop in enumerate(case.hops)]
        for position, hop in enumerate(case.hops):
            next_url = urls[position + 1] if position + 1 < len(urls) else ""
            filled = _filled(hop.behaviour, self.base("page"), urls[position], next_url, case.elsewhere)
            self.servers[hop.server].script(f"{case.name}-{position}-{run}", filled)
        return urls[0]

    def run(self, case: Case, proxy_port: int) -> tuple[CallResult, list[dict[str, Any]], CallResult | None, int]:
        """The call (and its twin), the report entries of the first, and how many
        preflights reached the first hop."""
        run = uuid.uuid4().hex[:8]
        url = self.script(case, run)
        with proxied_context(self.browser, proxy_port) as context:
            context.add_cookies([{"name": "session", "value": "abc", "url": self.servers["api"].base_url}])
            page = context.new_page()
            console: list[str] = []
            page.on("console", lambda message: console.append(message.text))
            page.goto(self.page_url)
            first = call_from_page(page, url, case.call, console)
            entries = self.entries(run)
            second = call_from_page(page, url, case.call, console) if case.twice and first.ok else None
        preflights = [r for r in self.servers["api"].requests if f"-0-{run}/" in r.path and r.method == "OPTIONS"]
        return first, entries, second, len(preflights)

    def entries(self, run: str) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.report.read_text().splitlines()]
        return [entry for entry in lines if f"-{run}/" in entry["url"]]


def _filled(behaviour: Behaviour, page_origin: str, url: str, next_url: str, elsewhere: str) -> Behaviour:
    def fill(fields: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        return tuple((name, _location(value, url, next_url, elsewhere) if name == "Location" else value.replace(ORIGIN, page_origin))
                     for name, value in fields)

    return replace(behaviour, preflight_headers=fill(behaviour.preflight_headers), headers=fill(behaviour.headers))


def _location(target: str, url: str, next_url: str, elsewhere: str) -> str:
    """A hop's Location: its target made a URL of this run."""
    special = {
        "relative": "/" + next_url.split("/", 3)[-1], "credentials": next_url.replace("://", "://user:pass@"),
        "itself": url, "elsewhere": elsewhere,
    }
    return special.get(target, next_url if target in SERVERS else target)


@pytest.fixture(scope="module")
def lab(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    report = Path(tmp_path_factory.mktemp("differential")) / "report.jsonl"
    with ScriptedServer() as page, ScriptedServer() as api, ScriptedServer() as second, ScriptedServer() as third, \
            running_mitmdump([], ["--set", f"cors_report={report}"]) as observed, \
            running_mitmdump([], with_addon=False) as plain:
        servers = {"page": page, "api": api, "second api": second, "third site": third}
        yield Lab(browser, servers, observed.port, plain.port, report)


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
    cases = generate()
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
