"""The verdicts in mitmproxy's own harness: report lines, marks, log lines, summary."""

from __future__ import annotations

import json
import logging

import pytest
from mitmproxy import exceptions, flow as mitmflow, flowfilter, http
from mitmproxy.test import taddons, tflow, tutils

from mitmcors.addon import CHANGED_BY
from mitmcors.observer import BLOCKED_MARKER, WARNED_MARKER, CorsVerdicts

ORIGIN = "http://localhost:3000"


def flow(method="GET", headers=(), response_headers=(), status=200, url="http://api.test/v1/items"):
    request = tutils.treq(method=method.encode(), headers=http.Headers([(k.encode(), v.encode()) for k, v in headers]), content=b"")
    request.url = url
    request.headers["Host"] = "api.test"
    response = tutils.tresp(status_code=status, headers=http.Headers([(k.encode(), v.encode()) for k, v in response_headers]), content=b"")
    return tflow.tflow(req=request, resp=response)


@pytest.fixture
def observer(tmp_path):
    addon = CorsVerdicts()
    report = tmp_path / "report.jsonl"
    with taddons.context(addon) as tctx:
        tctx.configure(addon, cors_report=str(report))
        addon.lines = lambda: [json.loads(line) for line in report.read_text().splitlines()]
        yield addon


def test_a_blocked_flow_is_reported_logged_and_marked(observer, caplog):
    f = flow("GET", [("Origin", ORIGIN), ("Sec-Fetch-Mode", "cors")], [("Content-Type", "text/plain")])
    with caplog.at_level(logging.INFO):
        observer.response(f)
    (entry,) = observer.lines()
    assert entry == {
        "url": "http://api.test/v1/items", "method": "GET", "origin": ORIGIN, "preflight": False,
        "requested_method": None, "status": 200, "verdict": "blocked", "reason": "MissingAllowOriginHeader",
        "message": "Access to fetch at 'http://api.test/v1/items' from origin 'http://localhost:3000' has been "
                   "blocked by CORS policy: No 'Access-Control-Allow-Origin' header is present on the requested resource.",
        "fix": "send `Access-Control-Allow-Origin: http://localhost:3000` on this response (error responses need it too)",
        "rule": None, "warnings": [], "unreadable_headers": [], "redirected_from": None, "needs_preflight": False,
        "engines": {
            "firefox": {"verdict": "blocked", "reason": "MissingAllowOriginHeader", "code": "CORSMissingAllowOrigin",
                        "message": "Cross-Origin Request Blocked: The Same Origin Policy disallows reading the remote resource "
                                   "at http://api.test/v1/items. (Reason: CORS header ‘Access-Control-Allow-Origin’ missing). "
                                   "Status code: 200."},
            "webkit": {"verdict": "blocked", "reason": "MissingAllowOriginHeader",
                       "message": "Origin http://localhost:3000 is not allowed by Access-Control-Allow-Origin. Status code: 200"},
        },
    }
    assert f.marked == BLOCKED_MARKER and "MissingAllowOriginHeader" in f.comment
    assert f.comment.splitlines()[1:] == [
        "Firefox: MissingAllowOriginHeader: CORSMissingAllowOrigin: Cross-Origin Request Blocked: The Same Origin Policy "
        "disallows reading the remote resource at http://api.test/v1/items. (Reason: CORS header "
        "‘Access-Control-Allow-Origin’ missing). Status code: 200.",
        "WebKit: MissingAllowOriginHeader: Origin http://localhost:3000 is not allowed by Access-Control-Allow-Origin. "
        "Status code: 200",
    ]
    (record,) = [r for r in caplog.records if r.name == "mitmcors.observer"]
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith("cors: blocked GET http://api.test/v1/items (origin http://localhost:3000): MissingAllowOriginHeader: ")
    assert record.getMessage().endswith("Fix: send `Access-Control-Allow-Origin: http://localhost:3000` on this response (error responses need it too).")


def test_a_preflight_names_what_it_announces(observer):
    f = flow("OPTIONS", [("Origin", ORIGIN), ("Access-Control-Request-Method", "PUT"), ("Access-Control-Request-Headers", "x-test")],
             [("Access-Control-Allow-Origin", ORIGIN), ("Access-Control-Allow-Methods", "PUT")], status=204)
    observer.response(f)
    (entry,) = observer.lines()
    assert (entry["preflight"], entry["requested_method"], entry["reason"]) == (True, "PUT", "HeaderDisallowedByPreflightResponse")
    assert entry["fix"] == "send `Access-Control-Allow-Headers: x-test` in the preflight response"


def test_an_unknown_credentials_mode_that_decides_gives_both_outcomes(observer, caplog):
    f = flow("GET", [("Origin", ORIGIN)], [("Access-Control-Allow-Origin", "*")])
    with caplog.at_level(logging.INFO):
        observer.response(f)
    (entry,) = observer.lines()
    assert (entry["verdict"], entry["reason"]) == ("allowed", None)
    assert entry["with_credentials"] == {"verdict": "blocked", "reason": "WildcardOriginNotAllowed"}
    assert entry["warnings"] == ["the credentials mode is not on the wire and decides this verdict: with credentials: 'include' the browser blocks it (WildcardOriginNotAllowed)"]
    assert f.marked == WARNED_MARKER
    assert "cors: allowed with warnings GET http://api.test/v1/items" in caplog.text


def test_an_allowed_flow_is_reported_but_neither_logged_nor_marked(observer, caplog):
    f = flow("GET", [("Origin", ORIGIN), ("Cookie", "a=b")], [("Access-Control-Allow-Origin", ORIGIN), ("Access-Control-Allow-Credentials", "true")])
    f.metadata[CHANGED_BY] = "bypass"
    with caplog.at_level(logging.INFO):
        observer.response(f)
    (entry,) = observer.lines()
    assert (entry["verdict"], entry["rule"], entry["message"], entry["fix"]) == ("allowed", "bypass", None, None)
    assert "with_credentials" not in entry
    assert f.marked == "" and "cors:" not in caplog.text


@pytest.mark.parametrize(
    "headers",
    [
        [],  # no Origin
        [("Origin", "http://api.test")],  # same origin
        [("Origin", ORIGIN), ("Sec-Fetch-Mode", "no-cors")],  # no CORS check
        [("Origin", ORIGIN), ("Sec-Fetch-Mode", "navigate")],
    ],
)
def test_flows_the_browser_does_not_check_are_not_judged(observer, headers):
    observer.response(flow("GET", headers))
    assert observer.lines() == []


@pytest.mark.parametrize("streamed, error, judged", [
    (True, "Client disconnected.", True),  # the headers had left: the browser judged them and went away
    (True, mitmflow.Error.KILLED_MESSAGE, False),
    (False, "Client disconnected.", False),  # a buffered response never reached the browser
])
def test_a_streamed_response_that_ends_in_an_error_is_judged_on_the_headers_that_left(observer, streamed, error, judged):
    f = flow("GET", [("Origin", ORIGIN)], [("Location", "http://api.test/v1/items"), ("Access-Control-Allow-Origin", ORIGIN)], status=307)
    f.response.stream = streamed
    f.error = mitmflow.Error(error)
    observer.error(f)
    assert [(entry["status"], entry["verdict"]) for entry in observer.lines()] == ([(307, "allowed")] if judged else [])


def test_an_unreachable_backend_names_the_real_cause(observer):
    f = tflow.tflow(req=tutils.treq(headers=http.Headers([(b"Origin", ORIGIN.encode())])), err=True)
    observer.error(f)
    (entry,) = observer.lines()
    assert (entry["verdict"], entry["reason"], entry["status"]) == ("blocked", "MissingAllowOriginHeader", 502)
    assert entry["fix"] == "make the backend reachable (mitmproxy could not connect: error)"
    assert "the real cause is the connection error" in entry["warnings"][0]


def test_the_summary_counts_what_was_seen(observer, caplog):
    observer.response(flow("GET", [("Origin", ORIGIN)]))
    observer.response(flow("GET", [("Origin", ORIGIN)]))
    observer.response(flow("GET", [("Origin", ORIGIN)], [("Access-Control-Allow-Origin", "*")]))
    with caplog.at_level(logging.INFO):
        observer.done()
    assert "cors: 3 cross-origin flows seen, 2 blocked (MissingAllowOriginHeader 2), 1 with warnings\n" in caplog.text


def test_the_same_warning_for_the_same_rule_and_host_is_logged_once_and_counted(observer, caplog):
    wildcard = [("Access-Control-Allow-Origin", "*")]
    flows = [flow("GET", [("Origin", ORIGIN)], wildcard, url=f"http://api.test/v1/{n}") for n in range(3)]
    flows.append(flow("GET", [("Origin", ORIGIN)], wildcard, url="http://other.test/v1/items"))
    flows[-1].request.headers["Host"] = "other.test"
    with caplog.at_level(logging.INFO):
        for f in flows:
            observer.response(f)
        observer.done()
    logged = [r.getMessage() for r in caplog.records if "allowed with warnings" in r.getMessage()]
    assert [line.split()[5] for line in logged] == ["http://api.test/v1/0", "http://other.test/v1/items"]
    assert all(f.comment.startswith("cors: allowed with warnings GET ") for f in flows), "every flow keeps its comment"
    assert "4 with warnings (2 not logged: the same warning for the same rule and host)" in caplog.text


def test_only_a_blocked_flow_comment_starts_as_the_documented_filter_expects(observer):
    blocked = flow("GET", [("Origin", ORIGIN)])
    warned = flow("GET", [("Origin", ORIGIN)], [("Access-Control-Allow-Origin", "*")])
    observer.response(blocked)
    observer.response(warned)
    only_blocked = flowfilter.parse('~comment "^cors: blocked"')
    assert (bool(only_blocked(blocked)), bool(only_blocked(warned))) == (True, False)
    assert not flowfilter.parse("~comment blocked")(warned), "a warned flow's comment never says blocked"


def test_a_report_path_that_cannot_be_written_is_refused(tmp_path, caplog):
    addon = CorsVerdicts()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, cors_report=str(tmp_path / "missing" / "r.jsonl"))
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
            f"cors_report: cannot write {tmp_path / 'missing' / 'r.jsonl'}: No such file or directory"
        ]
        addon.running()
        with pytest.raises(exceptions.OptionsError, match="cannot write"):
            tctx.configure(addon, cors_report=str(tmp_path / "missing" / "r.jsonl"))


@pytest.mark.parametrize("message", ["Client disconnected.", "stream reset by client (CANCEL)", "Connection killed."])
def test_errors_on_the_client_side_are_not_judged(observer, message):
    f = tflow.tflow(req=tutils.treq(headers=http.Headers([(b"Origin", ORIGIN.encode())])), err=True)
    f.error.msg = message
    observer.error(f)
    assert observer.lines() == []


def test_odd_bytes_are_shown_readably_everywhere(observer):
    f = flow("GET", [], [("Content-Type", "text/plain")])
    f.request.headers[b"Origin"] = b"http://\xff.test"
    f.marked, f.comment = ":star:", "tester's note"
    observer.response(f)
    (entry,) = observer.lines()
    assert entry["origin"] == "http://\\xff.test"
    assert f.marked == ":star:" and f.comment.startswith("tester's note\ncors: blocked GET")
    f.comment.encode("utf-8")  # a flow file can store it


def test_the_report_says_what_needs_a_preflight_and_how_long_one_is_cached(observer):
    observer.response(flow("PUT", [("Origin", ORIGIN)], [("Access-Control-Allow-Origin", ORIGIN)]))
    observer.response(flow("OPTIONS", [("Origin", ORIGIN), ("Access-Control-Request-Method", "PUT")],
                           [("Access-Control-Allow-Origin", ORIGIN), ("Access-Control-Max-Age", "86400")], status=204))
    actual, preflight = observer.lines()
    assert actual["needs_preflight"] is True and "preflight_cache_seconds" not in actual
    assert preflight["preflight_cache_seconds"] == 7200 and "needs_preflight" not in preflight


def test_a_redirect_chain_is_followed_across_flows(observer):
    """The console names the URL the chain began at and the page's origin, even once the
    request carries Origin: null after a cross-origin hop."""
    first = flow("GET", [("Origin", ORIGIN), ("Sec-Fetch-Mode", "cors")],
                 [("Access-Control-Allow-Origin", "*"), ("Location", "http://other.test/b")], status=302)
    second = flow("GET", [("Origin", "null"), ("Sec-Fetch-Mode", "cors")], [("Access-Control-Allow-Origin", ORIGIN)],
                  url="http://other.test/b")
    second.request.headers["Host"] = "other.test"
    observer.response(first)
    observer.response(second)
    hop, target = observer.lines()
    assert (hop["verdict"], hop["redirected_from"]) == ("allowed", None)
    assert (target["reason"], target["redirected_from"]) == ("AllowOriginMismatch", "http://api.test/v1/items")
    assert target["message"].startswith(
        "Access to fetch at 'http://other.test/b' (redirected from 'http://api.test/v1/items') from origin "
        "'http://localhost:3000' has been blocked by CORS policy: The 'Access-Control-Allow-Origin' header has a value "
        "'http://localhost:3000' that is not equal to the supplied origin."
    )


def test_a_redirect_to_a_disallowed_scheme_names_the_target(observer):
    f = flow("GET", [("Origin", ORIGIN), ("Sec-Fetch-Mode", "cors")],
             [("Access-Control-Allow-Origin", "*"), ("Location", "ftp://other.test/x")], status=302)
    observer.response(f)
    (entry,) = observer.lines()
    assert entry["reason"] == "CorsDisabledScheme"
    assert entry["message"].startswith("Access to fetch at 'ftp://other.test/x' (redirected from 'http://api.test/v1/items') ")


def test_the_twenty_first_redirect_fails_as_a_network_error(observer):
    for hop in range(21):
        f = flow("GET", [("Origin", ORIGIN), ("Sec-Fetch-Mode", "cors")],
                 [("Access-Control-Allow-Origin", "*"), ("Location", f"/r{hop + 1}")], status=302,
                 url=f"http://api.test/r{hop}")
        observer.response(f)
    lines = observer.lines()
    assert [line["verdict"] for line in lines] == ["allowed"] * 20 + ["blocked"]
    assert (lines[-1]["reason"], lines[-1]["message"]) == ("TooManyRedirects", "Failed to load resource: net::ERR_TOO_MANY_REDIRECTS")


def test_a_preflight_for_a_cache_mode_that_skips_the_cache_is_never_reused(observer):
    f = flow("OPTIONS", [("Origin", ORIGIN), ("Access-Control-Request-Method", "PUT"), ("Pragma", "no-cache"),
                         ("Cache-Control", "no-cache")],
             [("Access-Control-Allow-Origin", ORIGIN), ("Access-Control-Allow-Methods", "PUT"), ("Access-Control-Max-Age", "600")],
             status=204)
    observer.response(f)
    (entry,) = observer.lines()
    assert entry["preflight_cache_seconds"] == 0


def test_an_engine_that_names_another_reason_says_so_everywhere(observer, caplog):
    """WebKit judges a preflight's status before its headers: a backend with no OPTIONS
    handler is an invalid status there, a missing Allow-Origin in Chromium and Firefox."""
    f = flow("OPTIONS", [("Origin", ORIGIN), ("Access-Control-Request-Method", "PUT")], [], status=501)
    with caplog.at_level(logging.INFO):
        observer.response(f)
        observer.done()
    (entry,) = observer.lines()
    assert entry["reason"] == "PreflightMissingAllowOriginHeader"
    assert entry["engines"]["webkit"] == {"verdict": "blocked", "reason": "PreflightInvalidStatus",
                                          "message": "Preflight response is not successful. Status code: 501"}
    assert entry["engines"]["firefox"]["reason"] == "PreflightMissingAllowOriginHeader"
    assert "Elsewhere: WebKit reports PreflightInvalidStatus." in caplog.text and "Firefox reports" not in caplog.text
    assert "\nWebKit: PreflightInvalidStatus: Preflight response is not successful. Status code: 501" in f.comment
    assert ("1 cross-origin flow seen, 1 blocked (PreflightMissingAllowOriginHeader 1), 0 with warnings; "
            "WebKit: 1 blocked (PreflightInvalidStatus 1)") in caplog.text


def test_an_engine_entry_names_where_it_needs_or_keeps_a_preflight_differently(observer):
    observer.response(flow("GET", [("Origin", ORIGIN), ("Cookie", "a=b"), ("Range", "BYTES=0-10"), ("DPR", "2")],
                           [("Access-Control-Allow-Origin", ORIGIN), ("Access-Control-Allow-Credentials", "true")]))
    observer.response(flow("OPTIONS", [("Origin", ORIGIN), ("Access-Control-Request-Method", "PUT")],
                           [("Access-Control-Allow-Origin", ORIGIN), ("Access-Control-Allow-Methods", "*"),
                            ("Access-Control-Max-Age", "86400")], status=204))
    actual, preflight = observer.lines()
    assert actual["needs_preflight"] is False
    assert actual["engines"] == {"firefox": {"verdict": "allowed", "reason": None, "message": None, "needs_preflight": True},
                                 "webkit": {"verdict": "allowed", "reason": None, "message": None, "needs_preflight": True}}
    assert preflight["preflight_cache_seconds"] == 7200
    assert preflight["engines"]["firefox"]["preflight_cache_seconds"] == 0  # allowed only through '*'
    assert preflight["engines"]["webkit"]["preflight_cache_seconds"] == 600


@pytest.mark.parametrize("location, named", [("http://u:p@api.test/b", "http://api.test/b"), ("mailto:x@y.test", "mailto:x@y.test")])
def test_webkit_names_the_target_of_a_redirect_it_refuses(observer, location, named):
    observer.response(flow("GET", [("Origin", ORIGIN), ("Sec-Fetch-Mode", "cors")],
                           [("Access-Control-Allow-Origin", "http://other.test"), ("Location", location)], status=302))
    (entry,) = observer.lines()
    assert entry["engines"]["webkit"]["message"] == (
        f"Cross-origin redirection to {named} denied by Cross-Origin Resource Sharing policy: "
        "Origin http://localhost:3000 is not allowed by Access-Control-Allow-Origin. Status code: 302")
