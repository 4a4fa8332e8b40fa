"""The addon's own costs at a number of rules, in a fresh interpreter: loading the rules
and deciding one flow.

    python bench/inprocess.py RULES [RULES...] [--loads 3] [--flows 300] [--repeats 30]

Prints one JSON object per number of rules (one number per interpreter measures each
load afresh; several at once spare a smoke run the start-ups). ``load_seconds`` (the best of ``--loads``) is the time to set the
``cors_rules`` option, as mitmdump does at start-up: the files read, compiled and made
active. ``decision_microseconds`` is the time the addon's hooks take, called as
mitmproxy calls them, for one cross-origin GET whose response the last rule rewrites:
matching, the action, the verdict, with the package's logger at ERROR, the level
``mitmdump -q`` shows. ``with_log_microseconds`` is the same with every line logged, as
mitmdump without ``-q``, mitmweb and the console UI show them: the line a rule's change
logs is then formatted and sent to every addon as an ``add_log`` event. The root logger
is at DEBUG, as mitmdump sets it.

Both are the fastest of ``--repeats`` repeats of ``--flows`` flows each, the median
beside them (``..._median_microseconds``): the machine these figures come from, a shared
VM, runs at times half as fast for seconds on end, which the median of a run shows as
often as not and the fastest repeat leaves out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from mitmproxy import connection, http  # noqa: E402
from mitmproxy.test import taddons, tflow  # noqa: E402

from workload import BACKEND_BODY, BACKEND_HEADERS, CROSS_ORIGIN, ORIGIN, PATH, RULES_PER_FILE, rule_files  # noqa: E402

HOOKS = ("requestheaders", "request", "responseheaders", "response")  # in mitmproxy's order
BACKEND = "127.0.0.1:8001"


class _Errors(logging.Handler):
    """Collects error records: the addon logs a fault in a hook and goes on, which would
    otherwise pass for a fast decision."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def measure(rules: int, loads: int, flows: int, repeats: int, per_file: int) -> dict[str, float | int]:
    import cors_addon

    addons = [type(addon)() for addon in cors_addon.addons]
    with _logging_as_in_mitmdump() as errors, tempfile.TemporaryDirectory() as folder, \
            taddons.context(*addons) as tctx:
        paths = [str(path) for path in rule_files(rules, Path(folder), per_file)]
        timings = []
        for _ in range(loads):
            tctx.configure(addons[0], cors_rules=[])
            started = time.perf_counter()
            tctx.configure(addons[0], cors_rules=paths)
            timings.append(time.perf_counter() - started)
        package = logging.getLogger("mitmcors")
        package.setLevel(logging.ERROR)
        decision = _per_flow(addons, tctx.master.event_loop, flows, repeats)
        package.setLevel(logging.DEBUG)
        with_log = _per_flow(addons, tctx.master.event_loop, flows, repeats)
    if errors.records:
        raise SystemExit(f"the addon logged an error: {errors.records[0].getMessage()}")
    return {
        "rules": rules,
        "files": len(paths),
        "load_seconds": min(timings),
        "decision_microseconds": min(decision),
        "decision_median_microseconds": statistics.median(decision),
        "with_log_microseconds": min(with_log),
        "with_log_median_microseconds": statistics.median(with_log),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


@contextlib.contextmanager
def _logging_as_in_mitmdump() -> Iterator[_Errors]:
    """The root logger at DEBUG and asyncio's at WARNING, as mitmdump sets them; afterwards
    the levels as they were, and no handler left behind (mitmproxy's would write to a
    closed event loop)."""
    root, asyncio_logger = logging.getLogger(), logging.getLogger("asyncio")
    levels, handlers = (root.level, asyncio_logger.level), list(root.handlers)
    errors = _Errors()
    root.addHandler(errors)
    root.setLevel(logging.DEBUG)
    asyncio_logger.setLevel(logging.WARNING)
    try:
        yield errors
    finally:
        for handler in [handler for handler in root.handlers if handler not in handlers]:
            root.removeHandler(handler)
        root.setLevel(levels[0])
        asyncio_logger.setLevel(levels[1])


def _per_flow(addons: list, loop: asyncio.AbstractEventLoop, flows: int, repeats: int) -> list[float]:
    """µs per flow of the addons' hooks, in each repeat; the flows are built beforehand."""
    request_hooks = [getattr(addon, name) for name in HOOKS[:2] for addon in addons if hasattr(addon, name)]
    response_hooks = [getattr(addon, name) for name in HOOKS[2:] for addon in addons if hasattr(addon, name)]
    client, server = tflow.tclient_conn(), tflow.tserver_conn()
    timings = []
    for repeat in range(-1, repeats):  # the first, not timed, warms up what is built on first use
        pairs = [(_flow(client, server), _response()) for _ in range(flows if repeat >= 0 else min(flows, 100))]
        started = time.perf_counter()
        for flow, response in pairs:
            for hook in request_hooks:
                hook(flow)
            flow.response = response
            for hook in response_hooks:
                hook(flow)
        loop.run_until_complete(asyncio.sleep(0))  # the log records' add_log events, as in mitmdump
        if repeat >= 0:
            timings.append((time.perf_counter() - started) / flows * 1e6)
    allowed = pairs[-1][0].response.headers.get("access-control-allow-origin")
    if allowed != ORIGIN:
        raise SystemExit(f"the last rule did not act on the flow: Access-Control-Allow-Origin is {allowed!r}")
    return timings


def _flow(client: connection.Client, server: connection.Server) -> http.HTTPFlow:
    headers = [(b"Host", BACKEND.encode()), *((name.encode(), value.encode()) for name, value in CROSS_ORIGIN)]
    request = http.Request.make("GET", f"http://{BACKEND}{PATH}", b"", headers)
    return tflow.tflow(client_conn=client, server_conn=server, req=request)


def _response() -> http.Response:
    return http.Response.make(200, BACKEND_BODY, [(name.encode(), value.encode()) for name, value in BACKEND_HEADERS])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rules", type=int, nargs="+")
    parser.add_argument("--loads", type=int, default=3)
    parser.add_argument("--flows", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--per-file", type=int, default=RULES_PER_FILE)
    args = parser.parse_args()
    for rules in args.rules:
        print(json.dumps(measure(rules, args.loads, args.flows, args.repeats, args.per_file)), flush=True)


if __name__ == "__main__":
    main()
