"""Reading outcomes: what a browser did (page and console), and what the report predicted."""

from __future__ import annotations

import re
from typing import Any, Protocol

from mitmcors.corserrors import KINDS, VALID_VALUE
from mitmcors.engines import ENGINES, SAID, kinds_printing, same_line_as

BLOCKED = "has been blocked by CORS policy: "
FAILED_TO_LOAD = "Failed to load resource: "
KIND_PATTERNS = {
    name: re.compile(re.escape(kind.message().replace(VALID_VALUE, "")).replace("…", ".*?"))
    for name, kind in KINDS.items() if not kind.network_error
}
NETWORK_ERRORS = {kind.says: name for name, kind in KINDS.items() if kind.network_error}


class Seen(Protocol):
    ok: bool
    error: str | None
    console: list[str]

    def describe(self) -> str: ...


def chromium_outcome(result: Any, mode: str = "cors") -> tuple[str, str | None]:
    """('allowed', None) or ('blocked', kind) as read off the page and its console.

    A no-cors fetch is never blocked by CORS: the page gets an opaque response. A
    network error Chromium raises on a redirect shows only as "net::ERR_..." lines.
    """
    if result.ok:
        return "allowed", None
    messages = [line.split(BLOCKED, 1)[1] for line in result.console if BLOCKED in line]
    if not messages:
        errors = [line.split(FAILED_TO_LOAD, 1)[1] for line in result.console if FAILED_TO_LOAD in line]
        kinds = [NETWORK_ERRORS[error] for error in errors if error in NETWORK_ERRORS]
        assert len(kinds) == 1, f"{mode} call failed without one known error: {result.console}"
        return "blocked", kinds[0]
    assert len(messages) == 1, result.console
    kinds = [name for name, pattern in KIND_PATTERNS.items() if pattern.match(messages[0])]
    assert len(kinds) == 1, f"{messages[0]!r} reads as {kinds}"
    return "blocked", kinds[0]


def predicted_outcome(entries: list[dict[str, Any]], credentialed: bool, engine: str = "chromium") -> tuple[str, str | None]:
    """The report's word on a call in an engine: the first blocked exchange (a preflight,
    a redirect hop, the response) ends it; when none is blocked, it is allowed.

    ``credentialed`` is the mode the page used, which the report could not see: where it
    decides the verdict, the report's ``with_credentials`` outcome applies.
    """
    for entry in entries:
        said = entry if engine == "chromium" else entry["engines"][engine]
        chosen = said["with_credentials"] if credentialed and "with_credentials" in said else said
        if chosen["verdict"] == "blocked":
            return chosen["verdict"], chosen["reason"]
    return "allowed", None


def assert_engine_reports(result: Seen, engine: str, kind: str, **values: str) -> None:
    """The fetch failed, and the engine's console names the kind in the engine's own words.

    The first line is one of the kind's messages, with ``values`` where the message has those
    placeholders (compared case-insensitively: engines spell header names differently); it
    reads as no kind the engine could tell apart from this one; every later line is one of
    the kind's follow-ups.
    """
    said = SAID[engine][kind]
    assert not result.ok and result.error == ENGINES[engine].page_error, result.describe()
    first, *rest = result.console or [""]
    match = next(filter(None, (message.match(first) for message in said.messages)), None)
    assert match is not None, f"{engine} did not name {kind} first:\n{result.describe()}"
    shown = {name: match[name].casefold() for name in values if name in match.groupdict()}
    assert shown == {name: values[name].casefold() for name in shown}, result.describe()
    others = set(kinds_printing(first, engine)) - {kind, *same_line_as(kind, engine)}
    assert others == set(), f"{first!r} also reads as {others}"
    strays = [line for line in rest if not any(message.match(line) for message in said.follow_ups)]
    assert strays == [], f"{engine} printed more than {kind}'s lines: {strays}\n{result.describe()}"


def assert_no_cors_error(result: Seen, engine: str) -> None:
    """No console line reads as a CORS error of the engine's."""
    errors = [line for line in result.console if kinds_printing(line, engine)]
    assert errors == [], result.describe()


def engine_outcome(result: Seen, engine: str) -> tuple[str, tuple[str, ...]]:
    """('allowed', ()) or ('blocked', the kinds the engine's first CORS line may name),
    as read off the page and its console; ('blocked', ()) when no line names a kind."""
    if result.ok:
        return "allowed", ()
    return "blocked", next(filter(None, (kinds_printing(line, engine) for line in result.console)), ())
