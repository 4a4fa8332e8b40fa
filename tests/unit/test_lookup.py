"""From a pasted console line to the failure, its scenarios and a rule that loads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mitmproxy.test import taddons

from mitmcors.combined import Cors
from mitmcors.engines import ENGINES, SAID, kinds_printing
from mitmcors.lookup import UNKNOWN, explain, main
from mitmcors.rules import parse_rules
from mitmcors.scenarios import SCENARIOS, kebab

URL = "http://127.0.0.1:8000/api/items?x=1"
ORIGIN = "http://localhost:3000"
# A realistic value for each kind whose message shows one.
VALUES = {
    "AllowOriginMismatch": "https://app.example.com",
    "MultipleAllowOriginValues": "http://localhost:3000, http://localhost:3000",
    "InvalidAllowOriginValue": "not-an-origin",
    "InvalidAllowCredentials": "TRUE",
    "MethodDisallowedByPreflightResponse": "PUT",
    "HeaderDisallowedByPreflightResponse": "x-test",
    "InvalidAllowMethodsPreflightResponse": "GET POST PUT",
    "InvalidAllowHeadersPreflightResponse": "x-test x-other",
}
STATUS = {"PreflightInvalidStatus": "401", "PreflightDisallowedRedirect": "301"}


def _value(kind: str) -> str:
    return VALUES.get(kind.removeprefix("Preflight"), "http://127.0.0.1:1/x")


# Every line every engine prints for every kind, filled in as a browser fills it.
GENERATED = [
    (engine, kind, message.format(url=URL, origin=ORIGIN, value=_value(kind), status=STATUS.get(kind, "200")))
    for engine in ENGINES for kind, said in SAID[engine].items() for message in said.messages
]


def rule_of(text: str) -> dict:
    parse_rules(text)  # loads, or raises
    (rule,) = yaml.safe_load(text)["rules"]
    return rule


def options_of(rule: dict) -> dict:
    spec = rule["break"]
    return {} if isinstance(spec, str) else {key: value for key, value in spec.items() if key != "scenario"}


def scenario_of(rule: dict) -> str:
    spec = rule["break"]
    return spec if isinstance(spec, str) else spec["scenario"]


@pytest.mark.parametrize("engine, kind, line", GENERATED, ids=[f"{e}-{k}-{i}" for i, (e, k, _) in enumerate(GENERATED)])
def test_every_engines_line_names_its_kind_and_every_kind_printing_it(engine, kind, line):
    explanation = explain(line)
    assert explanation.engine == engine
    kinds = [candidate.kind for candidate in explanation.candidates]
    assert kind in kinds
    assert tuple(kinds) == kinds_printing(line, engine)
    for candidate in explanation.candidates:
        scenario = kebab(candidate.kind)
        assert candidate.scenario == (scenario if scenario in SCENARIOS else None)
        if candidate.rule is None:
            continue
        rule = rule_of(candidate.rule)
        assert scenario_of(rule) == scenario
        if explanation.url == URL:
            assert rule["match"]["host"] == "127.0.0.1"
            assert rule["match"]["path"] == "/api/items"


# Lines the browsers printed in the end-to-end tests (tests/e2e), with every scenario each may
# stand for, the match the rule gets, and the options it gives.
CHROMIUM = "Access to fetch at 'http://127.0.0.1:40000/plain/a?x=1' from origin 'http://127.0.0.1:40001' has been blocked by CORS policy: "
FIREFOX = "Cross-Origin Request Blocked: The Same Origin Policy disallows reading the remote resource at http://127.0.0.1:40000/plain/a. "
PLAIN_A = {"host": "127.0.0.1", "path": "/plain/a"}
REAL_LINES = [
    ("chromium", CHROMIUM + "No 'Access-Control-Allow-Origin' header is present on the requested resource.",
     ["missing-allow-origin-header"], PLAIN_A, {}),
    ("chromium", CHROMIUM + "Response to preflight request doesn't pass access control check: It does not have HTTP ok status.",
     ["preflight-invalid-status"], PLAIN_A, {}),
    ("chromium", CHROMIUM + "The 'Access-Control-Allow-Origin' header has a value 'https://app.example.com' that is not "
     "equal to the supplied origin. Have the server send the header with a valid value.",
     ["allow-origin-mismatch"], PLAIN_A, {"origin": "https://app.example.com"}),
    ("chromium", CHROMIUM + "Request header field x-test is not allowed by Access-Control-Allow-Headers in preflight response.",
     ["header-disallowed-by-preflight-response"], PLAIN_A, {"header": "x-test"}),
    ("chromium", CHROMIUM + "Method PUT is not allowed by Access-Control-Allow-Methods in preflight response.",
     ["method-disallowed-by-preflight-response"], {**PLAIN_A, "method": "PUT"}, {}),
    ("chromium", "Access to fetch at 'http://127.0.0.1:40002/final' (redirected from 'http://127.0.0.1:40000/a') from origin "
     "'http://127.0.0.1:40001' has been blocked by CORS policy: Response to preflight request doesn't pass access control "
     "check: Redirect is not allowed for a preflight request.",
     ["preflight-disallowed-redirect"], {"host": "127.0.0.1", "path": "/final"}, {}),
    # An XMLHttpRequest's line: its own opening, no "Have the server send ...", a sentence after.
    ("chromium", "Access to XMLHttpRequest at 'http://127.0.0.1:40000/plain/a' from origin 'http://127.0.0.1:40001' has been "
     "blocked by CORS policy: The value of the 'Access-Control-Allow-Origin' header in the response must not be the "
     "wildcard '*' when the request's credentials mode is 'include'. The credentials mode of requests initiated by the "
     "XMLHttpRequest is controlled by the withCredentials attribute.",
     ["wildcard-origin-not-allowed"], PLAIN_A, {}),
    ("chromium", "Access to XMLHttpRequest at 'http://127.0.0.1:40000/plain/a' from origin 'http://127.0.0.1:40001' has been "
     "blocked by CORS policy: The 'Access-Control-Allow-Origin' header contains the invalid value 'not-an-origin'.",
     ["invalid-allow-origin-value"], PLAIN_A, {}),
    ("firefox", FIREFOX + "(Reason: CORS header ‘Access-Control-Allow-Origin’ missing). Status code: 200.",
     ["missing-allow-origin-header", "preflight-missing-allow-origin-header"], PLAIN_A, {}),
    ("firefox", FIREFOX + "(Reason: CORS header ‘Access-Control-Allow-Origin’ does not match ‘https://app.example.com’).",
     ["allow-origin-mismatch", "multiple-allow-origin-values", "invalid-allow-origin-value", "preflight-allow-origin-mismatch",
      "preflight-multiple-allow-origin-values", "preflight-invalid-allow-origin-value"], PLAIN_A, {"origin": "https://app.example.com"}),
    ("firefox", "Cross-Origin Request Blocked: The Same Origin Policy disallows reading the remote resource at "
     "‘http://127.0.0.1:40000/plain/a’. (Reason: Credential is not supported if the CORS header ‘Access-Control-Allow-Origin’ is ‘*’).",
     ["wildcard-origin-not-allowed", "preflight-wildcard-origin-not-allowed"], PLAIN_A, {}),
    ("firefox", FIREFOX + "(Reason: CORS preflight response did not succeed). Status code: 401.",
     ["preflight-invalid-status"], PLAIN_A, {"status": 401}),
    ("firefox", FIREFOX + "(Reason: header ‘x-test’ is not allowed according to header ‘Access-Control-Allow-Headers’ from "
     "CORS preflight response).", ["header-disallowed-by-preflight-response"], PLAIN_A, {"header": "x-test"}),
    ("firefox", FIREFOX + "(Reason: invalid token ‘GET POST PUT’ in CORS header ‘Access-Control-Allow-Methods’).",
     ["invalid-allow-methods-preflight-response"], PLAIN_A, {}),
    ("webkit", "Origin http://127.0.0.1:40001 is not allowed by Access-Control-Allow-Origin. Status code: 200",
     ["missing-allow-origin-header", "allow-origin-mismatch", "multiple-allow-origin-values", "invalid-allow-origin-value",
      "preflight-missing-allow-origin-header", "preflight-allow-origin-mismatch", "preflight-multiple-allow-origin-values",
      "preflight-invalid-allow-origin-value"],
     {"origin": "http://127.0.0.1:40001"}, {}),
    ("webkit", "Preflight response is not successful. Status code: 401",
     ["preflight-invalid-status", "preflight-disallowed-redirect"], {}, {"status": 401}),
    ("webkit", "[Error] Request header field X-Test is not allowed by Access-Control-Allow-Headers.",
     ["header-disallowed-by-preflight-response"], {}, {"header": "X-Test"}),
    ("webkit", "Access-Control-Allow-Origin cannot contain more than one origin.",
     ["multiple-allow-origin-values", "preflight-multiple-allow-origin-values"], {}, {}),
]


@pytest.mark.parametrize("engine, line, scenarios, match, options", REAL_LINES)
def test_a_real_line_names_every_scenario_that_reproduces_it_and_a_rule_that_loads(engine, line, scenarios, match, options):
    explanation = explain(line)
    assert explanation.engine == engine
    assert [candidate.scenario for candidate in explanation.candidates] == scenarios
    first = rule_of(explanation.candidates[0].rule)
    assert first.get("match", {}) == match
    assert options_of(first) == options


def test_an_option_the_scenario_refuses_is_left_out():
    # 301 is a redirect's status: preflight-invalid-status takes 400 to 599 only.
    invalid, redirect = explain("Preflight response is not successful. Status code: 301").candidates
    assert rule_of(invalid.rule)["break"] == "preflight-invalid-status"
    assert rule_of(redirect.rule)["break"] == {"scenario": "preflight-disallowed-redirect", "status": 301}


def test_firefox_mismatch_listing_several_origins_is_one_header_line():
    line = FIREFOX + "(Reason: CORS header ‘Access-Control-Allow-Origin’ does not match ‘http://a.test, http://b.test’)."
    by_scenario = {c.scenario: rule_of(c.rule) for c in explain(line).candidates}
    assert options_of(by_scenario["multiple-allow-origin-values"]) == {"form": "one-line"}
    assert options_of(by_scenario["allow-origin-mismatch"]) == {"origin": "http://a.test, http://b.test"}


def test_a_line_without_a_url_says_the_rule_matches_any_host():
    text = explain("Cannot use wildcard in Access-Control-Allow-Origin when credentials flag is true.").text()
    assert "names no URL" in text
    assert "match:" not in text


def test_the_fix_names_the_lines_values():
    (candidate,) = explain(CHROMIUM + "Method DELETE is not allowed by Access-Control-Allow-Methods in preflight response.").candidates
    assert candidate.fix == "send `Access-Control-Allow-Methods: DELETE` in the preflight response"
    (candidate,) = explain(CHROMIUM + "No 'Access-Control-Allow-Origin' header is present on the requested resource.").candidates
    assert "`Access-Control-Allow-Origin: http://127.0.0.1:40001`" in candidate.fix


def test_firefox_names_its_reason_code():
    text = explain(FIREFOX + "(Reason: CORS header ‘Access-Control-Allow-Origin’ missing). Status code: 200.").text()
    assert text.startswith("Firefox (CORSMissingAllowOrigin): MissingAllowOriginHeader, PreflightMissingAllowOriginHeader")
    assert "Firefox prints this same line for 2 kinds" in text


def test_a_network_error_of_a_redirect_gets_its_scenario_and_a_rule():
    explanation = explain("Failed to load resource: net::ERR_TOO_MANY_REDIRECTS")
    (candidate,) = explanation.candidates
    assert (explanation.engine, candidate.kind, candidate.scenario) == ("chromium", "TooManyRedirects", "too-many-redirects")
    assert rule_of(candidate.rule) == {"name": "reproduce TooManyRedirects on any host", "break": "too-many-redirects"}


def test_a_glob_character_in_the_path_still_matches_it():
    line = CHROMIUM.replace("/plain/a?x=1", "/files/[1]*.txt") + "No 'Access-Control-Allow-Origin' header is present on the requested resource."
    assert rule_of(explain(line).candidates[0].rule)["match"] == {"host": "127.0.0.1", "path": "/files/?1]?.txt"}


def test_an_ipv6_host_loses_its_brackets():
    line = CHROMIUM.replace("127.0.0.1:40000", "[::1]:40000") + "No 'Access-Control-Allow-Origin' header is present on the requested resource."
    assert rule_of(explain(line).candidates[0].rule)["match"]["host"] == "::1"


@pytest.mark.parametrize("line", ["", "hello", "TypeError: Failed to fetch",
                                  "Access to fetch at 'x' from origin 'y' has been blocked by CORS policy: something new."])
def test_an_unknown_line_says_so(line):
    explanation = explain(line)
    assert not explanation.recognised
    assert explanation.text().startswith(UNKNOWN)


@pytest.mark.parametrize("line", ["Fetch API cannot load http://127.0.0.1:40000/plain/a due to access control checks.",
                                  "Failed to load resource: net::ERR_FAILED"])
def test_a_follow_up_line_asks_for_the_line_before_it(line):
    explanation = explain(line)
    assert not explanation.recognised
    assert "paste that line instead" in explanation.text()


def test_main_exits_0_for_a_known_line_and_2_for_an_unknown_one(capsys):
    assert main(["Method", "PUT", "is", "not", "allowed", "by", "Access-Control-Allow-Methods."]) == 0
    assert "method-disallowed-by-preflight-response" in capsys.readouterr().out
    assert main(["hello"]) == 2
    assert capsys.readouterr().out == f"{UNKNOWN}: 'hello'\n"


def test_the_command_line_reads_stdin():
    run = subprocess.run([sys.executable, "-m", "mitmcors.lookup"], capture_output=True, text=True, check=False,
                         input=FIREFOX + "(Reason: CORS preflight response did not succeed). Status code: 401.\n")
    assert run.returncode == 0, run.stderr
    assert "break: {scenario: \"preflight-invalid-status\", status: 401}" in run.stdout
    unknown = subprocess.run([sys.executable, "-m", "mitmcors.lookup", "no", "such", "line"],
                             capture_output=True, text=True, check=False)
    assert (unknown.returncode, unknown.stdout) == (2, f"{UNKNOWN}: 'no such line'\n")


def test_the_cors_explain_command_returns_and_logs_the_explanation(caplog):
    addon = Cors()
    line = "Method PUT is not allowed by Access-Control-Allow-Methods."
    with taddons.context(addon) as tctx:
        caplog.set_level("INFO")
        text = tctx.command(addon.explain, line)
    assert text == explain(line).text()
    assert f"cors: {text}" in caplog.messages


def test_the_installed_script_explains_its_arguments():
    script = Path(sys.executable).with_name("mitmcors-explain")
    if not script.exists():
        pytest.skip("mitmcors-explain is not installed next to this Python (pip install -e .)")
    run = subprocess.run([str(script), "Preflight response is not successful. Status code: 401"],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert "preflight-invalid-status" in run.stdout and "preflight-disallowed-redirect" in run.stdout


def test_a_line_copied_with_its_console_decorations_and_follow_ups_is_still_known():
    pasted = ("index.html:1 " + CHROMIUM + "No 'Access-Control-Allow-Origin' header is present on the requested resource.\n"
              "index.html:1 Failed to load resource: net::ERR_FAILED\n")
    assert [c.scenario for c in explain(pasted).candidates] == ["missing-allow-origin-header"]
    firefox = FIREFOX + "(Reason: CORS request external redirect not allowed). [Learn More]"
    assert [c.scenario for c in explain(firefox).candidates] == ["preflight-disallowed-redirect"]
    webkit = ("[Error] Fetch API cannot load http://127.0.0.1:40000/plain/a due to access control checks.\n"
              "[Error] Method PUT is not allowed by Access-Control-Allow-Methods.")
    assert [c.scenario for c in explain(webkit).candidates] == ["method-disallowed-by-preflight-response"]
