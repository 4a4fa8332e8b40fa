"""Hostile input through a real mitmdump: what a client sends cannot forge the log."""

from __future__ import annotations

import re
import socket

import pytest

from support.servers import PLAIN, running_mitmdump

pytestmark = pytest.mark.integration

CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")  # \t and \n are the log's own


def raw_request(port: int, head: bytes) -> bytes:
    """Send bytes no well-behaved client library would, and read the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(head)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_an_origin_with_escape_sequences_cannot_forge_log_lines(backend, write_rules):
    origin = "http://evil.test\x1b[2K\r[00:00:00.000] cors: all fine\u2028\u202e".encode()
    url = backend.url(PLAIN + "spoof").encode()
    rules = write_rules("rules:\n  - name: mark\n    set: {X-Lab: \"1\"}\n")
    with running_mitmdump([rules]) as proxy:
        answer = raw_request(proxy.port, b"GET " + url + b" HTTP/1.1\r\nHost: x\r\nOrigin: " + origin + b"\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200")
    lines = [line for line in proxy.output().splitlines() if "cors:" in line and "evil.test" in line]
    assert len(lines) == 2, proxy.output()  # the rule's line and the verdict's
    for line in lines:
        assert not CONTROL.search(line), repr(line)
        assert "(origin http://evil.test\\x1b[2K\\r[00:00:00.000] cors: all fine\\u2028\\u202e)" in line


def test_a_hostile_origin_is_never_echoed_into_a_response_header(backend, write_rules):
    url = backend.url(PLAIN + "echo").encode()
    rules = write_rules("rules:\n  - name: bypass\n    allow: {}\n")
    with running_mitmdump([rules]) as proxy:
        answer = raw_request(proxy.port, b"OPTIONS " + url + b" HTTP/1.1\r\nHost: x\r\nOrigin: http://a.test\r\x1b[2J\r\n"
                                         b"Access-Control-Request-Method: PUT\r\nConnection: close\r\n\r\n")
    head = answer.split(b"\r\n\r\n")[0]
    assert head.startswith(b"HTTP/1.1 501"), "the backend got the preflight, unanswered"
    assert b"access-control-allow-origin" not in head.lower()
    assert "cors: rule 'bypass' left OPTIONS" in proxy.output() and "it would write \\r into Access-Control-Allow-Origin" in proxy.output()
