"""Reading YAML as nodes, so that every value keeps the line it was written on.

PyYAML's constructed objects forget where they came from, and it reads YAML 1.1's
``yes``/``on`` as booleans and silently keeps the last of two equal keys. Working on the
composed node tree fixes all three: errors point at a line, only ``true``/``false`` are
booleans, and a repeated key is an error.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any, TypeVar

import yaml

from mitmcors.oneline import one_line

_TAG = "tag:yaml.org,2002:"
# libyaml's parser is several times faster, which matters for files of thousands of rules.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DECIMAL = re.compile(r"[-+]?[0-9]+")

# What one file may hold: 10 KB of aliases could otherwise expand to gigabytes.
MAX_NODES = 4_000_000  # values, aliases expanded: 100,000 rules of a dozen values fit
MAX_ALIASES = 10_000
MAX_SCALAR = 8_192  # characters in one value
MAX_LIST_ITEMS = 100
MAX_INT = 2**31 - 1  # the largest number a value may give (max_age, a status)


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
        return one_line(f"{where}:{rule} {self.message}")


class Context:
    """Where we are in a file, so that errors and warnings can say it."""

    def __init__(self, file: str, rule: str | None = None):
        self.file = file
        self.rule = rule
        self.warnings: list[str] = []

    def error(self, node: yaml.Node | None, message: str) -> RuleError:
        return RuleError(message, self.file, line_of(node) if node else None, self.rule)

    def warn(self, node: yaml.Node, message: str) -> None:
        """Note a value that loads but is likely not what was meant, in the error's form."""
        self.warnings.append(str(self.error(node, message)))


def line_of(node: yaml.Node) -> int:
    return node.start_mark.line + 1


RuleHandler = Callable[[yaml.Node], None]
T = TypeVar("T")
Steps = Generator[None, None, T]  # work done a step at a time: next() does one, the last returns T
EVENTS_PER_STEP = 256  # about half a millisecond of a large file


def run_steps(steps: Steps[T]) -> T:
    """Do all the steps at once: what they return."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def composing(text: str, file: str, on_rule: RuleHandler | None = None) -> Steps[yaml.Node | None]:
    """The file's single document as a node tree (None when the file is empty), read in
    steps of EVENTS_PER_STEP parser events.

    Each event is checked before its node is built, so that a file beyond the limits is
    refused before it costs anything; a fault is told with the rule it is in, when that
    is known. The tree is built here rather than by ``yaml.compose``, which would parse
    the file a second time, in one long call (a reload compiles on the event loop, a
    step at a time between flows).

    With ``on_rule``, each item of the top mapping's ``rules`` list is handed to it as
    soon as it is read, and left out of the tree (whose list then has no items, and a
    ``count``): a file of 100,000 rules never holds more than one rule's nodes at once.
    """
    composer = _Composer(file, on_rule)
    try:
        loader = _LOADER(text)  # a copy of the text as UTF-8: a step of its own for a large file
        try:
            yield
            return (yield from composer.compose(loader))
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as e:
        raise composer.error(e.problem_mark or e.context_mark, f"not valid YAML: {_problem(e, text)}") from None
    except yaml.reader.ReaderError as e:
        # Its position counts characters or bytes, by parser; the first such character is the one.
        character = chr(e.character) if isinstance(e.character, int) else e.character
        line = text.count("\n", 0, max(text.find(character), 0)) + 1
        raise RuleError(f"not valid YAML: the character {character!r} is not allowed in YAML", file, line) from None
    except yaml.YAMLError as e:
        raise RuleError(f"not valid YAML: {e}", file) from None


_INDENTATION = re.compile(r"[ \t]*")
_WORD = re.compile(r"[^\s,\[\]{}]+")


def _problem(e: yaml.MarkedYAMLError, text: str) -> str:
    """What YAML found wrong, with the fix for the mistakes it words obscurely."""
    mark = e.problem_mark or e.context_mark
    if mark is not None and "\t" in _INDENTATION.match(text, text.rfind("\n", 0, mark.index) + 1).group():
        return "a tab in the indentation; indent with spaces, not tabs"
    if e.context in ("while scanning an alias", "while scanning an anchor") and e.context_mark is not None:
        word = _WORD.match(text, e.context_mark.index).group()
        return f'an unquoted {word[0]} starts an {e.context.rpartition(" ")[2]}; quote it: "{word}"'
    return ", ".join(part for part in (e.context, e.problem) if part)


def _shown_tag(tag: str) -> str:
    """A tag as it was written: ``!!python/name:os.system`` rather than its long form."""
    return "!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag


class _Open:
    """A mapping or list being read: its node, what it is, and where its count started."""

    __slots__ = ("node", "anchor", "before", "mapping", "role", "items", "key", "key_node")

    def __init__(self, node: yaml.CollectionNode, anchor: str | None, before: int, mapping: bool, role: str | None):
        self.node = node
        self.anchor = anchor
        self.before = before  # values counted before it
        self.mapping = mapping
        self.role = role  # "rules" (the list of rules), "rule" (one of them), or None
        self.items = 0  # keys and values read so far
        self.key: str | None = None  # the last key read, in a mapping, as text
        self.key_node: yaml.Node | None = None  # a mapping's key waiting for its value


_RESOLVER = yaml.resolver.Resolver()  # the implicit tags of yaml.SafeLoader
_STRING, _SEQUENCE, _MAPPING = _TAG + "str", _TAG + "seq", _TAG + "map"
_IMPLICIT_FIRST = frozenset(_RESOLVER.yaml_implicit_resolvers)  # the first characters of numbers, booleans, null...


def _scalar_tag(event: yaml.ScalarEvent) -> str:
    """The tag yaml.SafeLoader gives a plain or quoted value (explicit tags are refused).

    Only a plain value whose first character starts some implicit type (a number, a
    boolean, null, ...) is worth trying those types' patterns on.
    """
    value, (plain, _) = event.value, event.implicit
    if not plain or value and value[0] not in _IMPLICIT_FIRST:
        return _STRING
    if len(value) > 64:
        return _RESOLVER.resolve(yaml.ScalarNode, value, event.implicit)
    return _short_scalar_tag(value, event.implicit)


@functools.lru_cache(maxsize=4096)  # the same keys and values come back rule after rule
def _short_scalar_tag(value: str, implicit: tuple[bool, bool]) -> str:
    return _RESOLVER.resolve(yaml.ScalarNode, value, implicit)


class RulesNode(yaml.SequenceNode):
    """The ``rules`` list, when its items went to ``on_rule``: how many there were."""

    count = 0


class _Composer:
    """Builds the node tree from the parser's events, as ``yaml.compose`` does, checking
    each event first: the file's values are counted as they come, aliases expanded, and
    the rule being read is known, so that a fault can name it.

    One method per kind of event, and each does all there is to do for it: a file of
    100,000 rules is a million and a half events.
    """

    def __init__(self, file: str, on_rule: RuleHandler | None) -> None:
        self.file = file
        self.on_rule = on_rule
        self.root: yaml.Node | None = None
        self.documents = 0
        self.values = 0
        self.aliases = 0
        self.sizes: dict[str, int] = {}  # anchor -> values it stands for, once read
        self.anchors: dict[str, yaml.Node] = {}
        self.open: list[_Open] = []
        self.rules = 0
        self.rule: str | None = None

    def compose(self, loader: Any) -> Steps[yaml.Node | None]:
        handlers, get_event = _HANDLERS, loader.get_event
        countdown = EVENTS_PER_STEP
        while True:
            countdown -= 1
            if not countdown:
                yield
                countdown = EVENTS_PER_STEP
            event = get_event()
            kind = type(event)
            handler = handlers.get(kind)
            if handler is not None:
                handler(self, event)
            elif kind is yaml.StreamEndEvent or event is None:
                return self.root

    def error(self, mark: yaml.Mark | None, message: str) -> RuleError:
        return RuleError(message, self.file, mark.line + 1 if mark else None, self.rule)

    def _document(self, event: yaml.DocumentStartEvent) -> None:
        self.documents += 1
        if self.documents > 1:
            raise yaml.composer.ComposerError(
                "expected a single document in the stream", None, "but found another document", event.start_mark
            )

    def _scalar(self, event: yaml.ScalarEvent) -> None:
        if event.tag is not None:
            self._refuse_tag(event)
        value, open_ = event.value, self.open
        parent = open_[-1] if open_ else None
        role = self._rule_starts() if parent is not None and parent.role == "rules" else None
        if len(value) > MAX_SCALAR:
            raise self.error(event.start_mark, f"a value of {len(value):,} characters; the limit is {MAX_SCALAR:,}")
        self.values += 1
        if self.values > MAX_NODES:
            self._too_many(event)
        node = yaml.ScalarNode(_scalar_tag(event), value, event.start_mark, event.end_mark, event.style)
        if event.anchor is not None:
            self.sizes[event.anchor] = 1
            self.anchors[event.anchor] = node
        if parent is None:
            self.root = node
            return
        if parent.mapping:
            if parent.items % 2 == 0:
                parent.key = value
            elif parent.role == "rule" and parent.key == "name":
                self.rule = value
        self._place(parent, node)
        if role is not None:
            self.rule = None

    def _begin(self, event: yaml.CollectionStartEvent) -> None:
        if event.tag is not None:
            self._refuse_tag(event)
        open_ = self.open
        parent = open_[-1] if open_ else None
        role = self._rule_starts() if parent is not None and parent.role == "rules" else None
        self.values += 1
        if self.values > MAX_NODES:
            self._too_many(event)
        mapping = type(event) is yaml.MappingStartEvent
        rules = (role is None and not mapping and len(open_) == 1 and parent is not None and parent.mapping
                 and parent.items % 2 == 1 and parent.key == "rules")
        if mapping:
            node: yaml.CollectionNode = yaml.MappingNode(_MAPPING, [], event.start_mark, None, event.flow_style)
        elif rules and self.on_rule is not None:
            node = RulesNode(_SEQUENCE, [], event.start_mark, None, event.flow_style)
        else:
            node = yaml.SequenceNode(_SEQUENCE, [], event.start_mark, None, event.flow_style)
        if event.anchor is not None:
            self.anchors[event.anchor] = node
        if parent is None:
            self.root = node
        elif type(parent.node) is RulesNode:
            parent.items += 1  # a rule is handed over once read whole
        else:
            self._place(parent, node)
        open_.append(_Open(node, event.anchor, self.values - 1, mapping, "rules" if rules else role))

    def _end(self, event: yaml.CollectionEndEvent) -> None:
        done = self.open.pop()
        done.node.end_mark = event.end_mark
        if done.anchor is not None:
            self.sizes[done.anchor] = self.values - done.before
        if self.open and type(self.open[-1].node) is RulesNode:
            self._hand_over(self.open[-1].node, done.node)
        if done.role == "rule":
            self.rule = None

    def _alias(self, event: yaml.AliasEvent) -> None:
        open_ = self.open
        parent = open_[-1] if open_ else None
        role = self._rule_starts() if parent is not None and parent.role == "rules" else None
        self.aliases += 1
        if self.aliases > MAX_ALIASES:
            raise self.error(event.start_mark, f"more than {MAX_ALIASES:,} aliases, the limit")
        anchor, alias = event.anchor, f"*{event.anchor}"
        if any(collection.anchor == anchor for collection in open_):
            raise self.error(event.start_mark, f"the alias {alias} is inside the value it names, so it never ends")
        if anchor not in self.sizes:
            raise self.error(
                event.start_mark, f'not valid YAML: {alias} is an alias that is not defined; to mean the text, quote it: "{alias}"'
            )
        self.values += self.sizes[anchor]
        if self.values > MAX_NODES:
            self._too_many(event)
        node = self.anchors[anchor]
        if parent is None:
            self.root = node
        else:
            self._place(parent, node)
        if role is not None:
            self.rule = None

    def _place(self, parent: _Open, node: yaml.Node) -> None:
        """A node read whole (or a new collection), as the next item of its parent."""
        parent.items += 1
        if not parent.mapping:
            if type(parent.node) is RulesNode:
                self._hand_over(parent.node, node)
            else:
                parent.node.value.append(node)
        elif parent.key_node is None:
            parent.key_node = node
        else:
            parent.node.value.append((parent.key_node, node))
            parent.key_node = None

    def _hand_over(self, rules: RulesNode, rule: yaml.Node) -> None:
        """A rule read whole goes to ``on_rule`` rather than into the tree."""
        assert self.on_rule is not None
        rules.count += 1
        self.on_rule(rule)

    def _rule_starts(self) -> str:
        """A new item of the rules list starts a rule."""
        self.rules += 1
        self.rule = f"#{self.rules}"
        return "rule"

    def _refuse_tag(self, event: yaml.NodeEvent) -> None:
        raise self.error(event.start_mark, f"the tag {_shown_tag(event.tag)!r} is not supported: remove it")

    def _too_many(self, event: yaml.Event) -> None:
        raise self.error(event.start_mark, f"more than {MAX_NODES:,} values once aliases are expanded, the limit")


# Functions rather than bound methods: a composer holding its own methods would be a
# reference cycle, left for the cycle collector.
_HANDLERS: dict[type, Callable[[_Composer, Any], None]] = {
    yaml.ScalarEvent: _Composer._scalar,
    yaml.MappingStartEvent: _Composer._begin,
    yaml.SequenceStartEvent: _Composer._begin,
    yaml.MappingEndEvent: _Composer._end,
    yaml.SequenceEndEvent: _Composer._end,
    yaml.AliasEvent: _Composer._alias,
    yaml.DocumentStartEvent: _Composer._document,
}


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
    if kind in ("int", "float") and len(node.value) > 20:
        return f"a number of {len(node.value):,} digits"
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
        raise ctx.error(node, f"{what} must be text, got {describe(node)}{_quote_null(node)}")
    if not node.value:
        raise ctx.error(node, f"{what} must not be empty")
    return node.value


def scalar_text(node: yaml.Node, ctx: Context, what: str) -> str:
    """Any scalar as written (``600`` and ``"600"`` alike): for header values."""
    if not isinstance(node, yaml.ScalarNode) or is_null(node):
        raise ctx.error(node, f"{what} must be a single value, got {describe(node)}{_quote_null(node)}")
    return node.value


def _quote_null(node: yaml.Node) -> str:
    """The fix when a plain ``null`` or ``~`` meant the text: YAML reads it as nothing."""
    if is_null(node) and node.value:
        return f'; to mean the text {node.value}, quote it: "{node.value}"'
    return ""


def boolean(node: yaml.Node, ctx: Context, what: str) -> bool:
    """Only true or false: YAML 1.1's yes/no/on/off are refused, not guessed at."""
    if isinstance(node, yaml.ScalarNode) and node.tag == _TAG + "bool":
        if node.value.lower() in ("true", "false"):
            return node.value.lower() == "true"
    raise ctx.error(node, f"{what} must be true or false, got {describe(node)}")


def non_negative_int(node: yaml.Node, ctx: Context, what: str) -> int:
    """A whole number that any HTTP parser can read; its size is checked before Python
    converts it, which it refuses to do past 4,300 digits."""
    if isinstance(node, yaml.ScalarNode) and node.tag == _TAG + "int" and _DECIMAL.fullmatch(node.value):
        digits = node.value.lstrip("+-").lstrip("0") or "0"
        negative = node.value.startswith("-") and digits != "0"
        if not negative:
            if len(digits) > len(str(MAX_INT)) or int(digits) > MAX_INT:
                raise ctx.error(node, f"{what} must be at most {MAX_INT:,}, got {describe(node)}")
            return int(digits)
    raise ctx.error(node, f"{what} must be a whole number of 0 or more, got {describe(node)}")


def text_list(node: yaml.Node, ctx: Context, what: str) -> list[tuple[str, yaml.Node]]:
    """One text or a list of them, each with its node for error lines."""
    if isinstance(node, yaml.SequenceNode):
        if not node.value:
            raise ctx.error(node, f"{what} must not be an empty list")
        if len(node.value) > MAX_LIST_ITEMS:
            raise ctx.error(node, f"{what} has {len(node.value):,} items; the limit is {MAX_LIST_ITEMS:,}")
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
