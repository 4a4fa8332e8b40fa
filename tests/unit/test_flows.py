"""Reading flows as the browser sent them, in every proxy mode."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mitmproxy import http
from mitmproxy.proxy import mode_specs
from mitmproxy.test import taddons, tflow, tutils

from mitmcors import flows, shapes
from mitmcors.flows import VIEW, carries_origin, note_written, request_view, url_origin, written_by_rule
from mitmcors.observer import CorsVerdicts


def flow(url: str, host_header: str | None, mode: str = "regular", sockname=("127.0.0.1", 8080), tls: bool = False) -> http.HTTPFlow:
    request = tutils.treq()
    request.url = url
    if host_header is None:
        request.headers.pop("Host", None)
    else:
        request.host_header = host_header
    f = tflow.tflow(req=request)
    f.client_conn.proxy_mode = mode_specs.ProxyMode.parse(mode)
    f.client_conn.sockname = sockname
    f.client_conn.timestamp_tls_setup = 1.0 if tls else None
    return f


REVERSE = "reverse:http://127.0.0.1:3001"


def http2(url: str, authority: str) -> http.HTTPFlow:
    f = flow(url, None)
    f.request.http_version = "HTTP/2.0"
    f.request.authority = authority
    return f


URL_ORIGINS = pytest.mark.parametrize(
    "f, origin",
    [
        (flow("http://api.test/v1", "api.test"), "http://api.test"),
        (flow("http://127.0.0.1:3001/v1", "127.0.0.1:3001"), "http://127.0.0.1:3001"),
        (flow("https://API.test:443/v1", None), "https://api.test"),
        # reverse mode: the browser fetched the proxy, whatever backend the request now names
        (flow("http://127.0.0.1:3001/v1", "127.0.0.1:3001", REVERSE), "http://127.0.0.1:8080"),
        (flow("http://127.0.0.1:3001/v1", "localhost:8080", REVERSE), "http://localhost:8080"),  # keep_host_header
        (flow("https://api.staging.test/v1", "api.staging.test", "reverse:https://api.staging.test"), "http://127.0.0.1:8080"),
        (flow("http://127.0.0.1:3001/v1", "127.0.0.1:3001", REVERSE, tls=True, sockname=("127.0.0.1", 8443)), "https://127.0.0.1:8443"),
        (flow("http://127.0.0.1:3001/v1", "127.0.0.1:3001", REVERSE, sockname=("::1", 8080, 0, 0)), "http://[::1]:8080"),
        (flow("http://127.0.0.1:3001/v1", "127.0.0.1:3001", REVERSE, sockname=("127.0.0.1", 80)), "http://127.0.0.1"),
        (http2("https://api.test:8443/v1", "API.test:8443"), "https://api.test:8443"),  # its Host is the :authority
    ],
)


@URL_ORIGINS
def test_the_url_origin_is_the_one_the_browser_fetched(f, origin):
    assert url_origin(f) == origin


@URL_ORIGINS
def test_a_cross_origin_requests_view_names_the_same_url_origin(f, origin):
    f = f.copy()
    f.request.headers["Origin"] = "http://page.test"
    view = request_view(f)
    assert view.url_origin == origin
    assert view.checked


def test_a_request_is_read_once_and_again_when_edited():
    f = flow("http://api.test/v1", "api.test")
    f.request.headers["Origin"] = "http://page.test"
    first = request_view(f)
    assert request_view(f) is first, "read once for every hook"
    f.request.headers["Origin"] = "http://other.test"  # an intercepted flow, edited
    assert request_view(f).cors.origin == "http://other.test"
    f.request.url = "http://other.test/v1"
    assert request_view(f).url_origin == "http://other.test" and not request_view(f).checked, "now same-origin"
    assert getattr(f.copy(), VIEW, None) is None, "a copy (a replay) reads its request afresh"


def cross_origin(f: http.HTTPFlow) -> http.HTTPFlow:
    f.request.headers["Origin"] = "http://page.test"
    return f


def test_requests_alike_share_one_reading_and_any_difference_in_what_it_reads_reads_afresh():
    first = request_view(cross_origin(flow("http://127.0.0.1:3001/v1", "127.0.0.1:3001", REVERSE)))
    assert request_view(cross_origin(flow("http://127.0.0.1:3001/v1", "127.0.0.1:3001", REVERSE))) is first
    assert first.url_origin == "http://127.0.0.1:8080"
    differing = [
        (flow("http://127.0.0.1:3001/v1", "127.0.0.1:3001", REVERSE, sockname=("127.0.0.1", 9090)), "http://127.0.0.1:9090"),
        (flow("http://127.0.0.1:3001/v1", "127.0.0.1:3001", REVERSE, tls=True), "https://127.0.0.1:8080"),
        (flow("http://127.0.0.1:3001/v1", "127.0.0.1:3001"), "http://127.0.0.1:3001"),  # regular mode
        (http2("https://api.test:8443/v1", "api.test:8443"), "https://api.test:8443"),
        (http2("https://api.test:8443/v1", "other.test:8443"), "https://other.test:8443"),
    ]
    for f, origin in differing:
        assert request_view(cross_origin(f)).url_origin == origin == url_origin(f)


NAMES = st.sampled_from([b"Origin", b"origin", b"ORIGIN", b"oRiGiN", b"Origin2", b"Origi", b"X-Origin", b"Host", b"Cookie", b"Sec-Fetch-Mode"])


@given(st.lists(st.tuples(st.one_of(NAMES, st.binary(min_size=5, max_size=7)), st.binary(max_size=8)), max_size=6))
def test_whether_a_request_carries_origin_is_what_reading_it_finds(lines):
    request = tutils.treq(headers=http.Headers(lines))
    assert carries_origin(tflow.tflow(req=request)) == (request_view(tflow.tflow(req=request)).cors.origin is not None)


def test_readings_kept_for_requests_alike_are_bounded():
    for number in range(flows.VIEWS_REMEMBERED + 10):
        request_view(cross_origin(flow(f"http://api{number}.test/v1", f"api{number}.test")))
    assert 0 < len(flows._views) <= flows.VIEWS_REMEMBERED


def test_what_a_rule_wrote_goes_only_with_the_lines_it_wrote():
    f = flow("http://api.test/v1", "api.test")
    written = ((b"Access-Control-Allow-Origin", b"*"),)
    view, slot = request_view(f), [None]
    note_written(f, written, (view, shapes.shape(written), slot))
    found = written_by_rule(f, written)
    assert found == (view, shapes.shape(written), slot) and found.verdict is slot
    assert written_by_rule(f, tuple(line for line in written)) is None, "lines that merely look the same"
    assert written_by_rule(flow("http://api.test/v1", "api.test"), written) is None


def test_in_reverse_mode_the_browser_says_when_it_fetched_its_own_origin():
    f = flow("http://127.0.0.1:3001/v1", "127.0.0.1:3001", REVERSE)
    f.request.headers.update({"Origin": "http://localhost:8080", "Sec-Fetch-Site": "same-origin"})
    assert url_origin(f) == "http://localhost:8080"
    f.request.headers["Sec-Fetch-Site"] = "same-site"
    assert url_origin(f) == "http://127.0.0.1:8080"


@pytest.mark.parametrize("origin, fetch_site", [("http://127.0.0.1:8080", None), ("http://localhost:8080", "same-origin")])
def test_a_same_origin_fetch_through_a_reverse_proxy_is_not_judged(tmp_path, origin, fetch_site):
    f = flow("http://127.0.0.1:3001/v1", "127.0.0.1:3001", REVERSE)
    f.request.method = "PUT"
    f.request.headers.update({"Origin": origin, "Sec-Fetch-Mode": "cors", **({"Sec-Fetch-Site": fetch_site} if fetch_site else {})})
    f.response = tutils.tresp(headers=http.Headers(), content=b"")
    verdicts = CorsVerdicts()
    with taddons.context(verdicts) as tctx:
        tctx.configure(verdicts, cors_report=str(tmp_path / "report.jsonl"))
        verdicts.response(f)
        verdicts.done()
    assert (tmp_path / "report.jsonl").read_text() == "" and not f.marked


def test_the_report_names_the_url_the_browser_fetched_in_reverse_mode(tmp_path):
    """Chromium's console names the proxy's URL, so the report's url and message do too."""
    f = flow("http://127.0.0.1:3001/v1?x=1", "127.0.0.1:3001", REVERSE)
    f.request.headers.update({"Origin": "http://localhost:3000", "Sec-Fetch-Mode": "cors"})
    f.response = tutils.tresp()
    addon = CorsVerdicts()
    report = tmp_path / "report.jsonl"
    with taddons.context(addon) as tctx:
        tctx.configure(addon, cors_report=str(report))
        addon.response(f)
    entry = json.loads(report.read_text())
    assert entry["url"] == "http://127.0.0.1:8080/v1?x=1"
    assert entry["message"].startswith("Access to fetch at 'http://127.0.0.1:8080/v1?x=1' from origin 'http://localhost:3000'")
