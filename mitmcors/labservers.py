"""Loopback HTTP servers for the demo lab and the tests: a page origin and an API.

A CORS failure needs two origins, a page and an API on another port, and an API whose CORS
setup is known: PLAIN paths have none at all (no OPTIONS handler either), GOOD_CORS paths a
correct one. The demo lab (``mitmcors.lab``) runs these for testers, and the tests run the
same classes, with behaviours of their own added, so what a tester clicks is what the tests
check. Everything binds to 127.0.0.1 only. Standard library only.
"""

from __future__ import annotations

import collections

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TypeVar
from urllib.parse import urlsplit

LOOPBACK = "127.0.0.1"

# Path prefixes of the API server; each selects one backend behaviour.
PLAIN = "/plain/"
"""Every method but OPTIONS answers 200 JSON; OPTIONS gets 501 (no handler)."""
GOOD_CORS = "/goodcors/"
"""A backend with perfect CORS: it echoes the Origin, allows credentials, grants what a
preflight asks for (204) and exposes X-Total."""

CUSTOM_RESPONSE_HEADER = ("X-Total", "42")
"""Sent on every JSON answer: a page may read it only where Expose-Headers names it."""


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the backend received it, after the proxy."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """First value of a header, case-insensitively, or None."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


RECORDED = 10_000
"""Requests a server remembers, the latest: a lab left running for days stays small."""


class RecordingHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer on loopback that keeps a thread-safe log of requests, so a test
    can tell what reached the backend past the proxy."""

    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int = 0) -> None:
        super().__init__((LOOPBACK, port), handler)
        self._lock = threading.Lock()
        self._log: collections.deque[RecordedRequest] = collections.deque(maxlen=RECORDED)

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._log.append(request)

    def snapshot(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._log)


class BaseHandler(BaseHTTPRequestHandler):
    """Shared plumbing: HTTP/1.1 keep-alive, request recording, quiet logs."""

    protocol_version = "HTTP/1.1"
    server: RecordingHTTPServer

    def log_message(self, format: str, *args: object) -> None:
        """Silence per-request stderr lines; the proxy's log is the one worth reading."""

    def _record(self) -> RecordedRequest:
        length = self.headers.get("Content-Length", "0")
        body = self.rfile.read(int(length)) if length.isdigit() and int(length) > 0 else b""
        request = RecordedRequest(
            method=self.command,
            path=self.path,
            headers=tuple(self.headers.items()),
            body=body,
        )
        self.server.record(request)
        return request

    def _reply(
        self,
        status: int,
        body: bytes,
        content_type: str,
        extra_headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra_headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class ApiHTTPServer(RecordingHTTPServer):
    """The API server's state: the one path prefix it serves, if it is held to one."""

    only: str | None = None


class ApiHandler(BaseHandler):
    """API backend whose behaviour is chosen by the path prefix (PLAIN, GOOD_CORS); a
    subclass adds behaviours by overriding ``answer`` and ``answer_preflight``."""

    server: ApiHTTPServer

    def _dispatch(self, answer: Callable[[RecordedRequest, str], None]) -> None:
        """Record the request, then answer it, or 404 where the server is held to another prefix."""
        request = self._record()
        path = urlsplit(request.path).path
        if self.server.only is None or path.startswith(self.server.only):
            answer(request, path)
        else:
            self.send_error(HTTPStatus.NOT_FOUND)

    def _handle(self) -> None:
        self._dispatch(self.answer)

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _handle

    def do_OPTIONS(self) -> None:
        self._dispatch(self.answer_preflight)

    def answer(self, request: RecordedRequest, path: str) -> None:
        """Every method but OPTIONS."""
        if path.startswith(GOOD_CORS):
            self._reply_json(request, [CUSTOM_RESPONSE_HEADER, *good_cors_headers(request),
                                       ("Access-Control-Expose-Headers", CUSTOM_RESPONSE_HEADER[0])])
        elif path.startswith(PLAIN):
            self.answer_without_cors(request)
        else:
            self.send_error(HTTPStatus.NOT_FOUND)

    def answer_preflight(self, request: RecordedRequest, path: str) -> None:
        """OPTIONS: GOOD_CORS grants what the preflight asks for; everything else behaves as
        if no handler existed."""
        if path.startswith(GOOD_CORS):
            granted = [
                ("Access-Control-Allow-Methods", request.header("Access-Control-Request-Method") or "GET"),
                ("Access-Control-Allow-Headers", request.header("Access-Control-Request-Headers") or ""),
            ]
            self._reply(HTTPStatus.NO_CONTENT, b"", "text/plain", [*good_cors_headers(request), *granted])
        else:
            # Exactly what BaseHTTPRequestHandler sends for a method it has no
            # do_* for; do_OPTIONS exists only to record the request first.
            self.send_error(HTTPStatus.NOT_IMPLEMENTED, f"Unsupported method ({self.command!r})")

    def answer_without_cors(self, request: RecordedRequest) -> None:
        self._reply_json(request, [CUSTOM_RESPONSE_HEADER])

    def _reply_json(self, request: RecordedRequest, extra_headers: Sequence[tuple[str, str]]) -> None:
        """Echo what arrived, so the page (or a test) sees what the proxy let through."""
        payload = {
            "method": request.method,
            "path": request.path,
            "cookie": request.header("Cookie"),
            "authorization": request.header("Authorization"),
            "x_test": request.header("X-Test"),
            "body": request.body.decode("utf-8", "replace"),
        }
        self._reply(HTTPStatus.OK, json.dumps(payload).encode(), "application/json", extra_headers)


def good_cors_headers(request: RecordedRequest) -> list[tuple[str, str]]:
    """What a correctly configured backend sends: the request's own origin, credentials."""
    origin = request.header("Origin")
    if origin is None:
        return []
    return [("Access-Control-Allow-Origin", origin), ("Access-Control-Allow-Credentials", "true"), ("Vary", "Origin")]


class PageHTTPServer(RecordingHTTPServer):
    """The page server's state: how to render the page for a query, and extra headers."""

    render: Callable[[str], bytes]
    page_headers: Sequence[tuple[str, str]] = ()


class PageHandler(BaseHandler):
    """Serves the HTML page whose origin makes the API calls cross-origin."""

    server: PageHTTPServer

    def do_GET(self) -> None:
        self._record()
        url = urlsplit(self.path)
        if url.path == "/":
            self._reply(HTTPStatus.OK, self.server.render(url.query), "text/html; charset=utf-8",
                        self.server.page_headers)
        else:
            self.send_error(HTTPStatus.NOT_FOUND)


_S = TypeVar("_S", bound="BackgroundServer")


class BackgroundServer:
    """A recording HTTP server on 127.0.0.1 running in a daemon thread; port 0 picks a free
    one. Binding happens at construction, so a busy port raises OSError there."""

    handler: type[BaseHTTPRequestHandler]
    server_class: type[RecordingHTTPServer] = RecordingHTTPServer

    def __init__(self, port: int = 0) -> None:
        self._server = self.server_class(self.handler, port)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            name=f"{type(self).__name__}:{self.port}",
            daemon=True,
        )

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def requests(self) -> list[RecordedRequest]:
        """Snapshot of every request received so far, in arrival order."""
        return self._server.snapshot()

    def requests_to(self, path_prefix: str) -> list[RecordedRequest]:
        """Requests whose path (query included) starts with the prefix."""
        return [r for r in self.requests if r.path.startswith(path_prefix)]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and free the port; also for a server never started."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self: _S) -> _S:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class ApiServer(BackgroundServer):
    """Backend API; see PLAIN and GOOD_CORS for its behaviours. ``only`` holds it to one
    prefix, so that the demo lab's API without CORS has none on any path."""

    handler = ApiHandler
    server_class = ApiHTTPServer
    _server: ApiHTTPServer

    def __init__(self, port: int = 0, only: str | None = None) -> None:
        super().__init__(port)
        self._server.only = only


class PageServer(BackgroundServer):
    """Serves ``render(query)`` at `/`, with ``headers`` (a Set-Cookie, say); its origin is
    `base_url`."""

    handler = PageHandler
    server_class = PageHTTPServer
    _server: PageHTTPServer

    def __init__(self, render: Callable[[str], bytes], port: int = 0,
                 headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(port)
        self._server.render = render
        self._server.page_headers = headers
