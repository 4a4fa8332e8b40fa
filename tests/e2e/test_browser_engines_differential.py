"""Differential test in Firefox and WebKit: the Chromium differential's seeded matrix (see
test_browser_differential.py), each call made in the engine through mitmdump with the addon
observing, and the report's prediction for that engine (its ``engines`` entry) held against
what the engine did. For every call:

- the engine's verdict, and its kind as far as the engine's console line tells kinds apart
  (``mitmcors.engines.kinds_printing``), equal the prediction;
- the engine's first console line is the predicted message (compared ignoring case: the
  engines spell header names their own way);
- the engine's ``needs_preflight`` equals whether it sent a preflight;
- its ``preflight_cache_seconds`` agrees with whether an identical second call was
  preflighted again (0 means it was).

Smaller than Chromium's by default (30 cases per engine), to keep CI's time; rerun with:
    CORS_DIFF_SEED=7 CORS_DIFF_CASES=150 .venv/bin/python -m pytest tests/e2e/test_browser_engines_differential.py -s -k firefox
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.calls import Call, CallResult, call_in_session
from support.differential import Backends, Case, generate
from support.drivers import Engine
from support.outcomes import engine_outcome, predicted_outcome
from support.servers import ScriptedServer, running_mitmdump

pytestmark = [pytest.mark.browser, pytest.mark.integration]

SEED = int(os.environ.get("CORS_DIFF_SEED", "20261127"))
CASES = int(os.environ.get("CORS_DIFF_CASES", "30"))
ENGINES = ("firefox", "webkit")
# Calls a driver cannot make as the page would, per engine, with why: none so far.
UNSUPPORTED: dict[str, dict[Call, str]] = {"firefox": {}, "webkit": {}}


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Backends, int]]:
    report = Path(tmp_path_factory.mktemp("engines-differential")) / "report.jsonl"
    with ScriptedServer() as page, ScriptedServer() as api, ScriptedServer() as second, ScriptedServer() as third, \
            running_mitmdump([], ["--set", f"cors_report={report}"]) as observed:
        yield Backends({"page": page, "api": api, "second api": second, "third site": third}, report), observed.port


@pytest.fixture(params=ENGINES)
def other_engine(request: pytest.FixtureRequest) -> Engine:
    return request.getfixturevalue(request.param)


def run(engine: Engine, backends: Backends, proxy_port: int, case: Case
        ) -> tuple[CallResult, list[dict[str, Any]], CallResult | None, int]:
    """The call (and its twin), the report entries of the first, and how many preflights
    reached the first hop."""
    run_id = uuid.uuid4().hex[:8]
    url = backends.script(case, run_id)
    with engine.session(proxy_port) as session:
        session.add_cookie(backends.servers["api"].base_url, "session", "abc")
        first = call_in_session(session, backends.page_url, url, case.call)  # type: ignore[arg-type]
        entries = backends.entries(run_id)
        second = call_in_session(session, backends.page_url, url, case.call) if case.twice and first.ok else None  # type: ignore[arg-type]
    return first, entries, second, backends.preflights(run_id)


WEBKIT_MISSING_HEADER = re.compile(r"Request header field (\S+) is not allowed by Access-Control-Allow-Headers\.")


def check(engine: str, case: Case, result: CallResult, entries: list[dict[str, Any]], second: CallResult | None,
          preflights: int) -> list[str]:
    """What the engine did against the report's word for it, field by field."""
    if not entries:
        return [] if case.call.mode == "no-cors" else ["no report entry for a cross-origin call"]
    problems = []
    done, kinds = engine_outcome(result, engine)
    predicted, reason = predicted_outcome(entries, case.call.credentialed, engine)
    if done != predicted or (done == "blocked" and reason not in kinds):
        problems.append(f"verdict: {engine} {done} {list(kinds)}, report {predicted} {reason}")
    elif done == "blocked":
        problems += _message_problem(engine, case, result, entries)
    for entry in entries:
        if not entry["preflight"]:
            preflighted = any(e["preflight"] and e["url"] == entry["url"] for e in entries)
            needed = entry["engines"][engine].get("needs_preflight", entry["needs_preflight"])
            if needed != preflighted:
                problems.append(f"needs_preflight {needed}, {engine} sent a preflight: {preflighted}")
    first_preflight = next((entry for entry in entries if entry["preflight"]), None)
    if second is not None and first_preflight is not None:
        seconds = first_preflight["engines"][engine].get("preflight_cache_seconds", first_preflight["preflight_cache_seconds"])
        if (seconds == 0) != (preflights > 1):
            problems.append(f"preflight_cache_seconds {seconds}, second call preflighted: {preflights > 1}")
    return problems


def _message_problem(engine: str, case: Case, result: CallResult, entries: list[dict[str, Any]]) -> list[str]:
    """The predicted line against the engine's first CORS line (the report gives the
    credentialed outcome's reason, not its message)."""
    entry = next(entry for entry in entries if predicted_outcome([entry], case.call.credentialed, engine)[0] == "blocked")
    blocked = entry["engines"][engine]
    if case.call.credentialed and "with_credentials" in blocked:
        return []
    printed = [line.casefold() for line in result.console]
    if blocked["message"].casefold() in printed or _webkit_names_another_missing_header(engine, entry, result.console):
        return []
    return [f"message {blocked['message']!r}, {engine} printed {result.console}"]


def _webkit_names_another_missing_header(engine: str, entry: dict[str, Any], console: list[str]) -> bool:
    """WebKit names the first missing header in the order the page set them, which the
    preflight does not show: any header the report's fix lists is its word."""
    named = WEBKIT_MISSING_HEADER.fullmatch(console[0]) if engine == "webkit" and console else None
    return named is not None and entry["fix"] is not None and named[1].casefold() in entry["fix"].casefold().split("`")[1]


def test_the_report_agrees_with_each_engine_on_every_generated_call(other_engine: Engine, backends: tuple[Backends, int]) -> None:
    lab, proxy_port = backends
    engine = other_engine.name
    disagreements, skipped, outcomes, checked, started = [], [], set(), 0, time.monotonic()
    for case in generate(SEED, CASES):
        if case.call in UNSUPPORTED[engine]:
            skipped.append(f"{case.name}: {UNSUPPORTED[engine][case.call]}")
            continue
        result, entries, second, preflights = run(other_engine, lab, proxy_port, case)
        problems = check(engine, case, result, entries, second, preflights)
        outcomes.add(engine_outcome(result, engine))
        checked += 1 + (second is not None)
        if problems:
            disagreements.append(f"{case.describe()}\n  " + "\n  ".join(problems) + f"\n  console: {result.console}\n  report: {entries}")
    print(f"\nseed {SEED}, {engine}: the report agreed on {CASES - len(skipped) - len(disagreements)} of {CASES - len(skipped)} "
          f"cases ({checked} calls, {len(skipped)} skipped), {len(outcomes)} distinct outcomes, "
          f"{time.monotonic() - started:.0f} s")
    assert not disagreements, f"{len(disagreements)} disagreements ({engine}, seed {SEED}):\n" + "\n".join(disagreements)
    # A matrix where everything passes, or everything fails alike, proves little (Firefox's
    # lines tell fewer kinds apart than Chromium's: 4 outcomes in the default 30 cases).
    assert ("allowed", ()) in outcomes and len(outcomes) >= 3, outcomes
