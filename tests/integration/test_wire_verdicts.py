"""Verdicts through a real mitmdump: the report file, offline audits, unreachable backends."""

from __future__ import annotations

import json
import subprocess

import pytest

from support.servers import (
    PLAIN, REPO_ROOT, WRONG_CORS, find_mitmdump, free_port, run_mitmdump_expecting_failure, running_mitmdump,
)
from support.wire import ORIGIN, PREFLIGHT, send, values

pytestmark = pytest.mark.integration


def entries(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_observe_mode_reports_every_cross_origin_flow_and_changes_nothing(backend, tmp_path):
    report = tmp_path / "report.jsonl"
    with running_mitmdump([], ["--set", f"cors_report={report}"]) as proxy:
        preflight = send(proxy, "OPTIONS", backend.url(PLAIN + "a"), PREFLIGHT)
        wrong = send(proxy, "GET", backend.url(WRONG_CORS + "a"), {"Origin": ORIGIN})
        same_origin = send(proxy, "GET", backend.url(PLAIN + "a"), {"Origin": backend.base_url})
    assert preflight[0] == 501 and values(wrong[1], "Access-Control-Allow-Origin") == ["http://wrong.example"] * 2
    assert same_origin[0] == 200
    first, second = entries(report)
    assert (first["method"], first["preflight"], first["requested_method"], first["reason"]) == ("OPTIONS", True, "PUT", "PreflightMissingAllowOriginHeader")
    assert (second["reason"], second["rule"]) == ("MultipleAllowOriginValues", None)
    assert second["message"].endswith("The 'Access-Control-Allow-Origin' header contains multiple values 'http://wrong.example, http://wrong.example', but only one is allowed. Have the server send the header with a valid value.")
    assert "cors: 2 cross-origin flows seen, 2 blocked (PreflightMissingAllowOriginHeader 1, MultipleAllowOriginValues 1), 0 with warnings" in proxy.output()


def test_verdicts_judge_the_response_as_it_leaves_and_name_the_rule(backend, tmp_path, write_rules):
    report = tmp_path / "report.jsonl"
    rules = write_rules("rules:\n  - name: bypass\n    allow: {}\n")
    with running_mitmdump([rules], ["--set", f"cors_report={report}"]) as proxy:
        send(proxy, "OPTIONS", backend.url(PLAIN + "b"), PREFLIGHT)
        send(proxy, "PUT", backend.url(PLAIN + "b"), {"Origin": ORIGIN, "X-Test": "1"})
    assert [(e["verdict"], e["rule"], e["preflight"]) for e in entries(report)] == [("allowed", "bypass", True), ("allowed", "bypass", False)]
    assert "cors: blocked" not in proxy.output()


def test_an_unreachable_backend_is_reported_with_the_real_cause(tmp_path):
    report = tmp_path / "report.jsonl"
    closed = f"http://127.0.0.1:{free_port()}/x"
    with running_mitmdump([], ["--set", f"cors_report={report}"]) as proxy:
        status, _, _ = send(proxy, "GET", closed, {"Origin": ORIGIN})
    assert status == 502
    (entry,) = entries(report)
    assert (entry["verdict"], entry["reason"]) == ("blocked", "MissingAllowOriginHeader")
    assert entry["fix"].startswith("make the backend reachable (mitmproxy could not connect: ")
    assert "the real cause is the connection error" in entry["warnings"][0]


def test_a_saved_capture_is_audited_offline(backend, tmp_path):
    capture, audit = tmp_path / "capture.flows", tmp_path / "audit.jsonl"
    with running_mitmdump([], ["-w", str(capture)], with_addon=False) as proxy:
        send(proxy, "GET", backend.url(WRONG_CORS + "c"), {"Origin": ORIGIN})
        send(proxy, "GET", backend.url(PLAIN + "c"))
    command = [str(find_mitmdump()), "-nr", str(capture), "-s", str(REPO_ROOT / "cors_addon.py"), "--set", f"cors_report={audit}"]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    (entry,) = entries(audit)
    assert (entry["url"], entry["reason"]) == (backend.url(WRONG_CORS + "c"), "MultipleAllowOriginValues")
    assert "cors: 1 cross-origin flow seen, 1 blocked (MultipleAllowOriginValues 1)" in finished.stdout + finished.stderr


def test_a_report_file_that_cannot_be_written_stops_mitmdump(tmp_path):
    returncode, output = run_mitmdump_expecting_failure([], extra_args=["--set", f"cors_report={tmp_path}/no/such/dir/r.jsonl"])
    assert returncode == 1 and "Traceback" not in output
    assert f"cors_report: cannot write {tmp_path}/no/such/dir/r.jsonl: No such file or directory" in output
