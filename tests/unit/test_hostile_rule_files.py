"""Whatever a rule file holds, loading it gives rules or the one-line error, in bounded time.

Property-based: arbitrary text and bytes, YAML documents shaped like rule files (and
not), and the example files in rules/ with random edits.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mitmcors.rules import RuleError, load_files, parse_rules
from mitmcors.scenarios import SCENARIOS
from mitmcors.schema import ALLOW_KEYS, MATCH_KEYS, RULE_KEYS

EXAMPLES = [path.read_text(encoding="utf-8") for path in sorted((Path(__file__).parents[2] / "rules").glob("*.yaml"))]
SECONDS = 2.0  # generous: the slowest example loads in milliseconds
QUICK = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_loads_or_says_why(load, *args) -> None:
    """``load(*args)`` gives rules (whose warnings are single lines) or a RuleError that
    is a single printable line; never another exception, and never slowly."""
    started = time.perf_counter()
    try:
        rule_set = load(*args)
    except RuleError as e:
        assert str(e).isprintable(), str(e)
    else:
        warnings = [warning for rule in rule_set for warning in rule.warnings]
        assert all(warning.isprintable() for warning in warnings), warnings
    assert time.perf_counter() - started < SECONDS


@QUICK
@given(st.text(max_size=300))
def test_any_text(text):
    assert_loads_or_says_why(parse_rules, text, "r.yaml")


@QUICK
@given(st.binary(max_size=300))
def test_any_bytes_in_a_file(data):
    descriptor, path = tempfile.mkstemp(suffix=".yaml")
    try:
        os.write(descriptor, data)
        os.close(descriptor)
        assert_loads_or_says_why(lambda: load_files([path]).rules)
    finally:
        os.unlink(path)


KEY_NAMES = sorted({key.name for key in RULE_KEYS + MATCH_KEYS + ALLOW_KEYS} | {"rules", "scenario", "status", "header", "form", "location"})
WORDS = st.sampled_from([
    "*", "reflect", "all", "null", "GET", "put", "answer", "forward", "http://localhost:*", "https://a.test/",
    "localhost:3000", "api.test:8443", "/api/*", "/x?y=1", "*.example.com", "[z-a]", "[ab", "~m GET", "~bs x",
    "~b x", "(~q", "Content-Length", ":status", "X-A", "9" * 5000, *SCENARIOS,
])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20), WORDS)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEY_NAMES) | st.text(max_size=6), inner, max_size=5),
    max_leaves=25,
)
RULES = st.dictionaries(st.sampled_from([key.name for key in RULE_KEYS]), VALUES, max_size=4)
DOCUMENTS = st.one_of(VALUES, st.builds(lambda rules: {"rules": rules}, st.lists(RULES, max_size=5)))


@QUICK
@given(DOCUMENTS, st.booleans())
def test_any_yaml_document(document, flow_style):
    text = yaml.safe_dump(document, default_flow_style=flow_style, allow_unicode=True)
    assert_loads_or_says_why(parse_rules, text, "r.yaml")


# What a slip of the keyboard or a hostile edit may put into a file.
FRAGMENTS = st.one_of(
    st.sampled_from([
        "*", "&a ", "*a", "&a [*a, *a]", "!", "!!python/object:os.system ", "!e%0A%1B ", "\t", "\n", "  ", "- ",
        ": ", "{", "}", "[", "]", "'", '"', "#", "|", ">", "%", "@", "`", "null", "~", "9" * 5000, "\x00", "\x1b",
        "\ufffe", "\u202e", "é", "\r\n", "---\n", "...\n", "<<: *a\n",
    ]),
    st.text(max_size=8),
)


@st.composite
def edited(draw, text: str) -> str:
    for _ in range(draw(st.integers(1, 4))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 30)))
        text = text[:start] + draw(FRAGMENTS) + text[end:]
    return text


@QUICK
@given(st.sampled_from(EXAMPLES).flatmap(edited))
def test_any_edit_of_an_example(text):
    assert_loads_or_says_why(parse_rules, text, "r.yaml")
