"""A real mitmdump with the addon, a real backend on loopback, headers read off the wire."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from support.expected import UNCLOSED_FLOW
from support.servers import OPTIONS_405, PLAIN, WRONG_CORS, run_mitmdump_expecting_failure, running_mitmdump
from support.wire import ORIGIN, PREFLIGHT, send, values

pytestmark = pytest.mark.integration

BYPASS = "rules:\n  - name: bypass\n    allow: {}\n"
REPO_RULES = sorted((Path(__file__).parents[2] / "rules").glob("*.yaml"))


def cors_names(headers: list[tuple[str, str]]) -> list[str]:
    return [key for key, _ in headers if key.lower().startswith("access-control-")]


def test_a_preflight_is_answered_at_the_proxy_and_never_reaches_the_backend(backend, write_rules):
    with running_mitmdump([write_rules(BYPASS)]) as proxy:
        status, headers, body = send(proxy, "OPTIONS", backend.url(PLAIN + "a"), PREFLIGHT)
        put_status, _, put_body = send(proxy, "PUT", backend.url(PLAIN + "a"), {"Origin": ORIGIN, "X-Test": "1"})
    assert (status, body) == (204, b"")
    assert values(headers, "Access-Control-Allow-Origin") == [ORIGIN]
    assert values(headers, "Access-Control-Allow-Methods") == ["PUT"]
    assert values(headers, "Access-Control-Allow-Headers") == ["content-type, x-test"]
    assert values(headers, "Access-Control-Allow-Credentials") == ["true"]
    assert [r.method for r in backend.requests] == ["PUT"]
    assert put_status == 200 and b'"x_test": "1"' in put_body
    assert "cors: rule 'bypass' answered the preflight with 204 for OPTIONS" in proxy.output()


@pytest.mark.parametrize("prefix, backend_status", [(PLAIN, 501), (OPTIONS_405, 405)])
def test_forward_repairs_a_backend_without_an_options_handler(backend, write_rules, prefix, backend_status):
    rules = write_rules("rules:\n  - name: forward\n    allow: {preflight: forward}\n")
    with running_mitmdump([rules]) as proxy:
        status, headers, body = send(proxy, "OPTIONS", backend.url(prefix + "b"), PREFLIGHT)
    assert (status, body) == (204, b"")
    assert values(headers, "Access-Control-Allow-Origin") == [ORIGIN]
    assert values(headers, "Access-Control-Allow-Headers") == ["content-type, x-test"]
    assert [r.method for r in backend.requests] == ["OPTIONS"]
    assert f"rewrote the response ({backend_status} -> 204)" in proxy.output()


def test_without_rules_the_backend_answers_reach_the_client_unchanged(backend):
    with running_mitmdump([]) as proxy:
        status, _, _ = send(proxy, "OPTIONS", backend.url(PLAIN + "c"), PREFLIGHT)
        _, headers, _ = send(proxy, "GET", backend.url(WRONG_CORS + "c"), {"Origin": ORIGIN})
    assert status == 501
    assert values(headers, "Access-Control-Allow-Origin") == ["http://wrong.example", "http://wrong.example"]
    assert "cors: rule" not in proxy.output()


def test_allow_replaces_the_backend_wrong_cors_headers(backend, write_rules):
    with running_mitmdump([write_rules(BYPASS)]) as proxy:
        status, headers, _ = send(proxy, "GET", backend.url(WRONG_CORS + "d"), {"Origin": ORIGIN})
    assert status == 200
    assert values(headers, "Access-Control-Allow-Origin") == [ORIGIN]
    assert values(headers, "Access-Control-Allow-Methods") == []
    assert values(headers, "Vary") == ["Origin"]
    assert sorted(cors_names(headers)) == ["Access-Control-Allow-Credentials", "Access-Control-Allow-Origin", "Access-Control-Expose-Headers"]


def test_strip_and_set_on_the_wire(backend, write_rules):
    rules = write_rules(
        "rules:\n  - name: proxy and app both add it\n    strip: all\n"
        "    set:\n      Access-Control-Allow-Origin: ['" + ORIGIN + "', '" + ORIGIN + "']\n"
    )
    with running_mitmdump([rules]) as proxy:
        _, headers, _ = send(proxy, "GET", backend.url(WRONG_CORS + "e"), {"Origin": ORIGIN})
    assert values(headers, "Access-Control-Allow-Origin") == [ORIGIN, ORIGIN]
    assert values(headers, "Access-Control-Allow-Methods") == []


def test_an_origin_off_the_list_gets_no_cors_headers(backend, write_rules):
    rules = write_rules("rules:\n  - name: app only\n    allow: {origins: ['https://app.test']}\n")
    with running_mitmdump([rules]) as proxy:
        _, headers, _ = send(proxy, "GET", backend.url(WRONG_CORS + "f"), {"Origin": ORIGIN})
        _, allowed, _ = send(proxy, "GET", backend.url(WRONG_CORS + "f"), {"Origin": "https://app.test"})
    assert cors_names(headers) == []
    assert values(allowed, "Access-Control-Allow-Origin") == ["https://app.test"]


def test_odd_flows_do_not_take_the_proxy_down(backend, write_rules):
    odd = [
        {"Origin": "null", "Access-Control-Request-Method": "", "Access-Control-Request-Headers": ",,,"},
        {"Origin": "", "Access-Control-Request-Method": "PUT"},
        {"Origin": ORIGIN, "Access-Control-Request-Method": "P\u00dcT".encode().decode("latin-1")},
    ]
    with running_mitmdump([write_rules(BYPASS)]) as proxy:
        statuses = [send(proxy, "OPTIONS", backend.url(PLAIN + "g"), headers)[0] for headers in odd]
        status, headers, _ = send(proxy, "GET", backend.url(PLAIN + "g"), {"Origin": ORIGIN})
    assert statuses == [204, 204, 204]
    assert status == 200 and values(headers, "Access-Control-Allow-Origin") == [ORIGIN]
    assert "internal error" not in proxy.output()


def test_the_startup_line_counts_the_rules_per_file(write_rules):
    first = write_rules("rules:\n  - {name: one, allow: {}}\n  - {name: two, strip: all}\n", "first.yaml")
    second = write_rules("rules:\n  - {name: three, allow: {}}\n", "second.yaml")
    with running_mitmdump([first, second]) as proxy:
        pass
    assert f"cors: 3 rules from {first} (2), {second} (1) active" in proxy.output()


def test_every_example_rule_file_loads_in_mitmdump():
    with running_mitmdump(REPO_RULES) as proxy:
        pass
    assert f"cors: {len(REPO_RULES)} rules from " in proxy.output()


@pytest.mark.parametrize(
    "text, line",
    [
        ("rules:\n  - name: api\n    allow:\n      orgins: reflect\n",
         "rules.yaml:4: rule 'api': unknown key 'orgins' in allow (did you mean 'origins'?); valid keys: origins, credentials, methods, headers, expose, max_age, private_network, preflight"),
        ("rules:\n  - name: api\n    allow: {max_age: -5}\n",
         "rules.yaml:3: rule 'api': allow.max_age must be a whole number of 0 or more, got -5"),
        ("rules: [\n", "rules.yaml:2: not valid YAML: while parsing a flow node, " + UNCLOSED_FLOW),
        ("rules:\n  - name: api\n    allow: {max_age: " + "9" * 5000 + "}\n",
         "rules.yaml:3: rule 'api': allow.max_age must be at most 2,147,483,647, got a number of 5,000 digits"),
        ("rules:\n  - name: !evil \"a\\nb\\e[31m\"\n    allow: {}\n", "rules.yaml:2: rule '#1': the tag '!evil' is not supported: remove it"),
    ],
)
def test_a_bad_file_stops_mitmdump_with_one_clean_line(write_rules, text, line):
    returncode, output = run_mitmdump_expecting_failure([write_rules(text)])
    assert returncode == 1
    errors = [entry for entry in output.splitlines() if "rules.yaml" in entry]
    assert len(errors) == 1 and errors[0].endswith(line)
    assert "Traceback" not in output
    assert "Error logged during startup, exiting..." in output


def test_a_missing_file_stops_mitmdump(tmp_path):
    returncode, output = run_mitmdump_expecting_failure([tmp_path / "nope.yaml"])
    assert returncode == 1
    assert f"{tmp_path / 'nope.yaml'}: file not found" in output and "Traceback" not in output


def test_a_fifo_stops_mitmdump_instead_of_hanging_it(tmp_path):
    fifo = tmp_path / "rules.fifo"
    os.mkfifo(fifo)
    returncode, output = run_mitmdump_expecting_failure([fifo])
    assert returncode == 1
    assert f"{fifo}: cannot read the file: it is a FIFO (named pipe), not a regular file" in output
    assert "Traceback" not in output


def wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_an_edit_takes_effect_within_a_second_and_a_broken_one_keeps_the_last_good(backend, write_rules):
    rules = write_rules(BYPASS)

    def allow_origin() -> list[str]:
        return values(send(proxy, "GET", backend.url(WRONG_CORS + "h"), {"Origin": ORIGIN})[1], "Access-Control-Allow-Origin")

    with running_mitmdump([rules]) as proxy:
        assert allow_origin() == [ORIGIN]
        rules.write_text("rules:\n  - name: stripped now\n    strip: all\n")
        edited = time.monotonic()
        wait_until(lambda: allow_origin() == [])
        assert time.monotonic() - edited < 1.5
        rules.write_text("rules:\n  - name: broken\n    allow: {credentials: yes}\n")
        wait_until(lambda: "rule 'broken'" in proxy.output())
        assert allow_origin() == []
        assert proxy.returncode is None
    assert (
        f"{rules}:3: rule 'broken': allow.credentials must be true or false, got yes; "
        f"keeping the 1 rule from {rules} (1) active"
    ) in proxy.output()
