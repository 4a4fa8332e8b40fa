"""How long the addon's own code takes a flow inside a real mitmdump under load, hook by
hook: a mitmdump with 1,000 generated rules (as ``run.py``'s) loads ``timed_addon.py``,
keep-alive clients send it cross-origin GETs, then GETs without Origin.

    .venv/bin/python bench/in_proxy.py [--seconds 8]

Beside ``run.py``'s in-process decision (the same hooks in a tight loop, the caches warm),
this is what they cost where they run: between mitmproxy's code, the caches cold. Not a
ratio: the time is the addon's alone, what mitmproxy spends around it is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench"), str(REPO / "tests")]

from support.servers import MitmdumpProcess, find_mitmdump, free_port  # noqa: E402
from workload import Backend, drive, requests, rule_files  # noqa: E402


async def per_flow(kind: str, seconds: float, folder: Path, backend: Backend) -> dict:
    """The addon's µs a flow, by hook, for one kind of request."""
    output = folder / f"timed-{kind}.json"
    port = free_port()
    rules = [argument for path in rule_files(1000, folder / kind) for argument in ("--set", f"cors_rules={path}")]
    command = [str(find_mitmdump()), "--listen-host", "127.0.0.1", "-p", str(port), "--set", "connection_strategy=lazy",
               "-q", "-s", str(REPO / "bench" / "timed_addon.py"), *rules]
    os.environ["CORS_TIMED_OUTPUT"] = str(output)
    process = MitmdumpProcess(command, port)
    try:
        process.wait_until_listening(60)
        sample = await drive(port, requests(kind, backend.port, port, False), 6, warm_up=0.5, seconds=seconds)
    finally:
        process.stop()
    found = json.loads(output.read_text())
    return {"requests": kind, "requests_per_second": sample.rate, **found}


async def measure(seconds: float) -> list[dict]:
    backend = Backend()
    await backend.start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            for kind in ("cors", "plain"):
                (Path(folder) / kind).mkdir()
            return [await per_flow(kind, seconds, Path(folder), backend) for kind in ("cors", "plain")]
    finally:
        await backend.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    for row in asyncio.run(measure(args.seconds)):
        hooks = "  ".join(f"{name} {value:.1f} µs" for name, value in row["microseconds"].items())
        total = sum(row["microseconds"].values())
        print(f"{row['requests']:5s} {row['flows']:,} flows at {row['requests_per_second']:,.0f}/s: {hooks}; {total:.1f} µs a flow")


if __name__ == "__main__":
    main()
