"""Every break scenario: the exact headers and status it produces, over a CORS-less and a
CORS-correct backend, for the preflight and for the actual response."""

from __future__ import annotations

import pytest

from mitmcors import actions, cors
from mitmcors.corserrors import KINDS
from mitmcors.rules import Break, parse_rules
from mitmcors.scenarios import SCENARIOS, kebab, scenario_table

ORIGIN = "http://localhost:3000"
URL = "http://api.test/v1/items"
PREFLIGHT = cors.CorsRequest(ORIGIN, "PUT", True, ("content-type", "x-test"))
ACTUAL = cors.CorsRequest(ORIGIN, "PUT", False, carries_cookie=True)
BACKENDS = {
    "cors-less": [("Content-Type", "application/json"), ("X-Total", "42")],
    "cors-correct": [
        ("Content-Type", "application/json"), ("X-Total", "42"),
        ("Access-Control-Allow-Origin", ORIGIN), ("Access-Control-Allow-Credentials", "true"),
        ("Access-Control-Expose-Headers", "X-Total"),
    ],
}
CORS = ("access-control-allow-origin", "access-control-allow-credentials", "access-control-allow-methods",
        "access-control-allow-headers", "access-control-expose-headers", "location")

# What the faulted side carries: its CORS headers (name -> every value) and status.
FAULTED = {
    "missing-allow-origin-header": ({"access-control-allow-credentials": ["true"], "access-control-expose-headers": ["content-type, x-total"]}, None),
    "allow-origin-mismatch": ({"access-control-allow-origin": ["https://other-origin.invalid"], "access-control-allow-credentials": ["true"], "access-control-expose-headers": ["content-type, x-total"]}, None),
    "multiple-allow-origin-values": ({"access-control-allow-origin": [ORIGIN, ORIGIN], "access-control-allow-credentials": ["true"], "access-control-expose-headers": ["content-type, x-total"]}, None),
    "invalid-allow-origin-value": ({"access-control-allow-origin": ["not-an-origin"], "access-control-allow-credentials": ["true"], "access-control-expose-headers": ["content-type, x-total"]}, None),
    "wildcard-origin-not-allowed": ({"access-control-allow-origin": ["*"], "access-control-allow-credentials": ["true"], "access-control-expose-headers": ["content-type, x-total"]}, None),
    "invalid-allow-credentials": ({"access-control-allow-origin": [ORIGIN], "access-control-expose-headers": ["content-type, x-total"]}, None),
    "preflight-missing-allow-origin-header": ({"access-control-allow-credentials": ["true"], "access-control-allow-methods": ["PUT"], "access-control-allow-headers": ["content-type, x-test"]}, None),
    "preflight-allow-origin-mismatch": ({"access-control-allow-origin": ["https://other-origin.invalid"], "access-control-allow-credentials": ["true"], "access-control-allow-methods": ["PUT"], "access-control-allow-headers": ["content-type, x-test"]}, None),
    "preflight-multiple-allow-origin-values": ({"access-control-allow-origin": [ORIGIN, ORIGIN], "access-control-allow-credentials": ["true"], "access-control-allow-methods": ["PUT"], "access-control-allow-headers": ["content-type, x-test"]}, None),
    "preflight-invalid-allow-origin-value": ({"access-control-allow-origin": ["not-an-origin"], "access-control-allow-credentials": ["true"], "access-control-allow-methods": ["PUT"], "access-control-allow-headers": ["content-type, x-test"]}, None),
    "preflight-wildcard-origin-not-allowed": ({"access-control-allow-origin": ["*"], "access-control-allow-credentials": ["true"], "access-control-allow-methods": ["PUT"], "access-control-allow-headers": ["content-type, x-test"]}, None),
    "preflight-invalid-allow-credentials": ({"access-control-allow-origin": [ORIGIN], "access-control-allow-methods": ["PUT"], "access-control-allow-headers": ["content-type, x-test"]}, None),
    "preflight-invalid-status": ({"access-control-allow-origin": [ORIGIN], "access-control-allow-credentials": ["true"], "access-control-allow-methods": ["PUT"], "access-control-allow-headers": ["content-type, x-test"]}, 403),
    "preflight-disallowed-redirect": ({"access-control-allow-origin": [ORIGIN], "access-control-allow-credentials": ["true"], "access-control-allow-methods": ["PUT"], "access-control-allow-headers": ["content-type, x-test"], "location": [URL]}, 301),
    "method-disallowed-by-preflight-response": ({"access-control-allow-origin": [ORIGIN], "access-control-allow-credentials": ["true"], "access-control-allow-methods": ["GET, HEAD, POST"], "access-control-allow-headers": ["content-type, x-test"]}, None),
    "header-disallowed-by-preflight-response": ({"access-control-allow-origin": [ORIGIN], "access-control-allow-credentials": ["true"], "access-control-allow-methods": ["PUT"]}, None),
    "invalid-allow-methods-preflight-response": ({"access-control-allow-origin": [ORIGIN], "access-control-allow-credentials": ["true"], "access-control-allow-methods": ["GET POST PUT"], "access-control-allow-headers": ["content-type, x-test"]}, None),
    "invalid-allow-headers-preflight-response": ({"access-control-allow-origin": [ORIGIN], "access-control-allow-credentials": ["true"], "access-control-allow-methods": ["PUT"], "access-control-allow-headers": ["content-type x-test x-requested-with"]}, None),
    "header-not-exposed": ({"access-control-allow-origin": [ORIGIN], "access-control-allow-credentials": ["true"]}, None),
}
REDIRECTS_TO = {  # a redirect that passes the CORS check, to a target the browser refuses
    "redirect-contains-credentials": "http://user:password@api.test/v1/items",
    "cors-disabled-scheme": "mailto:support@example.invalid",
    "too-many-redirects": URL,
    "invalid-redirect": "http://[broken/",
    "unsafe-redirect": "data:text/plain,redirected",
    "unknown-url-scheme": "ws://api.test/v1/items",
    "unsafe-port": "http://api.test:6000/v1/items",
}
CORRECT_PREFLIGHT = {"access-control-allow-origin": [ORIGIN], "access-control-allow-credentials": ["true"], "access-control-allow-methods": ["PUT"], "access-control-allow-headers": ["content-type, x-test"]}
CORRECT_ACTUAL = {"access-control-allow-origin": [ORIGIN], "access-control-allow-credentials": ["true"], "access-control-expose-headers": ["content-type, x-total"]}
FAULTED.update({name: ({**CORRECT_ACTUAL, "location": [target]}, 307) for name, target in REDIRECTS_TO.items()})


def cors_of(fields: list[tuple[str, str]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in fields:
        if name.lower() in CORS:
            found.setdefault(name.lower(), []).append(value)
    return found


def breaking(name: str, **options) -> Break:
    return Break(SCENARIOS[name], options)


def test_every_scenario_has_an_expectation():
    assert set(FAULTED) == set(SCENARIOS)


def test_names_are_chromium_kinds_in_kebab_case():
    assert kebab("PreflightInvalidStatus") == "preflight-invalid-status"
    for scenario in SCENARIOS.values():
        assert scenario.kind is None or kebab(scenario.kind) == scenario.name


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", SCENARIOS)
def test_the_faulted_side_carries_exactly_the_one_fault(name, backend):
    scenario = SCENARIOS[name]
    if scenario.on_preflight:
        outcome = actions.response_rewrite(breaking(name), PREFLIGHT, URL, BACKENDS[backend], 200)
    else:
        outcome = actions.response_rewrite(breaking(name), ACTUAL, URL, BACKENDS[backend], 200)
    headers, status = FAULTED[name]
    assert (cors_of(outcome.fields), outcome.status) == (headers, status)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", SCENARIOS)
def test_the_other_side_is_made_correct(name, backend):
    scenario = SCENARIOS[name]
    request, correct = (ACTUAL, CORRECT_ACTUAL) if scenario.on_preflight else (PREFLIGHT, CORRECT_PREFLIGHT)
    outcome = actions.response_rewrite(breaking(name), request, URL, BACKENDS[backend], 200)
    assert cors_of(outcome.fields) == correct


@pytest.mark.parametrize("name", [name for name, s in SCENARIOS.items() if not s.on_preflight])
def test_a_failing_backend_preflight_is_repaired_for_response_scenarios(name):
    outcome = actions.response_rewrite(breaking(name), PREFLIGHT, URL, [("Content-Type", "text/html")], 501)
    assert outcome.status == 204 and cors_of(outcome.fields) == CORRECT_PREFLIGHT


@pytest.mark.parametrize("name", SCENARIOS)
def test_the_proxy_answer_to_a_preflight(name):
    outcome = actions.preflight_answer(breaking(name), PREFLIGHT, URL)
    expected_headers, expected_status = FAULTED[name] if SCENARIOS[name].on_preflight else (CORRECT_PREFLIGHT, None)
    if SCENARIOS[name].on_preflight:  # the answer has no backend headers to expose
        expected_headers = {k: v for k, v in expected_headers.items() if k != "access-control-expose-headers"}
    assert (cors_of(outcome.fields), outcome.status) == (expected_headers, expected_status)


@pytest.mark.parametrize(
    "name, options, request_, caveat",
    [
        ("wildcard-origin-not-allowed", {}, cors.CorsRequest(ORIGIN, "GET", False), "shows only on a credentialed request (credentials: 'include'), and that is not on the wire; this request carries no Cookie"),
        ("invalid-allow-credentials", {}, ACTUAL, None),
        ("preflight-invalid-allow-credentials", {}, PREFLIGHT, "shows only on a credentialed request (credentials: 'include'), and that is not on the wire; a preflight never carries cookies"),
        ("method-disallowed-by-preflight-response", {}, cors.CorsRequest(ORIGIN, "POST", True, ("x-test",)), "POST always passes the method check"),
        ("header-disallowed-by-preflight-response", {}, cors.CorsRequest(ORIGIN, "PUT", True), "the preflight asks for no headers"),
        ("header-disallowed-by-preflight-response", {"header": "X-Other"}, PREFLIGHT, "the preflight does not ask for x-other"),
        ("header-not-exposed", {"header": "Content-Type"}, ACTUAL, "content-type is a CORS-safelisted response header, always readable"),
        ("header-not-exposed", {"header": "X-Missing"}, ACTUAL, "the response has no x-missing header"),
        ("allow-origin-mismatch", {"origin": ORIGIN}, ACTUAL, "the given origin is the request's own"),
        ("cors-disabled-scheme", {"location": "https://ok.test/"}, ACTUAL, "the browser follows a redirect to https://ok.test/: no CorsDisabledScheme"),
        ("unsafe-redirect", {"location": "ws://x.test/"}, ACTUAL, "a redirect to ws://x.test/ fails as UnknownUrlScheme, not UnsafeRedirect"),
    ],
)
def test_a_flow_that_cannot_show_the_failure_says_why(name, options, request_, caveat):
    outcome = actions.response_rewrite(breaking(name, **options), request_, URL, BACKENDS["cors-less"], 200)
    assert outcome.caveat == caveat


def test_a_preflight_fault_on_the_actual_request_is_named_for_the_log_to_explain():
    outcome = actions.response_rewrite(breaking("preflight-invalid-status"), ACTUAL, URL, BACKENDS["cors-less"], 200)
    assert (outcome.what, outcome.caveat, outcome.faults_preflight) == ("made the response correct", None, "preflight-invalid-status")


def test_options_shape_the_fault():
    redirect = actions.preflight_answer(breaking("preflight-disallowed-redirect", status=307, location="https://login.test/"), PREFLIGHT, URL)
    assert redirect.status == 307 and ("Location", "https://login.test/") in redirect.fields
    assert actions.preflight_answer(breaking("preflight-invalid-status", status=401), PREFLIGHT, URL).status == 401
    one_line = actions.response_rewrite(breaking("multiple-allow-origin-values", form="one-line"), ACTUAL, URL, [], 200)
    assert cors_of(one_line.fields)["access-control-allow-origin"] == [f"{ORIGIN}, https://other-origin.invalid"]
    named = actions.preflight_answer(breaking("header-disallowed-by-preflight-response", header="X-Test"), PREFLIGHT, URL)
    assert cors_of(named.fields)["access-control-allow-headers"] == ["content-type"]
    hidden = actions.response_rewrite(breaking("header-not-exposed", header="x-total"), ACTUAL, URL, BACKENDS["cors-less"], 200)
    assert cors_of(hidden.fields)["access-control-expose-headers"] == ["content-type"]


def test_a_request_without_origin_is_not_broken():
    request = cors.CorsRequest(None, "GET", False)
    outcome = actions.response_rewrite(breaking("missing-allow-origin-header"), request, URL, BACKENDS["cors-correct"], 200)
    assert outcome.fields == BACKENDS["cors-correct"] and outcome.status is None


@pytest.mark.parametrize(
    "spec, message",
    [
        ("{scenario: preflight-invalid-status, status: 200}", "break.status must be one of 400 to 599 for preflight-invalid-status, got 200"),
        ("{scenario: preflight-disallowed-redirect, status: 304}", "break.status must be one of 301, 302, 303, 307, 308 for preflight-disallowed-redirect, got 304"),
        ("{scenario: missing-allow-origin-header, status: 401}", "unknown key 'status' in break (missing-allow-origin-header); valid keys: scenario"),
        ("{scenario: header-not-exposed, heder: X-A}", "unknown key 'heder' in break (header-not-exposed) (did you mean 'header'?); valid keys: scenario, header"),
        ("{scenario: header-not-exposed, header: 'X A'}", "break.header: 'X A' is not a valid header name"),
        ("{scenario: multiple-allow-origin-values, form: two}", "break.form must be one of two-lines, one-line, got 'two'"),
        ("{scenario: allow-origin-mismatch, origin: \"a\\nb\"}", "break.origin: the value contains the control character '\\n'"),
        ("{status: 401}", "break needs 'scenario: NAME' when it is a mapping"),
        ("preflight-invalid-stauts", "break: unknown scenario 'preflight-invalid-stauts' (did you mean 'preflight-invalid-status'?)"),
    ],
)
def test_bad_break_options_are_refused(spec, message):
    with pytest.raises(ValueError) as raised:
        parse_rules(f"rules:\n  - name: b\n    break: {spec}\n", "r.yaml")
    assert str(raised.value) == f"r.yaml:3: rule 'b': {message}"


def test_the_readme_scenario_table_is_the_registry():
    """Regenerate with `python -m mitmcors.scenarios` when the registry changes."""
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert scenario_table() in readme


def test_every_kind_a_browser_reports_has_a_scenario_of_its_name():
    assert {scenario.kind for scenario in SCENARIOS.values()} - {None} == set(KINDS)
    assert all(scenario.name == kebab(scenario.kind) for scenario in SCENARIOS.values() if scenario.kind)
