"""The addon in mitmproxy's own test harness: options, hooks, reloads, logging."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import weakref
from pathlib import Path

import pytest
from mitmproxy import exceptions, hooks, http
from mitmproxy.test import taddons, tflow, tutils

from support.threads import run_in_own_thread

from mitmcors import addon as addon_module
from mitmcors.addon import ANSWERED, CHANGED_BY, RELOAD_INTERVAL, CorsRules

ORIGIN = "http://localhost:3000"
PREFLIGHT = {"Origin": ORIGIN, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "content-type,x-test"}
BYPASS = "rules:\n  - name: bypass\n    allow: {}\n"


def flow(method: str = "GET", headers: dict[str, str] | None = None, response: http.Response | None = None, url: str = "http://api.test/v1/items") -> http.HTTPFlow:
    request = tutils.treq(method=method.encode(), headers=http.Headers([(k.encode(), v.encode()) for k, v in (headers or {}).items()]), content=b"")
    request.url = url
    return tflow.tflow(req=request, resp=response or False)


def backend(status: int = 200, headers: tuple[tuple[str, str], ...] = (), content: bytes = b"{}") -> http.Response:
    return tutils.tresp(status_code=status, headers=http.Headers([(k.encode(), v.encode()) for k, v in headers]), content=content)


def respond(addon: CorsRules, f: http.HTTPFlow, response: http.Response) -> None:
    """What mitmproxy does when the backend answers a flow the addon let through."""
    assert f.response is None, "the addon answered a flow it should have forwarded"
    f.response = response
    addon.responseheaders(f)


@pytest.fixture
def rules_file(tmp_path: Path):
    def write(text: str, name: str = "rules.yaml") -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    return write


@pytest.fixture
def configured(rules_file):
    """An addon configured with a rule file, inside mitmproxy's test context.

    The context stays open for the whole test: mitmproxy 12 closes its loop on exit.
    """
    with contextlib.ExitStack() as stack:

        def make(text: str) -> CorsRules:
            addon = CorsRules()
            tctx = stack.enter_context(taddons.context(addon))
            tctx.configure(addon, cors_rules=[rules_file(text)])
            return addon

        yield make


def test_without_rule_files_nothing_changes():
    addon = CorsRules()
    with taddons.context(addon) as tctx:
        tctx.configure(addon)
        f = flow("OPTIONS", PREFLIGHT)
        addon.request(f)
        assert f.response is None
        respond(addon, f, backend(501, (("Content-Type", "text/plain"),), b"nope"))
        assert f.response.status_code == 501
        assert list(f.response.headers.items()) == [("Content-Type", "text/plain")]


def test_a_preflight_is_answered_at_the_proxy(configured, caplog):
    addon = configured(BYPASS)
    f = flow("OPTIONS", PREFLIGHT)
    with caplog.at_level(logging.INFO):
        addon.request(f)
    assert f.response.status_code == 204 and f.response.content == b""
    assert dict(f.response.headers) == {
        "Access-Control-Allow-Origin": ORIGIN,
        "Access-Control-Allow-Credentials": "true",
        "Access-Control-Allow-Methods": "PUT",
        "Access-Control-Allow-Headers": "content-type, x-test",
        "Vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
    }
    assert f.metadata[ANSWERED] is True and f.metadata[CHANGED_BY] == "bypass"
    (line,) = [r.getMessage() for r in caplog.records if r.name == "mitmcors.addon"]
    assert line.startswith("cors: rule 'bypass' answered the preflight with 204 for OPTIONS http://api.test/v1/items (origin http://localhost:3000): ")
    assert "+Access-Control-Allow-Methods: PUT" in line


def test_an_answered_preflight_is_not_rewritten_again(configured):
    addon = configured(BYPASS)
    f = flow("OPTIONS", PREFLIGHT)
    addon.request(f)
    answered = f.response.copy()
    addon.responseheaders(f)
    assert f.response.headers == answered.headers and f.response.status_code == 204


def test_each_preflight_gets_a_response_of_its_own(configured):
    """The answer is worked out once per rule and preflight, but what one flow's later
    hooks (or a tester in the console) do to its response never reaches the next's."""
    addon = configured(BYPASS)
    first, second = flow("OPTIONS", PREFLIGHT), flow("OPTIONS", PREFLIGHT)
    addon.request(first)
    first.response.headers["Access-Control-Allow-Origin"] = "*"
    first.response.status_code = 500
    first.response.timestamp_start = 1.0
    addon.request(second)
    assert second.response is not first.response and second.response.data is not first.response.data
    assert second.response.headers["Access-Control-Allow-Origin"] == ORIGIN and second.response.status_code == 204
    assert second.response.timestamp_start > 1.0 and second.response.timestamp_end == second.response.timestamp_start
    assert second.response.data == http.Response(
        b"HTTP/1.1", 204, b"No Content", second.response.headers.copy(), b"", None,
        second.response.timestamp_start, second.response.timestamp_end,
    ).data, "a copy is what building it gives"


def test_a_plain_options_request_is_not_a_preflight(configured):
    addon = configured(BYPASS)
    f = flow("OPTIONS", {"Origin": ORIGIN})
    addon.request(f)
    assert f.response is None


def test_allow_replaces_the_backend_cors_headers_and_appends_vary(configured):
    addon = configured(BYPASS)
    f = flow("GET", {"Origin": ORIGIN, "Cookie": "a=b"})
    wrong = (
        ("Access-Control-Allow-Origin", "http://wrong.example"),
        ("Access-Control-Allow-Origin", "*"),
        ("Vary", "Accept-Encoding"),
        ("X-Total", "42"),
    )
    respond(addon, f, backend(200, wrong))
    assert f.response.headers.get_all("Access-Control-Allow-Origin") == [ORIGIN]
    assert f.response.headers["Access-Control-Allow-Credentials"] == "true"
    assert f.response.headers["Access-Control-Expose-Headers"] == "vary, x-total"
    assert f.response.headers.get_all("Vary") == ["Accept-Encoding, Origin"]


def test_an_origin_off_the_list_gets_no_cors_headers(configured):
    addon = configured("rules:\n  - name: only app\n    allow: {origins: ['https://app.test']}\n")
    f = flow("GET", {"Origin": ORIGIN})
    respond(addon, f, backend(200, (("Access-Control-Allow-Origin", "*"),)))
    assert not [name for name in f.response.headers if name.lower().startswith("access-control-")]
    assert f.response.headers["Vary"] == "Origin"


def test_an_origin_off_the_list_gets_a_preflight_without_cors_headers(configured):
    addon = configured("rules:\n  - name: only app\n    allow: {origins: ['https://app.test']}\n")
    f = flow("OPTIONS", PREFLIGHT)
    addon.request(f)
    assert f.response.status_code == 204
    assert "Access-Control-Allow-Origin" not in f.response.headers


def test_forward_lets_the_backend_answer_and_repairs_its_status(configured, caplog):
    addon = configured("rules:\n  - name: fwd\n    allow: {preflight: forward}\n")
    f = flow("OPTIONS", PREFLIGHT)
    addon.request(f)
    answer = backend(501, (("Content-Type", "text/html"), ("Content-Length", "9"), ("ETag", '"1"')), b"not there")
    answer.reason = "Unsupported method ('OPTIONS')"  # Python's http.server, as a tester saw it
    with caplog.at_level(logging.INFO):
        respond(addon, f, answer)
    assert (f.response.status_code, f.response.reason, f.response.content) == (204, "No Content", b"")
    assert not {"content-type", "etag", "content-length"} & set(f.response.headers.keys()), "nothing describes a body"
    assert f.response.headers["Access-Control-Allow-Methods"] == "PUT"
    assert "rewrote the response (501 -> 204)" in caplog.text


def test_forward_keeps_a_2xx_status(configured):
    addon = configured("rules:\n  - name: fwd\n    allow: {preflight: forward}\n")
    f = flow("OPTIONS", PREFLIGHT)
    respond(addon, f, backend(200, (), b"ok"))
    assert f.response.status_code == 200 and f.response.content == b"ok"


def test_strip_and_set_edit_the_response(configured):
    addon = configured("rules:\n  - name: double origin\n    strip: all\n    set: {Access-Control-Allow-Origin: ['http://a.test', 'http://b.test']}\n")
    f = flow("GET", {"Origin": ORIGIN})
    respond(addon, f, backend(200, (("Access-Control-Allow-Credentials", "true"), ("X-Total", "1"))))
    assert list(f.response.headers.items(multi=True)) == [
        ("X-Total", "1"),
        ("Access-Control-Allow-Origin", "http://a.test"),
        ("Access-Control-Allow-Origin", "http://b.test"),
    ]


def test_flows_no_rule_matches_are_untouched(configured, caplog):
    addon = configured("rules:\n  - name: other host\n    match: {host: other.test}\n    allow: {}\n")
    f = flow("GET", {"Origin": ORIGIN})
    with caplog.at_level(logging.INFO):
        respond(addon, f, backend(200, (("X-Total", "1"),)))
    assert list(f.response.headers.items()) == [("X-Total", "1")]
    assert "cors:" not in caplog.text


def test_a_request_without_origin_is_left_alone_by_allow(configured, caplog):
    addon = configured(BYPASS)
    f = flow("GET")
    with caplog.at_level(logging.INFO):
        respond(addon, f, backend(200, (("X-Total", "1"),)))
    assert list(f.response.headers.items()) == [("X-Total", "1")]
    assert "cors:" not in caplog.text


def test_flows_that_are_not_live_are_left_alone(configured):
    addon = configured(BYPASS)
    f = flow("OPTIONS", PREFLIGHT)
    f.live = False
    addon.request(f)
    assert f.response is None


def test_an_internal_error_leaves_the_flow_as_it_came(configured, caplog, monkeypatch):
    addon = configured(BYPASS)

    def broken(target):
        raise RuntimeError("boom")

    monkeypatch.setattr(addon.rules, "first_match", broken)
    f = flow("GET", {"Origin": ORIGIN})
    f.response = backend(200, (("X-Total", "1"),))
    before = f.response.copy()
    addon.responseheaders(f)
    assert f.response.headers == before.headers
    assert "cors: internal error in responseheaders for GET http://api.test/v1/items; the flow is left as it came" in caplog.text
    assert "RuntimeError: boom" in caplog.text


def test_a_bad_file_at_startup_logs_one_error_and_loads_nothing(rules_file, caplog):
    addon = CorsRules()
    bad = rules_file("rules:\n  - name: a\n    allow: {max_age: -5}\n")
    with taddons.context(addon) as tctx:
        tctx.configure(addon, cors_rules=[bad])
        # mitmproxy configures a freshly loaded script twice; the error must show once
        tctx.master.addons.invoke_addon_sync(addon, hooks.ConfigureHook({"cors_rules"}))
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [f"{bad}:3: rule 'a': allow.max_age must be a whole number of 0 or more, got -5"]
    assert len(addon.rules) == 0


def test_a_warning_at_load_is_logged_once_with_the_prefix(rules_file, caplog):
    addon = CorsRules()
    path = rules_file("rules:\n  - name: a\n    match: {origin: 'localhost:*'}\n    allow: {}\n")
    with caplog.at_level(logging.INFO), taddons.context(addon) as tctx:
        tctx.configure(addon, cors_rules=[path])
        tctx.master.addons.invoke_addon_sync(addon, hooks.ConfigureHook({"cors_rules"}))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"cors: {path}:3: rule 'a': match.origin has no scheme, so it matches no Origin a browser sends; did you mean 'http://localhost:*'?"]
    assert len(addon.rules) == 1


def test_an_empty_file_name_is_refused_by_name(caplog):
    addon = CorsRules()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, cors_rules=[""])
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == ["cors_rules: empty file name; give the path of a YAML rule file"]


def run_while_running(addon: CorsRules, body) -> None:
    """Run ``body(tctx)`` after the running hook, as at run time in mitmproxy.

    In a thread of its own: Playwright's session may own this thread's event loop.
    """

    async def scenario():
        with taddons.context(addon) as tctx:
            addon.running()
            try:
                await body(tctx)
            finally:
                addon.done()

    run_in_own_thread(scenario)


@pytest.mark.parametrize(
    "bad_text, message",
    [
        ("rules: {}\n", r"bad\.yaml:1: 'rules' must be a list"),
        # a number Python cannot convert is refused like any error, the option rolled back
        ("rules:\n  - name: a\n    allow: {max_age: " + "9" * 5000 + "}\n",
         r"bad\.yaml:3: rule 'a': allow\.max_age must be at most 2,147,483,647"),
    ],
)
def test_a_bad_set_at_run_time_is_refused_and_keeps_the_rules(rules_file, bad_text, message):
    addon = CorsRules()
    good, bad = rules_file(BYPASS, "good.yaml"), rules_file(bad_text, "bad.yaml")

    async def body(tctx):
        tctx.configure(addon, cors_rules=[good])
        with pytest.raises(exceptions.OptionsError, match=message):
            tctx.configure(addon, cors_rules=[bad])
        assert tctx.options.cors_rules == [good]
        assert [rule.name for rule in addon.rules.rules] == ["bypass"]

    run_while_running(addon, body)


def test_an_edit_is_picked_up_and_a_broken_edit_keeps_the_last_good_rules(rules_file, caplog):
    addon = CorsRules()
    path = rules_file(BYPASS)

    async def body(tctx):
        tctx.configure(addon, cors_rules=[path])
        Path(path).write_text("rules:\n  - name: renamed\n    allow: {}\n  - name: second\n    strip: all\n")
        await wait_for(lambda: [rule.name for rule in addon.rules.rules] == ["renamed", "second"])
        Path(path).write_text("rules:\n  - name: broken\n")
        await wait_for(lambda: "the rule has no action" in caplog.text)
        assert [rule.name for rule in addon.rules.rules] == ["renamed", "second"]

    with caplog.at_level(logging.INFO):
        run_while_running(addon, body)
    assert f"{path}:2: rule 'broken': the rule has no action; give one of: allow, strip/set, break; keeping the 2 rules from {path} (2) active" in caplog.text


def test_a_slow_hot_reload_never_undoes_a_newer_load_made_meanwhile(rules_file):
    """A hot reload compiles a slice at a time; a cors.reload of a newer edit meanwhile wins."""
    addon = CorsRules()
    path = rules_file(BYPASS)
    many = "rules:\n" + "".join(f"  - name: old{i}\n    match: {{host: h{i}.test}}\n    allow: {{}}\n" for i in range(20_000))

    async def body(tctx):
        tctx.configure(addon, cors_rules=[path])
        Path(path).write_text(many)
        await asyncio.sleep(RELOAD_INTERVAL * 1.5)  # the watcher is compiling the 20,000 rules
        Path(path).write_text("rules:\n  - name: newest\n    allow: {}\n")
        addon.reload()
        assert [rule.name for rule in addon.rules.rules] == ["newest"]
        await asyncio.sleep(4)  # the watcher's load ends (about 1.5 s) and it looks again
        assert [rule.name for rule in addon.rules.rules] == ["newest"]

    run_while_running(addon, body)


def test_a_file_replaced_by_a_fifo_keeps_the_last_good_rules_and_reloading_goes_on(rules_file, caplog):
    addon = CorsRules()
    path = rules_file(BYPASS)

    async def body(tctx):
        tctx.configure(addon, cors_rules=[path])
        Path(path).unlink()
        os.mkfifo(path)
        await wait_for(lambda: "FIFO" in caplog.text)
        Path(path).unlink()
        Path(path).write_text("rules:\n  - name: after the fifo\n    allow: {}\n")
        await wait_for(lambda: [rule.name for rule in addon.rules.rules] == ["after the fifo"])

    with caplog.at_level(logging.INFO):
        run_while_running(addon, body)
    assert f"{path}: cannot read the file: it is a FIFO (named pipe), not a regular file; keeping the 1 rule from {path} (1) active" in caplog.text


def test_the_reload_command_reloads_now_and_keeps_the_last_good_rules(rules_file, caplog):
    addon = CorsRules()
    path = rules_file(BYPASS)
    with taddons.context(addon) as tctx:
        tctx.configure(addon, cors_rules=[path])
        Path(path).write_text("rules:\n  - name: changed\n    allow: {}\n")
        tctx.command(addon.reload)
        assert [rule.name for rule in addon.rules.rules] == ["changed"]
        Path(path).unlink()
        tctx.command(addon.reload)
        assert [rule.name for rule in addon.rules.rules] == ["changed"]
    assert f"cors: {path}: file not found; keeping the 1 rule from {path} (1) active" in caplog.text  # greppable


async def wait_for(condition, timeout: float = 3.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_the_rules_that_fired_are_summed_up_at_shutdown(configured, caplog):
    addon = configured(BYPASS)
    for _ in range(2):
        addon.request(flow("OPTIONS", PREFLIGHT))
    respond(addon, flow("GET", {"Origin": ORIGIN}), backend(200))
    respond(addon, flow("GET"), backend(200))  # no Origin: the rule changes nothing
    with caplog.at_level(logging.INFO):
        addon.done()
    assert "cors: rules fired: 'bypass' 3" in caplog.text


def test_a_rule_that_needs_the_response_lets_the_preflight_reach_the_backend(configured):
    addon = configured(
        "rules:\n  - name: on 401 only\n    match: {filter: '~c 401'}\n    break: preflight-invalid-status\n"
        "  - name: bypass\n    allow: {}\n"
    )
    f = flow("OPTIONS", PREFLIGHT)
    addon.request(f)
    assert f.response is None, "the later bypass rule must not answer what the first rule may claim"
    respond(addon, f, backend(401, (("Content-Type", "text/plain"),), b"login first"))
    assert (f.response.status_code, f.metadata[CHANGED_BY]) == (403, "on 401 only")
    assert f.response.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_a_request_only_filter_still_answers_preflights(configured):
    addon = configured("rules:\n  - name: api only\n    match: {filter: '~u /v1/'}\n    allow: {}\n")
    f = flow("OPTIONS", PREFLIGHT)
    addon.request(f)
    assert f.response.status_code == 204


def test_a_new_status_is_given_before_the_headers_leave_and_the_body_is_dropped(configured):
    addon = configured("rules:\n  - name: fwd\n    allow: {preflight: forward}\n")
    f = flow("OPTIONS", PREFLIGHT)
    f.response = backend(405, (("Content-Encoding", "gzip"), ("Content-Length", "20")), b"")
    f.response.raw_content = None  # the body has not arrived when the headers do
    f.response.stream = True  # as mitmproxy sets it past stream_large_bodies
    addon.responseheaders(f)
    assert (f.response.status_code, f.response.reason, f.response.raw_content) == (204, "No Content", b"")
    assert "content-encoding" not in f.response.headers and "content-length" not in f.response.headers
    assert callable(f.response.stream), "the body is streamed, whatever its size, and dropped"
    assert f.response.stream(b"\x1f\x8b" + b"x" * 18) == [] and f.response.stream(b"") == []


def test_a_preflight_broken_with_an_error_status_says_its_length(configured):
    addon = configured("rules:\n  - name: fwd\n    match: {filter: '~s'}\n    break: preflight-invalid-status\n")
    f = flow("OPTIONS", PREFLIGHT)
    respond(addon, f, backend(200, (("Transfer-Encoding", "chunked"),), b"ok"))
    assert (f.response.status_code, f.response.raw_content) == (403, b"")
    assert f.response.headers["content-length"] == "0" and "transfer-encoding" not in f.response.headers


def test_the_change_log_sees_removed_duplicates_and_ignores_name_case(configured, caplog):
    addon = configured(BYPASS)
    f = flow("GET", {"Origin": ORIGIN})
    already_right = (("access-control-allow-origin", ORIGIN), ("access-control-allow-credentials", "true"),
                     ("access-control-expose-headers", "vary, x-total"), ("vary", "Origin"), ("x-total", "1"))
    with caplog.at_level(logging.INFO):
        respond(addon, f, backend(200, already_right))
    assert "cors: rule" not in caplog.text, "an HTTP/2 response that was already right is not a change"
    f = flow("GET", {"Origin": ORIGIN})
    with caplog.at_level(logging.INFO):
        respond(addon, f, backend(200, (("Access-Control-Allow-Origin", ORIGIN), ("Access-Control-Allow-Origin", ORIGIN))))
    assert f"-Access-Control-Allow-Origin: {ORIGIN}; +Access-Control-Allow-Credentials: true" in caplog.text


@pytest.mark.parametrize("version, names", [
    ("HTTP/1.1", ["X-Total", "Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Expose-Headers", "Vary"]),
    ("HTTP/2.0", ["x-total", "access-control-allow-origin", "access-control-allow-credentials", "access-control-expose-headers", "vary"]),
    ("HTTP/3", ["x-total", "access-control-allow-origin", "access-control-allow-credentials", "access-control-expose-headers", "vary"]),
])
def test_header_names_are_written_as_the_connection_expects(configured, version, names):
    addon = configured(BYPASS)
    f = flow("GET", {"Origin": ORIGIN})
    response = backend(200, (("X-Total", "1"),))
    response.http_version = version
    respond(addon, f, response)
    assert [name.decode() for name, _ in f.response.headers.fields] == names


@pytest.mark.parametrize("method, headers, written", [
    ("OPTIONS", {**PREFLIGHT, "Origin": "http://a.test\r\nSet-Cookie: x=1"}, "\\r into Access-Control-Allow-Origin"),
    ("OPTIONS", {**PREFLIGHT, "Access-Control-Request-Method": "PUT\x00"}, "\\x00 into Access-Control-Allow-Methods"),
    ("OPTIONS", {**PREFLIGHT, "Access-Control-Request-Headers": "x-test\x1b[2J"}, "\\x1b into Access-Control-Allow-Headers"),
    ("GET", {"Origin": "http://a.test\x00"}, "\\x00 into Access-Control-Allow-Origin"),
])
def test_a_rule_never_echoes_a_control_character_into_a_header(configured, caplog, method, headers, written):
    addon = configured(BYPASS)
    f = flow(method, headers)
    addon.request(f)
    if method == "GET":
        respond(addon, f, backend(200, (("X-Total", "1"),)))
        assert list(f.response.headers.items()) == [("X-Total", "1")]
    else:
        assert f.response is None, "the preflight goes to the backend untouched"
    (line,) = [r.getMessage() for r in caplog.records if r.name == "mitmcors.addon"]
    assert line.startswith(f"cors: rule 'bypass' left {method} http://api.test/v1/items (origin ")
    assert line.endswith(f" as it came: it would write {written}")


def _caveat_logged(caplog, rule: str) -> str:
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"cors: rule {rule!r}")]
    return line.partition("[may not show: ")[2].rstrip("]")


def test_a_preflight_fault_missing_from_a_simple_request_says_it_needs_none(configured, caplog):
    addon = configured("rules:\n  - name: bug\n    break: preflight-invalid-status\n")
    with caplog.at_level(logging.INFO):
        respond(addon, flow("GET", {"Origin": ORIGIN}), backend())
    assert _caveat_logged(caplog, "bug") == "preflight-invalid-status faults the preflight, and this request needs none"


def test_a_preflight_fault_missing_without_any_preflight_says_the_browser_cached_one(configured, caplog):
    addon = configured("rules:\n  - name: bug\n    break: preflight-invalid-status\n")
    with caplog.at_level(logging.INFO):
        respond(addon, flow("PUT", {"Origin": ORIGIN, "X-Test": "1"}), backend())
    assert _caveat_logged(caplog, "bug") == (
        "preflight-invalid-status faults the preflight, and none came for this request among the last 256 preflights: "
        "the browser likely used a cached one"
    )


def test_a_preflight_fault_missing_after_its_preflight_says_what_became_of_it(configured, caplog):
    addon = configured("rules:\n  - name: bug\n    break: {scenario: header-disallowed-by-preflight-response, header: X-Other}\n")
    preflight = flow("OPTIONS", PREFLIGHT)
    with caplog.at_level(logging.INFO):
        addon.request(preflight)
        caplog.clear()
        respond(addon, flow("PUT", {"Origin": ORIGIN, "X-Test": "1", "Content-Type": "application/json"}), backend())
    said = _caveat_logged(caplog, "bug")
    assert said.startswith("header-disallowed-by-preflight-response faults the preflight; this request's came ")
    assert said.endswith(" ms earlier, but the preflight does not ask for x-other")


def test_a_preflight_no_rule_touched_is_said_to_have_passed_untouched(configured, caplog):
    addon = configured("rules:\n  - name: bug\n    match: {filter: '~m PUT'}\n    break: preflight-invalid-status\n")
    preflight = flow("OPTIONS", PREFLIGHT)
    with caplog.at_level(logging.INFO):
        addon.request(preflight)
        respond(addon, preflight, backend(204))
        respond(addon, flow("PUT", {"Origin": ORIGIN, "X-Test": "1"}), backend())
    assert _caveat_logged(caplog, "bug").endswith(" ms earlier and reached the backend untouched")


class _Cyclic:
    def __init__(self) -> None:
        self.me = self


def test_what_dies_in_a_cycle_after_a_freeze_is_freed_once_the_frozen_objects_have_grown(rules_file, monkeypatch):
    """Loads freeze what is alive so the collector skips the rules; a cycle that dies later
    is freed by the load that finds the frozen objects grown THAW_GROWTH times."""
    path = rules_file(BYPASS)
    monkeypatch.setattr(addon_module, "_frozen_after_thaw", 0)
    doomed = _Cyclic()
    alive = weakref.ref(doomed)
    addon_module._load_out_of_collection([path])  # the first load sets what the frozen objects are
    del doomed
    addon_module._load_out_of_collection([path])
    assert alive() is not None, "frozen with the rules, a cycle escapes the collector"
    monkeypatch.setattr(addon_module, "_frozen_after_thaw", gc.get_freeze_count() // (addon_module.THAW_GROWTH + 1))
    addon_module._load_out_of_collection([path])
    assert alive() is None
    gc.unfreeze()
