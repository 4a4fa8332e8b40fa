"""What a script's module holds so that mitmproxy's walk over it on every event is cheap.

mitmproxy hands each event to a script by looking the event's name up on the script's
module, then on the addons in its ``addons``. Before Python 3.12 a name a module lacks
costs an exception every time (its message formatted and thrown away): a microsecond or
two, four times a flow for the HTTP events alone. A name bound to None is found at once
and passed over, since mitmproxy calls only what is set and callable.
"""

from __future__ import annotations

from collections.abc import Mapping

from mitmproxy import hooks

WARNED_OF = frozenset({"add_log"})  # mitmproxy warns of an addon that merely has this name


def events_as_none(namespace: Mapping[str, object]) -> dict[str, None]:
    """Every event mitmproxy knows that ``namespace`` does not name, bound to None: for a
    script to add to its module's globals once it has defined its ``addons``."""
    return dict.fromkeys(hooks.all_hooks.keys() - namespace.keys() - WARNED_OF)
