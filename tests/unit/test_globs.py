"""The rule files' glob language."""

from __future__ import annotations

import pytest

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
    ],
)
def test_glob_matching(glob, text, matches):
    assert bool(compile_globs([glob], ignore_case=False).fullmatch(text)) is matches


def test_case_folding_is_chosen_by_the_caller():
    assert compile_globs(["API.example.com"], ignore_case=True).fullmatch("api.EXAMPLE.com")
    assert not compile_globs(["/API"], ignore_case=False).fullmatch("/api")


def test_a_list_matches_any_of_its_globs_in_full():
    pattern = compile_globs(["a.test", "*.b.test"], ignore_case=True)
    assert pattern.fullmatch("x.b.test") and pattern.fullmatch("a.test")
    assert not pattern.fullmatch("a.test.evil")


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
