"""Rule files: loading them whole or not at all, and matching flows against the rules.

Everything is compiled at load time into immutable objects, and rules are indexed by
host, so that deciding a flow costs a dictionary lookup and a few pattern matches no
matter how many rules are loaded.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import heapq
import operator
import os
import stat
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, Union

import yaml

from mitmcors import cors
from mitmcors.scenarios import Scenario
from mitmcors.schema import MAX_FILE_BYTES, MAX_RULES, RULE_KEYS, Globs, needs_response, read_section
from mitmcors.yamlnodes import Context, RuleError, RulesNode, Steps, composing, line_of, mapping_items, run_steps, text

__all__ = ["Allow", "Break", "Match", "Rewrite", "Rule", "RuleError", "RuleSet", "Target", "load_files", "parse_rules"]


class Target(NamedTuple):
    """What rules match on, read from a flow when a rule is to act on it.

    For a preflight, ``cors.method`` is the method it announces.
    """

    host: str
    path: str
    cors: cors.CorsRequest
    flow: Any  # the mitmproxy flow, for filter expressions


@dataclass(frozen=True, slots=True)
class Match:
    """A compiled ``match``: every condition given must hold."""

    host: Globs | None = None
    path: Globs | None = None
    method: frozenset[str] | None = None
    origin: Globs | None = None
    preflight: bool | None = None
    filter: Any = None  # a compiled mitmproxy filter
    needs_response: bool = False  # the filter looks at the response (or may)

    def matches(self, target: Target) -> bool:
        return self.matches_host(target.host) and self.matches_besides_host(target)

    def matches_host(self, host: str) -> bool:
        return self.host is None or _matches(self.host, host)

    def matches_besides_host(self, target: Target, with_filter: bool = True) -> bool:
        """Every condition but the host (and the filter, when told); cheap ones first."""
        request = target.cors
        if self.preflight is not None and self.preflight != request.preflight:
            return False
        if self.method is not None and request.method.upper() not in self.method:
            return False
        if self.origin is not None and not _matches(self.origin, request.origin):
            return False
        if self.path is not None and not _matches(self.path, target.path):
            return False
        return not with_filter or self.filter is None or bool(self.filter(target.flow))


def _matches(globs: Globs, value: str | None) -> bool:
    return value is not None and globs.matches(value)


@dataclass(frozen=True, slots=True)
class Allow:
    """Bypass: the response gets the CORS headers ``policy`` grants, whatever it had."""

    policy: cors.AllowPolicy
    preflight: Literal["answer", "forward"]


@dataclass(frozen=True, slots=True)
class Rewrite:
    """Edit CORS (or any) response headers: strip first, then set."""

    strip: Literal["all"] | frozenset[str] | None
    set: tuple[tuple[str, tuple[str, ...]], ...]
    _replaced: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_replaced", frozenset(name.lower() for name, _ in self.set))

    def apply(self, fields: cors.Fields) -> cors.Fields:
        kept = [(name, value) for name, value in fields if not self._removes(name.lower())]
        return kept + [(name, value) for name, values in self.set for value in values]

    def _removes(self, name: str) -> bool:
        if name in self._replaced:
            return True
        if self.strip == "all":
            return name.startswith(cors.CORS_HEADER_PREFIX)
        return self.strip is not None and name in self.strip


@dataclass(frozen=True, slots=True)
class Break:
    """Reproduce a named failure: the allow defaults make the exchange correct for the
    request, then the scenario injects its one fault."""

    scenario: Scenario
    options: Mapping[str, Any]
    policy: cors.AllowPolicy = cors.AllowPolicy()


Action = Union[Allow, Rewrite, Break]


class Rule(NamedTuple):
    name: str
    file: str
    line: int
    order: int  # position among all loaded rules: the first match wins
    match: Match
    action: Action
    warnings: tuple[str, ...] = ()  # what loads but is likely not what was meant

    @property
    def source(self) -> str:
        return f"{self.file}:{self.line}"


RULES_PER_STEP = 1000  # rules indexed or checked in one step of a load
HOSTS_REMEMBERED = 4096  # per rule set: hosts beyond it are worked out on every flow


class RuleSet:
    """The active rules, indexed by literal host; the first matching rule wins."""

    def __init__(self, rules: Sequence[Rule], files: Sequence[str] = ()):
        run_steps(self._indexing(rules, files))

    @classmethod
    def in_steps(cls, rules: Sequence[Rule], files: Sequence[str]) -> Steps[RuleSet]:
        """The rule set made a step of RULES_PER_STEP rules at a time (see ``loading``)."""
        rule_set = cls.__new__(cls)
        yield from rule_set._indexing(rules, files)
        return rule_set

    def _indexing(self, rules: Sequence[Rule], files: Sequence[str]) -> Steps[None]:
        self.rules = tuple(rules)
        self.files = tuple(files)
        warnings: list[str] = []
        self._any_rewrite = False
        by_host: dict[str, list[Rule]] = {}
        unindexed: list[Rule] = []
        for count, rule in enumerate(self.rules, 1):
            if not count % RULES_PER_STEP:
                yield
            warnings += rule.warnings
            self._any_rewrite = self._any_rewrite or isinstance(rule.action, Rewrite)
            hosts = rule.match.host
            if hosts is not None and hosts.literals is not None:
                for host in set(hosts.literals):
                    by_host.setdefault(host, []).append(rule)
            else:
                unindexed.append(rule)
        self._by_host: dict[str, tuple[Rule, ...]] = {}
        for count, (host, found) in enumerate(by_host.items(), 1):
            if not count % RULES_PER_STEP:
                yield
            self._by_host[host] = tuple(found)
        self._unindexed = tuple(unindexed)
        self.warnings = tuple(warnings)
        self._for_host: dict[str, tuple[Rule, ...]] = {}  # hosts seen: the rules for each
        self._rewrites_host: dict[str, bool] = {}  # hosts seen: whether a Rewrite is among their rules

    def __len__(self) -> int:
        return len(self.rules)

    def releasing(self) -> Steps[None]:
        """Let go of the rules RULES_PER_STEP at a time, leaving the set empty: dropped at
        once, 100,000 rules take 20 ms to free. Only for a set nothing else uses."""
        self._for_host, self._rewrites_host = {}, {}
        while self._by_host:
            for _ in range(min(RULES_PER_STEP, len(self._by_host))):
                self._by_host.popitem()
            yield
        self._unindexed = ()
        rules, self.rules = list(self.rules), ()
        while rules:
            del rules[-RULES_PER_STEP:]
            yield

    def first_match(self, target: Target, response_known: bool = True) -> Rule | None:
        """The first rule that matches; before the response is known, None as soon as a
        rule that needs the response to decide might match."""
        for rule in self._rules_for(target.host.lower()):
            match = rule.match
            if not response_known and match.needs_response and match.matches_besides_host(target, with_filter=False):
                return None
            if match.matches_besides_host(target):
                return rule
        return None

    def decided_by_request(self, host: str) -> bool:
        """Whether the first match for ``host`` hangs on the request's CORS side and path
        alone: no rule for it has a filter (which may read anything of the flow)."""
        return all(rule.match.filter is None for rule in self._rules_for(host.lower()))

    def acts_without_origin(self, host: str) -> bool:
        """Whether a rule for ``host`` may change a flow without Origin: allow and break
        act on CORS requests only, so only a Rewrite can; worked out once per host."""
        if not self._any_rewrite:
            return False
        host = host.lower()
        acts = self._rewrites_host.get(host)
        if acts is None:
            acts = any(isinstance(rule.action, Rewrite) for rule in self._rules_for(host))
            if len(self._rewrites_host) < HOSTS_REMEMBERED:
                self._rewrites_host[host] = acts
        return acts

    def _rules_for(self, host: str) -> tuple[Rule, ...]:
        """The rules whose host condition holds for ``host``, in order: worked out once
        per host (a lab talks to a few), so wildcard hosts cost nothing per flow."""
        rules = self._for_host.get(host)
        if rules is None:
            rules = tuple(rule for rule in self._candidates(host) if rule.match.matches_host(host))
            if len(self._for_host) < HOSTS_REMEMBERED:
                self._for_host[host] = rules
        return rules

    def _candidates(self, host: str) -> Iterable[Rule]:
        indexed = self._by_host.get(host)
        if not indexed:
            return self._unindexed
        if not self._unindexed:
            return indexed
        return heapq.merge(indexed, self._unindexed, key=operator.attrgetter("order"))

    def summary(self) -> str:
        """'3 rules from a.yaml (2), b.yaml (1)': for the log when rules change."""
        counts = {file: 0 for file in self.files}
        for rule in self.rules:
            counts[rule.file] += 1
        files = ", ".join(f"{file} ({count})" for file, count in counts.items())
        noun = "rule" if len(self.rules) == 1 else "rules"
        return f"{len(self.rules)} {noun} from {files}" if files else f"0 {noun}"


def load_files(paths: Sequence[str]) -> RuleSet:
    """Load every file, in order, into one rule set; raise RuleError at the first fault."""
    return run_steps(loading(paths))


def loading(paths: Sequence[str]) -> Steps[RuleSet]:
    """``load_files`` a step at a time, each about half a millisecond (a few hundred
    YAML events, or RULES_PER_STEP rules), so that a reload can give way to traffic."""
    rules: list[Rule] = []
    with _no_full_collection():
        for path in paths:
            text_ = yield from _reading(path)
            rules += yield from parsing_rules(text_, path, first_order=len(rules))
        yield from _refusing_duplicate_names(rules)
        return (yield from RuleSet.in_steps(rules, paths))


_LOADS = threading.Lock()
_loads = 0  # running now, in any thread
_threshold = gc.get_threshold()


@contextlib.contextmanager
def _no_full_collection() -> Iterator[None]:
    """Python's cycle collector walks every long-lived object each time their number
    has grown by a quarter: seven times over the growing rules in a load of 100,000
    (0.5 s), each walk stopping every thread. While rules load, only the young
    generations are collected, which frees what traffic throws away meanwhile (a reload
    compiles between flows); a load itself makes no reference cycles. Loads may nest
    or run in several threads (a caller's own), hence the count under a lock."""
    global _loads, _threshold
    with _LOADS:
        if _loads == 0:
            _threshold = gc.get_threshold()
            gc.set_threshold(_threshold[0], _threshold[1], 2**30)
        _loads += 1
    try:
        yield
    finally:
        with _LOADS:
            _loads -= 1
            if _loads == 0:
                gc.set_threshold(*_threshold)


def _reading(path: str) -> Steps[str]:
    """The text of a regular file of at most MAX_FILE_BYTES, read in one step and
    decoded in another (each 5 ms for a file of 100,000 rules).

    A FIFO would block the open until a writer came, a device would never end (and
    opening one may act on it): anything else is refused before it is opened, and
    again on the descriptor, opened without blocking, in case the path changed.
    """
    try:
        _refuse_special(path, os.stat(path).st_mode)
        descriptor = os.open(path, os.O_RDONLY | _NONBLOCK)
    except FileNotFoundError:
        raise RuleError("file not found", path) from None
    except OSError as e:
        raise RuleError(f"cannot read the file: {e.strerror}", path) from None
    try:
        _refuse_special(path, os.fstat(descriptor).st_mode)
        with open(descriptor, "rb", closefd=False) as file:
            data = file.read(MAX_FILE_BYTES + 1)
    finally:
        os.close(descriptor)
    if len(data) > MAX_FILE_BYTES:
        raise RuleError(f"the file has more than {MAX_FILE_BYTES:,} bytes, the limit", path)
    yield
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise RuleError(f"not UTF-8: the byte 0x{data[e.start]:02x} cannot be decoded; save the file as UTF-8", path, line) from None


_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # Windows has no FIFOs to wait on
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _refuse_special(path: str, mode: int) -> None:
    if not stat.S_ISREG(mode):
        kind = next((kind for test, kind in _KINDS if test(mode)), "a special file")
        raise RuleError(f"cannot read the file: it is {kind}, not a regular file", path)


def _refusing_duplicate_names(rules: Sequence[Rule]) -> Steps[None]:
    first: dict[str, Rule] = {}
    for count, rule in enumerate(rules, 1):
        if not count % RULES_PER_STEP:
            yield
        if rule.name in first:
            raise RuleError(
                f"the name is already used by the rule at {first[rule.name].source}",
                rule.file, rule.line, rule.name,
            )
        first[rule.name] = rule


def parse_rules(text_: str, file: str = "<rules>", first_order: int = 0) -> list[Rule]:
    """Compile the rules of one file's text.

    >>> [rule.name for rule in parse_rules("rules: [{name: open, allow: {}}]")]
    ['open']
    """
    return run_steps(parsing_rules(text_, file, first_order))


def parsing_rules(text_: str, file: str, first_order: int) -> Steps[list[Rule]]:
    """``parse_rules`` a step at a time."""
    compiling = _Compiling(file, first_order)
    document = yield from composing(text_, file, compiling.add)
    ctx = Context(file)
    if document is None:
        raise RuleError("the file is empty; it needs a 'rules:' list", file, 1)
    _check_rules_list(document, ctx)
    if compiling.error is not None:  # after the faults of the file as a whole, as if compiled after reading it
        raise compiling.error
    return compiling.rules


class _Compiling:
    """Compiles each rule as soon as it is read, so that its nodes are freed with it;
    keeps the first fault, which is told once the whole file is known to be sound YAML
    with a good ``rules`` list (as though the rules were compiled after reading it)."""

    def __init__(self, file: str, first_order: int):
        self.file = file
        self.first_order = first_order
        self.rules: list[Rule] = []
        self.error: RuleError | None = None

    def add(self, node: yaml.Node) -> None:
        if self.error is not None or len(self.rules) >= MAX_RULES:
            return
        index = len(self.rules)
        try:
            self.rules.append(_compile_rule(node, Context(self.file, rule=f"#{index + 1}"), self.first_order + index))
        except RuleError as e:
            self.error = e


def _check_rules_list(document: yaml.Node, ctx: Context) -> None:
    found = None
    for _, _, value in mapping_items(document, ctx, "the file", ["rules"]):
        found = value
    if found is None:
        raise ctx.error(document, "the file needs a 'rules:' list")
    if not isinstance(found, yaml.SequenceNode):
        raise ctx.error(found, "'rules' must be a list of rules (each starting with '- name:')")
    count = found.count if isinstance(found, RulesNode) else len(found.value)
    if count > MAX_RULES:
        raise ctx.error(found, f"'rules' has {count:,} rules; the limit is {MAX_RULES:,} in one file: split them into several files")


def _compile_rule(node: yaml.Node, ctx: Context, order: int) -> Rule:
    ctx.rule = _name(node, ctx)
    values = read_section(node, ctx, "the rule", RULE_KEYS)
    return Rule(
        name=ctx.rule,
        file=ctx.file,
        line=line_of(node),
        order=order,
        match=_match(values["match"] or {}),
        action=_action(values, node, ctx),
        warnings=tuple(ctx.warnings),
    )


def _match(values: dict[str, Any]) -> Match:
    return Match(**values, needs_response=values.get("filter") is not None and needs_response(values["filter"]))


def _name(node: yaml.Node, ctx: Context) -> str:
    if not isinstance(node, yaml.MappingNode):
        raise ctx.error(node, "each rule must be a mapping with a name and an action")
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == "name":
            return text(value_node, ctx, "name")
    raise ctx.error(node, "the rule has no name; give it 'name: ...'")


def _action(values: dict[str, Any], node: yaml.Node, ctx: Context) -> Action:
    given = [key for key in ("allow", "strip", "set", "break") if values[key] is not None]
    kinds = {"strip/set" if key in ("strip", "set") else key for key in given}
    if not kinds:
        raise ctx.error(node, "the rule has no action; give one of: allow, strip/set, break")
    if len(kinds) > 1:
        raise ctx.error(node, f"the rule has more than one action ({', '.join(given)}); give exactly one")
    if values["allow"] is not None:
        return _allow(tuple(values["allow"].items()))
    if values["break"] is not None:
        scenario, options = values["break"]
        return Break(scenario, options)
    return _rewrite(values["strip"], values["set"] or ())


# One object for equal actions (immutable, so they can be): most rules of a large file
# allow alike, and each would otherwise keep its own.


@functools.lru_cache(maxsize=1024)
def _allow(settings: tuple[tuple[str, Any], ...]) -> Allow:
    allow = dict(settings)
    return Allow(preflight=allow.pop("preflight"), policy=cors.AllowPolicy(**allow))


@functools.lru_cache(maxsize=1024)
def _rewrite(strip: Literal["all"] | frozenset[str] | None, set_: tuple[tuple[str, tuple[str, ...]], ...]) -> Rewrite:
    return Rewrite(strip=strip, set=set_)
