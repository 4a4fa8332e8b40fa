"""The combined addon: a rule's decision and the verdict on what it wrote are remembered
for the responses alike, and only for them."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import pytest
from mitmproxy import http
from mitmproxy.test import taddons, tflow, tutils

from mitmcors.addon import CHANGED_BY
from mitmcors.combined import Cors
from mitmcors.flows import VIEW
from mitmcors.observer import BLOCKED_MARKER

URL = "http://api.test/v1/items?page=2"


@pytest.fixture
def cors(tmp_path: Path):
    """The combined addon with a rule file, inside mitmproxy's test context (kept open:
    mitmproxy 12 closes its loop on exit)."""
    with contextlib.ExitStack() as stack:

        def make(text: str) -> Cors:
            rules = tmp_path / "rules.yaml"
            rules.write_text(text)
            addon = Cors()
            tctx = stack.enter_context(taddons.context(addon))
            tctx.configure(addon.rules, cors_rules=[str(rules)])
            return addon

        yield make


Lines = tuple[tuple[str, str], ...]


def exchange(
    addon: Cors, origin: str, request_headers: Lines = (), between: Callable[[http.HTTPFlow], None] | None = None,
    status: int = 200,
    response_headers: Lines = (("Content-Type", "application/json"),), url: str = URL,
) -> http.HTTPFlow:
    """A GET through both halves, cross-origin unless ``origin`` is empty, as mitmproxy
    calls them; ``between`` is another addon's ``responseheaders``, called after the rules'."""
    sent = ((b"Origin", origin.encode()),) if origin else ()
    headers = http.Headers([*sent, *((k.encode(), v.encode()) for k, v in request_headers)])
    request = tutils.treq(method=b"GET", headers=headers, content=b"")
    request.url = url
    f = tflow.tflow(req=request)
    addon.request(f)
    f.response = tutils.tresp(status_code=status, headers=http.Headers([(k.encode(), v.encode()) for k, v in response_headers]),
                              content=b"{}")
    addon.responseheaders(f)
    if between is not None:
        between(f)
    addon.response(f)
    return f


def test_one_rule_writing_the_same_lines_for_two_origins_gets_each_its_own_verdict(cors):
    addon = cors("rules:\n  - name: fixed\n    set: {Access-Control-Allow-Origin: 'http://a.test'}\n")
    judged = [exchange(addon, origin) for origin in ("http://a.test", "http://b.test", "http://a.test", "http://b.test")]
    assert [f.metadata.get(CHANGED_BY) for f in judged] == ["fixed"] * 4
    assert [f.marked == BLOCKED_MARKER for f in judged] == [False, True, False, True]
    assert addon.verdicts.summary().startswith("4 cross-origin flows seen, 2 blocked (AllowOriginMismatch 2)")


def test_a_rule_with_a_filter_is_matched_on_every_flow(cors):
    addon = cors(
        "rules:\n"
        "  - name: tagged\n    match: {filter: '~hq X-Lab'}\n    allow: {}\n"
        "  - name: untagged\n    break: missing-allow-origin-header\n"
    )
    tagged = (("X-Lab", "1"),)
    judged = [exchange(addon, "http://a.test", headers) for headers in (tagged, (), tagged, ())]
    assert [f.metadata.get(CHANGED_BY) for f in judged] == ["tagged", "untagged", "tagged", "untagged"]
    assert [f.marked == BLOCKED_MARKER for f in judged] == [False, True, False, True]


def test_lines_another_addon_changed_after_the_rule_are_judged_as_they_leave(cors):
    addon = cors("rules:\n  - name: bypass\n    allow: {}\n")

    def wrong_origin(f: http.HTTPFlow) -> None:
        f.response.headers["Access-Control-Allow-Origin"] = "http://elsewhere.test"

    judged = [exchange(addon, "http://a.test"), exchange(addon, "http://a.test", between=wrong_origin),
              exchange(addon, "http://a.test")]
    assert [f.response.headers["Access-Control-Allow-Origin"] for f in judged] == [
        "http://a.test", "http://elsewhere.test", "http://a.test"]
    assert [f.marked == BLOCKED_MARKER for f in judged] == [False, True, False]


def test_a_reload_forgets_the_decisions_of_the_rules_it_replaced(cors, tmp_path):
    addon = cors("rules:\n  - name: first\n    allow: {}\n")
    assert exchange(addon, "http://a.test").metadata[CHANGED_BY] == "first"
    replaced = tmp_path / "replaced.yaml"
    replaced.write_text("rules:\n  - name: second\n    break: missing-allow-origin-header\n")
    with taddons.context(addon) as tctx:
        tctx.configure(addon.rules, cors_rules=[str(replaced)])
        f = exchange(addon, "http://a.test")
    assert (f.metadata[CHANGED_BY], f.marked) == ("second", BLOCKED_MARKER)


def test_a_redirect_back_to_its_own_url_is_judged_hop_by_hop(cors):
    """Every hop is alike but for the redirects before it: Chromium fails the 21st."""
    addon = cors("rules:\n  - name: bypass\n    allow: {}\n")
    hops = [exchange(addon, "http://a.test", status=302, response_headers=(("Location", URL),)) for _ in range(21)]
    assert [f.metadata.get(CHANGED_BY) for f in hops] == ["bypass"] * 21
    assert [f.marked == BLOCKED_MARKER for f in hops] == [False] * 20 + [True]
    assert "ERR_TOO_MANY_REDIRECTS" in hops[-1].comment


def test_a_request_without_origin_leaves_a_redirect_chain_to_the_request_that_continues_it(cors):
    addon = cors("rules:\n  - name: mark\n    set: {X-Lab: '1'}\n")
    target = "http://api.test/v1/moved"
    exchange(addon, "http://a.test", status=302, response_headers=(("Location", target),))
    assert exchange(addon, "", url=target).metadata[CHANGED_BY] == "mark"  # the same URL, not fetched by CORS
    continued = exchange(addon, "http://a.test", url=target)
    assert continued.marked == BLOCKED_MARKER and f"(redirected from '{URL}')" in continued.comment


def test_a_request_without_origin_is_read_only_where_a_rule_or_a_redirect_may_need_it(cors):
    addon = cors(
        "rules:\n"
        "  - name: api\n    match: {host: api.test}\n    allow: {}\n"
        "  - name: tagged\n    match: {host: other.test}\n    set: {X-Lab: '1'}\n"
    )
    plain = exchange(addon, "")
    assert getattr(plain, VIEW, None) is None, "no rule acts on it and no browser judges it: nothing to read"
    assert CHANGED_BY not in plain.metadata and not plain.marked
    tagged = exchange(addon, "", url="http://other.test/v1")
    assert tagged.metadata[CHANGED_BY] == "tagged" and tagged.response.headers["X-Lab"] == "1"
    redirect = exchange(addon, "", status=302, response_headers=(("Location", "http://api.test/v2"),))
    assert getattr(redirect, VIEW, None) is not None, "a same-origin fetch's redirect may begin a chain"
    shouted = exchange(addon, "", request_headers=(("ORIGIN", "http://page.test"),))
    assert shouted.metadata[CHANGED_BY] == "api"
    assert shouted.response.headers["Access-Control-Allow-Origin"] == "http://page.test"
    assert addon.verdicts.summary().startswith("1 cross-origin flow seen, 0 blocked")
