"""The rule files' glob language."""

from __future__ import annotations

import fnmatch
import re
import time

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mitmcors.globs import compile_globs, glob_to_regex, is_literal


@pytest.mark.parametrize(
    "glob, text, matches",
    [
        ("/v1/*", "/v1/users/7", True),  # * crosses /
        ("/v1/*", "/v1", False),
        ("/v?/x", "/v2/x", True),
        ("/v?/x", "/v22/x", False),
        ("[ab]pi", "api", True),
        ("[!ab]pi", "api", False),
        ("[]]x", "]x", True),
        ("a.b", "axb", False),  # regex characters are literal
        ("a+b", "a+b", True),
        ("^x$", "^x$", True),
        ("ab*bc", "abc", False),  # the runs at both ends may not overlap
        ("ab*bc", "abbc", True),
        ("*.js", "/app.js", True),
        ("/a/*/b/*.js", "/a/x/b/y/b/z.js", True),
        ("/a/*/b/*.js", "/a/b/z.js", False),
    ],
)
def test_glob_matching(glob, text, matches):
    assert bool(compile_globs([glob], ignore_case=False).fullmatch(text)) is matches


def test_case_folding_is_chosen_by_the_caller():
    assert compile_globs(["API.example.com"], ignore_case=True).fullmatch("api.EXAMPLE.com")
    assert not compile_globs(["/API"], ignore_case=False).fullmatch("/api")


def test_a_list_matches_any_of_its_globs_in_full():
    pattern = compile_globs(["a.test", "*.b.test", "c.*"], ignore_case=True)
    assert pattern.fullmatch("x.b.test") and pattern.fullmatch("a.test") and pattern.fullmatch("c.test")
    assert not pattern.fullmatch("a.test.evil") and not pattern.fullmatch("x.b.test.evil")


@pytest.mark.parametrize("glob, message", [("", "empty glob"), ("/a[bc", "unclosed '[' at position 3 in '/a[bc'")])
def test_malformed_globs_are_errors(glob, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        glob_to_regex(glob)


@pytest.mark.parametrize("glob, literal", [("api.test", True), ("*.test", False), ("a?", False), ("[a]", False)])
def test_is_literal(glob, literal):
    assert is_literal(glob) is literal


def test_a_reversed_range_is_an_error_not_a_crash():
    with pytest.raises(ValueError, match=r"invalid character class in '\[z-a\]'"):
        glob_to_regex("[z-a]")


def test_a_bracket_inside_a_class_is_literal():
    assert compile_globs(["[[]x"], ignore_case=False).fullmatch("[x")


# Inputs that took seconds with one `.*` per star: a failing match tried every way of
# sharing the text among the stars.
HOSTILE = [
    pytest.param("/static/*/*/*.js", False, "/static/" + "/" * 4000, id="path-of-slashes"),
    pytest.param("https://*.*.example.com", True, "https://" + "." * 32000, id="origin-of-32k-dots"),
    pytest.param("*a*a*a*a*a*a*a*a*a*a*b", True, "a" * 40, id="ten-stars-40-chars"),
    pytest.param("*a*a*a*a*a*a*a*a*a*a*b", True, "a" * 32000, id="ten-stars-32k-chars"),
    pytest.param("*aaaaaaaaaaaaaaaaaaab*b", False, "a" * 32000, id="long-middle-run"),
]


def fails_within(pattern: re.Pattern[str], text: str, seconds: float) -> bool:
    """Whether ``pattern`` refuses ``text`` within ``seconds`` (best of three: the CPU is shared)."""
    took = []
    for _ in range(3):
        started = time.perf_counter()
        assert pattern.fullmatch(text) is None
        took.append(time.perf_counter() - started)
    return min(took) < seconds


@pytest.mark.parametrize("glob, ignore_case, text", HOSTILE)
def test_a_failing_match_takes_linear_time_whatever_the_stars(glob, ignore_case, text):
    assert fails_within(compile_globs([glob], ignore_case), text, 0.05)


@pytest.mark.parametrize(
    "globs, text",
    [
        pytest.param([f"*{'a*' * 10}{i}" for i in range(100)], "a" * 32000, id="ten-stars"),
        pytest.param([f"https://*.*.a{i}.test" for i in range(10)], "https://" + "." * 32000, id="origins"),
        pytest.param([f"/api/v{i}/*/*/*.js" for i in range(100)], "/api/v1/" + "/" * 32000, id="paths"),
    ],
)
def test_a_list_costs_the_sum_of_its_globs(globs, text):
    """Each glob is matched on its own: the stars of one never multiply another's."""
    assert fails_within(compile_globs(globs, ignore_case=True), text, 0.05)


RUNS = st.text("ab/", max_size=3)
ATOMS = st.sampled_from(["a", "b", "/", "?", "*", "**", "[ab]", "[!a]"])


@settings(max_examples=500, deadline=None)
@given(atoms=st.lists(st.one_of(ATOMS, RUNS), min_size=1, max_size=8), text=st.text("ab/", max_size=12))
def test_globs_match_what_fnmatch_matches(atoms, text):
    """On the syntax both share, fnmatch is the reference (it has no case or `[` quirks here)."""
    glob = "".join(atoms)
    assume(glob)
    assert bool(compile_globs([glob], ignore_case=False).fullmatch(text)) is fnmatch.fnmatchcase(text, glob)
