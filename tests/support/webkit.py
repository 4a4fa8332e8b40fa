"""Drive WebKitGTK's MiniBrowser under Xvfb, from inside the page.

WebKit prints console messages only outside automation mode (WebKitWebDriver's pages print
none), so MiniBrowser runs as a user would run it, writing its console to stderr, and a
script in the page drives it: it takes one fetch job at a time from a mailbox server, loads
the job's page with itself in it, brackets the fetch with console.log markers (WebKit's CORS
line does not name the URL) and posts the result back. The mailbox listens on another
loopback address that MiniBrowser reaches without the proxy, so the proxy sees only the test's
traffic. MiniBrowser's proxy is fixed at start: a session for another proxy restarts it.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from typing import Any
from urllib.parse import urlencode

from support.drivers import FETCH_JS, FetchResult, OutputLines, fetch_argument, stop, unavailable

MINIBROWSER_GLOB = "/usr/lib/*/webkit2gtk-4.*/MiniBrowser"
MAILBOX_HOST = "127.0.0.2"
"""Loopback, but not the 127.0.0.1 of the test's servers: MiniBrowser's proxy ignores it."""
LONG_POLL = 10.0
HELPERS_EXIT_TIMEOUT = 5.0  # seconds MiniBrowser's web and network processes get to follow it out
JOB_TIMEOUT = 30.0
"""Seconds for one job: MiniBrowser's start-up, the page's load and the fetch."""
BEGIN, END = "mitmcors-begin", "mitmcors-end"
# "[URL:LINE:COLUMN: ]CONSOLE [SOURCE ]LEVEL TEXT", as WebKit's ConsoleClient prints it.
CONSOLE_LINE = re.compile(r"CONSOLE (?:[A-Z-]+ )?(?:LOG|DEBUG|INFO|WARN|ERROR) (.*)")

DRIVER_JS = """
// Runs the mailbox's jobs (a function and its argument), each in a page loaded for it; see tests/support/webkit.py.
(async () => {
  const mailbox = %(mailbox)s;
  const own = new URLSearchParams(location.search).get("job");
  for (;;) {
    const job = await (await fetch(mailbox + "/next", {cache: "no-store"})).json();
    if (job === null) continue;
    if (String(job.id) !== own) { location.replace(job.page); return; }
    for (const [name, value] of job.cookies) document.cookie = `${name}=${value}; path=/`;
    console.log(`%(begin)s ${job.id}`);
    const result = await (0, eval)(`(${job.function})`)(job.argument);
    console.log(`%(end)s ${job.id}`);
    for (const [name] of job.cookies) document.cookie = `${name}=; path=/; max-age=0`;
    await fetch(mailbox + "/result", {method: "POST", body: JSON.stringify({id: job.id, result})});
  }
})();
"""


class Mailbox:
    """One pending job at a time, handed to whichever page asks, until its result comes back."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._job: dict[str, Any] | None = None
        self._results: dict[int, dict[str, Any]] = {}

    def run(self, job: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        """Post the job and wait for its result (None after timeout)."""
        with self._changed:
            self._job = job
            self._changed.notify_all()
            self._changed.wait_for(lambda: job["id"] in self._results, timeout)
            self._job = None
            return self._results.pop(job["id"], None)

    def next_job(self, timeout: float) -> dict[str, Any] | None:
        with self._changed:
            self._changed.wait_for(lambda: self._job is not None, timeout)
            return self._job

    def answer(self, job_id: int, result: dict[str, Any]) -> None:
        with self._changed:
            self._results[job_id] = result
            if self._job is not None and self._job["id"] == job_id:
                self._job = None  # at once: the page that answered asks for the next job next
            self._changed.notify_all()


class _MailboxHandler(BaseHTTPRequestHandler):
    server: _MailboxServer

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the jobs' results say what happened."""

    def do_GET(self) -> None:
        if self.path == "/next":
            self._reply("application/json", json.dumps(self.server.mailbox.next_job(LONG_POLL)))
        elif self.path == "/driver.js":
            self._reply("text/javascript", self.server.driver_js)
        elif self.path == "/":
            self._reply("text/html", '<!doctype html><script src="/driver.js"></script>')
        else:
            self.send_error(HTTPStatus.NOT_FOUND)

    def do_POST(self) -> None:
        posted = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.mailbox.answer(posted["id"], posted["result"])
        self._reply("text/plain", "")

    def _reply(self, content_type: str, body: str) -> None:
        data = body.encode()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Access-Control-Allow-Origin", "*")  # the pages are on other origins
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)


class _MailboxServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__((MAILBOX_HOST, 0), _MailboxHandler)
        self.mailbox = Mailbox()
        self.url = f"http://{MAILBOX_HOST}:{self.server_address[1]}"
        self.driver_js = DRIVER_JS % {"mailbox": json.dumps(self.url), "begin": BEGIN, "end": END}


def find_minibrowser() -> str:
    """Path of MiniBrowser (it comes with libwebkit2gtk), or skip the test with how to get it."""
    found = sorted(glob.glob(MINIBROWSER_GLOB))
    if not found:
        unavailable(f"WebKitGTK's MiniBrowser not found at {MINIBROWSER_GLOB}: apt-get install webkit2gtk-driver")
    return found[-1]


@contextmanager
def xvfb() -> Iterator[str]:
    """A virtual X display for the session: MiniBrowser has no headless mode."""
    if shutil.which("Xvfb") is None:
        unavailable("Xvfb not found: apt-get install xvfb")
    read_end, write_end = os.pipe()
    # -noreset: by default Xvfb resets when its last client leaves, and a MiniBrowser
    # started for the next proxy then finds no display ("cannot open display").
    process = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-nolisten", "tcp", "-noreset"], pass_fds=(write_end,),
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_end)
    try:
        with os.fdopen(read_end) as display:  # Xvfb writes the display number it chose
            yield ":" + display.readline().strip()
    finally:
        stop(process)


@dataclass
class _MiniBrowser:
    """One MiniBrowser process, with a fresh profile, using one proxy."""

    proxy_port: int
    process: subprocess.Popen[str]
    stderr: OutputLines
    profile: tempfile.TemporaryDirectory[str]

    @classmethod
    def start(cls, display: str, proxy_port: int, start_url: str) -> _MiniBrowser:
        profile = tempfile.TemporaryDirectory(prefix="cors-webkit-")
        env = {**os.environ, "DISPLAY": display, "NO_AT_BRIDGE": "1",
               **{f"XDG_{kind}_HOME": os.path.join(profile.name, kind.lower()) for kind in ("DATA", "CACHE", "CONFIG")}}
        command = [find_minibrowser(), "--enable-write-console-messages-to-stdout=true",
                   f"--proxy=http://127.0.0.1:{proxy_port}", f"--ignore-host={MAILBOX_HOST}", start_url]
        process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True, errors="replace")
        assert process.stderr is not None
        return cls(proxy_port, process, OutputLines(process.stderr), profile)

    def stop(self) -> None:
        """MiniBrowser, then its web and network processes, which outlive it by a moment
        (some 25 ms) and may still write their caches into the profile: deleting it meanwhile
        failed with "Directory not empty"."""
        stop(self.process)
        _await_exit(self.profile.name)
        self.profile.cleanup()

    def console_between_markers(self, job_id: int) -> list[str]:
        """The console lines the job's fetch caused, once its end marker is out."""
        end = f"CONSOLE LOG {END} {job_id}"
        if self.stderr.wait_for(re.compile(re.escape(end) + "$"), JOB_TIMEOUT) is None:
            raise RuntimeError(f"no {end!r} from MiniBrowser:\n" + "\n".join(self.stderr.lines()))
        lines = self.stderr.lines()
        begin = next(i for i, line in enumerate(lines) if line.endswith(f"CONSOLE LOG {BEGIN} {job_id}"))
        finish = next(i for i, line in enumerate(lines) if line.endswith(end))
        return [match.group(1) for line in lines[begin + 1:finish] if (match := CONSOLE_LINE.search(line))]


def _await_exit(profile: str) -> None:
    """Until no process uses the profile, killing the ones that linger past HELPERS_EXIT_TIMEOUT."""
    for lingering in _users_after(profile, HELPERS_EXIT_TIMEOUT):
        with suppress(ProcessLookupError):
            os.kill(lingering, signal.SIGKILL)
    if left := _users_after(profile, HELPERS_EXIT_TIMEOUT):
        raise RuntimeError(f"processes {left} still use the WebKit profile {profile}")


def _users_after(profile: str, timeout: float) -> list[int]:
    """The processes still using the profile once none is, or once ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while (users := _users(profile)) and time.monotonic() < deadline:
        time.sleep(0.01)
    return users


def _users(profile: str) -> list[int]:
    """Live processes whose environment names the profile: MiniBrowser's helpers inherit its
    XDG paths (a process that has exited shows an empty environment)."""
    marker = profile.encode()
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with suppress(OSError):  # gone meanwhile, or not ours to read
                with open(f"/proc/{entry.name}/environ", "rb") as environment:
                    if marker in environment.read():
                        found.append(int(entry.name))
    return found


class WebKit:
    """MiniBrowser under one Xvfb, as a drivers.Engine; restarted when the proxy changes."""

    name = "webkit"

    def __init__(self, display: str, server: _MailboxServer) -> None:
        self._display = display
        self._server = server
        self._browser: _MiniBrowser | None = None
        self._job_ids = count(1)

    @classmethod
    @contextmanager
    def launched(cls) -> Iterator[WebKit]:
        find_minibrowser()
        with ExitStack() as stack:
            display = stack.enter_context(xvfb())
            server = stack.enter_context(_MailboxServer())
            threading.Thread(target=server.serve_forever, name="webkit-mailbox", daemon=True).start()
            stack.callback(server.shutdown)
            webkit = cls(display, server)
            stack.callback(webkit._stop_browser)
            yield webkit

    @contextmanager
    def session(self, proxy_port: int) -> Iterator[WebKitSession]:
        """MiniBrowser's proxy is set at start: another proxy means a new MiniBrowser with a fresh
        profile. Sessions on one proxy share its caches (tests use fresh URLs), not cookies."""
        if self._browser is None or self._browser.proxy_port != proxy_port:
            self._stop_browser()
            self._browser = _MiniBrowser.start(self._display, proxy_port, self._server.url + "/")
        yield WebKitSession(self)

    def run(self, page_url: str, function: str, argument: dict[str, Any], cookies: list[tuple[str, str]]
            ) -> tuple[dict[str, Any], list[str]]:
        """Have the page at page_url run one function on argument, with these cookies set
        for it; what it returned and what the console said meanwhile."""
        assert self._browser is not None, "run() belongs to a session"
        job_id = next(self._job_ids)
        page = f"{page_url}?{urlencode({'script': self._server.url + '/driver.js', 'job': job_id})}"
        job = {"id": job_id, "page": page, "function": function, "argument": argument, "cookies": cookies}
        raw = self._server.mailbox.run(job, JOB_TIMEOUT)
        if raw is None:
            raise RuntimeError(f"MiniBrowser ran no job {job_id} in {JOB_TIMEOUT}s:\n" + "\n".join(self._browser.stderr.lines()))
        return raw, self._browser.console_between_markers(job_id)

    def _stop_browser(self) -> None:
        if self._browser is not None:
            self._browser.stop()
            self._browser = None


@dataclass
class WebKitSession:
    """Cookies go with each job: the page sets them before its fetch and removes them after,
    so sessions that share a MiniBrowser share no cookies."""

    webkit: WebKit
    cookies: list[tuple[str, str]] = field(default_factory=list)

    def add_cookie(self, url: str, name: str, value: str) -> None:
        """Set by the page itself, for its own host: the tests' page and API share 127.0.0.1."""
        self.cookies.append((name, value))

    def fetch(self, page_url: str, url: str, **request: Any) -> FetchResult:
        return FetchResult.from_page(*self.evaluate(page_url, FETCH_JS, fetch_argument(url, **request)))

    def evaluate(self, page_url: str, function: str, argument: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        return self.webkit.run(page_url, function, argument, self.cookies)
