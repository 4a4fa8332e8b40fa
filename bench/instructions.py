"""The instructions a response costs bare mitmdump, a script whose hooks do nothing and the
addon with 1,000 rules, counted by valgrind's callgrind: unlike time, a count the
machine's slow spells and the other processes on the core leave alone.

    .venv/bin/python bench/instructions.py [--requests 1000] [--no-origin] [--simulate [--last-level KB]]

Each mitmdump runs under callgrind with counting off while it starts and serves a
warm-up; counting is then switched on (``callgrind_control -i on``) for ``--requests``
cross-origin GETs (GETs without Origin with ``--no-origin``), one after the other on
one keep-alive connection, as ``run.py`` sends them, and off again. ``--simulate`` also
has callgrind simulate the caches and the branch predictors (several times slower), and
prints their misses a response.
Callgrind simulates two levels of cache, the first and the last (this machine's L3 by
default); ``--last-level`` gives the last one another size, L2's to count what misses L2.

Set beside ``run.py``'s ratios, it tells how much of what the addon costs a response
is more work, and how much the same work done slower.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench"), str(REPO / "tests")]

from run import BIG_STARTUP_TIMEOUT, Proxy, bare_floor_and_addon  # noqa: E402
from support.servers import MitmdumpProcess, free_port, mitmdump_command  # noqa: E402
from workload import Backend, exchange, requests  # noqa: E402

WARM_UP_REQUESTS = 100
LAST_LEVEL_WAYS = 8  # the associativity given a resized last-level cache (an L2's, commonly)
COUNTED = {  # callgrind's events, shown a response: the name shown, the events it adds up
    "instructions": ("Ir",),
    "L1 instruction misses": ("I1mr",),
    "L1 data misses": ("D1mr", "D1mw"),
    "last-level misses": ("ILmr", "DLmr", "DLmw"),
    "mispredicted branches": ("Bcm", "Bim"),
}


@dataclass(frozen=True)
class Counted:
    """One mitmdump's events a response, and whether the addon's headers came back."""

    name: str
    per_response: dict[str, float]
    allowed: bool


@dataclass(frozen=True)
class Simulation:
    """What callgrind simulates besides counting: nothing, or the caches and branch
    predictors, the last-level cache of ``last_level_kb`` when given."""

    on: bool = False
    last_level_kb: int | None = None

    def options(self) -> list[str]:
        if not self.on:
            return []
        size = [f"--LL={self.last_level_kb * 1024},{LAST_LEVEL_WAYS},64"] if self.last_level_kb else []
        return ["--cache-sim=yes", "--branch-sim=yes", *size]


def callgrind_command(proxy: Proxy, port: int, output: Path, simulation: Simulation) -> list[str]:
    """The proxy's mitmdump under callgrind, counting nothing until told."""
    return ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={output}", *simulation.options(),
            sys.executable, *mitmdump_command(proxy.rules, port, ["-q", *proxy.args], proxy.addon)]


async def count(proxy: Proxy, backend: Backend, folder: Path, sent: int, simulation: Simulation, kind: str) -> Counted:
    """Start the proxy under callgrind, count ``sent`` GETs of ``kind`` (``workload.requests``), stop it."""
    port, output = free_port(), folder / f"{proxy.name}.callgrind"
    process = MitmdumpProcess(callgrind_command(proxy, port, output, simulation), port)
    try:
        process.wait_until_listening(BIG_STARTUP_TIMEOUT)
        request = requests(kind, backend.port, port, False)[0]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(WARM_UP_REQUESTS):
            await exchange(reader, writer, request)
        _control(process, "--instr=on")
        for _ in range(sent):
            head = await exchange(reader, writer, request)
        _control(process, "--instr=off")
        _control(process, "--dump")
        writer.close()
    finally:
        process.stop()
    totals = _counted_totals(folder, output.name)
    per_response = {shown: sum(totals.get(event, 0) for event in events) / sent for shown, events in COUNTED.items()
                    if any(event in totals for event in events)}
    return Counted(proxy.name, per_response, b"access-control-allow-origin" in head)


def _control(process: MitmdumpProcess, option: str) -> None:
    subprocess.run(["callgrind_control", option, str(process.pid)], check=True, capture_output=True)


def _counted_totals(folder: Path, name: str) -> dict[str, int]:
    """The events of the dump taken while counting was on: the one file with a nonzero total."""
    for dump in sorted(folder.glob(f"{name}*")):
        text = dump.read_text(errors="replace")
        events = re.search(r"^events: (.*)$", text, re.MULTILINE)
        totals = re.search(r"^totals: (.*)$", text, re.MULTILINE)
        if events and totals and int(totals.group(1).split()[0]) > 0:
            return dict(zip(events.group(1).split(), map(int, totals.group(1).split())))
    raise RuntimeError(f"no callgrind dump with counted instructions in {folder}")


async def measure(sent: int, simulation: Simulation, kind: str) -> list[Counted]:
    backend = Backend()
    await backend.start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            return [await count(proxy, backend, Path(folder), sent, simulation, kind) for proxy in bare_floor_and_addon(Path(folder))]
    finally:
        await backend.close()


def print_table(found: list[Counted]) -> None:
    shown = list(found[0].per_response)
    print(f"{'a response':32s} " + " ".join(f"{name:>22s}" for name in shown) + f" {'bare over this':>15s}")
    bare = found[0].per_response["instructions"]
    for counted in found:
        figures = " ".join(f"{counted.per_response[name]:22,.0f}" for name in shown)
        print(f"{counted.name:32s} {figures} {bare / counted.per_response['instructions']:15.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000, help="cross-origin GETs counted in each mitmdump")
    parser.add_argument("--no-origin", action="store_true", help="GETs without Origin instead: the flows no rule here concerns")
    parser.add_argument("--simulate", action="store_true", help="simulate the caches and branch predictors too")
    parser.add_argument("--last-level", type=int, metavar="KB", help="with --simulate: the last-level cache's size (default: this machine's)")
    args = parser.parse_args()
    _refuse_bad_arguments(parser, args)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind not found: apt-get install valgrind")
    found = asyncio.run(measure(args.requests, Simulation(args.simulate, args.last_level), "plain" if args.no_origin else "cors"))
    if [counted.allowed for counted in found] != [False, False, not args.no_origin]:
        raise SystemExit("only the addon should have added Access-Control-Allow-Origin, and only to cross-origin GETs")
    print_table(found)


def _refuse_bad_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Before valgrind starts, not as its own error minutes later."""
    if args.requests < 1:
        parser.error("--requests must be at least 1")
    if args.last_level is not None and not args.simulate:
        parser.error("--last-level needs --simulate")
    if args.last_level is not None and (args.last_level < 1 or args.last_level & (args.last_level - 1)):
        parser.error("--last-level must be a power of two (callgrind's caches have a power of two of sets)")


if __name__ == "__main__":
    main()
