"""End to end: a real browser -> mitmdump with the addon -> CORS-less backend, in Chromium,
Firefox and WebKit alike.

The page is served from one loopback port and calls the API on another, so
every fetch is cross-origin and the browser enforces CORS. Each positive case has
a control (no rules, or a rule that must not help) showing the browser really
blocks the same request, in its own words, so a passing test means the addon made
the difference. Every URL carries a fresh uuid because browsers cache preflights per URL.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support.drivers import Engine, FetchResult, Session
from support.outcomes import assert_engine_reports, assert_no_cors_error
from support.servers import (
    OPTIONS_405,
    PLAIN,
    WRONG_CORS,
    ApiServer,
    PageServer,
    running_mitmdump,
)

pytestmark = [pytest.mark.browser, pytest.mark.integration]

BYPASS = """\
rules:
  - name: bypass
    allow: {}
"""
# WebKit judges a preflight's status before its headers; Chromium and Firefox report the
# missing Allow-Origin first.
FAILED_PREFLIGHT = {"chromium": "PreflightMissingAllowOriginHeader", "firefox": "PreflightMissingAllowOriginHeader",
                    "webkit": "PreflightInvalidStatus"}


@dataclass
class ProxiedBrowser:
    """A browser session whose traffic goes through one mitmdump instance."""

    engine: str
    session: Session
    page: PageServer
    backend: ApiServer

    def fetch(self, path: str, **kwargs: Any) -> FetchResult:
        """fetch() the backend path from the page origin; kwargs as for drivers.fetch_argument."""
        return self.session.fetch(self.page.url("/"), self.backend.url(path), **kwargs)

    def add_backend_cookie(self, name: str, value: str) -> None:
        """Cookies ignore ports, so this cookie also belongs to the page's site."""
        self.session.add_cookie(self.backend.base_url, name, value)

    def assert_succeeded(self, result: FetchResult, status: int = 200) -> None:
        assert result.ok, result.describe()
        assert result.status == status, result.describe()
        assert_no_cors_error(result, self.engine)

    def assert_blocked(self, result: FetchResult, kind: str) -> None:
        """Blocked, and the browser says why in its own words (see mitmcors.engines)."""
        assert_engine_reports(result, self.engine, kind)


@pytest.fixture
def through_proxy(
    engine: Engine,
    backend: ApiServer,
    page_server: PageServer,
    write_rules: Callable[..., Path],
) -> Iterator[Callable[[str | None], ProxiedBrowser]]:
    """Return `start(rules_yaml)`: a mitmdump with those rules (None: no
    cors_rules at all) and a fresh browser session using it. Several may be
    started in one test; all stop at teardown."""
    counter = itertools.count()
    with ExitStack() as stack:

        def start(rules_yaml: str | None) -> ProxiedBrowser:
            rule_files = []
            if rules_yaml is not None:
                rule_files.append(write_rules(rules_yaml, f"rules{next(counter)}.yaml"))
            proxy = stack.enter_context(running_mitmdump(rule_files))
            session = stack.enter_context(engine.session(proxy.port))
            return ProxiedBrowser(engine.name, session, page_server, backend)

        yield start


def unique(prefix: str) -> str:
    """A path under prefix that no other fetch (or preflight cache entry) used."""
    return f"{prefix}{uuid.uuid4().hex}"


def methods_seen(backend: ApiServer, path: str) -> list[str]:
    return [r.method for r in backend.requests_to(path)]


def test_simple_get_is_blocked_without_rules(
    through_proxy: Callable[[str | None], ProxiedBrowser], backend: ApiServer
) -> None:
    """Control: the backend answers, but the browser withholds it from the page."""
    path = unique(PLAIN)
    proxied = through_proxy(None)
    result = proxied.fetch(path)
    proxied.assert_blocked(result, "MissingAllowOriginHeader")
    assert methods_seen(backend, path) == ["GET"]


def test_simple_get_succeeds_with_bypass(
    through_proxy: Callable[[str | None], ProxiedBrowser],
) -> None:
    path = unique(PLAIN)
    proxied = through_proxy(BYPASS)
    result = proxied.fetch(path)
    proxied.assert_succeeded(result)
    assert result.json["method"] == "GET"
    assert result.json["path"] == path


@pytest.mark.parametrize("prefix", [PLAIN, OPTIONS_405], ids=["options-501", "options-405"])
def test_preflighted_put_is_blocked_without_rules(
    through_proxy: Callable[[str | None], ProxiedBrowser], backend: ApiServer, prefix: str
) -> None:
    """Control: the backend's OPTIONS fails, so the browser never sends the PUT."""
    path = unique(prefix)
    proxied = through_proxy(None)
    result = proxied.fetch(path, method="PUT", headers={"X-Test": "1"}, body="{}")
    proxied.assert_blocked(result, FAILED_PREFLIGHT[proxied.engine])
    assert methods_seen(backend, path) == ["OPTIONS"]


def test_put_with_json_and_custom_header_is_preflighted_at_the_proxy(
    through_proxy: Callable[[str | None], ProxiedBrowser], backend: ApiServer
) -> None:
    """The backend has no OPTIONS handler (501); the proxy answers the preflight."""
    path = unique(PLAIN)
    body = json.dumps({"hello": "world"})
    proxied = through_proxy(BYPASS)
    result = proxied.fetch(
        path,
        method="PUT",
        headers={"Content-Type": "application/json", "X-Test": "1"},
        body=body,
    )
    proxied.assert_succeeded(result)
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
    session.assert_succeeded(result)
    assert result.json["method"] == "DELETE"
    assert result.json["cookie"] == "session=abc"
    [delete] = [r for r in backend.requests_to(path) if r.method == "DELETE"]
    assert delete.header("Cookie") == "session=abc"


def test_authorization_header_with_credentials(
    through_proxy: Callable[[str | None], ProxiedBrowser], backend: ApiServer
) -> None:
    """A credentialed request cannot rely on `*`; Authorization must be allowed by name."""
    path = unique(PLAIN)
    proxied = through_proxy(BYPASS)
    result = proxied.fetch(path, headers={"Authorization": "Bearer x"}, credentials="include")
    proxied.assert_succeeded(result)
    assert result.json["authorization"] == "Bearer x"
    [get] = [r for r in backend.requests_to(path) if r.method == "GET"]
    assert get.header("Authorization") == "Bearer x"


def test_default_expose_lets_the_page_read_response_headers(
    through_proxy: Callable[[str | None], ProxiedBrowser],
) -> None:
    proxied = through_proxy(BYPASS)
    result = proxied.fetch(unique(PLAIN), read_headers=["x-total"])
    proxied.assert_succeeded(result)
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
    proxied = through_proxy(rules)
    result = proxied.fetch(unique(PLAIN), read_headers=["x-total"])
    proxied.assert_succeeded(result)
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
    proxied = through_proxy(rules)
    result = proxied.fetch(path)
    proxied.assert_blocked(result, "MissingAllowOriginHeader")
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
    proxied = through_proxy(rules)
    result = proxied.fetch(path, method="PUT", headers={"X-Test": "1"}, body="{}")
    proxied.assert_succeeded(result)
    assert result.json["x_test"] == "1"
    assert methods_seen(backend, path) == ["OPTIONS", "PUT"]


def test_backend_with_duplicate_allow_origin_is_blocked_without_rules(
    through_proxy: Callable[[str | None], ProxiedBrowser],
) -> None:
    """Control: the backend's own CORS headers are wrong."""
    proxied = through_proxy(None)
    result = proxied.fetch(unique(WRONG_CORS))
    proxied.assert_blocked(result, "MultipleAllowOriginValues")


def test_bypass_replaces_the_backends_wrong_cors_headers(
    through_proxy: Callable[[str | None], ProxiedBrowser],
) -> None:
    proxied = through_proxy(BYPASS)
    result = proxied.fetch(unique(WRONG_CORS))
    proxied.assert_succeeded(result)
    assert result.json["method"] == "GET"


def test_strip_all_removes_the_backends_cors_headers(
    through_proxy: Callable[[str | None], ProxiedBrowser],
) -> None:
    """With the duplicates gone the browser reports a missing header instead."""
    rules = """\
    rules:
      - name: strip-wrong-cors
        match:
          path: "/wrongcors/*"
        strip: all
    """
    proxied = through_proxy(rules)
    result = proxied.fetch(unique(WRONG_CORS))
    proxied.assert_blocked(result, "MissingAllowOriginHeader")
