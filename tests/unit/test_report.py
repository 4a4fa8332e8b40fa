"""The report file: it never overwrites a file the tester did not mean, and a full disk
costs one error line, never a traceback, a flow, or the summary."""

from __future__ import annotations

import errno
import json
import logging
import os

import pytest
from mitmproxy import exceptions, http
from mitmproxy.addons import readfile, save
from mitmproxy.test import taddons, tflow, tutils

from mitmcors.addon import CorsRules
from mitmcors.observer import CorsVerdicts
from mitmcors.report import ReportFile

ORIGIN = "http://localhost:3000"
RULES = "rules:\n  - name: bypass\n    allow: {}\n"


def blocked_flow() -> http.HTTPFlow:
    request = tutils.treq(headers=http.Headers([(b"Origin", ORIGIN.encode()), (b"Host", b"api.test")]), content=b"")
    request.url = "http://api.test/v1/items"
    return tflow.tflow(req=request, resp=tutils.tresp(headers=http.Headers(), content=b""))


def errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.fixture
def files(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    capture = tmp_path / "capture.flows"
    capture.write_bytes(b"2345:4:type;4:http;...")  # a tnetstring, as mitmproxy writes them
    return rules, capture


def configure(tmp_path, **options) -> CorsVerdicts:
    verdicts = CorsVerdicts()
    with taddons.context(CorsRules(), verdicts, readfile.ReadFile(), save.Save()) as tctx:
        tctx.options.update(**{k: v for k, v in options.items() if k != "cors_report"})
        tctx.configure(verdicts, cors_report=options["cors_report"])
    return verdicts


@pytest.mark.parametrize(
    "option, what",
    [
        ("cors_rules", "a rule file (cors_rules)"),
        ("rfile", "the capture mitmproxy reads (rfile)"),
        ("save_stream_file", "the capture mitmproxy writes (save_stream_file)"),
    ],
)
def test_a_report_over_a_file_another_option_names_is_refused_at_startup(tmp_path, files, caplog, option, what):
    rules, capture = files
    target = rules if option == "cors_rules" else capture
    before = target.read_bytes()
    value = [str(rules)] if option == "cors_rules" else str(capture)
    alias = str(tmp_path / "." / target.name)  # another spelling of the same file
    configure(tmp_path, **{option: value, "cors_report": alias})
    assert errors(caplog) == [f"cors_report: {alias} is {what}; choose another path"]
    if option != "save_stream_file":  # mitmproxy itself starts that capture afresh
        assert target.read_bytes() == before


def test_a_report_over_a_rule_file_is_refused_at_run_time(tmp_path, files):
    rules, _ = files
    verdicts = CorsVerdicts()
    with taddons.context(CorsRules(), verdicts) as tctx:
        tctx.options.update(cors_rules=[str(rules)])
        verdicts.running()
        with pytest.raises(exceptions.OptionsError, match=r"is a rule file \(cors_rules\); choose another path"):
            tctx.configure(verdicts, cors_report=str(rules))
    assert rules.read_text() == RULES


def test_a_link_to_a_rule_file_is_the_rule_file(tmp_path, files, caplog):
    rules, _ = files
    link = tmp_path / "report.jsonl"
    link.symlink_to(rules)
    configure(tmp_path, cors_rules=[str(rules)], cors_report=str(link))
    assert errors(caplog) == [f"cors_report: {link} is a rule file (cors_rules); choose another path"]
    assert rules.read_text() == RULES


def test_an_existing_file_that_is_no_report_is_refused(tmp_path, caplog):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    configure(tmp_path, cors_report=str(notes))
    assert errors(caplog) == [
        f"cors_report: {notes} is a file that is not a cors report (its first line is not a JSON object); choose another path"
    ]
    assert notes.read_text() == "my notes\n"


@pytest.mark.parametrize("make, what", [(os.mkdir, "a directory"), (os.mkfifo, "a FIFO")])
def test_a_report_path_that_is_not_a_file_is_refused(tmp_path, caplog, make, what):
    path = tmp_path / "report.jsonl"
    make(path)
    configure(tmp_path, cors_report=str(path))
    assert errors(caplog) == [f"cors_report: {path} is {what}; choose another path"]


@pytest.mark.parametrize("content", [b"", b'{"url": "http://api.test/"}\n{"url": "http://api.test/cut'])
def test_an_older_report_or_an_empty_file_is_truncated(tmp_path, caplog, content):
    path = tmp_path / "report.jsonl"
    path.write_bytes(content)
    verdicts = configure(tmp_path, cors_report=str(path))
    assert errors(caplog) == [] and path.read_bytes() == b""
    verdicts.done()


def test_a_character_device_is_a_fine_report(tmp_path, caplog):
    verdicts = configure(tmp_path, cors_report=os.devnull)
    assert errors(caplog) == []
    verdicts.done()


class FillingDisk:
    """A raw file on a disk with ``room`` bytes left: a write that does not fit writes
    what fits (a short write, as write(2) does), the next one fails with ENOSPC."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.data = bytearray()
        self.writes = 0

    def write(self, data: bytes) -> int:
        self.writes += 1
        if self.room == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        taken = bytes(data[: self.room])
        self.data += taken
        self.room -= len(taken)
        return len(taken)

    def close(self) -> None:
        pass


def test_each_record_is_one_write_and_a_full_disk_cuts_only_the_last_line(caplog):
    disk = FillingDisk(room=250)
    report = ReportFile("r.jsonl", disk)  # type: ignore[arg-type]
    record = {"url": "http://api.test/" + "x" * 80}
    assert [report.write(record) for _ in range(5)] == [True, True, False, False, False]
    lines = bytes(disk.data).split(b"\n")
    assert [json.loads(line) for line in lines[:2]] == [record, record]
    assert lines[2] and len(lines) == 3, "only the last line is cut"
    assert disk.writes == 4, "one write per record, the rest of a cut one once, then nothing"
    assert errors(caplog) == ["cors: cannot write the report r.jsonl: No space left on device; no more report lines are written, the proxy goes on"]


def test_a_full_disk_is_said_once_and_the_proxy_and_the_summary_go_on(tmp_path, caplog):
    verdicts = CorsVerdicts()
    with taddons.context(verdicts) as tctx:
        tctx.configure(verdicts, cors_report="/dev/full")
        flows = [blocked_flow() for _ in range(3)]
        with caplog.at_level(logging.INFO):
            for f in flows:
                verdicts.response(f)
            verdicts.done()
    assert errors(caplog) == ["cors: cannot write the report /dev/full: No space left on device; no more report lines are written, the proxy goes on"]
    assert "Traceback" not in caplog.text and "internal error" not in caplog.text
    assert all(f.marked for f in flows), "every flow is still judged and marked"
    assert "cors: 3 cross-origin flows seen, 3 blocked (MissingAllowOriginHeader 3), 0 with warnings" in caplog.text
