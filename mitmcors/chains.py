"""Redirect chains as a browser follows them, pieced together from single flows.

The proxy sees each hop of a redirected fetch as a flow of its own. What Chromium
says about a hop depends on the chain: it counts the redirects (20 at most) and its
console names the URL the chain began at ("redirected from ..."). A redirect's
target is remembered until the browser asks for it. Pure: no mitmproxy import.
"""

from __future__ import annotations

import collections
from typing import NamedTuple

from mitmcors import urls

CAPACITY = 4096  # targets remembered at once; the oldest are forgotten first


class Chain(NamedTuple):
    """Where a request's redirect chain began, and how many redirects led to it."""

    started_at: str
    origin: str  # the page's origin, which the console names even once Origin is "null"
    redirects: int


class RedirectChains:
    """Targets of the redirects seen so far, each with the chain it continues."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._capacity = capacity
        self._targets: collections.OrderedDict[str, Chain] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._targets)

    def find(self, url: str, consume: bool) -> Chain | None:
        """The chain a request for ``url`` continues, if it is a redirect's target.

        A preflight for the target leaves the chain for the request that follows it.
        """
        key = _key(url)
        return self._targets.pop(key, None) if consume else self._targets.get(key)

    def follow(self, chain: Chain | None, url: str, origin: str, location: str) -> None:
        """Remember that the response to ``url`` redirects to ``location``."""
        target = urls.parse(location.strip(), url)
        if target is None:
            return
        started = chain or Chain(url, origin, 0)
        self._targets[target.href] = started._replace(redirects=started.redirects + 1)
        self._targets.move_to_end(target.href)
        while len(self._targets) > self._capacity:
            self._targets.popitem(last=False)


def _key(url: str) -> str:
    parsed = urls.parse(url)
    return parsed.href if parsed else url
