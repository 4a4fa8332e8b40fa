"""The floor for a script addon: the cors addon's flow hooks, doing nothing.

``bench/run.py`` loads it (``mitmdump -s bench/noop_addon.py``) beside the addon, so
that every run shows what mitmproxy's calling a script's hooks costs by itself: for
each event it walks the script loader, the script, its module and the addon, and calls
each hook the addon has. Its module names the other events as None, as the addon's
does (``mitmcors.scriptmodule``), so that it stays the floor for any script.
"""

from mitmproxy import http

from mitmcors.scriptmodule import events_as_none


class NoOp:
    def request(self, flow: http.HTTPFlow) -> None:
        pass

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        pass

    def response(self, flow: http.HTTPFlow) -> None:
        pass

    def error(self, flow: http.HTTPFlow) -> None:
        pass


addons = [NoOp()]
globals().update(events_as_none(globals()))  # as cors_addon.py does: the floor of a script's cost
