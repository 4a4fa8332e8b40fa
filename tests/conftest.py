"""Shared fixtures: real loopback servers, a rule-file writer, and the three browser engines."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from support.browser import Chromium, launch_chromium, unavailable
from support.drivers import Engine
from support.firefox import Firefox
from support.servers import ApiServer, PageServer
from support.webkit import WebKit

if TYPE_CHECKING:
    from playwright.sync_api import Browser

ENGINES = ("chromium", "firefox", "webkit")


def pytest_configure(config: pytest.Config) -> None:
    """Register markers here so `-m 'not browser'` works without a pytest.ini."""
    config.addinivalue_line("markers", "browser: drives a real browser (Chromium, Firefox or WebKit)")
    config.addinivalue_line("markers", "integration: runs a real mitmdump process")


@pytest.fixture
def backend() -> Iterator[ApiServer]:
    """API server on its own port; a fresh one per test keeps request logs apart."""
    with ApiServer() as server:
        yield server


@pytest.fixture
def page_server() -> Iterator[PageServer]:
    """Page server on another port, so fetches to `backend` are cross-origin."""
    with PageServer() as server:
        yield server


@pytest.fixture
def write_rules(tmp_path: Path) -> Callable[..., Path]:
    """Return `write(yaml_text, name="rules.yaml") -> Path`.

    The text is dedented so rules can be written inline in tests; line numbers
    are unchanged, which matters for FILE:LINE error messages.
    """

    def write(yaml_text: str, name: str = "rules.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(yaml_text), encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the session; tests isolate via fresh contexts."""
    try:
        from playwright import sync_api
    except ImportError:
        unavailable("playwright not installed: pip install playwright")
    with sync_api.sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def firefox() -> Iterator[Firefox]:
    """One headless Firefox ESR for the session; tests isolate via fresh user contexts."""
    with Firefox.launched() as engine:
        yield engine


@pytest.fixture(scope="session")
def webkit() -> Iterator[WebKit]:
    """One Xvfb for the session; MiniBrowser restarts only when the proxy changes."""
    with WebKit.launched() as engine:
        yield engine


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Engine:
    """Each engine in turn; a browser is started only for the engines a run selects."""
    if request.param == "chromium":
        return Chromium(request.getfixturevalue("browser"))
    return request.getfixturevalue(request.param)
