"""What the three browser drivers share: the fetch a page runs, what the page saw, and the
small interface one test body drives in Chromium, Firefox and WebKit alike.

Each engine is driven its own way (Playwright, WebDriver BiDi, a script inside the page),
but the page runs the same FETCH_JS, so a difference in outcome is the engine's.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

import pytest

CONSOLE_WAIT = 2.0
"""Seconds to wait, after a failed fetch, for the engine's CORS error to reach the console."""

FETCH_JS = """
async ({url, init, names}) => {
  try {
    const response = await fetch(url, init);
    const text = await response.text();
    const headers = {};
    for (const name of names) headers[name] = response.headers.get(name);
    return {ok: true, status: response.status, text, headers, error: null};
  } catch (e) {
    return {ok: false, status: null, text: null, headers: {}, error: String(e)};
  }
}
"""


def unavailable(reason: str) -> None:
    """Skip a browser test, or fail it where CORS_REQUIRE_BROWSER is set (CI)."""
    if os.environ.get("CORS_REQUIRE_BROWSER"):
        pytest.fail(f"{reason} (CORS_REQUIRE_BROWSER is set)", pytrace=False)
    pytest.skip(reason)


class OutputLines:
    """A child process's output, read line by line in a thread (so the pipe never fills),
    that a test can wait on."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: list[str] = []
        self._added = threading.Condition()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            with self._added:
                self._lines.append(line.rstrip("\n"))
                self._added.notify_all()

    def lines(self) -> list[str]:
        with self._added:
            return list(self._lines)

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str] | None:
        """The first line's match of pattern, waiting up to timeout seconds for it."""

        def first() -> re.Match[str] | None:
            return next(filter(None, map(pattern.search, self._lines)), None)

        with self._added:
            self._added.wait_for(lambda: first() is not None, timeout)
            return first()


def stop(process: subprocess.Popen[Any]) -> None:
    """Terminate a child process, killing it if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def fetch_argument(
    url: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: str | None = None,
    credentials: str = "same-origin",
    read_headers: Sequence[str] = (),
) -> dict[str, Any]:
    """FETCH_JS's argument: fetch(url, init), then read these response headers."""
    init: dict[str, Any] = {"method": method, "credentials": credentials}
    if headers:
        init["headers"] = dict(headers)
    if body is not None:
        init["body"] = body
    return {"url": url, "init": init, "names": list(read_headers)}


@dataclass
class FetchResult:
    """What the page saw from one fetch() call."""

    ok: bool
    """fetch() resolved; False when it rejected (CORS block, network error)."""
    status: int | None
    text: str | None
    headers: dict[str, str | None]
    """response.headers.get(name) for each requested name, as the page sees it."""
    error: str | None
    console: list[str] = field(default_factory=list)

    @classmethod
    def from_page(cls, raw: Mapping[str, Any], console: list[str]) -> FetchResult:
        """FETCH_JS's return value, with the console lines the fetch caused."""
        return cls(raw["ok"], raw["status"], raw["text"], raw["headers"], raw["error"], list(console))

    @property
    def json(self) -> Any:
        assert self.text is not None, f"fetch failed: {self.error}; console: {self.console}"
        return json.loads(self.text)

    @property
    def console_text(self) -> str:
        return "\n".join(self.console)

    def describe(self) -> str:
        """One blob for assertion messages, so a failure says what the page saw."""
        return (
            f"ok={self.ok} status={self.status} error={self.error!r}\n"
            f"headers={self.headers}\nbody={self.text!r}\nconsole:\n{self.console_text}"
        )


class Session(Protocol):
    """A fresh browser profile (cookies, caches) whose traffic, loopback included, goes
    through one proxy."""

    def add_cookie(self, url: str, name: str, value: str) -> None:
        """A cookie for url's host; cookies ignore ports, so the page's site sends it too."""

    def fetch(self, page_url: str, url: str, **request: Any) -> FetchResult:
        """Open page_url, run fetch(url, ...) in it (``request`` as for fetch_argument), and
        report what the page saw and what the engine printed."""


class EvaluatingSession(Session, Protocol):
    """Firefox's and WebKit's sessions, which run any page function (Chromium's tests
    have Playwright's page for that)."""

    def evaluate(self, page_url: str, function: str, argument: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """Open page_url, await the async JS ``function`` (source text, one JSON argument)
        in it, and return its JSON result and the console lines the call caused (the
        failure's, when the result's ``ok`` is false)."""


class Engine(Protocol):
    """One running browser; a session per proxy."""

    name: str

    def session(self, proxy_port: int) -> AbstractContextManager[Session]: ...
