"""Drive the system Chromium through Playwright to run fetch() from a real page.

CORS is enforced only by browsers, so the end-to-end proof that the addon works
is a real Chromium refusing or accepting a cross-origin fetch. Playwright's own
browser downloads are unavailable here; we launch Debian's /usr/bin/chromium.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Playwright

DEFAULT_CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
# Chromium never proxies loopback unless told to; the proxy is per context.
PROXY_BYPASS = "<-loopback>"
CORS_BLOCKED = "blocked by CORS policy"
CONSOLE_WAIT = 2.0

_FETCH_JS = """
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


def find_chromium() -> str:
    """Path of the Chromium binary, or skip the test with how to get one."""
    if DEFAULT_CHROMIUM.is_file():
        return str(DEFAULT_CHROMIUM)
    found = shutil.which("chromium")
    if found is None:
        unavailable(f"Chromium not found at {DEFAULT_CHROMIUM}: apt-get install chromium")
    return found


def launch_chromium(playwright: Playwright) -> Browser:
    """Headless Chromium; proxies are set per context so one browser serves all tests."""
    return playwright.chromium.launch(
        executable_path=find_chromium(), headless=True, args=list(CHROMIUM_ARGS)
    )


@contextmanager
def proxied_context(browser: Browser, proxy_port: int, trust_proxy_certificates: bool = False) -> Iterator[BrowserContext]:
    """Fresh context (own cookies and preflight cache) whose traffic, loopback
    included, goes through the proxy on proxy_port.

    ``trust_proxy_certificates`` stands in for installing mitmproxy's CA, for HTTPS.
    """
    context = browser.new_context(
        proxy={"server": f"http://127.0.0.1:{proxy_port}", "bypass": PROXY_BYPASS},
        ignore_https_errors=trust_proxy_certificates,
    )
    try:
        yield context
    finally:
        context.close()


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


def page_fetch(
    context: BrowserContext,
    page_url: str,
    url: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: str | None = None,
    credentials: str = "same-origin",
    read_headers: Sequence[str] = (),
    console_wait: float = CONSOLE_WAIT,
) -> FetchResult:
    """Open page_url in a new tab, run fetch(url, init) in it, and report.

    After a failed fetch, poll up to console_wait seconds for Chromium's CORS
    error, which reaches the console asynchronously.
    """
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    try:
        page.goto(page_url)
        init: dict[str, Any] = {"method": method, "credentials": credentials}
        if headers:
            init["headers"] = dict(headers)
        if body is not None:
            init["body"] = body
        raw = page.evaluate(
            _FETCH_JS, {"url": url, "init": init, "names": list(read_headers)}
        )
        if not raw["ok"]:
            deadline = time.monotonic() + console_wait
            while not any(CORS_BLOCKED in m for m in console) and time.monotonic() < deadline:
                page.wait_for_timeout(50)
        return FetchResult(
            ok=raw["ok"],
            status=raw["status"],
            text=raw["text"],
            headers=raw["headers"],
            error=raw["error"],
            console=list(console),
        )
    finally:
        page.close()
