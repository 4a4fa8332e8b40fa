"""Where a response's time goes in bare mitmdump, a script whose hooks do nothing, and the
addon with 1,000 rules: the three run at once on the core ``run.py`` gives its mitmdumps,
under the same cross-origin GETs, each sampled by py-spy (in the ``test`` extra).

    .venv/bin/python bench/profile.py [--seconds 15]

Each sample is put in one of three parts by its stack: the addon's own code (the
script's frames), the rest of mitmproxy's addon dispatch (``AddonManager`` and the
hooks of its own fifty-odd addons), and everything else (the proxy's layers, the event
loop, the sockets). A part's share of a process's samples times its CPU time per
response says how many µs of a response each part takes. What the addon adds beyond its
own code shows as the other parts growing against bare's.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench"), str(REPO / "tests")]

from run import NO_OP_ADDON, Cores, bare_floor_and_addon, cpu_seconds, started, warm_up_each  # noqa: E402
from workload import Backend, drive, requests  # noqa: E402

PARTS = ("addon's code", "mitmproxy's addon dispatch", "the rest")
SCRIPTS = ("/mitmcors/", "/cors_addon.py", f"/{NO_OP_ADDON.name}")  # a frame of the measured script's
DISPATCH = "/addonmanager.py"
RATE = 250  # samples a second


def part(stack: str) -> str:
    """Which part a sampled stack (py-spy's frames joined by ';') belongs to."""
    if any(script in stack for script in SCRIPTS):
        return PARTS[0]
    return PARTS[1] if DISPATCH in stack else PARTS[2]


def samples_by_part(raw: Path) -> collections.Counter[str]:
    """Samples by part, from py-spy's raw output: one stack a line, then its count."""
    found: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        found[part(stack)] += int(count)
    return found


async def measure(spy: str, seconds: int) -> list[tuple[str, float, float, collections.Counter[str]]]:
    """Per mitmdump: its rate, its CPU µs per response, its samples by part."""
    backend = Backend()
    await backend.start()
    try:
        return await _measure(spy, seconds, backend)
    finally:
        await backend.close()


async def _measure(spy: str, seconds: int, backend: Backend) -> list[tuple[str, float, float, collections.Counter[str]]]:
    with tempfile.TemporaryDirectory() as folder:
        proxies = {proxy.name: proxy for proxy in bare_floor_and_addon(Path(folder))}
        with started(list(proxies.values()), Cores.split()) as running:
            await warm_up_each(400, running, proxies, backend)
            outputs = {name: Path(folder) / f"{index}.txt" for index, name in enumerate(running)}
            spies = [subprocess.Popen([spy, "record", "--nonblocking", "--full-filenames", "-r", str(RATE), "-d", str(seconds + 1), "-f", "raw",
                                       "-o", str(outputs[name]), "-p", str(process.pid)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                     for name, process in running.items()]
            taken = await asyncio.gather(*(
                drive(process.port, requests("cors", backend.port, process.port, False), 6, warm_up=0.5, seconds=seconds,
                      cpu=lambda pid=process.pid: cpu_seconds(pid))  # type: ignore[misc]
                for process in running.values()))
            for spied in spies:
                _, errors = spied.communicate()
                if spied.returncode != 0:
                    raise RuntimeError(f"{' '.join(spied.args)} failed: {errors.strip()}")
            return [(name, sample.rate, sample.cpu_per_response * 1e6, samples_by_part(outputs[name]))
                    for name, sample in zip(running, taken)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=15)
    args = parser.parse_args()
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy not found: pip install -e '.[test]'")
    rows = asyncio.run(measure(spy, args.seconds))
    print(f"{'':32s} {'req/s':>6s} {'CPU/req':>9s}  " + "  ".join(f"{name:>26s}" for name in PARTS))
    for name, rate, cpu_per_response, sampled in rows:
        total = sum(sampled.values())
        shares = "  ".join(f"{sampled[name_] / total * cpu_per_response:23.0f} µs" for name_ in PARTS)
        print(f"{name:32s} {rate:6.0f} {cpu_per_response:6.0f} µs  {shares}")


if __name__ == "__main__":
    main()
