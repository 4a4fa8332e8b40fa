"""The rule-file schema: every key, how its value is read, its default and its meaning.

This table is the single source of truth: the loader validates against it, the
"did you mean" hints come from it, the README's rule reference is checked against it,
and the tests are parametrised over it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from mitmcors import cors
from mitmcors.globs import GLOB_CHARACTERS, compile_globs, is_literal
from mitmcors.scenarios import SCENARIOS, Scenario
from mitmcors.verdicts import MAX_PREFLIGHT_CACHE
from mitmcors.yamlnodes import (
    MAX_ALIASES,
    MAX_LIST_ITEMS,
    MAX_NODES,
    MAX_SCALAR,
    Context,
    boolean,
    choice,
    did_you_mean,
    mapping_items,
    non_negative_int,
    scalar_text,
    text,
    text_list,
)

Reader = Callable[[yaml.Node, Context, str], Any]

# What one file may hold, beside the limits of its YAML (yamlnodes).
MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_RULES = 100_000
MAX_SET_LINES = 100  # header lines one `set` adds


@dataclass(frozen=True, eq=False)  # each key is one entry of the schema: equal only to itself, cheap to hash
class Key:
    """One key of a section: how to read its value, its default, and what it means."""

    name: str
    read: Reader
    default: Any
    shown_default: str  # how the README shows the default
    doc: str


@dataclass(frozen=True, slots=True)
class Globs:
    """A field's globs. Globs without wildcards (a host, most often) are looked up among
    their texts and their pattern is compiled only if asked for: a file of 10,000 literal
    hosts loads without compiling 10,000 regular expressions. Slotted, and its fields
    made at once, since a large file holds one per rule."""

    globs: tuple[str, ...]
    ignore_case: bool
    compiled: re.Pattern[str] | None = None  # compiled at load when some glob has a wildcard
    # The globs lowercased when none has a wildcard (the rules index hosts by them).
    literals: tuple[str, ...] | None = field(init=False, repr=False, compare=False)
    _exact: tuple[str, ...] | frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        literals = None if self.compiled is not None else tuple(map(_lowered, self.globs))
        if literals == self.globs:
            literals = self.globs  # one tuple for both
        exact = (literals or ()) if self.ignore_case else self.globs
        object.__setattr__(self, "literals", literals)
        object.__setattr__(self, "_exact", exact if len(exact) <= 4 else frozenset(exact))

    @property
    def pattern(self) -> re.Pattern[str]:
        return self.compiled or compile_globs(self.globs, self.ignore_case)

    def matches(self, value: str) -> bool:
        if self.compiled is not None:
            return self.compiled.fullmatch(value) is not None
        return (value.lower() if self.ignore_case else value) in self._exact


def read_section(
    node: yaml.Node, ctx: Context, what: str, keys: tuple[Key, ...], prefix: str = ""
) -> dict[str, Any]:
    """Read a mapping against its keys, filling in the defaults of those not given.

    ``prefix`` names the values in messages (``allow.`` gives ``allow.max_age``).
    """
    by_name, defaults, names = _section_index(keys)
    values = dict(defaults)
    for name, _, value_node in mapping_items(node, ctx, what, names):
        values[name] = by_name[name].read(value_node, ctx, prefix + name)
    return values


@functools.lru_cache(maxsize=None)  # a few sections, read once a rule each
def _section_index(keys: tuple[Key, ...]) -> tuple[dict[str, Key], dict[str, Any], tuple[str, ...]]:
    """A section's keys by name, their defaults, and their names."""
    return {key.name: key for key in keys}, {key.name: key.default for key in keys}, tuple(key.name for key in keys)


def _section(keys: tuple[Key, ...], name: str) -> Reader:
    def read(node: yaml.Node, ctx: Context, what: str) -> dict[str, Any]:
        return read_section(node, ctx, name, keys, prefix=f"{name}.")

    return read


def _lowered(text: str) -> str:
    """The text in lower case, the same object when it already was."""
    lowered = text.lower()
    return text if lowered == text else lowered


@functools.lru_cache(maxsize=4096)  # files repeat their globs ('/api/*' rule after rule): one object for all
def _shared_globs(globs: tuple[str, ...], ignore_case: bool) -> Globs:
    if all(map(is_literal, globs)):
        return Globs(globs, ignore_case)
    return Globs(globs, ignore_case, compile_globs(globs, ignore_case))


GlobCheck = Callable[[str, yaml.Node, Context, str], None]


def _globs(ignore_case: bool, check: GlobCheck) -> Reader:
    """Globs, each first checked by ``check`` for what the field can never hold."""

    def read(node: yaml.Node, ctx: Context, what: str) -> Globs:
        globs = []
        for glob, item in text_list(node, ctx, what):
            check(glob, item, ctx, what)
            globs.append(glob)
        try:
            return _shared_globs(tuple(globs), ignore_case)
        except ValueError as e:
            raise ctx.error(node, f"{what} has an invalid glob: {e}") from None

    return read


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
_PORT = re.compile(r"([^:]*):[0-9*?]+")  # one colon: an IPv6 address has more
_QUERY = re.compile(r"\?[^/]*=")  # '?name=' starts a query; '?' alone is a wildcard
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def _host_glob(glob: str, node: yaml.Node, ctx: Context, what: str) -> None:
    """A host name as mitmproxy gives it: no scheme, no path, and the port kept apart."""
    scheme = _SCHEME.match(glob)
    host, slash, _ = glob[scheme.end() if scheme else 0 :].partition("/")
    port = _PORT.fullmatch(host)
    host = port.group(1) if port else host
    problem = "a scheme" if scheme else "a path" if slash else "a port" if port else None
    if problem is not None:
        also = ", and on the path with match.path" if problem == "a path" else ""
        raise ctx.error(node, f"{what} has {problem}: match on the host alone, {host!r}{also}")


def _path_glob(glob: str, node: yaml.Node, ctx: Context, what: str) -> None:
    """A path as mitmproxy gives it: from its first '/', without the query."""
    query = _QUERY.search(glob)
    if query is not None:
        raise ctx.error(
            node, f"{what} has a query: paths are matched without it; match on {glob[: query.start()]!r} "
            "(and on the query with a ~u filter)"
        )
    if glob[0] not in "/*?[":
        raise ctx.error(node, f"{what} must start with '/': write {'/' + glob!r}")


def _origin_glob(glob: str, node: yaml.Node, ctx: Context, what: str) -> None:
    """An Origin as browsers send it: ``null``, or scheme://host[:port] with no default
    port and nothing after; a glob that could still match one but hardly means to is
    only warned about."""
    if glob.lower() == "null":
        return
    scheme, separator, rest = glob.partition("://")
    if not separator:
        if is_literal(glob):
            raise ctx.error(node, f"{what} has no scheme: an Origin is scheme://host[:port], e.g. {'http://' + glob!r}")
        if glob[0] not in GLOB_CHARACTERS:
            ctx.warn(node, f"{what} has no scheme, so it matches no Origin a browser sends; did you mean {'http://' + glob!r}?")
        return
    host, slash, path = rest.partition("/")
    if slash:
        problem = "a path" if path else "a trailing slash"
        raise ctx.error(node, f"{what} has {problem}, which an Origin never has: write {f'{scheme}://{host}'!r}")
    name, _, port = host.rpartition(":")
    if port == _DEFAULT_PORTS.get(scheme.lower()):
        raise ctx.error(
            node, f"{what} has the default port, which browsers leave out of an Origin: write {f'{scheme}://{name}'!r}"
        )


def _tokens(kind: str) -> Reader:
    """A list (or one) of HTTP tokens: methods or header names."""

    def read(node: yaml.Node, ctx: Context, what: str) -> tuple[str, ...]:
        values = []
        for value, item in text_list(node, ctx, what):
            if not cors.is_token(value):
                raise ctx.error(item, f"{what}: {value!r} is not a valid {kind}")
            values.append(value)
        return tuple(values)

    return read


_methods = _tokens("HTTP method")
_header_names = _tokens("header name")


def _upper_methods(node: yaml.Node, ctx: Context, what: str) -> frozenset[str]:
    return frozenset(method.upper() for method in _methods(node, ctx, what))


def _allowed_methods(node: yaml.Node, ctx: Context, what: str) -> tuple[str, ...]:
    """Methods as browsers send them, since they compare allowed methods case-sensitively:
    ``put`` would never allow the PUT they send."""
    items = [item for _, item in text_list(node, ctx, what)]
    return tuple(_as_sent(method, item, ctx, what) for method, item in zip(_methods(node, ctx, what), items))


def _as_sent(method: str, node: yaml.Node, ctx: Context, what: str) -> str:
    sent = cors.normalize_method(method)
    if sent != method:
        ctx.warn(node, f"{what}: {method!r} becomes {sent!r}: browsers send the six standard methods in "
                       "upper case, and compare allowed methods case-sensitively")
    return sent


def _max_age(node: yaml.Node, ctx: Context, what: str) -> int:
    seconds = non_negative_int(node, ctx, what)
    if seconds > MAX_PREFLIGHT_CACHE:
        ctx.warn(node, f"{what}: {seconds:,} s is more than browsers keep a preflight: "
                       f"Chromium {MAX_PREFLIGHT_CACHE:,} s, Firefox 86,400, WebKit 600")
    return seconds


# Filter codes whose answer may change once the response is in (~h, ~b and ~t look
# at the request or the response).
RESPONSE_FILTER_CODES = frozenset({"s", "q", "c", "e", "a", "h", "hs", "b", "bs", "t", "ts"})


def needs_response(expression: Any) -> bool:
    """Whether a compiled mitmproxy filter may decide differently once the response is in."""
    return not RESPONSE_FILTER_CODES.isdisjoint(_filter_codes(expression))


def _filter_codes(expression: Any) -> Iterator[str]:
    """The codes (``c`` for ``~c``...) of a compiled filter's parts, through and/or/not."""
    if hasattr(expression, "lst"):  # and, or
        for part in expression.lst:
            yield from _filter_codes(part)
    elif hasattr(expression, "itm"):  # not
        yield from _filter_codes(expression.itm)
    elif getattr(expression, "code", None):
        yield expression.code


def _filter(node: yaml.Node, ctx: Context, what: str) -> Any:
    from mitmproxy import flowfilter  # the schema's only mitmproxy use: filter syntax

    expression = text(node, ctx, what)
    try:
        compiled = flowfilter.parse(expression)
    except (ValueError, RecursionError):  # pyparsing recurses once per parenthesis
        raise ctx.error(node, f"{what}: invalid mitmproxy filter expression {expression!r}") from None
    codes = set(_filter_codes(compiled))
    if "bs" in codes:
        raise ctx.error(
            node, f"{what}: ~bs looks at the response body, which has not arrived when rules act (on the response "
            "headers); match on the status (~c) or the headers (~hs) instead"
        )
    if "b" in codes:
        ctx.warn(node, f"{what}: ~b sees only the request body: the response body has not arrived when rules act "
                       "(on the response headers)")
    return compiled


def _keyword_or(keywords: tuple[str, ...], read_list: Reader) -> Reader:
    """A setting that is one of a few keywords, or else a list read by ``read_list``."""

    def read(node: yaml.Node, ctx: Context, what: str) -> Any:
        if isinstance(node, yaml.ScalarNode) and node.value in keywords:
            return node.value
        return read_list(node, ctx, what)

    return read


def _expose(node: yaml.Node, ctx: Context, what: str) -> Any:
    if isinstance(node, yaml.SequenceNode) and not node.value:
        return ()
    return _keyword_or(("*",), _header_names)(node, ctx, what)


def _origin_globs(node: yaml.Node, ctx: Context, what: str) -> re.Pattern[str]:
    return _globs(True, _origin_glob)(node, ctx, what).pattern


def _preflight_mode(node: yaml.Node, ctx: Context, what: str) -> str:
    return choice(node, ctx, what, ("answer", "forward"))


def _strip(node: yaml.Node, ctx: Context, what: str) -> str | frozenset[str]:
    if isinstance(node, yaml.ScalarNode) and node.value.lower() == "all":
        return "all"
    for name, item in text_list(node, ctx, what):
        _refuse_wire_header(name, item, ctx, what)
    return frozenset(name.lower() for name in _header_names(node, ctx, what))


# Headers that frame the message or belong to one connection: mitmproxy writes them
# for the wire it sends on, and a rule changing them would corrupt that wire.
_HOP_BY_HOP = "is hop-by-hop: it belongs to one connection, which mitmproxy manages"
_WIRE_HEADERS = {
    "content-length": "frames the body on the wire",
    "transfer-encoding": "frames the body on the wire",
    **dict.fromkeys(("connection", "keep-alive", "upgrade", "proxy-connection", "te", "trailer"), _HOP_BY_HOP),
}


def _refuse_wire_header(name: str, node: yaml.Node, ctx: Context, what: str) -> None:
    reason = _WIRE_HEADERS.get(name.lower())
    if name.startswith(":"):
        reason = "is an HTTP/2 pseudo-header, which mitmproxy writes itself"
    if reason is not None:
        raise ctx.error(node, f"{what}: {name!r} {reason}; a rule may not set or strip it")


def _set(node: yaml.Node, ctx: Context, what: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Header name -> value, or a list of values (one header line each)."""
    entries: dict[str, tuple[str, tuple[str, ...]]] = {}
    lines = 0
    for name, key_node, value_node in _any_keys(node, ctx, what):
        _refuse_wire_header(name, key_node, ctx, what)
        if not cors.is_token(name):
            raise ctx.error(key_node, f"{what}: {name!r} is not a valid header name")
        if name.lower() in entries:
            raise ctx.error(key_node, f"{what}: header {name!r} appears twice (header names ignore case)")
        lines += len(value_node.value) if isinstance(value_node, yaml.SequenceNode) else 1
        if lines > MAX_SET_LINES:
            raise ctx.error(value_node, f"{what} adds {lines:,} header lines; the limit is {MAX_SET_LINES:,}")
        entries[name.lower()] = (name, _header_values(value_node, ctx, f"{what}.{name}"))
    return tuple(entries.values())


def _any_keys(node: yaml.Node, ctx: Context, what: str):
    if not isinstance(node, yaml.MappingNode) or not node.value:
        raise ctx.error(node, f"{what} must be a mapping of header names to values")
    for key_node, value_node in node.value:
        yield scalar_text(key_node, ctx, f"{what} key"), key_node, value_node


def _header_values(node: yaml.Node, ctx: Context, what: str) -> tuple[str, ...]:
    items = node.value if isinstance(node, yaml.SequenceNode) else [node]
    if not items:
        raise ctx.error(node, f"{what} is an empty list; to remove the header, use strip")
    return tuple(_safe_value(scalar_text(item, ctx, what), item, ctx, what) for item in items)


def _safe_value(value: str, node: yaml.Node, ctx: Context, what: str) -> str:
    """A header value that cannot split or truncate the response on the wire."""
    bad = cors.unsafe_value_character(value)
    if bad is not None:
        raise ctx.error(node, f"{what}: the value contains the control character {bad!r}")
    return value


def _break(node: yaml.Node, ctx: Context, what: str) -> tuple[Scenario, dict[str, Any]]:
    """``break: NAME`` or ``break: {scenario: NAME, option: value, ...}``."""
    if not isinstance(node, yaml.MappingNode):
        return _scenario(node, ctx, what), {}
    named = [value for key, value in node.value if isinstance(key, yaml.ScalarNode) and key.value == "scenario"]
    if not named:
        raise ctx.error(node, f"{what} needs 'scenario: NAME' when it is a mapping")
    scenario = _scenario(named[0], ctx, f"{what}.scenario")
    options: dict[str, Any] = {}
    context = f"break ({scenario.name})"
    for key, _, value in mapping_items(node, ctx, context, ["scenario", *scenario.options]):
        if key != "scenario":
            options[key] = _SCENARIO_OPTIONS[key](value, ctx, f"{what}.{key}", scenario)
    return scenario, options


def _scenario(node: yaml.Node, ctx: Context, what: str) -> Scenario:
    name = text(node, ctx, what)
    if name not in SCENARIOS:
        hint = did_you_mean(name, list(SCENARIOS)) or f"; scenarios: {', '.join(SCENARIOS)}"
        raise ctx.error(node, f"{what}: unknown scenario {name!r}{hint}")
    return SCENARIOS[name]


def _status(node: yaml.Node, ctx: Context, what: str, scenario: Scenario) -> int:
    allowed = REDIRECT_SCENARIO_STATUSES if scenario.name == "preflight-disallowed-redirect" else range(400, 600)
    status = non_negative_int(node, ctx, what)
    if status not in allowed:
        shown = ", ".join(map(str, allowed)) if allowed is REDIRECT_SCENARIO_STATUSES else "400 to 599"
        raise ctx.error(node, f"{what} must be one of {shown} for {scenario.name}, got {status}")
    return status


def _header_value(node: yaml.Node, ctx: Context, what: str, scenario: Scenario) -> str:
    return _safe_value(text(node, ctx, what), node, ctx, what)


def _header_name(node: yaml.Node, ctx: Context, what: str, scenario: Scenario) -> str:
    name = text(node, ctx, what)
    if not cors.is_token(name):
        raise ctx.error(node, f"{what}: {name!r} is not a valid header name")
    return name


def _form(node: yaml.Node, ctx: Context, what: str, scenario: Scenario) -> str:
    return choice(node, ctx, what, ("two-lines", "one-line"))


REDIRECT_SCENARIO_STATUSES = (301, 302, 303, 307, 308)
_SCENARIO_OPTIONS: dict[str, Callable[[yaml.Node, Context, str, Scenario], Any]] = {
    "origin": _header_value,
    "location": _header_value,
    "status": _status,
    "header": _header_name,
    "form": _form,
}


MATCH_KEYS = (
    Key("host", _globs(True, _host_glob), None, "any",
        "Glob or list of globs for the request's host name (no port); case-insensitive."),
    Key("path", _globs(False, _path_glob), None, "any",
        "Glob or list of globs for the path without the query; `*` also crosses `/`."),
    Key("method", _upper_methods, None, "any",
        "Method or list of methods; for a preflight, the method it announces. Case-insensitive."),
    Key("origin", _globs(True, _origin_glob), None, "any, or none",
        "Glob or list of globs for the request's `Origin` header (`null` included); a request "
        "without Origin never matches it."),
    Key("preflight", boolean, None, "both",
        "`true`: only preflights (OPTIONS with Origin and Access-Control-Request-Method); "
        "`false`: only the rest."),
    Key("filter", _filter, None, "none",
        "Any mitmproxy filter expression, e.g. `~d example.com & !~u /health`, on the flow as it "
        "is on the wire: a preflight is an `OPTIONS` (`method` sees what it announces). Not `~bs`: "
        "rules act on the response headers, before its body."),
)

ALLOW_KEYS = (
    Key("origins", _keyword_or(("reflect", "*"), _origin_globs), "reflect", "`reflect`",
        "`reflect` echoes the request's Origin; `\"*\"` allows any; a glob or list of origin "
        "globs allows those only (others get no CORS headers at all, as from a strict server)."),
    Key("credentials", boolean, True, "`true`",
        "Send `Access-Control-Allow-Credentials: true`. Every `*` is then spelled out (the "
        "origin, method, headers or header names), since browsers read it literally under "
        "credentials."),
    Key("methods", _keyword_or(("reflect", "*"), _allowed_methods), "reflect", "`reflect`",
        "`reflect` echoes the method a preflight asks for; `\"*\"`; or a list (`get`, `put` and the "
        "other four standard methods are sent upper-cased, as browsers send them)."),
    Key("headers", _keyword_or(("reflect", "*"), _header_names), "reflect", "`reflect`",
        "`reflect` echoes the headers a preflight asks for (Authorization included); `\"*\"`; "
        "or a list."),
    Key("expose", _expose, None, "the response's own",
        "Response headers page scripts may read (`Access-Control-Expose-Headers`): `\"*\"` or "
        "a list, `[]` for none; by default every header of the response itself."),
    Key("max_age", _max_age, None, "unset",
        "Seconds a browser may cache the preflight (`Access-Control-Max-Age`); unset, Chromium "
        "caches 5 s."),
    Key("private_network", boolean, False, "`false`",
        "Answer a legacy private-network preflight with `Access-Control-Allow-Private-Network: "
        "true`."),
    Key("preflight", _preflight_mode, "answer", "`answer`",
        "`answer`: the proxy replies 204 itself and the backend never sees the OPTIONS; "
        "`forward`: the backend answers, its reply is rewritten and a non-2xx status becomes 204."),
)

RULE_KEYS = (
    Key("name", text, None, "required",
        "Text, unique among all loaded rules; every log line names it."),
    Key("match", _section(MATCH_KEYS, "match"), None, "all flows",
        "Which flows the rule applies to: every key given must match."),
    Key("allow", _section(ALLOW_KEYS, "allow"), None, "—",
        "Bypass: the response gets exactly the CORS headers that make the browser accept it."),
    Key("strip", _strip, None, "—",
        "`all` (every `Access-Control-*` response header) or a list of header names to remove; "
        "not those framing the body or hop-by-hop (`Content-Length`, `Transfer-Encoding`, "
        "`Connection`, ...)."),
    Key("set", _set, None, "—",
        "Header name to a value, or to a list of values (one header line each); applied after "
        "`strip`, replacing that header. The headers `strip` may not touch are refused."),
    Key("break", _break, None, "—",
        "Reproduce a named CORS failure: a scenario name, or `{scenario: NAME, option: value}` "
        "(see the scenarios)."),
)


LIMITS = (
    ("bytes in one file", MAX_FILE_BYTES),
    ("rules in one file", MAX_RULES),
    ("values in one file, aliases expanded", MAX_NODES),
    ("aliases in one file", MAX_ALIASES),
    ("characters in one value", MAX_SCALAR),
    ("items in one list", MAX_LIST_ITEMS),
    ("header lines one `set` adds", MAX_SET_LINES),
)


def reference_tables() -> str:
    """The README's rule reference, made from the schema so the two cannot drift apart."""
    sections = (("A rule", RULE_KEYS), ("`match`", MATCH_KEYS), ("`allow`", ALLOW_KEYS))
    tables = [_table(title, keys) for title, keys in sections]
    limits = [f"| {what} | {limit:,} |" for what, limit in LIMITS]
    tables.append("\n".join(["Limits (a file beyond them is refused, with the line where it goes over):", "",
                              "| what | at most |", "|---|---|", *limits]))
    return "\n\n".join(tables) + "\n"


def _table(title: str, keys: tuple[Key, ...]) -> str:
    rows = [f"| `{key.name}` | {key.shown_default} | {key.doc} |" for key in keys]
    return "\n".join([f"{title}:", "", "| key | default | meaning |", "|---|---|---|", *rows])


if __name__ == "__main__":
    print(reference_tables(), end="")
