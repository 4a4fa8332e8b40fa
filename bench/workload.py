"""What the benchmarks send and serve: generated rule files, a fast backend, keep-alive clients.

Everything here is shared by ``run.py`` (through a real mitmdump) and ``inprocess.py``
(the addon's hooks called directly), so both measure the same requests against the same
rules.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mitmcors.schema import MAX_RULES

ORIGIN = "http://127.0.0.1:3000"
"""The page's origin: another port than the backend's, so every request with it is cross-origin."""
CROSS_ORIGIN = (("Origin", ORIGIN), ("Sec-Fetch-Mode", "cors"))
PREFLIGHT = (*CROSS_ORIGIN, ("Access-Control-Request-Method", "PUT"), ("Access-Control-Request-Headers", "content-type"))
BACKEND_HEADERS = (("Content-Type", "text/plain"), ("X-Total", "42"))
BACKEND_BODY = b"ok"
FIXED_HEADERS = (("Access-Control-Allow-Origin", ORIGIN), ("Access-Control-Allow-Credentials", "true"))
"""The fixed-header job: what ``--modify-headers`` and a one-rule file both add to every response."""
OPTIONS_ALLOW = "GET, PUT, OPTIONS"
"""The backend's own answer to OPTIONS, in its Allow header: how a preflight it answered shows."""
PATH = "/v1/items"
WILDCARD_RULES = 10
RULES_PER_FILE = MAX_RULES  # more rules take several files


# Rule files


def rule_texts(count: int, generation: int = 0, per_file: int = RULES_PER_FILE) -> list[str]:
    """``count`` rules, in files of at most ``per_file``: most for other hosts (as in a
    shared lab file), then a few with wildcard hosts that every flow must try, then the
    one that matches the backend, last of all. ``generation`` only changes that last rule
    (it exposes ``x-gen-N``), so that a client sees when a rewritten file is active."""
    wildcards = min(WILDCARD_RULES, count - 1)
    lines = [f"  - {{name: api {index}, match: {{host: api{index}.test, path: '/v{index % 5}/*'}}, allow: {{}}}}"
             for index in range(count - wildcards - 1)]
    lines += [f"  - {{name: wildcard {index}, match: {{host: '*.svc{index}.test'}}, strip: all}}"
              for index in range(wildcards)]
    exposed = f"expose: [x-gen-{generation}]" if generation else ""
    lines.append(f"  - {{name: the lab backend, match: {{host: 127.0.0.1}}, allow: {{{exposed}}}}}")
    return ["\n".join(["rules:", *lines[start:start + per_file]]) + "\n" for start in range(0, count, per_file)]


def rule_files(count: int, folder: Path, per_file: int = RULES_PER_FILE) -> list[Path]:
    """``rule_texts`` written to files in ``folder``."""
    paths = []
    for number, text in enumerate(rule_texts(count, per_file=per_file)):
        path = folder / f"rules-{count}-{number}.yaml"
        path.write_text(text)
        paths.append(path)
    return paths


def fixed_headers_rule(folder: Path) -> Path:
    """One rule doing what ``modify_headers_args`` does."""
    headers = ", ".join(f"{name}: '{value}'" for name, value in FIXED_HEADERS)
    path = folder / "fixed-headers.yaml"
    path.write_text(f"rules:\n  - {{name: fixed headers, match: {{host: 127.0.0.1}}, set: {{{headers}}}}}\n")
    return path


def modify_headers_args() -> list[str]:
    """mitmproxy's own way of setting fixed response headers: ``~s`` puts them on the
    response; ``|`` separates, since the origin has slashes and colons."""
    return [arg for name, value in FIXED_HEADERS for arg in ("--modify-headers", f"|~s|{name}|{value}")]


# Requests


@dataclass(frozen=True)
class Request:
    wire: bytes
    preflight: bool


def requests(kind: str, backend_port: int, proxy_port: int, reverse: bool) -> list[Request]:
    """What each client connection sends, in turn: ``cors`` cross-origin GETs, ``plain``
    GETs without Origin, or ``preflight`` pairs of a preflight and the PUT it announces.
    A reverse proxy gets origin-form requests addressed to itself."""
    host = f"127.0.0.1:{proxy_port if reverse else backend_port}"
    target = PATH if reverse else f"http://{host}{PATH}"

    def request(method: str, headers: Sequence[tuple[str, str]], preflight: bool = False) -> Request:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", *(f"{name}: {value}" for name, value in headers)]
        return Request(("\r\n".join(lines) + "\r\n\r\n").encode(), preflight)

    if kind == "cors":
        return [request("GET", CROSS_ORIGIN)]
    if kind == "plain":
        return [request("GET", ())]
    if kind == "preflight":
        return [request("OPTIONS", PREFLIGHT, preflight=True), request("PUT", [*CROSS_ORIGIN, ("Content-Length", "0")])]
    raise ValueError(f"unknown request kind {kind!r}")


# The backend


class Backend:
    """A keep-alive HTTP/1.1 backend on loopback: 200 with a small body to every method
    but OPTIONS, which gets 204 and ``Allow`` (as a backend with its own OPTIONS handler would)."""

    def __init__(self) -> None:
        self._server: asyncio.AbstractServer | None = None
        self._connections: dict[asyncio.StreamWriter, asyncio.Task[None]] = {}
        head = "".join(f"{name}: {value}\r\n" for name, value in BACKEND_HEADERS)
        self._ok = f"HTTP/1.1 200 OK\r\n{head}Content-Length: {len(BACKEND_BODY)}\r\n\r\n".encode() + BACKEND_BODY
        self._options = f"HTTP/1.1 204 No Content\r\nAllow: {OPTIONS_ALLOW}\r\n\r\n".encode()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", 0)

    async def close(self) -> None:
        """Stop listening, and end the connections still open (as a proxy left them)."""
        if self._server is not None:
            self._server.close()
        for writer in self._connections:
            writer.close()
        await asyncio.gather(*self._connections.values())

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[writer] = task
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                writer.write(self._options if head.startswith(b"OPTIONS ") else self._ok)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            del self._connections[writer]


# Clients


@dataclass
class Sample:
    """What keep-alive clients got through a proxy in one measurement."""

    responses: int = 0
    preflights: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # the proxy's, while counted
    heads: dict[bool, bytes] = field(default_factory=dict)  # the first response head, per preflight or not

    @property
    def rate(self) -> float:
        return self.responses / self.seconds if self.seconds else 0.0

    @property
    def preflight_rate(self) -> float:
        return self.preflights / self.seconds if self.seconds else 0.0

    @property
    def cpu_per_response(self) -> float:
        return self.cpu_seconds / self.responses if self.responses else 0.0


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: Request) -> bytes:
    """Send one request and read its whole response; the head, lowercased."""
    writer.write(request.wire)
    head = (await reader.readuntil(b"\r\n\r\n")).lower()
    _, found, rest = head.partition(b"\r\ncontent-length:")
    if found:
        await reader.readexactly(int(rest[:rest.index(b"\r\n")]))
    return head


async def drive(
    port: int, sent: Sequence[Request], connections: int, *, warm_up: float = 0.0, seconds: float = 0.0, count: int = 0,
    cpu: Callable[[], float] = lambda: 0.0,
) -> Sample:
    """``connections`` keep-alive clients send requests back to back: for ``seconds``
    after ``warm_up`` seconds not counted, or until ``count`` responses in all.
    ``cpu`` reads the proxy's CPU time, to tell what it spent while counted."""
    sample = Sample()
    started = time.monotonic()
    counted_from = started + warm_up
    deadline = counted_from + seconds
    cpu_from: list[float] = [cpu()] if count else []  # read at the first counted response

    def more() -> bool:
        return sample.responses < count if count else time.monotonic() < deadline

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            index = 0
            while more():
                request = sent[index % len(sent)]
                index += 1
                head = await exchange(reader, writer, request)
                if count or time.monotonic() >= counted_from:
                    if not cpu_from:
                        cpu_from.append(cpu())
                    sample.responses += 1
                    sample.preflights += request.preflight
                    sample.heads.setdefault(request.preflight, head)
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    sample.seconds = time.monotonic() - (started if count else counted_from)
    sample.cpu_seconds = cpu() - cpu_from[0] if cpu_from else 0.0
    return sample


class SteadyClient:
    """One keep-alive client sending requests back to back, noting when each response
    arrived and which rule generation (``x-gen-N``) it shows."""

    def __init__(self, port: int, request: Request) -> None:
        self.port = port
        self.request = request
        self.arrivals: list[tuple[float, int]] = []
        self._stop = False

    async def run(self) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            while not self._stop:
                head = await exchange(reader, writer, self.request)
                _, found, rest = head.partition(b"x-gen-")
                generation = int(rest[:len(rest) - len(rest.lstrip(b"0123456789"))]) if found else 0
                self.arrivals.append((time.monotonic(), generation))
        finally:
            writer.close()

    def stop(self) -> None:
        self._stop = True

    def longest_gap(self, start: float, end: float) -> float:
        """The longest time between two consecutive responses in [start, end], in seconds."""
        times = [at for at, _ in self.arrivals if start <= at <= end]
        return max((b - a for a, b in zip(times, times[1:])), default=0.0)

    async def wait_for(self, generation: int, timeout: float) -> float | None:
        """When the first response of ``generation`` arrived, or None after ``timeout``."""
        deadline = time.monotonic() + timeout
        checked = 0
        while time.monotonic() < deadline:
            arrivals = self.arrivals
            for at, seen in itertools.islice(arrivals, checked, None):
                if seen == generation:
                    return at
            checked = len(arrivals)
            await asyncio.sleep(0.01)
        return None
