"""From a bug report to a rule: a pasted console line, the failure it names, and a rule that
reproduces it.

A tester pastes what Chromium, Firefox or WebKit printed; ``explain`` finds the engine and
the kinds that engine prints that line for (several, where it cannot tell them apart), the
``break`` scenario for each, a rule file matching the URL the line names, and the server-side
fix. Pure: no mitmproxy import. ``mitmcors-explain LINE`` (or ``python -m mitmcors.lookup``)
prints the same text as the ``cors.explain`` command.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from urllib.parse import urlsplit

from mitmcors.corserrors import KINDS, VALID_VALUE
from mitmcors.engines import ENGINES, SAID, kinds_printing
from mitmcors.rules import RuleError, parse_rules
from mitmcors.scenarios import SCENARIOS, Scenario

UNKNOWN = "not a CORS console line I know"
# Where a pasted line may really start: DevTools and Web Inspector put a source or a level first.
_STARTS = ("Access to ", "Cross-Origin Request Blocked:", "Failed to load resource:")
_WEBKIT_LEVEL = re.compile(r"^\[(?:Error|Warning|Log)\]\s*")
_LEARN_MORE = " [Learn More]"  # the link after Firefox's line, copied with it
# What Chromium adds to, or leaves out of, the line for an XMLHttpRequest.
_XHR_CREDENTIALS = (" The credentials mode of requests initiated by the XMLHttpRequest is controlled by the "
                    "withCredentials attribute.")
_LIST = re.compile(r"[,\s]")  # an Allow-Origin value listing several origins
_GLOB_CHARACTERS = re.compile(r"[*?\[]")
_SCENARIO_BY_KIND = {scenario.kind: scenario for scenario in SCENARIOS.values() if scenario.kind}  # every kind has one


@dataclass(frozen=True)
class Candidate:
    """One kind the line may stand for: its scenario, a rule file that breaks the line's URL
    that way, and the fix."""

    kind: str
    scenario: str
    rule: str
    fix: str


@dataclass(frozen=True)
class Explanation:
    line: str
    engine: str | None  # None: not a line this tool knows
    code: str | None = None  # Firefox's reason code, as MDN names its pages
    url: str | None = None
    origin: str | None = None
    candidates: tuple[Candidate, ...] = ()
    follow_up: bool = False  # a line an engine adds after the one that names the fault

    @property
    def recognised(self) -> bool:
        return bool(self.candidates)

    def text(self) -> str:
        if not self.recognised:
            if self.follow_up:
                return (f"{ENGINES[self.engine or ''].title} prints this line after the one that names the fault: "
                        "paste that line instead")
            return f"{UNKNOWN}: {self.line[:200]!r}"
        title = ENGINES[self.engine or ""].title
        named = f" ({self.code})" if self.code else ""
        lines = [f"{title}{named}: " + ", ".join(c.kind for c in self.candidates)]
        if len(self.candidates) > 1:
            lines.append(f"{title} prints this same line for {len(self.candidates)} kinds; "
                         "each rule below reproduces one of them.")
        if self.url is None:
            lines.append("The line names no URL, so the rule matches any host and path"
                         + (" (only its origin)" if self.origin else "") + ": add the failing request's to its match.")
        for candidate in self.candidates:
            lines += ["", f"{candidate.kind}: scenario {candidate.scenario}", f"  server-side fix: {candidate.fix}",
                      "  rule:", *("    " + row for row in candidate.rule.splitlines())]
        return "\n".join(lines)


def explain(pasted: str) -> Explanation:
    """What a pasted console line says, and how to reproduce it. Of several lines (a line and
    its follow-ups, pasted together), the first that names a fault.

    >>> explain("Method PUT is not allowed by Access-Control-Allow-Methods.").candidates[0].scenario
    'method-disallowed-by-preflight-response'
    """
    rows = [" ".join(row.split()) for row in pasted.splitlines() if row.strip()]
    explanations = [_explain_line(row) for row in rows]
    return (next((e for e in explanations if e.recognised), None)
            or next((e for e in explanations if e.follow_up), None)
            or Explanation(" ".join(pasted.split()), None))


def _explain_line(line: str) -> Explanation:
    readings = _readings(line)
    for reading in readings:
        for engine in ENGINES:
            kinds = kinds_printing(reading, engine)
            if kinds:
                return _explained(line, reading, engine, kinds)
    for engine, saids in SAID.items():
        if any(message.match(reading) for reading in readings for said in saids.values()
               for message in said.follow_ups):
            return Explanation(line, engine, follow_up=True)
    return Explanation(line, None)


def _readings(line: str) -> list[str]:
    """The line as pasted, without what a console puts before it, and as fetch() words it."""
    line = _WEBKIT_LEVEL.sub("", line).removesuffix(_LEARN_MORE)
    starts = [line.find(start) for start in _STARTS if line.find(start) > 0]
    if starts:
        line = line[min(starts):]
    readings = [line]
    if line.startswith("Access to XMLHttpRequest at "):
        fetch = "Access to fetch at " + line.removeprefix("Access to XMLHttpRequest at ").removesuffix(_XHR_CREDENTIALS)
        readings += [fetch, fetch + VALID_VALUE]
    return readings


def _explained(pasted: str, line: str, engine: str, kinds: tuple[str, ...]) -> Explanation:
    message, values = next(
        (message, match.groupdict()) for kind in kinds for message in SAID[engine][kind].messages
        if (match := message.match(line))
    )
    url, origin = values.get("url"), values.get("origin")
    match = _match(url, origin)
    candidates = tuple(_candidate(kind, values, match, message.code) for kind in kinds)
    return Explanation(pasted, engine, message.code, url, origin, candidates)


def _match(url: str | None, origin: str | None) -> dict[str, str]:
    """The narrowest match the line gives: the URL's host and path, else the page's origin."""
    if url:
        parts = urlsplit(url)
        if parts.hostname:
            # Globs have no escape: a character they read specially becomes '?', which matches it.
            return {"host": parts.hostname, "path": _GLOB_CHARACTERS.sub("?", parts.path or "/")}
    return {"origin": origin} if origin and not _GLOB_CHARACTERS.search(origin) else {}


def _candidate(kind: str, values: dict[str, str], match: dict[str, str], code: str | None) -> Candidate:
    value = values.get("value") or (values.get("status") if kind == "PreflightInvalidStatus" else None) or "…"
    fix = KINDS[kind].fix_for(value, values.get("origin") or "<origin>")
    scenario = _SCENARIO_BY_KIND[kind]
    if kind == "MethodDisallowedByPreflightResponse" and values.get("value"):
        match = {**match, "method": values["value"]}  # the scenario has no option for it; the match narrows
    return Candidate(kind, scenario.name, _rule(kind, scenario, _options(scenario, values, code), match), fix)


def _options(scenario: Scenario, values: dict[str, str], code: str | None) -> dict[str, str | int]:
    """The scenario's options the line gives a value for."""
    value, status = values.get("value"), values.get("status")
    given: dict[str, str | int] = {}
    if "origin" in scenario.options and value and scenario.kind and scenario.kind.endswith("AllowOriginMismatch"):
        given["origin"] = value
    if "form" in scenario.options and code == "CORSAllowOriginNotMatchingOrigin" and value and _LIST.search(value):
        given["form"] = "one-line"  # Firefox names two header lines otherwise
    if "header" in scenario.options and value:
        given["header"] = value
    if "status" in scenario.options and status and status.isdigit():
        given["status"] = int(status)
    return given


def _rule(kind: str, scenario: Scenario, options: dict[str, str | int], match: dict[str, str]) -> str:
    """A rule file that loads: what the schema refuses (a 301 for an invalid status) is left out."""
    for tried_options, tried_match in ((options, match), ({}, match), ({}, {})):
        text = _rule_text(kind, scenario.name, tried_options, tried_match)
        try:
            parse_rules(text)
        except RuleError:
            continue
        return text
    raise AssertionError(f"a rule for {scenario.name} does not load")  # pragma: no cover


def _rule_text(kind: str, scenario: str, options: dict[str, str | int], match: dict[str, str]) -> str:
    where = match.get("host") or match.get("origin") or "any host"
    rows = ["rules:", f"  - name: {_scalar(f'reproduce {kind} on {where}')}"]
    if match:
        rows.append("    match: {" + ", ".join(f"{key}: {_scalar(value)}" for key, value in match.items()) + "}")
    if options:
        spec = ", ".join(f"{key}: {_scalar(value)}" for key, value in {"scenario": scenario, **options}.items())
        rows.append(f"    break: {{{spec}}}")
    else:
        rows.append(f"    break: {scenario}")
    return "\n".join(rows) + "\n"


def _scalar(value: str | int) -> str:
    """A YAML scalar: JSON's double-quoted strings are YAML's too."""
    return str(value) if isinstance(value, int) else json.dumps(value)


def main(argv: list[str] | None = None) -> int:
    """``mitmcors-explain LINE...`` (the words joined), or the line on stdin: 0 when the line
    is known, 2 when not."""
    args = sys.argv[1:] if argv is None else argv
    line = " ".join(args) if args else sys.stdin.read()
    explanation = explain(line)
    print(explanation.text())
    return 0 if explanation.recognised else 2


if __name__ == "__main__":
    sys.exit(main())
