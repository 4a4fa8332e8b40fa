"""What mitmproxy's calling a script's hooks costs, in-process: the four events of a
cross-origin GET and the ``update`` after each, dispatched by a ``DumpMaster``'s own
``handle_lifecycle`` to mitmdump's addons and to a script, if any.

    python bench/dispatch.py                 # each configuration in three fresh interpreters
    python bench/dispatch.py --only rules    # one: none, modify-headers, empty-plain, empty, no-op, observe, fixed-rule, rules

Prints the best and the median µs a flow (of 40 repeats of 200 flows) per configuration:
no script; no script and ``--modify-headers`` setting ``run.py``'s two fixed CORS headers;
an empty script as most scripts are (``addons = []``), and one naming every event as
None, as every other script here does (``mitmcors.scriptmodule``); ``noop_addon.py`` (the
addon's hooks, doing nothing); the addon without rules, with the one rule setting the
same two headers, and with 1,000 rules. The differences are what mitmproxy's own addon
costs for the fixed-header job, what a script costs by being there (and what mitmproxy's
lookups on its module cost before Python 3.12), its hooks being called, and the addon's
code run between mitmproxy's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from mitmproxy import hooks, options  # noqa: E402
from mitmproxy.proxy.layers import http as http_layer  # noqa: E402
from mitmproxy.test import tflow  # noqa: E402
from mitmproxy.tools import dump  # noqa: E402

import inprocess  # noqa: E402
from workload import fixed_headers_rule, modify_headers_args, rule_files  # noqa: E402

CONFIGURATIONS = ("none", "modify-headers", "empty-plain", "empty", "no-op", "observe", "fixed-rule", "rules")
ROUNDS = 3
PLAIN_EMPTY_SCRIPT = "addons = []\n"
EMPTY_SCRIPT = "from mitmcors.scriptmodule import events_as_none\n\naddons = []\nglobals().update(events_as_none(globals()))\n"


async def per_flow(scripts: list[str], rules: list[str], modify_headers: list[str]) -> list[float]:
    """µs a flow in each repeat, through a mitmdump's addons (quiet, as ``-q``)."""
    master = dump.DumpMaster(options.Options(), with_termlog=True, with_dumper=False)
    master.options.update(termlog_verbosity="error", server=False, scripts=scripts, modify_headers=modify_headers)  # no proxy listening
    await asyncio.sleep(0.2)  # the script loads
    if rules:
        master.options.update(cors_rules=rules)
    await master.addons.trigger_event(hooks.RunningHook())  # as mitmdump does once started (mitmproxy 12 loads its CA then)
    client, server = tflow.tclient_conn(), tflow.tserver_conn()
    timings = []
    for _ in range(40):
        flows = [(inprocess._flow(client, server), inprocess._response()) for _ in range(200)]
        started = time.perf_counter()
        for flow, response in flows:
            await master.addons.handle_lifecycle(http_layer.HttpRequestHeadersHook(flow))
            await master.addons.handle_lifecycle(http_layer.HttpRequestHook(flow))
            flow.response = response
            await master.addons.handle_lifecycle(http_layer.HttpResponseHeadersHook(flow))
            await master.addons.handle_lifecycle(http_layer.HttpResponseHook(flow))
        timings.append((time.perf_counter() - started) / len(flows) * 1e6)
    return timings


def measure(configuration: str) -> None:
    """One configuration, in this interpreter; prints its line and ends it (mitmproxy's
    log handler would outlive the loop)."""
    with tempfile.TemporaryDirectory() as folder:
        addon, empty, plain = str(REPO / "cors_addon.py"), Path(folder) / "empty.py", Path(folder) / "plain.py"
        empty.write_text(EMPTY_SCRIPT)
        plain.write_text(PLAIN_EMPTY_SCRIPT)
        scripts = {"none": [], "modify-headers": [], "empty-plain": [str(plain)], "empty": [str(empty)],
                   "no-op": [str(REPO / "bench" / "noop_addon.py")],
                   "observe": [addon], "fixed-rule": [addon], "rules": [addon]}[configuration]
        rules = {"rules": rule_files(1000, Path(folder)), "fixed-rule": [fixed_headers_rule(Path(folder))]}.get(configuration, [])
        modify_headers = modify_headers_args()[1::2] if configuration == "modify-headers" else []  # the specs, not the flags
        timings = asyncio.run(per_flow(scripts, [str(path) for path in rules], modify_headers))
    print(f"{configuration:14s} best {min(timings):6.1f} µs  median {statistics.median(timings):6.1f} µs a flow", flush=True)
    os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=CONFIGURATIONS)
    args = parser.parse_args()
    if args.only:
        measure(args.only)
    for _ in range(ROUNDS):  # interleaved, so that the machine's slower spells fall on all alike
        for configuration in CONFIGURATIONS:
            subprocess.run([sys.executable, __file__, "--only", configuration], check=True, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
