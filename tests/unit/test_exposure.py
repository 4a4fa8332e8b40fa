"""Safe by default: a rule that echoes any origin with credentials on a proxy that listens
beyond loopback is warned about once, at start-up."""

from __future__ import annotations

import logging

import pytest
from mitmproxy.test import taddons

from mitmcors.addon import CorsRules
from support.threads import run_in_own_thread

BYPASS = "rules:\n  - name: bypass\n    allow: {}\n"
EXPOSED = "cors: rule 'bypass' lets any origin read responses with credentials, and mitmproxy listens on "
ADVICE = (": any website a visitor of this proxy opens could read that user's logged-in APIs through it. "
          "Listen on loopback only (--listen-host 127.0.0.1) or list the origins (allow.origins)")


def start(rules_text: str, tmp_path, reload_text: str | None = None, **options) -> list[str]:
    """Configure and start the addon as mitmdump does; the warnings it logs."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(rules_text)
    addon = CorsRules()
    warnings: list[str] = []

    async def run() -> None:
        with taddons.context(addon) as tctx:
            tctx.options.update(**options)
            tctx.configure(addon, cors_rules=[str(rules)])
            addon.running()
            if reload_text is not None:
                rules.write_text(reload_text)
                tctx.command(addon.reload)
            addon.done()

    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: warnings.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("mitmcors").addHandler(handler)
    try:
        run_in_own_thread(run)
    finally:
        logging.getLogger("mitmcors").removeHandler(handler)
    return warnings


@pytest.mark.parametrize(
    "listen_host, mode, address",
    [
        ("", ["regular"], "every interface"),
        ("0.0.0.0", ["regular"], "0.0.0.0"),
        ("::", ["regular"], "::"),
        ("192.168.1.5", ["regular"], "192.168.1.5"),
        ("proxy.lab.example", ["regular"], "proxy.lab.example"),
        ("127.0.0.1", ["regular", "reverse:http://127.0.0.1:3000@0.0.0.0:8081"], "0.0.0.0"),
        ("127.0.0.1", ["upstream:http://127.0.0.1:3128@8082"], None),
        ("127.0.0.1", ["regular"], None),
        ("127.0.0.2", ["regular"], None),
        ("::1", ["regular"], None),
        ("localhost", ["regular"], None),
        ("0.0.0.0", ["regular@127.0.0.1:8080"], None),
        ("0.0.0.0", ["reverse:http://127.0.0.1:3000@[::1]:8080"], None),
        ("", ["local"], None),
    ],
)
def test_an_echoing_rule_is_warned_about_where_the_proxy_listens_beyond_loopback(tmp_path, listen_host, mode, address):
    warnings = start(BYPASS, tmp_path, listen_host=listen_host, mode=mode)
    assert warnings == ([EXPOSED + address + ADVICE] if address else [])


@pytest.mark.parametrize(
    "action, echoes",
    [
        ("allow: {}", True),
        ("allow: {origins: '*'}", True),  # spelled out as the request's origin under credentials
        ("allow: {origins: ['*']}", True),  # a glob that takes every origin
        ("allow: {origins: ['http*://*']}", True),
        ("allow: {preflight: forward}", True),
        ("break: preflight-invalid-status", True),  # everything but its one fault is made correct
        ("allow: {credentials: false}", False),
        ("allow: {origins: '*', credentials: false}", False),
        ("allow: {origins: ['http://localhost:*', 'https://app.test']}", False),
        ("strip: all\n    set: {Access-Control-Allow-Origin: 'https://app.test', Access-Control-Allow-Credentials: 'true'}", False),
    ],
)
def test_only_rules_that_echo_any_origin_with_credentials_are_warned_about(tmp_path, action, echoes):
    warnings = start(f"rules:\n  - name: bypass\n    {action}\n", tmp_path, listen_host="0.0.0.0")
    assert warnings == ([EXPOSED + "0.0.0.0" + ADVICE] if echoes else [])


def test_the_warning_comes_once(tmp_path):
    warnings = start(BYPASS, tmp_path, reload_text=BYPASS.replace("{}", "{max_age: 5}"), listen_host="0.0.0.0")
    assert warnings == [EXPOSED + "0.0.0.0" + ADVICE]


def test_the_warning_comes_when_an_edit_brings_such_a_rule(tmp_path):
    listed = "rules:\n  - name: bypass\n    allow: {origins: ['http://localhost:*']}\n"
    assert start(listed, tmp_path, reload_text=BYPASS, listen_host="0.0.0.0") == [EXPOSED + "0.0.0.0" + ADVICE]
