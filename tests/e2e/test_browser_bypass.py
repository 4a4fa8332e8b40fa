"""End to end: headless Chromium -> mitmdump with the addon -> CORS-less backend.

The page is served from one loopback port and calls the API on another, so
every fetch is cross-origin and Chromium enforces CORS. Each positive case has
a control (no rules, or a rule that must not help) showing the browser really
blocks the same request, so a passing test means the addon made the difference.
Every URL carries a fresh uuid because Chromium caches preflights per URL.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from support.browser import FetchResult, page_fetch, proxied_context
from support.servers import (
    OPTIONS_405,
    PLAIN,
    WRONG_CORS,
    ApiServer,
    PageServer,
    running_mitmdump,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext

pytestmark = [pytest.mark.browser, pytest.mark.integration]

BYPASS = """\
rules:
  - name: bypass
    allow: {}
"""
NO_ACAO = "No 'Access-Control-Allow-Origin' header is present"
BLOCKED = "blocked by CORS policy"


@dataclass
class ProxiedBrowser:
    """A browser context whose traffic goes through one mitmdump instance."""

    context: BrowserContext
    page: PageServer
    backend: ApiServer

    def fetch(self, path: str, **kwargs: Any) -> FetchResult:
        """fetch() the backend path from the page origin; kwargs go to page_fetch."""
        return page_fetch(self.context, self.page.url("/"), self.backend.url(path), **kwargs)

    def add_backend_cookie(self, name: str, value: str) -> None:
        """Cookies ignore ports, so this cookie also belongs to the page's site."""
        self.context.add_cookies([{"name": name, "value": value, "url": self.backend.base_url}])


@pytest.fixture
def through_proxy(
    browser: Browser,
    backend: ApiServer,
    page_server: PageServer,
    write_rules: Callable[..., Path],
) -> Iterator[Callable[[str | None], ProxiedBrowser]]:
    """Return `start(rules_yaml)`: a mitmdump with those rules (None: no
    cors_rules at all) and a fresh Chromium context using it. Several may be
    started in one test; all stop at teardown."""
    counter = itertools.count()
    with ExitStack() as stack:

        def start(rules_yaml: str | None) -> ProxiedBrowser:
            rule_files = []
            if rules_yaml is not None:
                rule_files.append(write_rules(rules_yaml, f"rules{next(counter)}.yaml"))
            proxy = stack.enter_context(running_mitmdump(rule_files))
            context = stack.enter_context(proxied_context(browser, proxy.port))
            return ProxiedBrowser(context, page_server, backend)

        yield start


def unique(prefix: str) -> str:
    """A path under prefix that no other fetch (or preflight cache entry) used."""
    return f"{prefix}{uuid.uuid4().hex}"


def methods_seen(backend: ApiServer, path: str) -> list[str]:
    return [r.method for r in backend.requests_to(path)]


def assert_succeeded(result: FetchResult, status: int = 200) -> None:
    assert result.ok, result.describe()
    assert result.status == status, result.describe()
    assert BLOCKED not in result.console_text, result.describe()


def assert_blocked(result: FetchResult, console_says: str) -> None:
    assert not result.ok, result.describe()
    assert BLOCKED in result.console_text, result.describe()
    assert console_says in result.console_text, result.describe()


def test_simple_get_is_blocked_without_rules(
    through_proxy: Callable[[str | None], ProxiedBrowser], backend: ApiServer
) -> None:
    """Control: the backend answers, but Chromium withholds it from the page."""
    path = unique(PLAIN)
    result = through_proxy(None).fetch(path)
    assert_blocked(result, NO_ACAO)
    assert methods_seen(backend, path) == ["GET"]


def test_simple_get_succeeds_with_bypass(
    through_proxy: Callable[[str | None], ProxiedBrowser],
) -> None:
    path = unique(PLAIN)
    result = through_proxy(BYPASS).fetch(path)
    assert_succeeded(result)
    assert result.json["method"] == "GET"
    assert result.json["path"] == path


@pytest.mark.parametrize("prefix", [PLAIN, OPTIONS_405], ids=["options-501", "options-405"])
def test_preflighted_put_is_blocked_without_rules(
    through_proxy: Callable[[str | None], ProxiedBrowser], backend: ApiServer, prefix: str
) -> None:
    """Control: the backend's OPTIONS fails, so Chromium never sends the PUT."""
    path = unique(prefix)
    result = through_proxy(None).fetch(
        path, method="PUT", headers={"X-Test": "1"}, body="{}"
    )
    assert_blocked(result, "Response to preflight request doesn't pass access control check")
    assert methods_seen(backend, path) == ["OPTIONS"]


def test_put_with_json_and_custom_header_is_preflighted_at_the_proxy(
    through_proxy: Callable[[str | None], ProxiedBrowser], backend: ApiServer
) -> None:
    """The backend has no OPTIONS handler (501); the proxy answers the preflight."""
    path = unique(PLAIN)
    body = json.dumps({"hello": "world"})
    result = through_proxy(BYPASS).fetch(
        path,
        method="PUT",
        headers={"Content-Type": "application/json", "X-Test": "1"},
        body=body,
    )
    assert_succeeded(result)
    assert result.json["method"] == "PUT"
    assert result.json["x_test"] == "1"
    assert result.json["body"] == body
    assert methods_seen(backend, path) == ["PUT"]
    [put] = backend.requests_to(path)
    assert put.header("X-Test") == "1"


def test_delete_with_credentials_sends_the_cookie(
    through_proxy: Callable[[str | None], ProxiedBrowser], backend: ApiServer
) -> None:
    session = through_proxy(BYPASS)
    session.add_backend_cookie("session", "abc")
    path = unique(PLAIN)
    result = session.fetch(path, method="DELETE", credentials="include")
    assert_succeeded(result)
    assert result.json["method"] == "DELETE"
    assert result.json["cookie"] == "session=abc"
    [delete] = [r for r in backend.requests_to(path) if r.method == "DELETE"]
    assert delete.header("Cookie") == "session=abc"


def test_authorization_header_with_credentials(
    through_proxy: Callable[[str | None], ProxiedBrowser], backend: ApiServer
) -> None:
    """A credentialed request cannot rely on `*`; Authorization must be allowed by name."""
    path = unique(PLAIN)
    result = through_proxy(BYPASS).fetch(
        path, headers={"Authorization": "Bearer x"}, credentials="include"
    )
    assert_succeeded(result)
    assert result.json["authorization"] == "Bearer x"
    [get] = [r for r in backend.requests_to(path) if r.method == "GET"]
    assert get.header("Authorization") == "Bearer x"


def test_default_expose_lets_the_page_read_response_headers(
    through_proxy: Callable[[str | None], ProxiedBrowser],
) -> None:
    result = through_proxy(BYPASS).fetch(unique(PLAIN), read_headers=["x-total"])
    assert_succeeded(result)
    assert result.headers["x-total"] == "42", result.describe()


def test_empty_expose_hides_response_headers_from_the_page(
    through_proxy: Callable[[str | None], ProxiedBrowser],
) -> None:
    """Control for the default: the header is on the wire but not exposed."""
    rules = """\
    rules:
      - name: expose-nothing
        allow:
          expose: []
    """
    result = through_proxy(rules).fetch(unique(PLAIN), read_headers=["x-total"])
    assert_succeeded(result)
    assert result.headers["x-total"] is None, result.describe()


def test_origin_not_on_the_allow_list_stays_blocked(
    through_proxy: Callable[[str | None], ProxiedBrowser], backend: ApiServer
) -> None:
    rules = """\
    rules:
      - name: other-origin-only
        allow:
          origins: ["http://127.0.0.1:1"]
    """
    path = unique(PLAIN)
    result = through_proxy(rules).fetch(path)
    assert_blocked(result, NO_ACAO)
    assert methods_seen(backend, path) == ["GET"]


def test_forwarded_preflight_reaches_the_backend_and_is_fixed(
    through_proxy: Callable[[str | None], ProxiedBrowser], backend: ApiServer
) -> None:
    """preflight: forward sends OPTIONS on (backend says 405) and turns it into 204."""
    rules = """\
    rules:
      - name: forward-preflight
        allow:
          preflight: forward
    """
    path = unique(OPTIONS_405)
    result = through_proxy(rules).fetch(
        path, method="PUT", headers={"X-Test": "1"}, body="{}"
    )
    assert_succeeded(result)
    assert result.json["x_test"] == "1"
    assert methods_seen(backend, path) == ["OPTIONS", "PUT"]


def test_backend_with_duplicate_allow_origin_is_blocked_without_rules(
    through_proxy: Callable[[str | None], ProxiedBrowser],
) -> None:
    """Control: the backend's own CORS headers are wrong."""
    result = through_proxy(None).fetch(unique(WRONG_CORS))
    assert_blocked(result, "contains multiple values")


def test_bypass_replaces_the_backends_wrong_cors_headers(
    through_proxy: Callable[[str | None], ProxiedBrowser],
) -> None:
    result = through_proxy(BYPASS).fetch(unique(WRONG_CORS))
    assert_succeeded(result)
    assert result.json["method"] == "GET"


def test_strip_all_removes_the_backends_cors_headers(
    through_proxy: Callable[[str | None], ProxiedBrowser],
) -> None:
    """With the duplicates gone Chromium reports a missing header instead."""
    rules = """\
    rules:
      - name: strip-wrong-cors
        match:
          path: "/wrongcors/*"
        strip: all
    """
    result = through_proxy(rules).fetch(unique(WRONG_CORS))
    assert_blocked(result, NO_ACAO)
