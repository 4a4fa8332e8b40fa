"""Real loopback servers and a real mitmdump process for end-to-end tests.

Everything binds to 127.0.0.1 on a free port, so tests never touch the network
and can run in parallel with other services on the machine. The servers are the
package's (``mitmcors.labservers``, which the demo lab runs too), with behaviours
only the tests need added here.
"""

from __future__ import annotations

import html
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import IO
from urllib.parse import parse_qs, urlsplit

from mitmcors import labservers
from mitmcors.labservers import GOOD_CORS, PLAIN  # noqa: F401  (tests import them from here)
from mitmcors.labservers import BackgroundServer, BaseHandler, RecordedRequest, RecordingHTTPServer
from support.tls import server_context

REPO_ROOT = Path(__file__).resolve().parents[2]
ADDON_PATH = REPO_ROOT / "cors_addon.py"
STARTUP_TIMEOUT = 15.0
STARTUP_ERROR = "logged during startup"
"""mitmproxy prints "Error(s) logged during startup, exiting..." before exiting 1."""
STARTUP_SETTLE = 0.5
"""Seconds to watch a freshly listening mitmdump for that late startup failure."""

# Path prefixes of the API server beyond the package's PLAIN and GOOD_CORS; each selects one
# backend behaviour.
OPTIONS_405 = "/options405/"
"""Like PLAIN, but OPTIONS answers 405 Method Not Allowed."""
OPTIONS_405_LARGE = "/options405large/"
"""Like OPTIONS_405, but with a 10 KB body (Content-Length), larger than a small
``stream_large_bodies``."""
OPTIONS_405_CHUNKED = "/options405chunked/"
"""Like OPTIONS_405_LARGE, but the body comes chunked, so its size is unknown at first."""
LARGE_BODY = b"<p>method not allowed</p>" * 410
WRONG_CORS = "/wrongcors/"
"""Every method, OPTIONS included, answers 200 with wrong CORS headers of its own."""
PAGE = "/page/"
"""The test page, served by the API itself: a page in front of which a reverse proxy puts
both the page and the API on one origin."""

WRONG_CORS_HEADERS = (
    ("Access-Control-Allow-Origin", "http://wrong.example"),
    ("Access-Control-Allow-Origin", "http://wrong.example"),
    ("Access-Control-Allow-Methods", "GET"),
)

PAGE_HTML = b"""<!doctype html>
<html><head><meta charset="utf-8">
<link rel="icon" href="data:,">
<title>cors test page</title></head>
<body>cors test page</body></html>
"""


def free_port() -> int:
    """Ask the kernel for a port that is free right now on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _ApiHandler(labservers.ApiHandler):
    """The package's API with the tests' extra behaviours: OPTIONS answering 405 (with a
    large or chunked body), wrong CORS headers, and the page served by the API itself."""

    def answer(self, request: RecordedRequest, path: str) -> None:
        if path.startswith(WRONG_CORS):
            self._reply_json(request, WRONG_CORS_HEADERS)
        elif path.startswith((OPTIONS_405, OPTIONS_405_LARGE, OPTIONS_405_CHUNKED)):
            self.answer_without_cors(request)
        elif path.startswith(PAGE):
            self._reply(HTTPStatus.OK, PAGE_HTML, "text/html; charset=utf-8")
        else:
            super().answer(request, path)

    def answer_preflight(self, request: RecordedRequest, path: str) -> None:
        if path.startswith(WRONG_CORS):
            self._reply(HTTPStatus.OK, b"", "text/plain", WRONG_CORS_HEADERS)
        elif path.startswith(OPTIONS_405_LARGE):
            self._reply(HTTPStatus.METHOD_NOT_ALLOWED, LARGE_BODY, "text/html")
        elif path.startswith(OPTIONS_405_CHUNKED):
            self._reply_chunked(HTTPStatus.METHOD_NOT_ALLOWED, LARGE_BODY, "text/html")
        elif path.startswith(OPTIONS_405):
            self.send_error(HTTPStatus.METHOD_NOT_ALLOWED)
        else:
            super().answer_preflight(request, path)

    def _reply_chunked(self, status: int, body: bytes, content_type: str, chunk_size: int = 1024) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for start in range(0, len(body), chunk_size):
            chunk = body[start:start + chunk_size]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


def page_html(query: str) -> bytes:
    """The test page; ``?script=URL`` adds that script, for a browser that has no automation
    protocol and is driven from inside the page (WebKit's MiniBrowser)."""
    scripts = parse_qs(query).get("script", [])
    tags = "".join(f'<script src="{html.escape(src)}"></script>' for src in scripts)
    return PAGE_HTML.replace(b"</body>", tags.encode() + b"</body>")


class ApiServer(labservers.ApiServer):
    """Backend API; see PLAIN, GOOD_CORS, OPTIONS_405 and WRONG_CORS for its behaviours."""

    handler = _ApiHandler


class _OverTls(BackgroundServer):
    """A server of this module over TLS, with a self-signed certificate."""

    def __init__(self) -> None:
        super().__init__()
        self._server.socket = server_context().wrap_socket(self._server.socket, server_side=True)

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


class HttpsApiServer(_OverTls, ApiServer):
    """The API over HTTPS."""


class PageServer(labservers.PageServer):
    """Serves the test page at `/`; its origin is `base_url`."""

    def __init__(self) -> None:
        super().__init__(page_html)


class HttpsPageServer(_OverTls, PageServer):
    """The page over HTTPS: a page and an API on two HTTPS ports are one site, two origins."""


def find_mitmdump() -> Path:
    """mitmdump from this interpreter's venv first, so versions match the tests."""
    candidate = Path(sys.executable).parent / "mitmdump"
    if candidate.is_file():
        return candidate
    found = shutil.which("mitmdump")
    if found is None:
        raise FileNotFoundError(
            f"mitmdump not found next to {sys.executable} or on PATH: pip install mitmproxy"
        )
    return Path(found)


def mitmdump_command(
    rule_files: Sequence[Path],
    port: int,
    extra_args: Sequence[str] = (),
    with_addon: bool = True,
) -> list[str]:
    """Command line for mitmdump (with the addon unless told), on loopback only."""
    command = [str(find_mitmdump())]
    if with_addon:
        command += ["-s", str(ADDON_PATH)]
    command += [
        "--listen-host", "127.0.0.1",
        "-p", str(port),
        "--set", "connection_strategy=lazy",
    ]
    for rule_file in rule_files:
        command += ["--set", f"cors_rules={rule_file}"]
    return command + list(extra_args)


class MitmdumpProcess:
    """A mitmdump subprocess whose combined stdout+stderr is captured live."""

    def __init__(self, command: list[str], port: int, cwd: Path = REPO_ROOT) -> None:
        self.command = command
        self.port = port
        self._lock = threading.Lock()
        self._chunks: list[str] = []
        self._popen = subprocess.Popen(
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self._popen.stdout is not None
        self._reader = threading.Thread(
            target=self._pump, args=(self._popen.stdout,), daemon=True
        )
        self._reader.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            with self._lock:
                self._chunks.append(line)

    @property
    def returncode(self) -> int | None:
        return self._popen.poll()

    @property
    def pid(self) -> int:
        return self._popen.pid

    def output(self) -> str:
        """Everything mitmdump printed so far (stdout and stderr interleaved)."""
        with self._lock:
            return "".join(self._chunks)

    def wait_until_listening(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Block until the proxy port accepts connections and startup has settled.

        mitmproxy opens its port before its last startup error check (script
        errors surface there), so a listening port alone is not success.
        """
        deadline = time.monotonic() + timeout
        while not self._accepts_connections():
            self._fail_if_startup_failed()
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"mitmdump did not listen on port {self.port} within {timeout}s.\n"
                    f"command: {self.command}\noutput:\n{self.output()}"
                )
            time.sleep(0.05)
        time.sleep(STARTUP_SETTLE)
        self._fail_if_startup_failed()

    def _accepts_connections(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
        except OSError:
            return False
        return True

    def _fail_if_startup_failed(self) -> None:
        if STARTUP_ERROR in self.output() and self.returncode is None:
            with suppress(subprocess.TimeoutExpired):
                self._popen.wait(timeout=5)
        if self.returncode is not None or STARTUP_ERROR in self.output():
            self._reader.join(timeout=2)
            raise RuntimeError(
                f"mitmdump failed to start (exit status {self.returncode}).\n"
                f"command: {self.command}\noutput:\n{self.output()}"
            )

    def wait_for_exit(self, timeout: float) -> int:
        """Wait for the process to end by itself; fail with the output if it does not."""
        try:
            returncode = self._popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"mitmdump was expected to exit but still runs after {timeout}s.\n"
                f"command: {self.command}\noutput:\n{self.output()}"
            ) from None
        self._reader.join(timeout=2)
        return returncode

    def stop(self) -> None:
        """Terminate (then kill if needed) and collect the remaining output."""
        if self._popen.poll() is None:
            self._popen.terminate()
            try:
                self._popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._popen.kill()
                self._popen.wait()
        self._reader.join(timeout=2)
        if self._popen.stdout is not None:
            self._popen.stdout.close()


@contextmanager
def running_mitmdump(
    rule_files: Sequence[Path],
    extra_args: Sequence[str] = (),
    *,
    timeout: float = STARTUP_TIMEOUT,
    with_addon: bool = True,
) -> Iterator[MitmdumpProcess]:
    """Run mitmdump with the addon and rule files for the duration of the block;
    ``with_addon=False`` runs bare mitmdump, to compare against."""
    port = free_port()
    proxy = MitmdumpProcess(mitmdump_command(rule_files, port, extra_args, with_addon), port)
    try:
        proxy.wait_until_listening(timeout)
        yield proxy
    finally:
        proxy.stop()
        # Captured by pytest and shown only when the test fails.
        print(f"--- mitmdump on port {port} printed ---\n{proxy.output()}")


def run_mitmdump_expecting_failure(
    rule_files: Sequence[Path],
    timeout: float = STARTUP_TIMEOUT,
    extra_args: Sequence[str] = (),
) -> tuple[int, str]:
    """Start mitmdump with rule files that should make it refuse to start.

    Returns (returncode, output). If it keeps running past `timeout` the helper
    fails with its output, since a bad rule file must stop startup.
    """
    port = free_port()
    proxy = MitmdumpProcess(mitmdump_command(rule_files, port, extra_args), port)
    try:
        returncode = proxy.wait_for_exit(timeout)
    finally:
        proxy.stop()
    return returncode, proxy.output()


@dataclass(frozen=True)
class Behaviour:
    """How the scripted backend answers one case: its preflight, and the request itself."""

    preflight_status: int
    preflight_headers: tuple[tuple[str, str], ...]
    status: int
    headers: tuple[tuple[str, str], ...]


class _ScriptedHandler(BaseHandler):
    """Answers /CASE/... by the behaviour registered for CASE, and ``/`` with the test
    page (so a scripted server can also be the page's origin); 404 for unknown cases."""

    server: _ScriptedHTTPServer

    def _handle(self) -> None:
        request = self._record()
        path = urlsplit(request.path).path
        behaviour = self.server.behaviours.get(path.split("/")[1])
        if path == "/" and request.method == "GET":
            self._reply(HTTPStatus.OK, page_html(urlsplit(request.path).query), "text/html; charset=utf-8")
        elif behaviour is None:
            self.send_error(HTTPStatus.NOT_FOUND)
        elif request.method == "OPTIONS":
            self._reply(behaviour.preflight_status, b"", "text/plain", behaviour.preflight_headers)
        else:
            self._reply(behaviour.status, b"scripted", "text/plain", (("X-Total", "42"), *behaviour.headers))

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = _handle


class _ScriptedHTTPServer(RecordingHTTPServer):
    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int = 0) -> None:
        super().__init__(handler, port)
        self.behaviours: dict[str, Behaviour] = {}


class ScriptedServer(BackgroundServer):
    """A backend whose CORS behaviour each test case scripts: ``script(case, behaviour)``."""

    handler = _ScriptedHandler
    server_class = _ScriptedHTTPServer
    _server: _ScriptedHTTPServer

    def script(self, case: str, behaviour: Behaviour) -> None:
        self._server.behaviours[case] = behaviour
