"""No value from the network reaches a log line or a flow's comment raw: an Origin with
ESC sequences, a bare CR or a bidi override could otherwise forge or hide log entries."""

from __future__ import annotations

import json
import logging
import re

import pytest
from mitmproxy import http
from mitmproxy.test import taddons, tflow, tutils

from mitmcors.addon import CorsRules
from mitmcors.flows import printable
from mitmcors.observer import CorsVerdicts

# Every character a log line or comment must never carry raw.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
SPOOF = "http://evil.test\x1b[2K\r[12:00:00.000] cors: allowed\u2028\u202e\x85\x00"


@pytest.mark.parametrize(
    "raw, shown",
    [
        ("http://localhost:3000", "http://localhost:3000"),
        ("a\rb\nc\td", "a\\rb\\nc\\td"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("\x00\x7f\x85\x9f", "\\x00\\x7f\\x85\\x9f"),
        ("\u2028\u2029\u202e\u2066\u061c\u200f\u200b", "\\u2028\\u2029\\u202e\\u2066\\u061c\\u200f\\u200b"),
        ("caf\u00e9 \u4e2d\u00a0", "caf\u00e9 \u4e2d\\xa0"),  # printable non-ASCII stays; a space that is no space is shown
        (b"http://\xff.test".decode("utf-8", "surrogateescape"), "http://\\xff.test"),  # as readable() does
    ],
)
def test_printable_escapes_what_is_not_printable(raw, shown):
    assert printable(raw) == shown


def spoofed_flow(method: str = "PUT", response: bool = True) -> http.HTTPFlow:
    headers = http.Headers([(b"Origin", SPOOF.encode()), (b"Host", b"api.test"),
                            (b"Access-Control-Request-Method", b"GET\x1b[8m")])
    request = tutils.treq(method=method.encode(), headers=headers, content=b"")
    request.url = "http://api.test/v1/\x1b[2J"
    return tflow.tflow(req=request, resp=tutils.tresp(headers=http.Headers([(b"X-Evil", b"\r\x1b[1m")]), content=b"") if response else False)


def our_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("mitmcors")]


def comment_lines(f: http.HTTPFlow) -> list[str]:
    """A comment's lines, one per engine, split only where the addon put a line feed."""
    return f.comment.split("\n")


def assert_clean(lines: list[str]) -> None:
    assert lines
    for line in lines:
        assert not CONTROL.search(line), f"raw control character in {line!r}"


def test_the_change_log_escapes_what_came_from_the_network(tmp_path, caplog):
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - name: odd\n    match: {preflight: true}\n    break: method-disallowed-by-preflight-response\n"
                     "  - name: mark\n    set: {X-Lab: '1'}\n")
    addon = CorsRules()
    with taddons.context(addon) as tctx, caplog.at_level(logging.INFO):
        tctx.configure(addon, cors_rules=[str(rules)])
        addon.responseheaders(spoofed_flow())
        addon.request(spoofed_flow("OPTIONS", response=False))
    lines = our_lines(caplog)
    assert [line.split(" http")[0] for line in lines[1:]] == [
        "cors: rule 'mark' rewrote the response for PUT", "cors: rule 'odd' left OPTIONS"]  # it would echo the Origin
    assert_clean(lines)
    assert "(origin http://evil.test\\x1b[2K\\r[12:00:00.000] cors: allowed\\u2028\\u202e\\x85\\x00)" in caplog.text


def test_an_internal_error_line_escapes_the_method_and_url(tmp_path, caplog, monkeypatch):
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - name: mark\n    set: {X-Lab: '1'}\n")
    addon = CorsRules()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, cors_rules=[str(rules)])
        monkeypatch.setattr(addon.rules, "first_match", lambda *args, **kwargs: 1 / 0)
        f = spoofed_flow()
        f.request.method = "GET\rX"
        addon.responseheaders(f)
    (line,) = [r.getMessage() for r in caplog.records if "internal error" in r.getMessage()]
    assert_clean([line])
    assert "for GET\\rX http://api.test/v1/\\x1b[2J;" in line


@pytest.mark.parametrize("method", ["GET", "OPTIONS"])
def test_verdict_lines_and_comments_escape_and_the_report_keeps_the_value(tmp_path, caplog, method):
    report = tmp_path / "report.jsonl"
    verdicts = CorsVerdicts()
    with taddons.context(verdicts) as tctx, caplog.at_level(logging.INFO):
        tctx.configure(verdicts, cors_report=str(report))
        f = spoofed_flow(method)
        f.response.headers["Access-Control-Allow-Origin"] = "\x1b]0;title\x07"
        verdicts.response(f)
        verdicts.done()
    assert_clean(our_lines(caplog))
    assert_clean(comment_lines(f))
    (entry,) = [json.loads(line) for line in report.read_text().splitlines()]
    assert entry["origin"] == SPOOF, "the report keeps the value; JSON escapes it"


def test_a_connection_error_is_escaped_too(caplog):
    verdicts = CorsVerdicts()
    with taddons.context(verdicts) as tctx, caplog.at_level(logging.INFO):
        tctx.configure(verdicts)
        f = tflow.tflow(req=tutils.treq(headers=http.Headers([(b"Origin", b"http://localhost:3000")])), err=True)
        f.error.msg = "unexpected server response\r\x1b[2Kcors: fine"
        verdicts.error(f)
    (line,) = our_lines(caplog)
    assert_clean([line, *comment_lines(f)])
    assert "(mitmproxy could not connect: unexpected server response\\r\\x1b[2Kcors: fine)" in line
