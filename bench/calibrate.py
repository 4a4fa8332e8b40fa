"""Whether what a script costs a response in time follows the time its hooks take where
they run: scripts whose ``responseheaders`` spend a given time on plain Python, one whose
hook only reads every header line of the flow, the least script that does the addon's
job on these flows (``least_addon.py``), and the addon with 1,000 rules, each
measured against the do-nothing script (``noop_addon.py``) at once on one core, as
``run.py`` measures its configurations (``Rounds``).

    .venv/bin/python bench/calibrate.py [--microseconds 6 30] [--rounds 10]
    .venv/bin/python bench/calibrate.py --quick      # every part for a moment: the smoke run

Each busy script's loop is calibrated in this interpreter to take one of
``--microseconds`` a flow; a loop stays that long in the proxy (``in_proxy.py``). The
defaults are the addon's decision in a tight loop (6 µs) and about what its hooks take
in the proxy beside another mitmdump (30 µs): the addon costs what the script busy as
long as its hooks take there costs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench"), str(REPO / "tests")]

from run import FULL, LEAST_ADDON, NO_OP_ADDON, QUICK, Configuration, Cores, Proxy, throughput  # noqa: E402
from workload import Backend, rule_files  # noqa: E402

SCRIPT = '''"""Written by bench/calibrate.py: the do-nothing script, its responseheaders doing {what}."""
import sys
sys.path.insert(0, {bench!r})
from noop_addon import NoOp
from mitmcors.scriptmodule import events_as_none

class Calibrated(NoOp):
    def responseheaders(self, flow):
{body}

addons = [Calibrated()]
globals().update(events_as_none(globals()))
'''
BUSY = "        total = 0\n        for number in range({count}):\n            total += number"
READS = "        hash(flow.request.data.headers.fields)\n        hash(flow.response.data.headers.fields)"
FLOOR = "a script whose hooks do nothing"
LEAST = "the least script doing the addon's job"  # run.py's bound for any script (least_addon.py)


def loop_count(microseconds: float) -> int:
    """How many turns of BUSY's loop take ``microseconds`` here (the fastest of repeats)."""
    turns = 100_000
    fastest = min(_timed_loop(turns) for _ in range(7))
    return max(1, round(turns * microseconds * 1e-6 / fastest))


def _timed_loop(turns: int) -> float:
    started = time.perf_counter()
    total = 0
    for number in range(turns):
        total += number
    return time.perf_counter() - started


def write_script(folder: Path, name: str, what: str, body: str) -> Path:
    path = folder / f"{name}.py"
    path.write_text(SCRIPT.format(what=what, bench=str(REPO / "bench"), body=body))
    return path


def write_busy_script(folder: Path, name: str, microseconds: float) -> Path:
    """The do-nothing script, its responseheaders running BUSY's loop for ``microseconds``."""
    return write_script(folder, name, f"{microseconds:g} µs of a loop", BUSY.format(count=loop_count(microseconds)))


def busy_proxy(folder: Path, microseconds: float) -> Proxy:
    busy = write_busy_script(folder, f"busy{microseconds:g}", microseconds)
    return Proxy(f"a script busy {microseconds:g} µs a flow", addon=False, args=["-s", str(busy)])


def proxies(folder: Path, microseconds: list[float], rules: int) -> list[Proxy]:
    reads = write_script(folder, "reads", "a hash of every header line", READS)
    return [
        Proxy(FLOOR, addon=False, args=["-s", str(NO_OP_ADDON)]),
        *(busy_proxy(folder, each) for each in microseconds),
        Proxy("a script reading every header line", addon=False, args=["-s", str(reads)]),
        Proxy(LEAST, addon=False, args=["-s", str(LEAST_ADDON)]),
        Proxy(f"addon, {rules:,} rules", addon=True, rules=rule_files(rules, folder)),
    ]


async def measure(microseconds: list[float], quick: bool, rounds: int) -> list[dict]:
    settings = QUICK if quick else replace(FULL, rounds=rounds)
    rules = settings.rules[0]
    backend = Backend()
    await backend.start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            measured = proxies(Path(folder), microseconds, rules)
            configurations = [Configuration(proxy.name, proxy.name, "cors", proxy.addon or proxy.name == LEAST, None if proxy.name == FLOOR else FLOOR)
                              for proxy in measured]
            return await throughput(settings, Cores.split(), configurations, {proxy.name: proxy for proxy in measured}, backend)
    finally:
        await backend.close()


def print_table(rows: list[dict]) -> None:
    print(f"\n{'against ' + FLOOR:45s} {'ratio':>6s}  rounds")
    for row in rows:
        if row["ratio"] is not None:
            ratios = row["round_ratios"]
            print(f"{row['configuration']:45s} {row['ratio']:6.3f}  {min(ratios):.3f} to {max(ratios):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--microseconds", type=float, nargs="+", default=[6.0, 30.0],
                        help="what each busy script spends a flow (the addon's decision in a loop: about 6; its hooks in the proxy: about 30)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="one short round with a few rules: a smoke run")
    args = parser.parse_args()
    if min(args.microseconds) <= 0 or args.rounds < 1:
        parser.error("--microseconds must be positive and --rounds at least 1")
    print_table(asyncio.run(measure(args.microseconds, args.quick, args.rounds)))


if __name__ == "__main__":
    main()
