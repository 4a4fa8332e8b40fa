"""What the addon costs a proxy, against bare mitmdump in the same run (issue #9).

    .venv/bin/python bench/run.py                      # the full run: about 3.5 minutes on 2 cores
    .venv/bin/python bench/run.py --quick              # every part for a moment: a smoke run
    .venv/bin/python bench/run.py --output out.json    # results elsewhere than bench/results.json
    .venv/bin/python bench/run.py --report bench/results.json --markdown   # a run's tables, for the README
    .venv/bin/python bench/run.py --only reload inprocess   # some parts only (throughput, memory, reload, inprocess); written only with --output

Starts a keep-alive backend on loopback and one mitmdump (``-q``) per command line:
bare (twice: the two measured against each other show the method's own error),
``--modify-headers`` setting two fixed CORS headers, the addon with one rule doing the
same, a script with the addon's hooks doing nothing (``noop_addon.py``: what calling a
script's hooks costs by itself), the least script that does the addon's job on these
flows (``least_addon.py``: what doing it at all costs), the addon without rules (observe
mode: verdicts only), with 1,000 and 10,000 generated rules (the matching rule last,
after ten wildcard-host rules every flow must try), and bare and 1,000 rules again in
reverse mode. Then keep-alive clients load each configuration and its baseline at the
same time, both mitmdumps sharing one core (see ``Rounds`` for why), with cross-origin
GETs, GETs without Origin, or a mix of preflights and the PUTs they announce; a
configuration's ratio is the median of its rounds' ratios. Most are measured against
bare; the addon with 1,000 rules is also measured against the least script, at once, so
that each run says how close the addon comes to what any script doing the job costs.

Then: mitmdump's memory (VmRSS) with 10,000 and 100,000 rules against bare, after the same
warm-up; the longest gap a steady client sees while the 10,000-rule file is rewritten;
and, in a fresh interpreter per rule count, the time to load the rules and the per-flow
decision (``inprocess.py``). Prints a table of everything with the issue's targets, and
writes it all as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench"), str(REPO / "tests")]

from support.servers import MitmdumpProcess, find_mitmdump, free_port, mitmdump_command  # noqa: E402
from workload import (  # noqa: E402
    OPTIONS_ALLOW, ORIGIN, RULES_PER_FILE, Backend, Sample, SteadyClient, drive, fixed_headers_rule, modify_headers_args, requests,
    rule_files, rule_texts,
)

DEFAULT_OUTPUT = REPO / "bench" / "results.json"
NO_OP_ADDON = REPO / "bench" / "noop_addon.py"  # the floor: a script with the addon's hooks, doing nothing
LEAST_ADDON = REPO / "bench" / "least_addon.py"  # the bound: the least script that does the addon's job here
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
BIG_STARTUP_TIMEOUT = 180.0  # seconds for a mitmdump loading 100,000 rules before it listens

# The targets besides the throughput ratios (those are in ``configurations``).
DECISION_TARGET_MICROSECONDS = 10.0  # at the large number of rules
LOAD_TARGET_SECONDS = (0.5, 5.0)  # the large and the huge number of rules
MEMORY_TARGET_MB = 200.0  # the huge number of rules, over bare mitmdump
STALL_TARGET_MS = 20.0

PARTS = ("throughput", "memory", "reload", "inprocess")
# The mitmdump processes the memory and reload parts need (the throughput part starts its own).
_PART_PROXIES = {"memory": {"bare", "observe", "small", "large", "huge"}, "reload": {"large"}}


@dataclass(frozen=True)
class Settings:
    rounds: int  # of measurements of each configuration at once with its baseline
    rounds_per_set: int  # taken with one set of mitmdumps, before fresh ones
    set_warm_up_requests: int  # each fresh mitmdump serves before its first round
    seconds: float  # measured in each round
    warm_up: float  # not counted, before each measurement
    connections: int
    rules: tuple[int, int, int]  # the "1,000", "10,000" and "100,000" of the issue
    decision_rules: tuple[int, ...]
    warm_up_requests: int  # before reading each mitmdump's memory
    reloads: int
    quiet_seconds: float  # the steady client's window without reloads
    per_file: int  # rules in one file, at most
    flows: int  # per repeat of the in-process decision
    repeats: int  # the decision's figure is the fastest repeat's
    loads: int  # the best of how many loads (two at most for the largest count)
    interpreter_per_count: bool  # or one for all the counts, to spare a smoke run the start-ups


FULL = Settings(
    rounds=8, rounds_per_set=2, set_warm_up_requests=400, seconds=1.0, warm_up=0.3, connections=6,
    rules=(1_000, 10_000, 100_000), decision_rules=(10, 1_000, 10_000, 100_000), warm_up_requests=1_000, reloads=3,
    quiet_seconds=5.0, per_file=RULES_PER_FILE, flows=300, repeats=30, loads=3, interpreter_per_count=True,
)
QUICK = Settings(
    rounds=1, rounds_per_set=1, set_warm_up_requests=20, seconds=0.2, warm_up=0.05, connections=2,
    rules=(20, 50, 100), decision_rules=(10, 20, 50, 100), warm_up_requests=50, reloads=1, quiet_seconds=0.3,
    per_file=40, flows=50, repeats=1, loads=1, interpreter_per_count=False,
)


@dataclass(frozen=True)
class Proxy:
    """One mitmdump command line."""

    name: str
    addon: bool
    rules: Sequence[Path] = ()
    args: Sequence[str] = ()
    reverse: bool = False


@dataclass(frozen=True)
class Target:
    ratio: float
    strict: bool = False  # more than, not at least

    def met(self, ratio: float) -> bool:
        return ratio > self.ratio if self.strict else ratio >= self.ratio

    def __str__(self) -> str:
        return f"{'>' if self.strict else '≥'} {self.ratio:.2f}"


@dataclass(frozen=True)
class Configuration:
    """A mitmdump command line under one kind of request; compared with ``baseline``."""

    name: str
    proxy: str
    requests: str  # workload.requests kind
    rules_act: bool  # whether the proxy adds CORS headers (or answers preflights) here
    baseline: str | None = None
    target: Target | None = None

    @property
    def per_second(self) -> str:
        """What is compared: preflights for the preflight mix, all responses otherwise."""
        return "preflights" if self.requests == "preflight" else "requests"


def proxies(settings: Settings, folder: Path, backend_port: int) -> list[Proxy]:
    small, large, huge = settings.rules
    reverse = ["--mode", f"reverse:http://127.0.0.1:{backend_port}"]

    def files(count: int) -> list[Path]:
        subfolder = folder / str(count)
        subfolder.mkdir()
        return rule_files(count, subfolder, settings.per_file)

    small_files = files(small)
    return [
        Proxy("bare", addon=False),
        Proxy("bare-twin", addon=False),  # the method's own error: bare against bare
        Proxy("modify-headers", addon=False, args=modify_headers_args()),
        Proxy("no-op", addon=False, args=["-s", str(NO_OP_ADDON)]),
        Proxy("least", addon=False, args=["-s", str(LEAST_ADDON)]),
        Proxy("fixed-rule", addon=True, rules=[fixed_headers_rule(folder)]),
        Proxy("observe", addon=True),
        Proxy("small", addon=True, rules=small_files),
        Proxy("large", addon=True, rules=files(large)),
        Proxy("bare-reverse", addon=False, args=reverse, reverse=True),
        Proxy("small-reverse", addon=True, rules=small_files, args=reverse, reverse=True),
        Proxy("huge", addon=True, rules=files(huge)),  # for its memory only
    ]


def bare_floor_and_addon(folder: Path) -> tuple[Proxy, Proxy, Proxy]:
    """Bare mitmdump, the do-nothing script and the addon with 1,000 rules (written to
    ``folder``): the three that ``profile.py`` and ``instructions.py`` set side by side."""
    return (
        Proxy("bare", addon=False),
        Proxy("a script whose hooks do nothing", addon=False, args=["-s", str(NO_OP_ADDON)]),
        Proxy("addon, 1,000 rules", addon=True, rules=rule_files(1000, folder)),
    )


def configurations(settings: Settings) -> list[Configuration]:
    small, large, _ = settings.rules
    return [
        Configuration("bare", "bare", "cors", rules_act=False),
        Configuration("a second bare mitmdump", "bare-twin", "cors", False, "bare"),
        Configuration("--modify-headers, 2 fixed headers", "modify-headers", "cors", True, "bare"),
        Configuration("addon, 1 rule setting the same 2", "fixed-rule", "cors", True, "--modify-headers, 2 fixed headers",
                      Target(1.0)),
        Configuration("a script whose hooks do nothing", "no-op", "cors", False, "bare"),
        Configuration("the least script doing the addon's job", "least", "cors", True, "bare"),
        Configuration("addon, observe mode (no rules)", "observe", "cors", False, "bare"),
        Configuration(f"addon, {small:,} rules", "small", "cors", True, "bare", Target(0.95)),
        Configuration(f"addon, {large:,} rules", "large", "cors", True, "bare", Target(0.93)),
        # How close the addon comes to the bound: its 1,000 rules against the least script doing the job.
        Configuration(f"addon, {small:,} rules, against the least script", "small", "cors", True,
                      "the least script doing the addon's job"),
        Configuration("bare, no Origin", "bare", "plain", False),
        Configuration("a script whose hooks do nothing, no Origin", "no-op", "plain", False, "bare, no Origin"),
        Configuration(f"addon, {small:,} rules, no Origin", "small", "plain", False, "bare, no Origin", Target(0.98)),
        Configuration("bare, preflight mix", "bare", "preflight", False),
        Configuration(f"addon, {small:,} rules, preflight mix", "small", "preflight", True, "bare, preflight mix",
                      Target(1.0, strict=True)),
        Configuration("bare, reverse mode", "bare-reverse", "cors", False),
        Configuration(f"addon, {small:,} rules, reverse mode", "small-reverse", "cors", True, "bare, reverse mode",
                      Target(0.95)),
    ]


# Running mitmdump


@dataclass(frozen=True)
class Cores:
    """Where the mitmdumps run, and where this process (the clients, the backend) does."""

    proxies: frozenset[int]
    clients: frozenset[int]

    @classmethod
    def split(cls) -> Cores:
        """The last core this process may use for the mitmdumps, the others for itself:
        two mitmdumps measured at once then share a core and nothing else. With one core,
        everything shares it."""
        available = sorted(os.sched_getaffinity(0))
        return cls(frozenset(available[-1:]), frozenset(available[:-1] or available))


def pin(pid: int, cores: frozenset[int]) -> None:
    """Every thread of a process onto these cores (threads it starts later inherit them)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with suppress(ProcessLookupError):  # a thread that just ended
            os.sched_setaffinity(int(task.name), cores)


@contextmanager
def started(proxies_: Sequence[Proxy], cores: Cores) -> Iterator[dict[str, MitmdumpProcess]]:
    """Every mitmdump at once (they start in parallel on every core), then pinned to
    ``cores.proxies`` and this process to ``cores.clients``; stopped at the end."""
    with ExitStack() as stack:
        running = {}
        for proxy in proxies_:
            port = free_port()
            command = mitmdump_command(proxy.rules, port, ["-q", *proxy.args], proxy.addon)
            running[proxy.name] = process = MitmdumpProcess(command, port)
            stack.callback(process.stop)
        with ThreadPoolExecutor(len(running)) as pool:  # each settles a moment once listening
            list(pool.map(lambda process: process.wait_until_listening(BIG_STARTUP_TIMEOUT), running.values()))
        for process in running.values():
            pin(process.pid, cores.proxies)
        stack.callback(os.sched_setaffinity, 0, os.sched_getaffinity(0))
        os.sched_setaffinity(0, cores.clients)
        yield running


def cpu_seconds(pid: int) -> float:
    """The CPU time a process has used so far (user and system), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mb(pid: int) -> float:
    """The resident memory of a process: VmRSS of /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def check(configuration: Configuration, sample: Sample) -> None:
    """Refuse to report a rate for a proxy that did not do the job measured."""
    problem = None
    if configuration.requests == "preflight":
        head = sample.heads.get(True, b"")
        from_backend = f"\r\nallow: {OPTIONS_ALLOW}".lower().encode() in head
        answered_here = b"access-control-allow-methods: put" in head and not from_backend
        if configuration.rules_act != answered_here:
            problem = f"preflights {'not ' if configuration.rules_act else ''}answered at the proxy: {head.decode(errors='replace')!r}"
    else:
        head = sample.heads.get(False, b"")
        allowed = f"access-control-allow-origin: {ORIGIN}".encode() in head
        if allowed != configuration.rules_act or (not allowed and b"access-control-allow-origin" in head):
            problem = f"unexpected response head: {head.decode(errors='replace')!r}"
    if sample.responses == 0:
        problem = "no response at all"
    if problem:
        raise RuntimeError(f"{configuration.name}: {problem}")


Round = tuple[Sample, Sample]  # the baseline's sample and the configuration's, taken at once


class Rounds:
    """Each configuration and its baseline loaded at the same time, round after round.

    This machine (a shared VM) runs at times half as fast for seconds on end: measured
    one after the other, even back to back, a configuration and its baseline often saw
    different machines, and two identical mitmdumps came out up to 0.04 apart. Measured
    at once, both see the same machine, and on the one core they share (``Cores``) the
    scheduler gives each half of it: the ratio of their rates is the ratio of what a
    response costs each. What is left is each process's own luck (where its memory
    lies): two bare mitmdumps differ by up to 0.02 for as long as they run, so every
    few rounds are taken with fresh processes (``throughput``). The configurations take
    turns from round to round, and every other round the configuration's clients connect
    first.
    """

    def __init__(self, settings: Settings, configurations_: Sequence[Configuration], proxies_: dict[str, Proxy], backend: Backend) -> None:
        self.settings, self.proxies, self.backend = settings, proxies_, backend
        self.by_name = {configuration.name: configuration for configuration in configurations_}
        self.compared = [configuration for configuration in configurations_ if configuration.baseline]
        self.samples: dict[str, list[Sample]] = {configuration.name: [] for configuration in configurations_}
        self.found: dict[str, list[Round]] = {configuration.name: [] for configuration in self.compared}

    async def take(self, index: int, running: dict[str, MitmdumpProcess]) -> None:
        """Round ``index``: every configuration at once with its baseline, in turn."""
        shift = index % len(self.compared)
        for configuration in [*self.compared[shift:], *self.compared[:shift]]:
            baseline = self.by_name[configuration.baseline or ""]
            order = (baseline, configuration) if index % 2 == 0 else (configuration, baseline)  # whose clients connect first
            taken = dict(zip((c.name for c in order), await asyncio.gather(
                *(sample(self.settings, c, running, self.proxies, self.backend) for c in order))))
            for name, taken_sample in taken.items():
                self.samples[name].append(taken_sample)
            self.found[configuration.name].append((taken[baseline.name], taken[configuration.name]))
        ratios = "  ".join(f"{_round_ratio(c, self.found[c.name][-1]):.3f}" for c in self.compared)
        print(f"round {index + 1}/{self.settings.rounds} ratios: {ratios}", flush=True)


async def throughput(
    settings: Settings, cores: Cores, configurations_: Sequence[Configuration], proxies_: dict[str, Proxy], backend: Backend,
) -> list[dict[str, Any]]:
    """Every configuration against its baseline (``Rounds``), ``settings.rounds_per_set``
    rounds with each set of fresh mitmdumps."""
    measured = [proxies_[name] for name in dict.fromkeys(configuration.proxy for configuration in configurations_)]
    taken = Rounds(settings, configurations_, proxies_, backend)
    commands: dict[str, list[str]] = {}
    for first in range(0, settings.rounds, settings.rounds_per_set):
        began = time.monotonic()
        with started(measured, cores) as running:
            print(f"{len(running)} fresh mitmdump processes listening after {time.monotonic() - began:.1f} s", flush=True)
            commands = commands or {name: process.command for name, process in running.items()}
            await warm_up_each(settings.set_warm_up_requests, running, proxies_, backend)
            for index in range(first, min(first + settings.rounds_per_set, settings.rounds)):
                await taken.take(index, running)
    return _throughput(configurations_, taken.samples, taken.found, commands, proxies_)


async def sample(
    settings: Settings, configuration: Configuration, running: dict[str, MitmdumpProcess], proxies_: dict[str, Proxy],
    backend: Backend,
) -> Sample:
    """One measurement of a configuration, checked to have done the job measured."""
    process, proxy = running[configuration.proxy], proxies_[configuration.proxy]
    sent = requests(configuration.requests, backend.port, process.port, proxy.reverse)
    taken = await drive(process.port, sent, settings.connections, warm_up=settings.warm_up,
                        seconds=settings.seconds, cpu=lambda: cpu_seconds(process.pid))
    check(configuration, taken)
    return taken


def _round_ratio(configuration: Configuration, taken: Round) -> float:
    """The configuration's rate over its baseline's, in what the configuration is compared on."""
    baseline, mine = taken
    if configuration.per_second == "preflights":
        return mine.preflight_rate / baseline.preflight_rate
    return mine.rate / baseline.rate


async def memory(settings: Settings, running: dict[str, MitmdumpProcess], proxies_: dict[str, Proxy], backend: Backend) -> dict[str, float]:
    """Every mitmdump's VmRSS after the same warm-up: ``warm_up_requests`` cross-origin GETs."""
    await warm_up_each(settings.warm_up_requests, running, proxies_, backend)
    return {name: rss_mb(process.pid) for name, process in running.items()}


async def warm_up_each(count: int, running: dict[str, MitmdumpProcess], proxies_: dict[str, Proxy], backend: Backend) -> None:
    """``count`` cross-origin GETs through each mitmdump, all at once: what a fresh process
    does at first (its first collections of long-lived objects, the addon's first
    outcomes worked out) is then behind it."""
    await asyncio.gather(*(drive(process.port, requests("cors", backend.port, process.port, proxies_[name].reverse), 2, count=count)
                           for name, process in running.items()))


async def reload_stall(settings: Settings, process: MitmdumpProcess, rule_file: Path, backend: Backend) -> dict[str, Any]:
    """The longest gap between two responses a steady keep-alive client sees, without
    reloads and while ``rule_file`` (the large rule set's last file) is rewritten."""
    count = settings.rules[1]
    texts = [rule_texts(count, generation, settings.per_file)[-1] for generation in range(1, settings.reloads + 1)]
    await asyncio.to_thread(time.monotonic)  # the thread that rewrites the file, started before anything is timed
    client = SteadyClient(process.port, requests("cors", backend.port, process.port, False)[0])
    task = asyncio.create_task(client.run())
    start = time.monotonic()
    await asyncio.sleep(settings.quiet_seconds)
    quiet_end = time.monotonic()
    windows = []
    for generation, text in enumerate(texts, 1):
        written = await asyncio.to_thread(_replace, rule_file, text)
        seen = await client.wait_for(generation, timeout=60.0)
        if seen is None:
            raise RuntimeError(f"the rewritten rule file (generation {generation}) never took effect")
        await asyncio.sleep(0.3)  # what follows the switch to the new rules belongs to the reload too
        windows.append((written, seen, time.monotonic()))
    client.stop()
    await task
    gaps = [client.longest_gap(written, end) * 1000 for written, _, end in windows]
    return {
        "rules": count,
        "reloads": settings.reloads,
        "longest_gap_ms": max(gaps),
        "longest_gap_per_reload_ms": gaps,
        "longest_gap_without_reload_ms": client.longest_gap(start, quiet_end) * 1000,
        "quiet_seconds": quiet_end - start,
        "responses": len(client.arrivals),
        "reload_latency_seconds": [seen - written for written, seen, _ in windows],
    }


def _replace(path: Path, text: str) -> float:
    """Rewrite a rule file as editors do (a new file renamed over it); when it was done."""
    fresh = path.with_suffix(".new")
    fresh.write_text(text)
    os.replace(fresh, path)
    return time.monotonic()


def in_process(settings: Settings) -> list[dict[str, Any]]:
    """Load time and decision per rule count, each in a fresh interpreter (unless quick)."""
    counts = settings.decision_rules
    groups = [[count] for count in counts] if settings.interpreter_per_count else [counts]
    found = []
    for group in groups:
        loads = min(2, settings.loads) if max(counts) in group else settings.loads
        command = [sys.executable, str(REPO / "bench" / "inprocess.py"), *map(str, group), "--loads", str(loads),
                   "--flows", str(settings.flows), "--repeats", str(settings.repeats), "--per-file", str(settings.per_file)]
        result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
        for line in result.stdout.splitlines():
            found.append(entry := json.loads(line))
            print(f"in-process, {entry['rules']:,} rules: decision {entry['decision_microseconds']:.1f} µs "
                  f"(median {entry['decision_median_microseconds']:.1f} µs), "
                  f"load {entry['load_seconds']:.3f} s", flush=True)
    return found


# The run


async def measure(settings: Settings, cores: Cores, parts: Sequence[str] = PARTS) -> dict[str, Any]:
    if not set(parts) - {"inprocess"}:
        return {}
    backend = Backend()
    await backend.start()
    configurations_ = configurations(settings)
    found: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        proxies_ = {proxy.name: proxy for proxy in proxies(settings, Path(folder), backend.port)}
        needed = set().union(*(_PART_PROXIES.get(part, set()) for part in parts))
        if needed:
            began = time.monotonic()
            with started([proxy for name, proxy in proxies_.items() if name in needed], cores) as running:
                print(f"{len(running)} mitmdump processes listening after {time.monotonic() - began:.1f} s", flush=True)
                commands = {name: process.command for name, process in running.items()}
                if "memory" in parts:
                    found["memory"] = _memory(settings, await memory(settings, running, proxies_, backend), commands)
                if "huge" in running:
                    running.pop("huge").stop()  # its memory was all it was for
                if "reload" in parts:
                    stall = await reload_stall(settings, running["large"], proxies_["large"].rules[-1], backend)
                    found["reload"] = {**stall, "target_ms": STALL_TARGET_MS, "met": stall["longest_gap_ms"] <= STALL_TARGET_MS}
        if "throughput" in parts:
            found["throughput"] = await throughput(settings, cores, configurations_, proxies_, backend)
    await backend.close()
    return found


def _throughput(
    configurations_: Sequence[Configuration], samples: dict[str, list[Sample]], found_rounds: dict[str, list[Round]],
    commands: dict[str, list[str]], proxies_: dict[str, Proxy],
) -> list[dict[str, Any]]:
    rows = []
    for configuration in configurations_:
        taken = samples[configuration.name]
        compared = found_rounds.get(configuration.name, [])
        ratios = [_round_ratio(configuration, taken) for taken in compared]
        cpu_ratios = [baseline.cpu_per_response / mine.cpu_per_response for baseline, mine in compared if mine.cpu_per_response]
        ratio = statistics.median(ratios) if ratios else None
        rows.append({
            "configuration": configuration.name,
            "command": commands[configuration.proxy],
            "mode": "reverse" if proxies_[configuration.proxy].reverse else "regular",
            "requests": configuration.requests,
            "requests_per_second": [sample.rate for sample in taken],
            "median_requests_per_second": statistics.median(sample.rate for sample in taken),
            "median_preflights_per_second": statistics.median(sample.preflight_rate for sample in taken),
            "cpu_microseconds_per_response": [sample.cpu_per_response * 1e6 for sample in taken],
            "median_cpu_microseconds_per_response": statistics.median(sample.cpu_per_response for sample in taken) * 1e6,
            "baseline": configuration.baseline,
            "compared": f"{configuration.per_second} per second",
            "round_ratios": ratios,
            "ratio": ratio,
            "cpu_ratio": statistics.median(cpu_ratios) if cpu_ratios else None,
            "target": str(configuration.target) if configuration.target else None,
            "met": configuration.target.met(ratio) if configuration.target and ratio is not None else None,
        })
    return rows


def _memory(settings: Settings, rss: dict[str, float], commands: dict[str, list[str]]) -> list[dict[str, Any]]:
    small, large, huge = settings.rules
    rows = []
    for name, rules in (("bare", 0), ("observe", 0), ("small", small), ("large", large), ("huge", huge)):
        over = rss[name] - rss["bare"]
        target = MEMORY_TARGET_MB if name == "huge" else None
        rows.append({"mitmdump": name, "command": commands[name], "rules": rules, "rss_mb": rss[name],
                     "over_bare_mb": over, "target_mb": target, "met": over < target if target else None})
    return rows


def _in_process(settings: Settings, found: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    _, large, huge = settings.rules
    target = DECISION_TARGET_MICROSECONDS
    kept = ("rules", "decision_microseconds", "decision_median_microseconds", "with_log_microseconds",
            "with_log_median_microseconds")
    decision = [{**{key: entry[key] for key in kept},
                 "target_microseconds": target if entry["rules"] == large else None,
                 "met": entry["decision_microseconds"] <= target if entry["rules"] == large else None} for entry in found]
    limits = dict(zip((large, huge), LOAD_TARGET_SECONDS))
    load = [{"rules": entry["rules"], "files": entry["files"], "seconds": entry["load_seconds"],
             "peak_rss_mb": entry["peak_rss_mb"], "target_seconds": limits.get(entry["rules"]),
             "met": entry["load_seconds"] < limits[entry["rules"]] if entry["rules"] in limits else None}
            for entry in found]
    return {"decision": decision, "load": load}


def environment(settings: Settings, cores: Cores, quick: bool) -> dict[str, Any]:
    from mitmproxy.version import VERSION

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=REPO).stdout.strip()

    return {
        "mitmproxy": VERSION,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cores": os.cpu_count(),
        "proxy_cores": sorted(cores.proxies),  # the mitmdumps'
        "client_cores": sorted(cores.clients),  # the clients' and the backend's
        "load_average_before": os.getloadavg(),
        "commit": git("rev-parse", "HEAD"),
        "commit_subject": git("log", "-1", "--format=%s"),
        "addon_commit": git("log", "-1", "--format=%H %s", "--", "mitmcors", "cors_addon.py"),  # what was measured
        "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no", "--", ".", f":!{DEFAULT_OUTPUT.relative_to(REPO)}")),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": quick,
        "settings": asdict(settings),
    }


# The report


@dataclass(frozen=True)
class Table:
    title: str
    rows: Sequence[Sequence[str]]  # the first is the header
    right: Sequence[int] = ()  # columns aligned right
    note: str = ""


def report(results: dict[str, Any]) -> tuple[str, list[Table], str]:
    """What a run found: a line on the machine and the run, the tables, a closing line."""
    env, settings = results["environment"], results["environment"]["settings"]
    machine = (f"mitmproxy {env['mitmproxy']}, Python {env['python']}, {env['cores']} cores; the addon as of "
               f"{env['addon_commit'][:10]}{' with uncommitted changes' if env['uncommitted_changes'] else ''}; "
               f"{settings['rounds']} rounds of {settings['seconds']} s per configuration at once with its baseline, "
               f"fresh mitmdumps every {settings['rounds_per_set']}, {settings['connections']} connections each; "
               f"the mitmdumps on core {_cores(env['proxy_cores'])}, "
               f"the clients on {_cores(env['client_cores'])}")
    checks = _checks(results)
    verdicts = [row["met"] for row in results.get("throughput", ()) if row["met"] is not None]
    verdicts += [check[3] == "pass" for check in checks]
    closing = f"{sum(verdicts)} of {len(verdicts)} targets met; {results['elapsed_seconds']:.0f} s in all"
    tables = [_growth_table(results), _checks_table(checks)]
    if "throughput" in results:
        tables.insert(0, _throughput_table(results))
    if "reload" in results:
        tables.append(_reload_table(results))
    return machine, tables, closing


def _throughput_table(results: dict[str, Any]) -> Table:
    rows = [("configuration", "req/s", "ratio", "to", "target", "", "CPU/req", "CPU ratio")]
    for row in results["throughput"]:
        to = (row["baseline"] or "") + (" (preflights/s)" if row["requests"] == "preflight" and row["baseline"] else "")
        rows.append((
            row["configuration"], f"{row['median_requests_per_second']:,.0f}", _number(row["ratio"], ".3f"), to,
            row["target"] or "", _verdict(row["met"]), f"{row['median_cpu_microseconds_per_response']:,.0f} µs",
            _number(row["cpu_ratio"], ".3f"),
        ))
    return Table("throughput (req/s: medians, of a mitmdump sharing its core with the other one measured at the same "
                 "time; each ratio the median of the configuration's rounds with its baseline)", rows,
                 (1, 2, 6, 7), "CPU/req: mitmdump's CPU time per response; CPU ratio: the baseline's over this "
                 "one's, a cross-check that other load on the machine disturbs less")


def _growth_table(results: dict[str, Any]) -> Table:
    """Decision, load and memory by the number of rules."""
    decision = {entry["rules"]: entry for entry in results.get("decision", ())}
    load = {entry["rules"]: entry for entry in results.get("load", ())}
    memory = {entry["rules"]: entry for entry in results.get("memory", ()) if entry["mitmdump"] != "bare"}
    rows = [("rules", "decision", "(median)", "with log line", "load", "mitmdump RSS over bare")]
    for count in sorted({*decision, *load, *memory}):
        rows.append((
            f"{count:,}",
            f"{decision[count]['decision_microseconds']:.1f} µs" if count in decision else "",
            f"{decision[count]['decision_median_microseconds']:.1f} µs" if count in decision else "",
            f"{decision[count]['with_log_microseconds']:.1f} µs" if count in decision else "",
            f"{load[count]['seconds']:.3f} s" if count in load else "",
            f"{memory[count]['over_bare_mb']:+.0f} MB" if count in memory else "",
        ))
    warm_up = results["environment"]["settings"]["warm_up_requests"]
    return Table("cost by number of rules", rows, (0, 1, 2, 3, 4, 5),
                 "decision: the addon's hooks for one cross-origin GET, in-process, the fastest repeat (and the "
                 "median), at mitmdump -q's log level, and with every line logged; load: setting cors_rules, "
                 "in-process, best of the loads; "
                 f"RSS: VmRSS after {warm_up:,} cross-origin GETs (0 rules: observe mode)")


def _checks(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Every target outside the throughput table: what, measured, target, verdict."""
    checks = [(f"decision at {entry['rules']:,} rules", f"{entry['decision_microseconds']:.1f} µs",
               f"≤ {entry['target_microseconds']:g} µs", _verdict(entry["met"]))
              for entry in results.get("decision", ()) if entry["met"] is not None]
    checks += [(f"load of {entry['rules']:,} rules", f"{entry['seconds']:.3f} s", f"< {entry['target_seconds']:g} s",
                _verdict(entry["met"])) for entry in results.get("load", ()) if entry["met"] is not None]
    checks += [(f"memory with {entry['rules']:,} rules, over bare", f"{entry['over_bare_mb']:.0f} MB",
                f"< {entry['target_mb']:g} MB", _verdict(entry["met"])) for entry in results.get("memory", ()) if entry["met"] is not None]
    if "reload" in results:
        stall = results["reload"]
        checks.append((f"longest stall during a reload of {stall['rules']:,} rules", f"{stall['longest_gap_ms']:.1f} ms",
                       f"≤ {stall['target_ms']:g} ms", _verdict(stall["met"])))
    return checks


def _checks_table(checks: list[tuple[str, str, str, str]]) -> Table:
    return Table("the other targets", [("measured", "found", "target", ""), *checks], (1,))


def _reload_table(results: dict[str, Any]) -> Table:
    stall = results["reload"]
    rows = [("reload", "longest gap", "new rules answered after")]
    rows += [(str(number), f"{gap:.1f} ms", f"{latency:.2f} s") for number, (gap, latency)
             in enumerate(zip(stall["longest_gap_per_reload_ms"], stall["reload_latency_seconds"]), 1)]
    rows.append(("none", f"{stall['longest_gap_without_reload_ms']:.1f} ms", f"(in {stall['quiet_seconds']:.1f} s without a reload)"))
    return Table(f"reload stall: {stall['rules']:,} rules rewritten {stall['reloads']} times under one steady keep-alive "
                 f"client ({stall['responses']:,} responses)", rows, (1, 2))


def print_report(results: dict[str, Any], markdown: bool = False) -> None:
    machine, tables, closing = report(results)
    print(f"\n{machine}")
    for table in tables:
        print(f"\n{table.title}:\n")
        print("\n".join(_markdown(table) if markdown else _plain(table)))
        if table.note:
            print(f"\n{table.note}" if markdown else f"  ({table.note})")
    print(f"\n{closing}")


def _plain(table: Table) -> list[str]:
    widths = [max(len(row[column]) for row in table.rows) for column in range(len(table.rows[0]))]
    return ["  " + "  ".join(cell.rjust(width) if column in table.right else cell.ljust(width)
                             for column, (cell, width) in enumerate(zip(row, widths))).rstrip() for row in table.rows]


def _markdown(table: Table) -> list[str]:
    header, *rows = table.rows
    rule = ["---:" if column in table.right else "---" for column in range(len(header))]
    return ["| " + " | ".join(row) + " |" for row in (header, rule, *rows)]


def _cores(numbers: Sequence[int]) -> str:
    return ", ".join(map(str, numbers))


def _number(value: float | None, form: str) -> str:
    return "" if value is None else format(value, form)


def _verdict(met: bool | None) -> str:
    return "" if met is None else "pass" if met else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="every part for a moment, tiny rule counts: a smoke run")
    parser.add_argument("--output", type=Path, help=f"the JSON results (default: {DEFAULT_OUTPUT.relative_to(REPO)} for a "
                        "full run; a --quick or --only run writes only where told, never over a full run's results)")
    parser.add_argument("--rounds", type=int, help="measurements of each configuration at once with its baseline")
    parser.add_argument("--seconds", type=float, help="seconds measured in each round")
    parser.add_argument("--connections", type=int, help="keep-alive client connections")
    parser.add_argument("--report", type=Path, metavar="RESULTS", help="measure nothing: print the tables of a results file")
    parser.add_argument("--markdown", action="store_true", help="print the tables in Markdown")
    parser.add_argument("--only", nargs="+", choices=PARTS, default=PARTS, metavar="PART",
                        help=f"measure only these parts: {', '.join(PARTS)} (default all)")
    args = parser.parse_args()
    if args.report:
        print_report(json.loads(args.report.read_text()), args.markdown)
        return
    settings = QUICK if args.quick else FULL
    overrides = {key: value for key in ("rounds", "seconds", "connections") if (value := getattr(args, key)) is not None}
    settings = Settings(**{**asdict(settings), **overrides})

    began = time.monotonic()
    print(f"mitmdump: {find_mitmdump()}", flush=True)
    cores = Cores.split()
    results: dict[str, Any] = {"environment": {**environment(settings, cores, args.quick), "parts": list(args.only)}}
    results.update(asyncio.run(measure(settings, cores, args.only)))
    if "inprocess" in args.only:
        results.update(_in_process(settings, in_process(settings)))
    results["environment"]["load_average_after"] = os.getloadavg()
    results["elapsed_seconds"] = time.monotonic() - began
    print_report(results, args.markdown)
    output = args.output or (DEFAULT_OUTPUT if not args.quick and set(args.only) == set(PARTS) else None)
    if output is not None:
        output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results written to {output}" if output else "results not written: give --output to keep them")


if __name__ == "__main__":
    main()
