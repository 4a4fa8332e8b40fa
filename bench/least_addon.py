"""The bound for any script: the least Python that does the addon's job on ``run.py``'s flows.

``bench/run.py`` measures it beside the addon, so that every run shows what a script that
does the job at all costs a proxy, against the do-nothing script (``noop_addon.py``,
what being a script costs) and the addon (what doing it in general costs). For a
cross-origin GET it does what the addon's one matching rule and its verdicts do, and
nothing a general tool needs besides: it reads the request's ``Origin`` and ``Host`` in one
pass, finds the rule by host in a dict, writes the four lines the rule writes (the
response's own CORS lines dropped), and judges the response by a verdict remembered by
the response's shape. Its module names the other events as None, as the addon's does
(``mitmcors.scriptmodule``). Hard-wired to the benchmark's one rule; not a tool.
"""

from __future__ import annotations

import collections

from mitmproxy import http

from mitmcors.scriptmodule import events_as_none

RULES = {"127.0.0.1": b"content-type, x-total, content-length"}  # by host: the headers a page may read
CORS_LINES = (b"access-control-", b"vary")  # the lines whose values a verdict reads


class Least:
    """The addon's one rule and its verdicts, for the benchmark's flows only."""

    def __init__(self) -> None:
        self.verdicts: dict[tuple[object, ...], str] = {}
        self.counts: collections.Counter[str] = collections.Counter()

    def request(self, flow: http.HTTPFlow) -> None:
        """The check the addon makes of every request for a preflight to answer: these
        flows carry none, so nothing follows it."""
        if flow.request.data.method == b"OPTIONS":
            return

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        origin = host = None
        for name, value in flow.request.data.headers.fields:
            lowered = name.lower()
            if lowered == b"origin":
                origin = value
            elif lowered == b"host":
                host = value
        exposed = RULES.get(flow.request.data.host)
        if origin is None or origin == b"http://" + (host or b"") or exposed is None:
            return
        headers = flow.response.data.headers
        kept = tuple(line for line in headers.fields if not line[0].lower().startswith(b"access-control-"))
        headers.fields = kept + (
            (b"access-control-allow-origin", origin), (b"access-control-allow-credentials", b"true"),
            (b"access-control-expose-headers", exposed), (b"vary", b"origin"),
        )

    def response(self, flow: http.HTTPFlow) -> None:
        origin = next((value for name, value in flow.request.data.headers.fields if name.lower() == b"origin"), None)
        if origin is None:
            return
        response = flow.response.data
        shape = tuple(line if line[0].lower().startswith(CORS_LINES) else line[0] for line in response.headers.fields)
        key = (origin, response.status_code, shape)
        verdict = self.verdicts.get(key)
        if verdict is None:
            verdict = self.verdicts[key] = "allowed" if (b"access-control-allow-origin", origin) in shape else "blocked"
        self.counts[verdict] += 1

    def error(self, flow: http.HTTPFlow) -> None:
        pass


addons = [Least()]
globals().update(events_as_none(globals()))  # as cors_addon.py does: the floor of a script's cost
