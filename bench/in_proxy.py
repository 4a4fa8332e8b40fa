"""What the addon's hooks take inside a real mitmdump under load, hook by hook, against
the do-nothing script's hooks timed the same way (``timed_hooks.py``): each alone on the
mitmdumps' core, then both at once on it, as ``run.py`` measures them. Keep-alive
clients send cross-origin GETs, then GETs without Origin; the addon has 1,000 generated
rules (as ``run.py``'s).

    .venv/bin/python bench/in_proxy.py [--seconds 10]

Beside ``run.py``'s in-process decision (the same hooks in a tight loop, the caches
warm), this is what they cost where they run: between mitmproxy's code, and, when two
mitmdumps share the core, after the other's. It also gives each mitmdump's whole CPU
time a response, so that what the addon costs outside its hooks (mitmproxy's own code
run after it) is the difference of the two differences, where they ran at once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench"), str(REPO / "tests")]

from run import Cores, Proxy, cpu_seconds, started, warm_up_each  # noqa: E402
from workload import Backend, drive, requests, rule_files  # noqa: E402

KINDS = ("cors", "plain")
ADDON, NO_OP = "addon", "no-op"
ALONE, AT_ONCE = "alone", "at once"  # each mitmdump on the core by itself, or both sharing it
WARM_UP_REQUESTS = 1_000


@dataclass(frozen=True)
class Timing:
    """One mitmdump's share of a measurement: its hooks' µs a call, by hook, and its
    whole CPU µs a response."""

    hooks: dict[str, float]
    cpu: float

    @property
    def in_hooks(self) -> float:
        return sum(self.hooks.values())


def timed_proxies(folder: Path, rules: list[Path]) -> dict[str, Proxy]:
    def timed(name: str, script: str, rule_files_: list[Path]) -> Proxy:
        output = folder / f"{name}.json"
        return Proxy(name, addon=False, rules=rule_files_,
                     args=["-s", str(REPO / "bench" / script), "--set", f"timed_output={output}"])

    return {ADDON: timed(ADDON, "timed_addon.py", rules), NO_OP: timed(NO_OP, "timed_noop.py", [])}


async def measure(names: list[str], kind: str, seconds: float, folder: Path, backend: Backend) -> dict[str, Timing]:
    """The named mitmdumps loaded at once with ``kind`` requests, each on the same core."""
    proxies = timed_proxies(folder, rule_files(1000, folder))
    chosen = {name: proxies[name] for name in names}
    with started(list(chosen.values()), Cores.split()) as running:
        await warm_up_each(WARM_UP_REQUESTS, running, chosen, backend)
        before = {name: cpu_seconds(process.pid) for name, process in running.items()}
        samples = await asyncio.gather(*(
            drive(process.port, requests(kind, backend.port, process.port, False), 6, seconds=seconds)
            for process in running.values()))
        cpu = {name: (cpu_seconds(process.pid) - before[name]) / sample.responses * 1e6
               for (name, process), sample in zip(running.items(), samples)}
    return {name: Timing(json.loads((folder / f"{name}.json").read_text())["microseconds"], cpu[name]) for name in names}


async def measure_all(seconds: float) -> list[tuple[str, str, dict[str, Timing]]]:
    backend = Backend()
    await backend.start()
    found = []
    try:
        for kind in KINDS:
            for setting, groups in ((ALONE, [[ADDON], [NO_OP]]), (AT_ONCE, [[ADDON, NO_OP]])):
                timings: dict[str, Timing] = {}
                for names in groups:
                    with tempfile.TemporaryDirectory() as folder:
                        timings |= await measure(names, kind, seconds, Path(folder), backend)
                found.append((kind, setting, timings))
    finally:
        await backend.close()
    return found


def line(kind: str, setting: str, timings: dict[str, Timing]) -> str:
    addon, noop = timings[ADDON], timings[NO_OP]
    hooks = ", ".join(f"{name} {addon.hooks[name] - noop.hooks[name]:.1f}" for name in addon.hooks)
    beyond = addon.in_hooks - noop.in_hooks
    text = f"{kind:5s} {setting:7s}: the addon's hooks {beyond:.1f} µs a flow beyond the do-nothing script's ({hooks})"
    if setting == AT_ONCE:  # measured at the same time: their whole CPU times compare
        whole = addon.cpu - noop.cpu
        text += f"; a response {addon.cpu:,.0f} against {noop.cpu:,.0f} µs of CPU, {whole:+.0f}, {whole - beyond:+.0f} outside the hooks"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="each measurement's length")
    args = parser.parse_args()
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    for kind, setting, timings in asyncio.run(measure_all(args.seconds)):
        print(line(kind, setting, timings), flush=True)


if __name__ == "__main__":
    main()
