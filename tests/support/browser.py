"""Drive the system Chromium through Playwright to run fetch() from a real page.

CORS is enforced only by browsers, so the end-to-end proof that the addon works
is a real Chromium refusing or accepting a cross-origin fetch. Playwright's own
browser downloads are unavailable here; we launch Debian's /usr/bin/chromium.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mitmcors.engines import kinds_printing
from support.drivers import CONSOLE_WAIT, FETCH_JS, FetchResult, fetch_argument, unavailable

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


def find_chromium() -> str:
    """Path of the Chromium binary (CORS_CHROMIUM names another build, e.g. an older
    Debian package unpacked with ``dpkg -x``), or skip the test with how to get one."""
    chosen = os.environ.get("CORS_CHROMIUM")
    if chosen:
        return chosen
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


def page_fetch(
    context: BrowserContext,
    page_url: str,
    url: str,
    *,
    console_wait: float = CONSOLE_WAIT,
    **request: Any,
) -> FetchResult:
    """Open page_url in a new tab, run fetch(url, ...) in it (``request`` as for
    drivers.fetch_argument), and report.

    After a failed fetch, poll up to console_wait seconds for Chromium's CORS
    error (or the network error it raised instead), which reaches the console
    asynchronously.
    """
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    try:
        page.goto(page_url)
        raw = page.evaluate(FETCH_JS, fetch_argument(url, **request))
        if not raw["ok"]:
            deadline = time.monotonic() + console_wait
            while not any(kinds_printing(m, "chromium") for m in console) and time.monotonic() < deadline:
                page.wait_for_timeout(50)
        return FetchResult.from_page(raw, console)
    finally:
        page.close()


@dataclass
class ChromiumSession:
    """A Playwright context as a drivers.Session."""

    context: BrowserContext

    def add_cookie(self, url: str, name: str, value: str) -> None:
        self.context.add_cookies([{"name": name, "value": value, "url": url}])

    def fetch(self, page_url: str, url: str, **request: Any) -> FetchResult:
        return page_fetch(self.context, page_url, url, **request)


@dataclass
class Chromium:
    """The session's Chromium as a drivers.Engine: a fresh context per session."""

    browser: Browser
    name: str = "chromium"

    @contextmanager
    def session(self, proxy_port: int) -> Iterator[ChromiumSession]:
        with proxied_context(self.browser, proxy_port) as context:
            yield ChromiumSession(context)
