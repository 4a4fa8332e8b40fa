"""Reading YAML as nodes, so that every value keeps the line it was written on.

PyYAML's constructed objects forget where they came from, and it reads YAML 1.1's
``yes``/``on`` as booleans and silently keeps the last of two equal keys. Working on the
composed node tree fixes all three: errors point at a line, only ``true``/``false`` are
booleans, and a repeated key is an error.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Sequence

import yaml

_TAG = "tag:yaml.org,2002:"
# libyaml's parser is several times faster, which matters for files of thousands of rules.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DECIMAL = re.compile(r"[-+]?[0-9]+")


class RuleError(ValueError):
    """A rule file breaks the contract; ``str()`` is the one line shown to the user."""

    def __init__(self, message: str, file: str, line: int | None = None, rule: str | None = None):
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.rule = rule

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        rule = "" if self.rule is None else f" rule {self.rule!r}:"
        return f"{where}:{rule} {self.message}"


class Context:
    """Where we are in a file, so that errors can say it."""

    def __init__(self, file: str, rule: str | None = None):
        self.file = file
        self.rule = rule

    def error(self, node: yaml.Node | None, message: str) -> RuleError:
        return RuleError(message, self.file, line_of(node) if node else None, self.rule)


def line_of(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def compose(text: str, file: str) -> yaml.Node | None:
    """The file's single document as a node tree (None when the file is empty)."""
    try:
        return yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        problem = ", ".join(part for part in (e.context, e.problem) if part)
        raise RuleError(f"not valid YAML: {problem}", file, line) from None
    except yaml.YAMLError as e:
        raise RuleError(f"not valid YAML: {e}", file) from None


def describe(node: yaml.Node) -> str:
    """How a value reads to the user, for 'expected X, got Y' messages."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    kind = node.tag.removeprefix(_TAG)
    if kind == "null":
        return "nothing"
    if kind == "str":
        return f"the text {node.value!r}"
    return f"{node.value}"


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _TAG + "null"


def mapping_items(
    node: yaml.Node, ctx: Context, what: str, keys: Sequence[str]
) -> Iterator[tuple[str, yaml.Node, yaml.Node]]:
    """The (key, key node, value node) of a mapping whose keys must be among ``keys``.

    An empty value (``allow:``) reads as an empty mapping.
    """
    if is_null(node):
        return
    if not isinstance(node, yaml.MappingNode):
        raise ctx.error(node, f"{what} must be a mapping, got {describe(node)}")
    seen: set[str] = set()
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if not isinstance(key, str) or key not in keys:
            shown = key if isinstance(key, str) else describe(key_node)
            raise ctx.error(
                key_node,
                f"unknown key {shown!r} in {what}{did_you_mean(str(shown), keys)}; "
                f"valid keys: {', '.join(keys)}",
            )
        if key in seen:
            raise ctx.error(key_node, f"key {key!r} appears twice in {what}")
        seen.add(key)
        yield key, key_node, value_node


def text(node: yaml.Node, ctx: Context, what: str) -> str:
    """A non-empty string scalar (quoted or plain, but not a number or boolean)."""
    if not (isinstance(node, yaml.ScalarNode) and node.tag == _TAG + "str"):
        raise ctx.error(node, f"{what} must be text, got {describe(node)}")
    if not node.value:
        raise ctx.error(node, f"{what} must not be empty")
    return node.value


def scalar_text(node: yaml.Node, ctx: Context, what: str) -> str:
    """Any scalar as written (``600`` and ``"600"`` alike): for header values."""
    if not isinstance(node, yaml.ScalarNode) or is_null(node):
        raise ctx.error(node, f"{what} must be a single value, got {describe(node)}")
    return node.value


def boolean(node: yaml.Node, ctx: Context, what: str) -> bool:
    """Only true or false: YAML 1.1's yes/no/on/off are refused, not guessed at."""
    if isinstance(node, yaml.ScalarNode) and node.tag == _TAG + "bool":
        if node.value.lower() in ("true", "false"):
            return node.value.lower() == "true"
    raise ctx.error(node, f"{what} must be true or false, got {describe(node)}")


def non_negative_int(node: yaml.Node, ctx: Context, what: str) -> int:
    if isinstance(node, yaml.ScalarNode) and node.tag == _TAG + "int":
        if _DECIMAL.fullmatch(node.value) and int(node.value) >= 0:
            return int(node.value)
    raise ctx.error(node, f"{what} must be a whole number of 0 or more, got {describe(node)}")


def text_list(node: yaml.Node, ctx: Context, what: str) -> list[tuple[str, yaml.Node]]:
    """One text or a list of them, each with its node for error lines."""
    if isinstance(node, yaml.SequenceNode):
        if not node.value:
            raise ctx.error(node, f"{what} must not be an empty list")
        return [(text(item, ctx, what), item) for item in node.value]
    return [(text(node, ctx, what), node)]


def choice(node: yaml.Node, ctx: Context, what: str, choices: Sequence[str]) -> str:
    value = text(node, ctx, what)
    if value not in choices:
        raise ctx.error(
            node,
            f"{what} must be one of {', '.join(choices)}, got {value!r}"
            f"{did_you_mean(value, choices)}",
        )
    return value
