"""What the addon's hooks take inside a real mitmdump under load, hook by hook, against
the do-nothing script's hooks timed the same way (``timed_hooks.py``): each alone on the
mitmdumps' core, then both at once on it, as ``run.py`` measures them. Keep-alive
clients send cross-origin GETs, then GETs without Origin; the addon has 1,000 generated
rules (as ``run.py``'s).

    .venv/bin/python bench/in_proxy.py [--seconds 10]
    .venv/bin/python bench/in_proxy.py --busy 6    # calibrate.py's script busy 6 µs a flow, in the addon's place
    .venv/bin/python bench/in_proxy.py --least     # least_addon.py, the least script doing the addon's job, in its place

Beside ``run.py``'s in-process decision (the same hooks in a tight loop, the caches
warm), this is what they cost where they run: between mitmproxy's code, and, when two
mitmdumps share the core, after the other's. It also gives each mitmdump's whole CPU
time a response, so that what the addon costs outside its hooks (mitmproxy's own code
run after it) is the difference of the two differences, where they ran at once. With
``--busy``, a script whose hook runs a plain loop that long is measured instead, with
cross-origin GETs: what such a script takes in the proxy, against the addon. With
``--least``, the least script that does the addon's job (``run.py``'s bound for any
script) is: what doing the job at all takes there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench"), str(REPO / "tests")]

from calibrate import write_busy_script  # noqa: E402
from run import LEAST_ADDON, NO_OP_ADDON, Cores, Proxy, cpu_seconds, started, warm_up_each  # noqa: E402
from workload import Backend, drive, requests, rule_files  # noqa: E402

KINDS = ("cors", "plain")
MEASURED, NO_OP = "measured", "no-op"
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


class Subject(NamedTuple):
    """What is timed against the do-nothing script, and under which requests."""

    what: str  # as the printed lines name it
    kinds: tuple[str, ...]
    script: Path | None  # the script whose hooks are timed; None: calibrate.py's busy script
    busy: float = 0.0  # how many µs a flow the busy script spends
    rules: bool = False  # whether the script gets run.py's 1,000 rules


ADDON = Subject("the addon's hooks", KINDS, REPO / "cors_addon.py", rules=True)
LEAST = Subject("the least script's hooks", KINDS, LEAST_ADDON)


def busy_script(microseconds: float) -> Subject:
    return Subject(f"the hooks of a script busy {microseconds:g} µs a flow", KINDS[:1], None, busy=microseconds)


TIMED = '''"""Written by bench/in_proxy.py: {script}, its flow hooks timed."""
import runpy, sys
sys.path.insert(0, {bench!r})
from timed_hooks import Timed
from mitmcors.scriptmodule import events_as_none
timed = runpy.run_path({script!r})["addons"][0]
addons = [timed, Timed(timed)]
globals().update(events_as_none(globals()))
'''


def timed_proxies(folder: Path, subject: Subject) -> dict[str, Proxy]:
    """The measured script and the do-nothing script, each loaded by a script that times
    its addon's hooks (``timed_hooks.py``)."""

    def timed(name: str, script: Path, rule_files_: list[Path]) -> Proxy:
        loader = folder / f"timed_{script.stem}.py"
        loader.write_text(TIMED.format(script=str(script), bench=str(REPO / "bench")))
        output = folder / f"{name}.json"
        return Proxy(name, addon=False, rules=rule_files_, args=["-s", str(loader), "--set", f"timed_output={output}"])

    script = subject.script or write_busy_script(folder, "busy", subject.busy)
    measured = timed(MEASURED, script, rule_files(1000, folder) if subject.rules else [])
    return {MEASURED: measured, NO_OP: timed(NO_OP, NO_OP_ADDON, [])}


async def measure(
    names: list[str], kind: str, seconds: float, subject: Subject, folder: Path, backend: Backend,
) -> dict[str, Timing]:
    """The named mitmdumps loaded at once with ``kind`` requests, each on the same core."""
    proxies = timed_proxies(folder, subject)
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


async def measure_all(seconds: float, subject: Subject) -> list[tuple[str, str, dict[str, Timing]]]:
    backend = Backend()
    await backend.start()
    found = []
    try:
        for kind in subject.kinds:
            for setting, groups in ((ALONE, [[MEASURED], [NO_OP]]), (AT_ONCE, [[MEASURED, NO_OP]])):
                timings: dict[str, Timing] = {}
                for names in groups:
                    with tempfile.TemporaryDirectory() as folder:
                        timings |= await measure(names, kind, seconds, subject, Path(folder), backend)
                found.append((kind, setting, timings))
    finally:
        await backend.close()
    return found


def line(kind: str, setting: str, timings: dict[str, Timing], measured: str) -> str:
    timed, noop = timings[MEASURED], timings[NO_OP]
    hooks = ", ".join(f"{name} {timed.hooks[name] - noop.hooks[name]:.1f}" for name in timed.hooks)
    beyond = timed.in_hooks - noop.in_hooks
    text = f"{kind:5s} {setting:7s}: {measured} take {beyond:.1f} µs a flow beyond the do-nothing script's ({hooks})"
    if setting == AT_ONCE:  # measured at the same time: their whole CPU times compare
        whole = timed.cpu - noop.cpu
        text += f"; a response {timed.cpu:,.0f} against {noop.cpu:,.0f} µs of CPU, {whole:+.0f}, {whole - beyond:+.0f} outside the hooks"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="each measurement's length")
    instead = parser.add_mutually_exclusive_group()
    instead.add_argument("--busy", type=float, metavar="MICROSECONDS", help="measure a script busy this long a flow instead of the addon")
    instead.add_argument("--least", action="store_true", help="measure the least script doing the addon's job (least_addon.py) instead")
    args = parser.parse_args()
    if args.seconds <= 0 or args.busy is not None and args.busy <= 0:
        parser.error("--seconds and --busy must be positive")
    subject = LEAST if args.least else ADDON if args.busy is None else busy_script(args.busy)
    for kind, setting, timings in asyncio.run(measure_all(args.seconds, subject)):
        print(line(kind, setting, timings, subject.what), flush=True)


if __name__ == "__main__":
    main()
