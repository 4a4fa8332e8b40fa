"""The addon mitmproxy loads: the rules and the verdicts behind one object.

mitmproxy's dispatch costs something for every addon on every event, so one object
answers every hook and hands it on: the rules change a flow first, then the verdicts
explain it as it leaves. ``CorsRules`` and ``CorsVerdicts`` stay addons of their own,
to test or load apart.
"""

from __future__ import annotations

import logging

from mitmproxy import command

from mitmcors import lookup
from mitmcors.addon import CorsRules
from mitmcors.observer import CorsVerdicts


logger = logging.getLogger(__name__)


class Cors:
    """``CorsRules`` then ``CorsVerdicts``, as one addon."""

    def __init__(self) -> None:
        self.rules = CorsRules()
        self.verdicts = CorsVerdicts()
        # A flow hook only one half has is that half's own: no call in between, on every flow.
        self.request = self.rules.request
        self.responseheaders = self.rules.responseheaders
        self.response = self.verdicts.response
        self.error = self.verdicts.error

    def load(self, loader) -> None:
        self.rules.load(loader)
        self.verdicts.load(loader)

    def configure(self, updated: set[str]) -> None:
        self.rules.configure(updated)
        self.verdicts.configure(updated)

    def running(self) -> None:
        self.rules.running()
        self.verdicts.running()

    def done(self) -> None:
        self.rules.done()
        self.verdicts.done()

    @command.command("cors.reload")
    def reload(self) -> None:
        """Reload the rule files now; a broken file keeps the last good rules."""
        self.rules.reload()

    @command.command("cors.explain")
    def explain(self, line: str) -> str:
        """Name the CORS failure a pasted console line (Chromium, Firefox or WebKit) reports,
        the break scenarios that reproduce it, a ready rule and the server-side fix."""
        text = lookup.explain(line).text()
        logger.info("cors: %s", text)
        return text
