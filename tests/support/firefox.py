"""Drive Debian's Firefox ESR over WebDriver BiDi, spoken directly over a websocket.

Firefox's own remote agent speaks BiDi, so no geckodriver is needed. Its CORS errors never
reach stdout or stderr: they arrive as BiDi ``log.entryAdded`` events, a few milliseconds
after fetch() rejects. One Firefox serves the test session; each drivers.Session is a BiDi
user context (own cookies and caches) with its own proxy.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from support.drivers import CONSOLE_WAIT, FETCH_JS, FetchResult, OutputLines, fetch_argument, stop, unavailable

if TYPE_CHECKING:
    from websockets.sync.client import ClientConnection

FIREFOX_NAMES = ("firefox-esr", "firefox")
PREFS = {
    # Without it Firefox never sends loopback traffic to a proxy.
    "network.proxy.allow_hijacking_localhost": True,
}
LISTENING = re.compile(r"WebDriver BiDi listening on (ws://\S+)")
FOLLOW_UP_WAIT = 0.1
"""Seconds to keep listening after the first console line: a second, generic one often follows."""
STARTUP_TIMEOUT = 30.0
COMMAND_TIMEOUT = 30.0
# Run a page function on a JSON string and answer JSON, so BiDi's value serialization stays out of it.
CALL_IN_JSON = "async (argument) => JSON.stringify(await ({function})(JSON.parse(argument)))"


class BidiError(RuntimeError):
    """A BiDi command answered with an error."""


class Bidi:
    """One BiDi connection: each command waits for its answer; events are kept as they come."""

    def __init__(self, connection: ClientConnection) -> None:
        self._connection = connection
        self._ids = count(1)
        self.events: list[dict[str, Any]] = []

    def command(self, method: str, **params: Any) -> dict[str, Any]:
        command_id = next(self._ids)
        self._connection.send(json.dumps({"id": command_id, "method": method, "params": params}))
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while True:
            message = self._receive(deadline - time.monotonic())
            if message is None:
                raise BidiError(f"{method}: no answer within {COMMAND_TIMEOUT}s")
            if message.get("id") == command_id:
                if message["type"] == "error":
                    raise BidiError(f"{method}: {message['error']}: {message.get('message')}")
                return message["result"]

    def listen(self, seconds: float, until: Callable[[], bool] = lambda: False) -> None:
        """Keep events for up to ``seconds``, or until ``until()`` holds."""
        deadline = time.monotonic() + seconds
        while not until() and self._receive(deadline - time.monotonic()) is not None:
            pass

    def _receive(self, timeout: float) -> dict[str, Any] | None:
        """The next message, keeping it if it is an event; None after timeout."""
        if timeout <= 0:
            return None
        try:
            message = json.loads(self._connection.recv(timeout=timeout))
        except TimeoutError:
            return None
        if message.get("type") == "event":
            self.events.append(message)
        return message


def find_firefox() -> str:
    """Path of Firefox, or skip the test with how to get it."""
    found = next(filter(None, map(shutil.which, FIREFOX_NAMES)), None)
    if found is None:
        unavailable("Firefox not found: apt-get install firefox-esr")
    return found


def _bidi_url(process: subprocess.Popen[str]) -> str:
    """Where Firefox's BiDi listens, as it says on stderr (which is then drained for good)."""
    assert process.stderr is not None
    stderr = OutputLines(process.stderr)
    listening = stderr.wait_for(LISTENING, STARTUP_TIMEOUT)
    if listening is None:
        raise RuntimeError("Firefox's WebDriver BiDi did not listen:\n" + "\n".join(stderr.lines()))
    return listening.group(1) + "/session"


def _connect(url: str) -> ClientConnection:
    try:
        from websockets.sync.client import connect
    except ImportError:
        unavailable("websockets not installed: pip install websockets")
    return connect(url, max_size=None, open_timeout=STARTUP_TIMEOUT)


class Firefox:
    """A headless Firefox with a throwaway profile, as a drivers.Engine."""

    name = "firefox"

    def __init__(self, bidi: Bidi, version: str) -> None:
        self.bidi = bidi
        self.version = version

    @classmethod
    @contextmanager
    def launched(cls) -> Iterator[Firefox]:
        with tempfile.TemporaryDirectory(prefix="cors-firefox-") as profile:
            user_js = "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in PREFS.items())
            (Path(profile) / "user.js").write_text(user_js)
            # Port 0: Firefox picks a free port and says which on stderr.
            command = [find_firefox(), "--headless", "--no-remote", "--remote-debugging-port=0",
                       "--profile", profile, "about:blank"]
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE, text=True, errors="replace")
            try:
                with _connect(_bidi_url(process)) as connection:
                    firefox = cls._new_session(Bidi(connection))
                    yield firefox
                    firefox.quit()
            finally:
                stop(process)

    @classmethod
    def _new_session(cls, bidi: Bidi) -> Firefox:
        capabilities = bidi.command("session.new", capabilities={})["capabilities"]
        bidi.command("session.subscribe", events=["log.entryAdded"])
        return cls(bidi, capabilities["browserVersion"])

    def quit(self) -> None:
        """Ask Firefox to quit; it then exits by itself, sooner than when terminated."""
        with suppress(BidiError, OSError):
            self.bidi.command("browser.close")

    @contextmanager
    def session(self, proxy_port: int) -> Iterator[FirefoxSession]:
        """A user context of its own, whose proxy BiDi sets (the profile's prefs only let
        loopback through a proxy)."""
        proxy = f"127.0.0.1:{proxy_port}"
        user_context = self.bidi.command(
            "browser.createUserContext", proxy={"proxyType": "manual", "httpProxy": proxy, "sslProxy": proxy}
        )["userContext"]
        try:
            yield FirefoxSession(self.bidi, user_context)
        finally:
            self.bidi.command("browser.removeUserContext", userContext=user_context)


@dataclass
class FirefoxSession:
    """A BiDi user context: its own cookies and caches, its own proxy."""

    bidi: Bidi
    user_context: str

    def add_cookie(self, url: str, name: str, value: str) -> None:
        cookie = {"name": name, "value": {"type": "string", "value": value},
                  "domain": urlsplit(url).hostname, "path": "/"}
        self.bidi.command("storage.setCookie", cookie=cookie,
                          partition={"type": "storageKey", "userContext": self.user_context})

    def fetch(self, page_url: str, url: str, **request: Any) -> FetchResult:
        return FetchResult.from_page(*self.evaluate(page_url, FETCH_JS, fetch_argument(url, **request)))

    def evaluate(self, page_url: str, function: str, argument: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """A new tab per call, so its console lines are told apart by their browsing context."""
        tab = self.bidi.command("browsingContext.create", type="tab", userContext=self.user_context)["context"]
        try:
            self.bidi.command("browsingContext.navigate", context=tab, url=page_url, wait="complete")
            answer = self.bidi.command(
                "script.callFunction", functionDeclaration=CALL_IN_JSON.replace("{function}", function), awaitPromise=True,
                target={"context": tab}, arguments=[{"type": "string", "value": json.dumps(argument)}],
            )
            raw = json.loads(answer["result"]["value"])
            if not raw["ok"]:
                self._await_console(tab)
            return raw, self._console(tab)
        finally:
            self.bidi.command("browsingContext.close", context=tab)
            self.bidi.events = [event for event in self.bidi.events if not _logged_in(event, tab)]

    def _await_console(self, tab: str) -> None:
        """Firefox logs why a fetch failed a few milliseconds after the promise rejects."""
        self.bidi.listen(CONSOLE_WAIT, until=lambda: bool(self._console(tab)))
        self.bidi.listen(FOLLOW_UP_WAIT)

    def _console(self, tab: str) -> list[str]:
        return [event["params"]["text"] for event in self.bidi.events if _logged_in(event, tab)]


def _logged_in(event: dict[str, Any], tab: str) -> bool:
    return event["method"] == "log.entryAdded" and event["params"]["source"].get("context") == tab
