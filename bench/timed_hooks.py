"""Timing a script's flow hooks inside a real mitmdump, by the CPU time of the thread
that runs them: wall time would count the other process too wherever two mitmdumps
share a core, as ``run.py`` measures them. ``timed_addon.py`` and ``timed_noop.py``
load it; ``in_proxy.py`` loads those.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mitmproxy import ctx, http

HOOKS = ("request", "responseheaders", "response")


class Timed:
    """Wraps ``addon``'s flow hooks; at shutdown writes their CPU µs a flow, by hook, to
    the file its option ``timed_output`` names."""

    def __init__(self, addon: Any) -> None:
        self.seconds = dict.fromkeys(HOOKS, 0.0)
        self.flows = 0
        for name in HOOKS:
            setattr(addon, name, self._timed(name, getattr(addon, name)))

    def _timed(self, name: str, hook: Callable[[http.HTTPFlow], None]) -> Callable[[http.HTTPFlow], None]:
        clock, seconds = time.thread_time, self.seconds

        def run(flow: http.HTTPFlow) -> None:
            started = clock()
            hook(flow)
            seconds[name] += clock() - started

        return run

    def load(self, loader) -> None:
        loader.add_option("timed_output", str, "", "Where to write the hooks' CPU µs a flow at shutdown.")

    def response(self, flow: http.HTTPFlow) -> None:
        self.flows += 1

    def done(self) -> None:
        per_flow = {name: seconds / self.flows * 1e6 if self.flows else 0.0 for name, seconds in self.seconds.items()}
        Path(ctx.options.timed_output).write_text(json.dumps({"flows": self.flows, "microseconds": per_flow}))
