"""Whether the proxy lets strangers in: a rule that echoes any origin with credentials is
a lab convenience on loopback, and a hole in every visitor's logins anywhere else.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from mitmproxy.proxy import mode_specs

from mitmcors.rules import Allow, Break, Rule, RuleSet

# An origin no rule file names: a policy that allows it allows every website.
ANY_WEBSITE = "https://any-website.example"
# Modes that capture this machine's own traffic and listen on no address.
LOCAL_CAPTURE = frozenset({"local", "osproxy", "tun"})


def warning(rules: RuleSet, listen_host: str, modes: Sequence[str]) -> str | None:
    """The start-up warning when a rule echoes any origin with credentials and the proxy
    listens beyond loopback, or None."""
    rule = next((rule for rule in rules.rules if echoes_any_origin_with_credentials(rule)), None)
    address = public_address(listen_host, modes)
    if rule is None or address is None:
        return None
    return (
        f"cors: rule {rule.name!r} lets any origin read responses with credentials, and mitmproxy "
        f"listens on {address or 'every interface'}: any website a visitor of this proxy opens "
        "could read that user's logged-in APIs through it. Listen on loopback only "
        "(--listen-host 127.0.0.1) or list the origins (allow.origins)"
    )


def echoes_any_origin_with_credentials(rule: Rule) -> bool:
    """An allow (or a break, made correct by the allow defaults before its one fault)
    whose origins take any website, with credentials."""
    action = rule.action
    return isinstance(action, (Allow, Break)) and action.policy.credentials and action.policy.allows_origin(ANY_WEBSITE)


def public_address(listen_host: str, modes: Sequence[str]) -> str | None:
    """The first address beyond loopback a proxy mode listens on ("" is every interface), or None."""
    for spec in modes:
        try:
            mode = mode_specs.ProxyMode.parse(spec)
        except ValueError:  # mitmproxy refuses it itself
            continue
        host = mode.listen_host(listen_host)
        if mode.type_name not in LOCAL_CAPTURE and not _is_loopback(host):
            return host
    return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # "" (every interface) or a host name
        return False
