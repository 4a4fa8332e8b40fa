"""Timing a script's flow hooks inside a real mitmdump: ``in_proxy.py`` loads each script
it measures through a script of its own that wraps the addon in ``Timed``.

Each call is timed by the wall clock, which costs no system call: the thread's CPU clock
is one, and the addon's hooks timed by it read 10 to 60% longer. Where two
mitmdumps share a core, as ``run.py`` measures them, a call may include the other's
turn: calls longer than ``PREEMPTED`` are left out, as no hook takes that long once
warm, while the other process holds the core for milliseconds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mitmproxy import ctx, http

HOOKS = ("request", "responseheaders", "response")
PREEMPTED = 200e-6  # seconds: a call this long was interrupted by another process


class Timed:
    """Wraps ``addon``'s flow hooks; at shutdown writes their mean µs a call, by hook,
    to the file its option ``timed_output`` names."""

    def __init__(self, addon: Any) -> None:
        self.seconds = dict.fromkeys(HOOKS, 0.0)
        self.calls = dict.fromkeys(HOOKS, 0)
        for name in HOOKS:
            setattr(addon, name, self._timed(name, getattr(addon, name)))

    def _timed(self, name: str, hook: Callable[[http.HTTPFlow], None]) -> Callable[[http.HTTPFlow], None]:
        clock, seconds, calls = time.perf_counter, self.seconds, self.calls

        def run(flow: http.HTTPFlow) -> None:
            started = clock()
            hook(flow)
            took = clock() - started
            if took < PREEMPTED:
                seconds[name] += took
                calls[name] += 1

        return run

    def load(self, loader) -> None:
        loader.add_option("timed_output", str, "", "Where to write the hooks' µs a call at shutdown.")

    def done(self) -> None:
        per_call = {name: self.seconds[name] / calls * 1e6 if calls else 0.0 for name, calls in self.calls.items()}
        Path(ctx.options.timed_output).write_text(json.dumps({"calls": self.calls, "microseconds": per_call}))
