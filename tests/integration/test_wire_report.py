"""The report file through a real mitmdump: it never destroys a file it was not meant for,
and a full disk costs one line, not the proxy, the flows or the summary."""

from __future__ import annotations

import subprocess

import pytest
from mitmproxy import io
from mitmproxy.test import tflow

from support.servers import PLAIN, REPO_ROOT, find_mitmdump, run_mitmdump_expecting_failure, running_mitmdump
from support.wire import ORIGIN, send

pytestmark = pytest.mark.integration

FULL_DISK = "cors: cannot write the report /dev/full: No space left on device; no more report lines are written, the proxy goes on"


def test_a_report_naming_a_rule_file_stops_mitmdump_and_keeps_the_file(write_rules):
    rules = write_rules("rules:\n  - name: bypass\n    allow: {}\n")
    returncode, output = run_mitmdump_expecting_failure([rules], extra_args=["--set", f"cors_report={rules}"])
    assert returncode == 1 and "Traceback" not in output
    assert [line for line in output.splitlines() if "cors_report" in line][0].endswith(
        f"cors_report: {rules} is a rule file (cors_rules); choose another path"
    )
    assert rules.read_text() == "rules:\n  - name: bypass\n    allow: {}\n"


def test_a_report_naming_the_capture_read_stops_mitmdump_and_keeps_the_capture(tmp_path):
    capture = tmp_path / "capture.flows"
    with capture.open("wb") as file:
        io.FlowWriter(file).add(tflow.tflow(resp=True))
    before = capture.read_bytes()
    command = [str(find_mitmdump()), "-nr", str(capture), "-s", str(REPO_ROOT / "cors_addon.py"), "--set", f"cors_report={capture}"]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=60)
    output = finished.stdout + finished.stderr
    assert finished.returncode == 1 and "Traceback" not in output
    assert f"cors_report: {capture} is the capture mitmproxy reads (rfile); choose another path" in output
    assert capture.read_bytes() == before


def test_a_full_disk_is_said_once_and_the_proxy_goes_on(backend):
    with running_mitmdump([], ["--set", "cors_report=/dev/full"]) as proxy:
        statuses = [send(proxy, "GET", backend.url(f"{PLAIN}{i}"), {"Origin": ORIGIN})[0] for i in range(3)]
    output = proxy.output()
    assert statuses == [200, 200, 200]
    assert output.count(FULL_DISK) == 1 and output.count("cors:") == 1 + 3 + 1, output  # the error, 3 verdicts, the summary
    assert "Traceback" not in output and "internal error" not in output
    assert "cors: 3 cross-origin flows seen, 3 blocked (MissingAllowOriginHeader 3), 0 with warnings" in output
