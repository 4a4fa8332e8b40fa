"""Reading outcomes: what Chromium did (page and console), and what the report predicted."""

from __future__ import annotations

import re
from typing import Any

from mitmcors.corserrors import KINDS
from support.browser import FetchResult

BLOCKED = "has been blocked by CORS policy: "
KIND_PATTERNS = {name: re.compile(re.escape(kind.message()).replace("…", ".*?")) for name, kind in KINDS.items()}


def chromium_outcome(result: FetchResult) -> tuple[str, str | None]:
    """('allowed', None) or ('blocked', kind) as read off the page and its console."""
    if result.ok:
        return "allowed", None
    messages = [line.split(BLOCKED, 1)[1] for line in result.console if BLOCKED in line]
    assert len(messages) == 1, result.describe()
    kinds = [name for name, pattern in KIND_PATTERNS.items() if pattern.match(messages[0])]
    assert len(kinds) == 1, f"{messages[0]!r} reads as {kinds}"
    return "blocked", kinds[0]


def predicted_outcome(entries: list[dict[str, Any]], credentialed: bool) -> tuple[str, str | None]:
    """The report's word on an exchange: a blocked preflight ends it, else the response decides.

    ``credentialed`` is the mode the page used, which the report could not see: where it
    decides the verdict, the report's ``with_credentials`` outcome applies.
    """

    def outcome(entry: dict[str, Any]) -> tuple[str, str | None]:
        chosen = entry["with_credentials"] if credentialed and "with_credentials" in entry else entry
        return chosen["verdict"], chosen["reason"]

    preflights = [outcome(entry) for entry in entries if entry["preflight"]]
    if preflights and preflights[0][0] == "blocked":
        return preflights[0]
    actual = [outcome(entry) for entry in entries if not entry["preflight"]]
    assert len(actual) == 1, entries
    return actual[0]
