"""How much the addon costs the proxy, measured against bare mitmdump in the same run.

    python bench/throughput.py                 # 1,000 rules, 3 rounds of 10 s each
    python bench/throughput.py --rules 1000 --seconds 10 --rounds 3 --connections 8

Starts a tiny keep-alive backend on loopback, then alternates rounds of bare
``mitmdump -q`` and ``mitmdump -q -s cors_addon.py`` with a generated rule file, each
loaded by the same client: keep-alive connections sending cross-origin GETs (with an
Origin header, so the rules and the verdicts both run on every flow). Prints requests
per second for each, their ratio (median of the rounds), and the per-flow decision
time (matching, the action, the verdict) at 10,000 rules, measured in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from support.servers import find_mitmdump, free_port, running_mitmdump  # noqa: E402

ORIGIN = "http://127.0.0.1:3000"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Total: 42\r\nContent-Length: 2\r\n\r\nok"


def rule_file(count: int, folder: Path) -> Path:
    """``count`` rules: most for other hosts (as in a shared lab file), a few with
    wildcard hosts that must be tried on every flow, and the one that matches last."""
    wildcards = min(10, count - 1)
    lines = ["rules:"]
    for index in range(count - wildcards - 1):
        lines.append(f"  - {{name: api {index}, match: {{host: api{index}.test, path: '/v{index % 5}/*'}}, allow: {{}}}}")
    for index in range(wildcards):
        lines.append(f"  - {{name: wildcard {index}, match: {{host: '*.svc{index}.test'}}, strip: all}}")
    lines.append("  - {name: the lab backend, match: {host: 127.0.0.1}, allow: {}}")
    path = folder / f"bench-{count}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


async def serve_backend(port: int) -> asyncio.AbstractServer:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(RESPONSE)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", port)


async def load(proxy_port: int, backend_port: int, connections: int, seconds: float) -> float:
    """Requests per second completed through the proxy by keep-alive clients."""
    request = (
        f"GET http://127.0.0.1:{backend_port}/v1/items HTTP/1.1\r\nHost: 127.0.0.1:{backend_port}\r\n"
        f"Origin: {ORIGIN}\r\nSec-Fetch-Mode: cors\r\n\r\n"
    ).encode()
    deadline = time.monotonic() + seconds
    done = [0]

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy_port)
        while time.monotonic() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            done[0] += 1
        writer.close()

    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(connections)))
    return done[0] / (time.monotonic() - started)


def measure(args: argparse.Namespace) -> tuple[list[float], list[float]]:
    backend_port = free_port()
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(serve_backend(backend_port))
    bare, addon = [], []
    with tempfile.TemporaryDirectory() as folder:
        rules = rule_file(args.rules, Path(folder))
        for round_ in range(args.rounds):
            for label, results, options in (("bare", bare, {"with_addon": False}), ("addon", addon, {})):
                files = [rules] if options == {} else []
                with running_mitmdump(files, ["-q"], **options) as proxy:
                    loop.run_until_complete(load(proxy.port, backend_port, args.connections, 1.0))  # warm up
                    rate = loop.run_until_complete(load(proxy.port, backend_port, args.connections, args.seconds))
                results.append(rate)
                print(f"round {round_ + 1} {label:5}: {rate:8.0f} requests/s", flush=True)
    server.close()
    loop.close()
    return bare, addon


def decision_microseconds(rule_count: int, repeat: int = 20000) -> float:
    """The per-flow decision at ``rule_count`` rules: match, act, judge (median of 5)."""
    from mitmproxy import http
    from mitmproxy.test import tflow, tutils

    from mitmcors import actions, verdicts
    from mitmcors.flows import cors_request, text_fields
    from mitmcors.observer import _exchange
    from mitmcors.rules import load_files
    from mitmcors.addon import _target

    with tempfile.TemporaryDirectory() as folder:
        rules = load_files([str(rule_file(rule_count, Path(folder)))])
    request = tutils.treq(headers=http.Headers([(b"Origin", ORIGIN.encode()), (b"Host", b"127.0.0.1")]))
    request.url = "http://127.0.0.1/v1/items"
    flow = tflow.tflow(req=request, resp=tutils.tresp())
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(repeat):
            target = _target(flow)
            rule = rules.first_match(target)
            fields = text_fields(flow.response.headers)
            outcome = actions.response_rewrite(rule.action, target.cors, request.pretty_url, fields, 200)
            verdicts.decide(_exchange(flow, cors_request(request), 200, outcome.fields, None))
        timings.append((time.perf_counter() - started) / repeat * 1e6)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--decision-rules", type=int, default=10000)
    args = parser.parse_args()
    print(f"mitmdump: {find_mitmdump()}")
    bare, addon = measure(args)
    ratio = statistics.median(addon) / statistics.median(bare)
    print(f"bare mitmdump      : {statistics.median(bare):8.0f} requests/s (median of {args.rounds})")
    print(f"with {args.rules:,} rules : {statistics.median(addon):8.0f} requests/s (median of {args.rounds})")
    print(f"throughput ratio   : {ratio:.3f}")
    micro = decision_microseconds(args.decision_rules)
    print(f"per-flow decision at {args.decision_rules:,} rules: {micro:.1f} µs (match, action, verdict)")


if __name__ == "__main__":
    main()
