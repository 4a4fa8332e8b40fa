"""The floor for a script addon: the cors addon's flow hooks, doing nothing.

``bench/run.py`` loads it (``mitmdump -s bench/noop_addon.py``) beside the addon, so
that every run shows what mitmproxy's calling a script's hooks costs by itself: for
each event it walks the script loader, the script, its module and the addon, and calls
each hook the addon has.
"""

from mitmproxy import http


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
