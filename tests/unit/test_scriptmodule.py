"""The script's module, as mitmproxy loads it: every event is found on it at once, and
mitmproxy still calls the addon's hooks, and only those."""

from __future__ import annotations

import logging

import pytest
from mitmproxy import hooks, http
from mitmproxy.addons import script
from mitmproxy.proxy.layers.http import HttpResponseHeadersHook, HttpResponseHook
from mitmproxy.test import taddons, tflow, tutils

from mitmcors.addon import CHANGED_BY
from mitmcors.scriptmodule import WARNED_OF, events_as_none
from support.servers import REPO_ROOT

SCRIPT = REPO_ROOT / "cors_addon.py"


@pytest.fixture
def loaded():
    """``cors_addon.py`` loaded the way mitmproxy's script loader loads it, and added,
    with ``rules/bypass-all.yaml`` active."""
    module = script.load_script(str(SCRIPT))
    with taddons.context(module) as tctx:
        tctx.options.update(cors_rules=[str(REPO_ROOT / "rules" / "bypass-all.yaml")])
        yield tctx, module


def test_every_event_but_the_warned_of_is_named_on_the_module_as_none(loaded):
    _, module = loaded
    named = vars(module)
    missing = [name for name in hooks.all_hooks if name not in named and name not in WARNED_OF]
    assert not missing, "each of these costs an exception per lookup before Python 3.12"
    assert {name: named[name] for name in hooks.all_hooks.keys() - WARNED_OF if named[name] is not None} == {}
    assert {"requestheaders", "request", "responseheaders", "response", "error"} <= hooks.all_hooks.keys()


def test_adding_the_module_draws_no_warning_from_mitmproxy(caplog):
    with caplog.at_level(logging.WARNING), taddons.context(script.load_script(str(SCRIPT))):
        pass
    assert not [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]


def test_mitmproxy_still_calls_the_addons_hooks_through_the_module(loaded):
    tctx, module = loaded
    request = tutils.treq(headers=http.Headers(origin="http://app.test"))
    request.url = "http://api.test/items"
    flow = tflow.tflow(req=request, resp=tutils.tresp(headers=http.Headers(content_type="application/json")))
    for hook in (HttpResponseHeadersHook(flow), HttpResponseHook(flow)):
        tctx.master.addons.invoke_addon_sync(module, hook)
    assert flow.response.headers["access-control-allow-origin"] == "http://app.test"
    assert flow.metadata[CHANGED_BY]


def test_a_name_the_namespace_defines_is_left_alone():
    def request(flow: http.HTTPFlow) -> None:
        pass

    added = events_as_none({"request": request, "addons": []})
    assert "request" not in added and "addons" not in added
    assert added["responseheaders"] is None
    assert not WARNED_OF & added.keys()
