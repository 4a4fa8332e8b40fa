"""The addon of ``cors_addon.py`` with its flow hooks timed: how long its own code takes a
flow inside a real mitmdump, run between mitmproxy's code as it is there (the in-process
decision times the same hooks in a tight loop, with the caches warm). ``bench/in_proxy.py``
loads it; at shutdown it writes one JSON object to the file ``CORS_TIMED_OUTPUT`` names.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mitmproxy import http  # noqa: E402

from cors_addon import addons as cors_addons  # noqa: E402

HOOKS = ("request", "responseheaders", "response")
cors = cors_addons[0]
seconds = dict.fromkeys(HOOKS, 0.0)
calls = dict.fromkeys(HOOKS, 0)


def timed(name: str, hook: Callable[[http.HTTPFlow], None]) -> Callable[[http.HTTPFlow], None]:
    clock = time.perf_counter

    def run(flow: http.HTTPFlow) -> None:
        started = clock()
        hook(flow)
        seconds[name] += clock() - started
        calls[name] += 1

    return run


for name in HOOKS:
    setattr(cors, name, timed(name, getattr(cors, name)))


class Report:
    def done(self) -> None:
        flows = calls["response"]
        per_flow = {name: seconds[name] / flows * 1e6 if flows else 0.0 for name in HOOKS}
        Path(os.environ["CORS_TIMED_OUTPUT"]).write_text(json.dumps({"flows": flows, "microseconds": per_flow}))


addons = [cors, Report()]
