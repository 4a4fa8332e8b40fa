"""One cross-origin call from a real page, made with fetch() or XMLHttpRequest, with
every option a page can set that changes what the browser sends or decides."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from support.drivers import EvaluatingSession

# Bodies a page hands over, each giving the request a Content-Type of its own (or none).
_CALL_JS = """
async ({api, url, method, headers, body, credentials, cache, mode}) => {
  const bodies = {
    text: () => "x", json: () => "{}", formdata: () => { const f = new FormData(); f.append("a", "1"); return f; },
    urlsearchparams: () => new URLSearchParams("a=1"), blob_json: () => new Blob(["{}"], {type: "application/json"}),
    blob_plain: () => new Blob(["x"], {type: "text/plain"}), blob_untyped: () => new Blob(["x"]),
  };
  const payload = body ? bodies[body]() : undefined;
  if (api === "xhr") {
    return await new Promise(resolve => {
      const xhr = new XMLHttpRequest();
      xhr.open(method, url);
      xhr.withCredentials = credentials === "include";
      for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
      xhr.onload = () => {
        const names = xhr.getAllResponseHeaders().trim().split(/\\r?\\n/).filter(Boolean)
          .map(line => line.split(":")[0].trim().toLowerCase());
        resolve({ok: true, status: xhr.status, readable: names, type: "cors"});
      };
      xhr.onerror = () => resolve({ok: false, error: "XMLHttpRequest error", readable: []});
      xhr.send(payload);
    });
  }
  try {
    const response = await fetch(url, {method, headers, body: payload, credentials, cache, mode});
    await response.text();
    return {ok: true, status: response.status, readable: [...response.headers.keys()], type: response.type};
  } catch (e) {
    return {ok: false, error: String(e), readable: []};
  }
}
"""

CONSOLE_WAIT = 2.0
FAILED_TO_LOAD = "Failed to load resource: net::"
BLOCKED = "has been blocked by CORS policy"


@dataclass(frozen=True)
class Call:
    """What the page does: ``api`` is "fetch" or "xhr"; ``body`` names one of _CALL_JS's."""

    api: str = "fetch"
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None
    credentials: str = "same-origin"
    cache: str = "default"
    mode: str = "cors"

    @property
    def credentialed(self) -> bool:
        return self.credentials == "include"


@dataclass
class CallResult:
    ok: bool
    status: int | None
    readable: list[str]
    response_type: str | None
    error: str | None
    console: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        """The console lines Chromium printed about this call failing."""
        return [line for line in self.console if BLOCKED in line or FAILED_TO_LOAD in line]


def call_from_page(page: Page, url: str, call: Call, console: list[str]) -> CallResult:
    """Make ``call`` to ``url`` from ``page``; after a failure, wait for the console's
    error, which arrives asynchronously."""
    start = len(console)
    raw: dict[str, Any] = page.evaluate(_CALL_JS, _argument(url, call))
    if not raw["ok"]:
        deadline = time.monotonic() + CONSOLE_WAIT
        while not any(BLOCKED in line for line in console[start:]) and time.monotonic() < deadline:
            page.wait_for_timeout(50)
            if any(FAILED_TO_LOAD in line for line in console[start:]):
                page.wait_for_timeout(100)  # a CORS line, if any, comes just before it
                break
    return _result(raw, console[start:])


def call_in_session(session: EvaluatingSession, page_url: str, url: str, call: Call) -> CallResult:
    """Make ``call`` to ``url`` from a Firefox or WebKit page (its driver waits for the
    console after a failure)."""
    return _result(*session.evaluate(page_url, _CALL_JS, _argument(url, call)))


def _argument(url: str, call: Call) -> dict[str, Any]:
    return {"api": call.api, "url": url, "method": call.method, "headers": dict(call.headers), "body": call.body,
            "credentials": call.credentials, "cache": call.cache, "mode": call.mode}


def _result(raw: dict[str, Any], console: list[str]) -> CallResult:
    return CallResult(raw["ok"], raw.get("status"), raw["readable"], raw.get("type"), raw.get("error"), console)
