"""Every example in rules/ is a valid rule file, and each does what its comment says."""

from __future__ import annotations

from pathlib import Path

import pytest

from mitmcors.rules import Allow, Break, Match, Rewrite, load_files

RULES_DIR = Path(__file__).parents[2] / "rules"
EXAMPLES = sorted(RULES_DIR.glob("*.yaml"))


def test_there_are_examples():
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_an_example_loads_and_is_commented(path):
    rule_set = load_files([str(path)])
    assert len(rule_set) >= 1
    assert path.read_text().startswith("# "), "each example starts with a comment saying what it is for"


def test_all_examples_load_together_without_name_clashes():
    assert len(load_files([str(path) for path in EXAMPLES])) == sum(len(load_files([str(p)])) for p in EXAMPLES)


def example(name: str):
    (rule,) = load_files([str(RULES_DIR / name)]).rules
    return rule


def test_bypass_all_uses_the_defaults():
    rule = example("bypass-all.yaml")
    assert isinstance(rule.action, Allow) and rule.action.preflight == "answer"
    assert rule.match.host is None and rule.action.policy.credentials


def test_public_api_uses_literal_wildcards_without_credentials():
    policy = example("public-api.yaml").action.policy
    assert (policy.origins, policy.credentials, policy.methods, policy.headers, policy.expose) == ("*", False, "*", "*", "*")


def test_backend_answers_preflights_forwards_them():
    assert example("backend-answers-preflights.yaml").action.preflight == "forward"


def test_strip_backend_cors_strips_responses_only():
    rule = example("strip-backend-cors.yaml")
    assert rule.action == Rewrite(strip="all", set=()) and rule.match.preflight is False


def test_bypass_dev_origins_allows_local_origins_only():
    policy = example("bypass-dev-origins.yaml").action.policy
    assert policy.allows_origin("http://localhost:5173") and policy.allows_origin("http://127.0.0.1:8000")
    assert not policy.allows_origin("https://evil.test") and policy.max_age == 600


@pytest.mark.parametrize(
    "name, scenario, options",
    [
        ("double-allow-origin.yaml", "multiple-allow-origin-values", {}),
        ("preflight-behind-auth.yaml", "preflight-invalid-status", {"status": 401}),
        ("forgotten-custom-header.yaml", "header-disallowed-by-preflight-response", {"header": "X-Request-Id"}),
        ("wildcard-with-cookies.yaml", "wildcard-origin-not-allowed", {}),
    ],
)
def test_bug_examples_break_one_thing_on_every_flow(name, scenario, options):
    rule = example(name)
    assert isinstance(rule.action, Break) and rule.action.scenario.name == scenario
    assert dict(rule.action.options) == options
    assert rule.match == Match(), "a break rule must own the preflight and the response alike"
