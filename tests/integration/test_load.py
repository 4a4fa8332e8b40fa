"""Under load: 22,000 requests (a third of them preflights) through a real mitmdump with
300 rules and the report on, while the rule file is rewritten six times. No request may
fail, every response must carry exactly the headers its rule (of the generation then
active) promises, and mitmdump's memory must not grow once warmed up.

About a minute on two cores; ``-s`` prints the measurements.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from support.servers import free_port, running_mitmdump

pytestmark = pytest.mark.integration

RULE_COUNT = 300
WARM_UP = 2_000
MEASURED = 20_000
RELOAD_EVERY = 3_000  # measured requests between two rewrites of the rule file
CLIENTS = 6
DEADLINE = 240.0  # seconds: a proxy that stalls fails the test instead of hanging it
RSS_GROWTH = 0.10

ORIGIN = "http://127.0.0.1:3000"
PREFLIGHT = {"Origin": ORIGIN, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "content-type,x-test"}
PREFLIGHT_VARY = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
CHECKED = ("vary", "x-rule", "x-generation")  # and every access-control-* header
OK_BODY = b'{"ok": true}'
NOT_ALLOWED = b"method not allowed"


def rules_text(generation: int) -> str:
    """Three kinds of rule in turn, each naming the generation where a response shows it."""
    lines = ["rules:"]
    for index in range(RULE_COUNT):
        action = [
            f"allow: {{max_age: {generation}}}",
            f"allow: {{preflight: forward, max_age: {generation}}}",
            f"strip: all, set: {{X-Rule: 'r{index}', X-Generation: 'g{generation}'}}",
        ][index % 3]
        lines.append(f"  - {{name: rule {index}, match: {{path: '/r{index}/*'}}, {action}}}")
    return "\n".join(lines) + "\n"


def expected(index: int, preflight: bool, generation: int) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, the checked header lines (sorted) and body the rule promises."""
    kind = index % 3
    if kind == 2:
        lines = [("x-generation", f"g{generation}"), ("x-rule", f"r{index}")]
        return (405, lines, NOT_ALLOWED) if preflight else (200, lines, OK_BODY)
    granted = [("access-control-allow-origin", ORIGIN), ("access-control-allow-credentials", "true")]
    if preflight:
        granted += [("access-control-allow-methods", "PUT"), ("access-control-allow-headers", "content-type, x-test"),
                    ("access-control-max-age", str(generation)), ("vary", PREFLIGHT_VARY)]
        return 204, sorted(granted), b""
    granted += [("access-control-expose-headers", "content-type, x-total, content-length"), ("vary", "Origin")]
    return 200, sorted(granted), OK_BODY


def generation_shown(index: int, preflight: bool, headers: dict[str, str]) -> int | None:
    if index % 3 == 2:
        return int(headers["x-generation"][1:])
    return int(headers["access-control-max-age"]) if preflight else None


@contextmanager
def fast_backend() -> Iterator[int]:
    """A keep-alive backend on its own event loop: 405 to OPTIONS, a small JSON to the rest."""
    port = free_port()
    ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Total: 42\r\nContent-Length: %d\r\n\r\n%s" % (len(OK_BODY), OK_BODY)
    not_allowed = b"HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (len(NOT_ALLOWED), NOT_ALLOWED)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                writer.write(not_allowed if head.startswith(b"OPTIONS ") else ok)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    # All of it in a thread of its own: Playwright's session may own this thread's event loop.
    loop = asyncio.new_event_loop()
    listening = threading.Event()

    def serve() -> None:
        server = loop.run_until_complete(asyncio.start_server(answer, "127.0.0.1", port))
        listening.set()
        loop.run_forever()
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    listening.wait(timeout=5)
    try:
        yield port
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


@dataclass
class Run:
    """Shared between the client threads: the count handed out, the rule file's generation,
    and what went wrong."""

    rules: Path
    target: int
    sent: int = 0
    generation: int = 0
    seen: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    deadline: float = field(default_factory=lambda: time.monotonic() + DEADLINE)

    def next(self) -> int | None:
        """The number of the next request, or None when the run is over."""
        with self.lock:
            if self.sent >= self.target or self.failures or time.monotonic() > self.deadline:
                return None
            self.sent += 1
            if self.sent > WARM_UP and (self.sent - WARM_UP) % RELOAD_EVERY == 0:
                self.generation += 1
                fresh = self.rules.with_suffix(".new")
                fresh.write_text(rules_text(self.generation))
                os.replace(fresh, self.rules)  # whole, as an editor saves: never a half-written file
            return self.sent

    def fail(self, text: str) -> None:
        with self.lock:
            self.failures.append(text)


def client(run: Run, proxy_port: int, backend_port: int, seed: int) -> None:
    """Requests on one keep-alive connection; the rules a connection sees only ever get newer."""
    rng = random.Random(seed)
    connection = http.client.HTTPConnection("127.0.0.1", proxy_port, timeout=30)
    newest = 0
    try:
        while (number := run.next()) is not None:
            index, preflight = rng.randrange(RULE_COUNT), number % 3 == 0
            url = f"http://127.0.0.1:{backend_port}/r{index}/{number}"
            written = run.generation
            try:
                connection.request("OPTIONS" if preflight else "GET", url, headers=PREFLIGHT if preflight else {"Origin": ORIGIN})
                response = connection.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as e:
                run.fail(f"{url}: {e!r}")
                return
            lines = [(name.lower(), value) for name, value in response.getheaders()]
            headers = dict(lines)
            try:
                generation = generation_shown(index, preflight, headers)
            except (KeyError, ValueError):
                generation = None
            shown = generation if generation is not None else newest
            got = (response.status, sorted(line for line in lines if line[0].startswith("access-control-") or line[0] in CHECKED), body)
            if got != expected(index, preflight, shown):
                run.fail(f"{'OPTIONS' if preflight else 'GET'} {url}: got {got}, the rule promises {expected(index, preflight, shown)}")
            elif not newest <= shown <= run.generation or shown < written - 1:
                run.fail(f"{url}: generation {shown} after {newest}, with {written} to {run.generation} written")
            elif generation is not None:
                newest = generation
                with run.lock:
                    run.seen[generation] += 1
    finally:
        connection.close()


def load(run: Run, proxy_port: int, backend_port: int) -> None:
    threads = [threading.Thread(target=client, args=(run, proxy_port, backend_port, seed)) for seed in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_a_long_run_with_reloads_loses_nothing_and_keeps_its_memory(tmp_path):
    rules, report = tmp_path / "rules.yaml", tmp_path / "report.jsonl"
    rules.write_text(rules_text(0))
    quiet = ["--set", "termlog_verbosity=error", "--set", "flow_detail=0", "--set", f"cors_report={report}"]
    with fast_backend() as backend_port, running_mitmdump([rules], quiet) as proxy:
        run = Run(rules, target=WARM_UP)
        load(run, proxy.port, backend_port)
        warm = rss_kib(proxy.pid)
        started = time.monotonic()
        run.target = WARM_UP + MEASURED
        load(run, proxy.port, backend_port)
        seconds = time.monotonic() - started
        end = rss_kib(proxy.pid)
        alive = proxy.returncode is None
    print(f"{run.sent:,} requests ({MEASURED:,} measured in {seconds:.1f} s, {MEASURED / seconds:.0f}/s), "
          f"{run.generation} reloads, generations seen {dict(sorted(run.seen.items()))}; "
          f"mitmdump RSS {warm:,} KiB after warm-up, {end:,} KiB at the end ({(end - warm) / warm:+.1%})")
    assert run.failures == [], f"{len(run.failures)} failures, the first: {run.failures[:3]}"
    assert run.sent == WARM_UP + MEASURED and alive
    assert sorted(run.seen) == list(range(run.generation + 1)) and run.generation == MEASURED // RELOAD_EVERY, "every edit took effect"
    assert proxy.output().strip() == "", f"mitmdump logged errors:\n{proxy.output()[:3000]}"
    lines = report.read_text().splitlines()
    assert len(lines) == run.sent and all(json.loads(line)["origin"] == ORIGIN for line in lines[:: 1000])
    assert end <= warm * (1 + RSS_GROWTH), f"RSS grew from {warm:,} to {end:,} KiB"
