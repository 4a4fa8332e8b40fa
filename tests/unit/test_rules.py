"""Rule files: every way a file can be wrong gets one exact line; matching is first-wins."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from mitmproxy.test import tflow, tutils

from mitmcors import cors
from mitmcors.rules import Allow, Rewrite, RuleError, RuleSet, Target, load_files, parse_rules
from mitmcors.scenarios import SCENARIOS
from mitmcors.schema import MAX_FILE_BYTES, reference_tables
from support.expected import UNCLOSED_FLOW

BAD_FILES = [
    pytest.param("rules: [\n", "r.yaml:2: not valid YAML: while parsing a flow node, " + UNCLOSED_FLOW, id="yaml-syntax"),
    pytest.param("rules: []\n---\nrules: []\n", "r.yaml:2: not valid YAML: expected a single document in the stream, but found another document", id="two-documents"),
    pytest.param("", "r.yaml:1: the file is empty; it needs a 'rules:' list", id="empty-file"),
    pytest.param("- name: a\n", "r.yaml:1: the file must be a mapping, got a list", id="top-level-list"),
    pytest.param("rulez: []\n", "r.yaml:1: unknown key 'rulez' in the file (did you mean 'rules'?); valid keys: rules", id="misspelt-rules"),
    pytest.param("rules:\n  name: a\n", "r.yaml:2: 'rules' must be a list of rules (each starting with '- name:')", id="rules-not-a-list"),
    pytest.param("rules:\n  - allow: {}\n", "r.yaml:2: rule '#1': the rule has no name; give it 'name: ...'", id="no-name"),
    pytest.param("rules:\n  - just a string\n", "r.yaml:2: rule '#1': each rule must be a mapping with a name and an action", id="rule-not-a-mapping"),
    pytest.param("rules:\n  - name: 5\n    allow: {}\n", "r.yaml:2: rule '#1': name must be text, got 5", id="name-not-text"),
    pytest.param("rules:\n  - name: a\n    alow: {}\n", "r.yaml:3: rule 'a': unknown key 'alow' in the rule (did you mean 'allow'?); valid keys: name, match, allow, strip, set, break", id="unknown-rule-key"),
    pytest.param("rules:\n  - name: a\n    match: {hots: x}\n    allow: {}\n", "r.yaml:3: rule 'a': unknown key 'hots' in match (did you mean 'host'?); valid keys: host, path, method, origin, preflight, filter", id="unknown-match-key"),
    pytest.param("rules:\n  - name: a\n    allow:\n      orgins: reflect\n", "r.yaml:4: rule 'a': unknown key 'orgins' in allow (did you mean 'origins'?); valid keys: origins, credentials, methods, headers, expose, max_age, private_network, preflight", id="unknown-allow-key"),
    pytest.param("rules:\n  - name: a\n    allow: {credentials: \"yes\"}\n", "r.yaml:3: rule 'a': allow.credentials must be true or false, got the text 'yes'", id="quoted-yes"),
    pytest.param("rules:\n  - name: a\n    allow: {credentials: yes}\n", "r.yaml:3: rule 'a': allow.credentials must be true or false, got yes", id="yaml11-yes"),
    pytest.param("rules:\n  - name: a\n    allow: {max_age: -5}\n", "r.yaml:3: rule 'a': allow.max_age must be a whole number of 0 or more, got -5", id="negative-max-age"),
    pytest.param("rules:\n  - name: a\n    allow: {max_age: 1.5}\n", "r.yaml:3: rule 'a': allow.max_age must be a whole number of 0 or more, got 1.5", id="fractional-max-age"),
    pytest.param("rules:\n  - name: a\n    allow: {max_age: true}\n", "r.yaml:3: rule 'a': allow.max_age must be a whole number of 0 or more, got true", id="boolean-max-age"),
    pytest.param("rules:\n  - name: a\n    allow: {preflight: anwser}\n", "r.yaml:3: rule 'a': allow.preflight must be one of answer, forward, got 'anwser' (did you mean 'answer'?)", id="bad-choice"),
    pytest.param("rules:\n  - name: a\n    match: {path: \"/v1/[ab\"}\n    allow: {}\n", "r.yaml:3: rule 'a': match.path has an invalid glob: unclosed '[' at position 5 in '/v1/[ab'", id="bad-glob"),
    pytest.param("rules:\n  - name: a\n    match: {host: []}\n    allow: {}\n", "r.yaml:3: rule 'a': match.host must not be an empty list", id="empty-glob-list"),
    pytest.param("rules:\n  - name: a\n    match: {filter: \"~m PUT & ~nosuch x\"}\n    allow: {}\n", "r.yaml:3: rule 'a': match.filter: invalid mitmproxy filter expression '~m PUT & ~nosuch x'", id="bad-filter"),
    pytest.param("rules:\n  - name: a\n    match: {method: \"P UT\"}\n    allow: {}\n", "r.yaml:3: rule 'a': match.method: 'P UT' is not a valid HTTP method", id="bad-method"),
    pytest.param("rules:\n  - name: a\n    match: {preflight: 1}\n    allow: {}\n", "r.yaml:3: rule 'a': match.preflight must be true or false, got 1", id="bad-preflight-flag"),
    pytest.param("rules:\n  - name: a\n    allow: {headers: [\"X Test\"]}\n", "r.yaml:3: rule 'a': allow.headers: 'X Test' is not a valid header name", id="bad-header-name"),
    pytest.param("rules:\n  - name: a\n    strip: [\"Bad:Name\"]\n", "r.yaml:3: rule 'a': strip: 'Bad:Name' is not a valid header name", id="bad-strip-name"),
    pytest.param("rules:\n  - name: a\n    set: {\"X Y\": 1}\n", "r.yaml:3: rule 'a': set: 'X Y' is not a valid header name", id="bad-set-name"),
    pytest.param("rules:\n  - name: a\n    set: {X-A: \"one\\rtwo\"}\n", "r.yaml:3: rule 'a': set.X-A: the value contains the control character '\\r'", id="cr-in-value"),
    pytest.param("rules:\n  - name: a\n    set:\n      X-A:\n        - fine\n        - \"one\\ntwo\"\n", "r.yaml:6: rule 'a': set.X-A: the value contains the control character '\\n'", id="lf-in-listed-value"),
    pytest.param("rules:\n  - name: a\n    set: {X-A: \"nul\\0\"}\n", "r.yaml:3: rule 'a': set.X-A: the value contains the control character '\\x00'", id="nul-in-value"),
    pytest.param("rules:\n  - name: a\n    set: {X-A: {b: c}}\n", "r.yaml:3: rule 'a': set.X-A must be a single value, got a mapping", id="mapping-as-value"),
    pytest.param("rules:\n  - name: a\n    set: {Vary: a, vary: b}\n", "r.yaml:3: rule 'a': set: header 'vary' appears twice (header names ignore case)", id="set-twice"),
    pytest.param("rules:\n  - name: a\n    set: {X-A: []}\n", "r.yaml:3: rule 'a': set.X-A is an empty list; to remove the header, use strip", id="set-empty-list"),
    pytest.param("rules:\n  - name: a\n    match: {host: '[z-a].test'}\n    allow: {}\n", "r.yaml:3: rule 'a': match.host has an invalid glob: invalid character class in '[z-a].test': bad character range z-a", id="reversed-range"),
    pytest.param("rules:\n  - name: a\n    match: {host: x}\n", "r.yaml:2: rule 'a': the rule has no action; give one of: allow, strip/set, break", id="no-action"),
    pytest.param("rules:\n  - name: a\n    allow: {}\n    strip: all\n", "r.yaml:2: rule 'a': the rule has more than one action (allow, strip); give exactly one", id="two-actions"),
    pytest.param("rules:\n  - name: a\n    allow: {}\n    allow: {}\n", "r.yaml:4: rule 'a': key 'allow' appears twice in the rule", id="repeated-key"),
    pytest.param("rules:\n  - name: a\n    break: no-such-thing\n", "r.yaml:3: rule 'a': break: unknown scenario 'no-such-thing'; scenarios: " + ", ".join(SCENARIOS), id="unknown-scenario"),
    pytest.param("rules:\n  - name: a\n    allow: {}\n  - name: a\n    strip: all\n", "r.yaml:4: rule 'a': the name is already used by the rule at r.yaml:2", id="duplicate-name"),
]

# Input that used to give a traceback, a message without its line, or raw control characters.
ONE_LINE = [
    pytest.param("rules:\n  - name: a\n    allow: {max_age: " + "9" * 5000 + "}\n", "r.yaml:3: rule 'a': allow.max_age must be at most 2,147,483,647, got a number of 5,000 digits", id="huge-max-age"),
    pytest.param("rules:\n  - name: a\n    allow: {max_age: 2147483648}\n", "r.yaml:3: rule 'a': allow.max_age must be at most 2,147,483,647, got 2147483648", id="max-age-over-31-bits"),
    pytest.param("rules:\n  - name: a\n    break: {scenario: preflight-invalid-status, status: " + "4" * 5000 + "}\n", "r.yaml:3: rule 'a': break.status must be at most 2,147,483,647, got a number of 5,000 digits", id="huge-status"),
    pytest.param("rules:\n  - name: a\x00b\n    allow: {}\n", "r.yaml:2: not valid YAML: the character '\\x00' is not allowed in YAML", id="nul"),
    pytest.param("rules:\n  - name: a\n    allow: {}\n  - name: \x1b[31mred\n    allow: {}\n", "r.yaml:4: not valid YAML: the character '\\x1b' is not allowed in YAML", id="esc"),
    pytest.param("rules:\n  - name: a\ufffeb\n    allow: {}\n", "r.yaml:2: not valid YAML: the character '\\ufffe' is not allowed in YAML", id="u+fffe"),
    pytest.param("rules:\n  - name: !!python/object:os.system\n      x: y\n    allow: {}\n", "r.yaml:2: rule '#1': the tag '!!python/object:os.system' is not supported: remove it", id="python-tag"),
    pytest.param("rules:\n  - name: a\n    allow: !!python/name:os.system {}\n", "r.yaml:3: rule 'a': the tag '!!python/name:os.system' is not supported: remove it", id="tag-named-rule"),
    pytest.param("rules:\n  - name: !evil \"a\\nb\\e[31m\"\n    allow: {}\n", "r.yaml:2: rule '#1': the tag '!evil' is not supported: remove it", id="custom-tag"),
    pytest.param("rules:\n  - name: !e%0A%1B x\n    allow: {}\n", "r.yaml:2: rule '#1': the tag '!e\\n\\x1b' is not supported: remove it", id="tag-with-controls"),
    pytest.param("rules:\n  - name: a\n    match: {filter: '" + "(" * 300 + "~q" + ")" * 300 + "'}\n    allow: {}\n", "r.yaml:3: rule 'a': match.filter: invalid mitmproxy filter expression '" + "(" * 300 + "~q" + ")" * 300 + "'", id="deep-filter"),
]


@pytest.mark.parametrize("text, message", ONE_LINE)
def test_hostile_input_gets_one_escaped_line(text, message):
    with pytest.raises(RuleError) as raised:
        parse_rules(text, "r.yaml")
    assert str(raised.value) == message


def test_a_file_that_is_not_utf8_is_told_with_its_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.yaml").write_bytes(b"rules:\n  - name: caf\xe9\n    allow: {}\n")
    with pytest.raises(RuleError) as raised:
        load_files(["r.yaml"])
    assert str(raised.value) == "r.yaml:2: not UTF-8: the byte 0xe9 cannot be decoded; save the file as UTF-8"


def test_leading_zeros_do_not_count_against_the_size_of_a_number():
    (rule,) = parse_rules("rules:\n  - name: a\n    allow: {max_age: " + "0" * 20 + "7}\n")
    assert rule.action.policy.max_age == 7


def test_a_file_name_is_shown_escaped():
    assert str(RuleError("file not found", "rules\n\x1b[2J.yaml")) == "rules\\n\\x1b[2J.yaml: file not found"


# Faults that used to be told without the rule or the fix.
WITH_THE_FIX = [
    pytest.param("rules:\n  - name: a\n    allow:\n      origins: *\n", "r.yaml:4: rule 'a': not valid YAML: an unquoted * starts an alias; quote it: \"*\"", id="unquoted-star"),
    pytest.param("rules:\n  - name: a\n    match: {origin: *.example.com}\n    allow: {}\n", "r.yaml:3: rule 'a': not valid YAML: an unquoted * starts an alias; quote it: \"*.example.com\"", id="unquoted-star-glob"),
    pytest.param("rules:\n  - name: a\n    match: {host: [x.test, &y.test]}\n    allow: {}\n", "r.yaml:3: rule 'a': not valid YAML: an unquoted & starts an anchor; quote it: \"&y.test\"", id="unquoted-ampersand"),
    pytest.param("rules:\n  - name: a\n    match:\n      host: *example\n    allow: {}\n", "r.yaml:4: rule 'a': not valid YAML: *example is an alias that is not defined; to mean the text, quote it: \"*example\"", id="undefined-alias"),
    pytest.param("rules:\n  - name: a\n    allow:\n      origins: [null]\n", "r.yaml:4: rule 'a': allow.origins must be text, got nothing; to mean the text null, quote it: \"null\"", id="unquoted-null"),
    pytest.param("rules:\n  - name: a\n    match: {origin: ~}\n    allow: {}\n", "r.yaml:3: rule 'a': match.origin must be text, got nothing; to mean the text ~, quote it: \"~\"", id="unquoted-tilde"),
    pytest.param("rules:\n  - name: a\n    set: {X-A: Null}\n", "r.yaml:3: rule 'a': set.X-A must be a single value, got nothing; to mean the text Null, quote it: \"Null\"", id="unquoted-null-value"),
    pytest.param("rules:\n  - name: a\n\tallow: {}\n", "r.yaml:3: rule '#1': not valid YAML: a tab in the indentation; indent with spaces, not tabs", id="tab"),
    pytest.param("rules:\n  - name: a\n    allow:\n    \torigins: reflect\n", "r.yaml:4: rule 'a': not valid YAML: a tab in the indentation; indent with spaces, not tabs", id="tab-after-spaces"),
]


@pytest.mark.parametrize("text, message", WITH_THE_FIX)
def test_a_common_mistake_gets_the_rule_and_the_fix(text, message):
    with pytest.raises(RuleError) as raised:
        parse_rules(text, "r.yaml")
    assert str(raised.value) == message


def test_lowercase_standard_methods_are_sent_as_browsers_send_them():
    (rule,) = parse_rules("rules:\n  - name: a\n    allow:\n      methods: [get, Put, PATCH, patch]\n", "r.yaml")
    assert rule.action.policy.methods == ("GET", "PUT", "PATCH", "patch")
    assert rule.warnings == tuple(
        f"r.yaml:4: rule 'a': allow.methods: {method!r} becomes {method.upper()!r}: browsers send the six standard "
        "methods in upper case, and compare allowed methods case-sensitively"
        for method in ("get", "Put")
    )


@pytest.mark.parametrize("max_age, warned", [(7200, False), (7201, True), (99999, True)])
def test_a_max_age_browsers_cap_is_warned_about(max_age, warned):
    (rule,) = parse_rules(f"rules:\n  - name: a\n    allow: {{max_age: {max_age}}}\n", "r.yaml")
    assert rule.action.policy.max_age == max_age
    warning = f"r.yaml:3: rule 'a': allow.max_age: {max_age:,} s is more than browsers keep a preflight: Chromium 7,200 s, Firefox 86,400, WebKit 600"
    assert rule.warnings == ((warning,) if warned else ())


# Values no request can ever have: the rule would load and silently never match.
NEVER_MATCHES = [
    pytest.param("match: {host: 'api.test:8443'}", "r.yaml:3: rule 'a': match.host has a port: match on the host alone, 'api.test'", id="host-port"),
    pytest.param("match: {host: 'api.test:*'}", "r.yaml:3: rule 'a': match.host has a port: match on the host alone, 'api.test'", id="host-port-glob"),
    pytest.param("match: {host: 'http://api.test'}", "r.yaml:3: rule 'a': match.host has a scheme: match on the host alone, 'api.test'", id="host-scheme"),
    pytest.param("match: {host: 'https://*.api.test:8443/v1'}", "r.yaml:3: rule 'a': match.host has a scheme: match on the host alone, '*.api.test'", id="host-url"),
    pytest.param("match: {host: 'api.test/v1/*'}", "r.yaml:3: rule 'a': match.host has a path: match on the host alone, 'api.test', and on the path with match.path", id="host-path"),
    pytest.param("match:\n      host:\n        - ok.test\n        - 'bad.test:80'", "r.yaml:6: rule 'a': match.host has a port: match on the host alone, 'bad.test'", id="host-in-a-list"),
    pytest.param("match: {path: '/x?y=1'}", "r.yaml:3: rule 'a': match.path has a query: paths are matched without it; match on '/x' (and on the query with a ~u filter)", id="path-query"),
    pytest.param("match: {path: 'api/v1/*'}", "r.yaml:3: rule 'a': match.path must start with '/': write '/api/v1/*'", id="path-relative"),
    pytest.param("match: {origin: 'localhost:3000'}", "r.yaml:3: rule 'a': match.origin has no scheme: an Origin is scheme://host[:port], e.g. 'http://localhost:3000'", id="origin-no-scheme"),
    pytest.param("match: {origin: 'https://app.test/'}", "r.yaml:3: rule 'a': match.origin has a trailing slash, which an Origin never has: write 'https://app.test'", id="origin-trailing-slash"),
    pytest.param("match: {origin: 'https://*.app.test/api/*'}", "r.yaml:3: rule 'a': match.origin has a path, which an Origin never has: write 'https://*.app.test'", id="origin-path"),
    pytest.param("match: {origin: 'https://app.test:443'}", "r.yaml:3: rule 'a': match.origin has the default port, which browsers leave out of an Origin: write 'https://app.test'", id="origin-default-port"),
    pytest.param("match: {filter: '~m GET & ~bs error'}", "r.yaml:3: rule 'a': match.filter: ~bs looks at the response body, which has not arrived when rules act (on the response headers); match on the status (~c) or the headers (~hs) instead", id="response-body-filter"),
    pytest.param("match: {filter: '!~bs x'}", "r.yaml:3: rule 'a': match.filter: ~bs looks at the response body, which has not arrived when rules act (on the response headers); match on the status (~c) or the headers (~hs) instead", id="negated-response-body-filter"),
]


@pytest.mark.parametrize("match, message", NEVER_MATCHES)
def test_a_rule_that_can_never_match_is_refused_with_the_fix(match, message):
    with pytest.raises(RuleError) as raised:
        parse_rules(f"rules:\n  - name: a\n    {match}\n    strip: all\n", "r.yaml")
    assert str(raised.value) == message


def test_allowed_origins_are_checked_like_matched_ones():
    with pytest.raises(RuleError) as raised:
        parse_rules("rules:\n  - name: a\n    allow:\n      origins: [http://localhost:5173, 'https://app.test/']\n", "r.yaml")
    assert str(raised.value) == "r.yaml:4: rule 'a': allow.origins has a trailing slash, which an Origin never has: write 'https://app.test'"


# Values that may match, though probably not what was meant: loaded, with a warning.
SUSPICIOUS = [
    pytest.param("match: {origin: 'localhost:*'}", "r.yaml:3: rule 'a': match.origin has no scheme, so it matches no Origin a browser sends; did you mean 'http://localhost:*'?", id="origin-glob-without-scheme"),
    pytest.param("match: {filter: '~b secret'}", "r.yaml:3: rule 'a': match.filter: ~b sees only the request body: the response body has not arrived when rules act (on the response headers)", id="body-filter"),
]


@pytest.mark.parametrize("match, warning", SUSPICIOUS)
def test_a_suspicious_value_loads_with_a_warning(match, warning):
    (rule,) = parse_rules(f"rules:\n  - name: a\n    {match}\n    strip: all\n", "r.yaml")
    assert rule.warnings == (warning,)


@pytest.mark.parametrize(
    "match",
    ["{host: '::1'}", "{host: '*.api.test'}", "{path: '/v?/users'}", "{path: '*.js'}", "{origin: 'null'}",
     "{origin: '*://localhost:*'}", "{origin: 'http://localhost:8443'}", "{filter: '~bq x & ~c 200'}"],
)
def test_ordinary_values_load_without_a_warning(match):
    (rule,) = parse_rules(f"rules:\n  - name: a\n    match: {match}\n    strip: all\n", "r.yaml")
    assert rule.warnings == ()


# Headers that frame the message or belong to one connection: changing them corrupts the wire.
WIRE_HEADERS = [
    pytest.param("set: {Content-Length: 0}", "r.yaml:3: rule 'a': set: 'Content-Length' frames the body on the wire; a rule may not set or strip it", id="set-content-length"),
    pytest.param("strip: [x-a, content-length]", "r.yaml:3: rule 'a': strip: 'content-length' frames the body on the wire; a rule may not set or strip it", id="strip-content-length"),
    pytest.param("strip: Transfer-Encoding", "r.yaml:3: rule 'a': strip: 'Transfer-Encoding' frames the body on the wire; a rule may not set or strip it", id="strip-transfer-encoding"),
    pytest.param("set: {Connection: close}", "r.yaml:3: rule 'a': set: 'Connection' is hop-by-hop: it belongs to one connection, which mitmproxy manages; a rule may not set or strip it", id="set-connection"),
    pytest.param("strip: [Keep-Alive]", "r.yaml:3: rule 'a': strip: 'Keep-Alive' is hop-by-hop: it belongs to one connection, which mitmproxy manages; a rule may not set or strip it", id="strip-keep-alive"),
    pytest.param("set: {Upgrade: h2c}", "r.yaml:3: rule 'a': set: 'Upgrade' is hop-by-hop: it belongs to one connection, which mitmproxy manages; a rule may not set or strip it", id="set-upgrade"),
    pytest.param("set: {Proxy-Connection: keep-alive}", "r.yaml:3: rule 'a': set: 'Proxy-Connection' is hop-by-hop: it belongs to one connection, which mitmproxy manages; a rule may not set or strip it", id="set-proxy-connection"),
    pytest.param("strip: [te]", "r.yaml:3: rule 'a': strip: 'te' is hop-by-hop: it belongs to one connection, which mitmproxy manages; a rule may not set or strip it", id="strip-te"),
    pytest.param("set: {Trailer: X-Checksum}", "r.yaml:3: rule 'a': set: 'Trailer' is hop-by-hop: it belongs to one connection, which mitmproxy manages; a rule may not set or strip it", id="set-trailer"),
    pytest.param("set: {':status': 200}", "r.yaml:3: rule 'a': set: ':status' is an HTTP/2 pseudo-header, which mitmproxy writes itself; a rule may not set or strip it", id="set-pseudo-header"),
    pytest.param("strip: [':authority']", "r.yaml:3: rule 'a': strip: ':authority' is an HTTP/2 pseudo-header, which mitmproxy writes itself; a rule may not set or strip it", id="strip-pseudo-header"),
]


@pytest.mark.parametrize("action, message", WIRE_HEADERS)
def test_a_rule_may_not_touch_how_the_response_is_framed(action, message):
    with pytest.raises(RuleError) as raised:
        parse_rules(f"rules:\n  - name: a\n    {action}\n", "r.yaml")
    assert str(raised.value) == message


# What a file may hold (see the schema's limits): hostile or runaway files are refused.
BEYOND_THE_LIMITS = [
    pytest.param("rules:\n  - &A {name: a, allow: {}}\n" + "  - *A\n" * 10_001, "r.yaml:10003: rule '#10002': more than 10,000 aliases, the limit", id="aliases"),
    pytest.param("rules: &A [*A]\n", "r.yaml:1: rule '#1': the alias *A is inside the value it names, so it never ends", id="recursive-alias"),
    pytest.param("rules:\n  - name: a\n    set: {X-A: " + "x" * 8193 + "}\n", "r.yaml:3: rule 'a': a value of 8,193 characters; the limit is 8,192", id="long-value"),
    pytest.param("rules:\n" + "".join(f"  - {{name: r{i}, allow: {{}}}}\n" for i in range(100_001)), "r.yaml:2: 'rules' has 100,001 rules; the limit is 100,000 in one file: split them into several files", id="rules"),
    pytest.param("rules:\n  - name: a\n    match: {host: [" + ", ".join(f"h{i}" for i in range(101)) + "]}\n    allow: {}\n", "r.yaml:3: rule 'a': match.host has 101 items; the limit is 100", id="list-items"),
    pytest.param("rules:\n  - name: a\n    set:\n      X-A: [" + ", ".join("v" * 101) + "]\n", "r.yaml:4: rule 'a': set adds 101 header lines; the limit is 100", id="set-lines"),
    pytest.param("rules:\n  - name: a\n    set:\n" + "".join(f"      X-{i}: [a, b]\n" for i in range(51)), "r.yaml:54: rule 'a': set adds 102 header lines; the limit is 100", id="set-headers"),
]


def load_text(tmp_path: Path, text: str, name: str = "r.yaml") -> RuleSet:
    path = tmp_path / name
    path.write_text(text)
    return load_files([str(path)])


@pytest.mark.parametrize("text, message", BAD_FILES + BEYOND_THE_LIMITS)
def test_a_bad_file_gets_one_exact_line(tmp_path, monkeypatch, text, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.yaml").write_text(text)
    with pytest.raises(RuleError) as raised:
        load_files(["r.yaml"])
    assert str(raised.value) == message
    assert "\n" not in str(raised.value)


def alias_bomb(headers: int = 600, values: int = 600, copies: int = 300) -> str:
    """12 KB of YAML: a rule with ``headers`` x ``values`` header lines, anchored, then
    aliased ``copies`` times; expanded, 10^8 values."""
    listed = ", ".join("v" * values)
    lines = ["rules:", "  - &R", "    name: bomb", "    set:", f"      H0: &V [{listed}]"]
    lines += [f"      H{i}: *V" for i in range(1, headers)]
    return "\n".join(lines + ["  - *R"] * copies) + "\n"


def test_an_alias_bomb_is_refused_at_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.yaml").write_text(alias_bomb())
    started = time.perf_counter()
    with pytest.raises(RuleError) as raised:
        load_files(["r.yaml"])
    assert time.perf_counter() - started < 5, "expanding the aliases took 30 s before the limit; 0.13 s with it"
    assert str(raised.value) == "r.yaml:615: rule '#12': more than 4,000,000 values once aliases are expanded, the limit"


def test_a_missing_file_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RuleError, match=r"^missing\.yaml: file not found$"):
        load_files(["missing.yaml"])


def test_an_unreadable_file_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dir.yaml").mkdir()
    with pytest.raises(RuleError, match=r"^dir\.yaml: cannot read the file: "):
        load_files(["dir.yaml"])


def refused_within(seconds: float, path: str) -> str:
    """The error loading ``path``, which must come within ``seconds`` (not block, not read forever)."""
    outcome: list[BaseException] = []
    worker = threading.Thread(target=lambda: outcome.append(pytest.raises(RuleError, load_files, [path]).value), daemon=True)
    worker.start()
    worker.join(seconds)
    assert outcome, f"loading {path} still runs after {seconds} s"
    return str(outcome[0])


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.mkfifo("rules.fifo")
    assert refused_within(5, "rules.fifo") == "rules.fifo: cannot read the file: it is a FIFO (named pipe), not a regular file"


def test_a_device_is_refused_without_reading_it():
    assert refused_within(5, "/dev/zero") == "/dev/zero: cannot read the file: it is a character device, not a regular file"


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open("big.yaml", "wb") as big:
        big.truncate(MAX_FILE_BYTES + 1)  # sparse: no disk used
    assert refused_within(5, "big.yaml") == "big.yaml: the file has more than 10,485,760 bytes, the limit"


def test_a_duplicate_name_across_files_names_both(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.yaml").write_text("rules:\n  - name: same\n    allow: {}\n")
    (tmp_path / "b.yaml").write_text("rules:\n  - name: other\n    allow: {}\n  - name: same\n    strip: all\n")
    with pytest.raises(RuleError) as raised:
        load_files(["a.yaml", "b.yaml"])
    assert str(raised.value) == "b.yaml:4: rule 'same': the name is already used by the rule at a.yaml:2"


def test_defaults_of_allow():
    (rule,) = parse_rules("rules: [{name: open, allow: {}}]")
    assert rule.action == Allow(policy=cors.AllowPolicy(), preflight="answer")
    assert rule.action.policy.credentials is True


def test_an_empty_allow_and_match_read_as_defaults():
    (rule,) = parse_rules("rules:\n  - name: open\n    match:\n    allow:\n")
    assert rule.action == Allow(policy=cors.AllowPolicy(), preflight="answer")


def test_allow_settings_are_compiled():
    (rule,) = parse_rules(
        "rules:\n  - name: x\n    allow:\n      origins: ['http://localhost:*']\n      credentials: false\n"
        "      methods: [GET, PUT]\n      headers: '*'\n      expose: []\n      max_age: 600\n"
        "      private_network: true\n      preflight: forward\n"
    )
    policy = rule.action.policy
    assert policy.allows_origin("http://localhost:5173") and not policy.allows_origin("http://evil.test")
    assert (policy.credentials, policy.methods, policy.headers, policy.expose) == (False, ("GET", "PUT"), "*", ())
    assert (policy.max_age, policy.private_network, rule.action.preflight) == (600, True, "forward")


def test_strip_and_set_may_stand_together():
    (rule,) = parse_rules("rules:\n  - name: x\n    strip: all\n    set: {Access-Control-Allow-Origin: ['a', 'b'], X-N: 5}\n")
    assert rule.action == Rewrite(strip="all", set=(("Access-Control-Allow-Origin", ("a", "b")), ("X-N", ("5",))))


@pytest.mark.parametrize(
    "action, before, after",
    [
        ("strip: all", [("Access-Control-Allow-Origin", "*"), ("X-A", "1")], [("X-A", "1")]),
        ("strip: [x-a]", [("Access-Control-Allow-Origin", "*"), ("X-A", "1")], [("Access-Control-Allow-Origin", "*")]),
        ("set: {X-A: 2}", [("x-a", "1"), ("X-B", "1")], [("X-B", "1"), ("X-A", "2")]),
        ("set: {X-A: [1, 2]}", [], [("X-A", "1"), ("X-A", "2")]),
        ("strip: ALL", [("access-control-allow-origin", "*"), ("X-A", "1")], [("X-A", "1")]),
    ],
)
def test_rewrite_strips_then_sets(action, before, after):
    (rule,) = parse_rules(f"rules:\n  - name: x\n    {action}\n")
    assert rule.action.apply(before) == after


def test_the_readme_reference_is_the_schema():
    """Regenerate with `python -m mitmcors.schema` when the schema changes."""
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert reference_tables() in readme


def target(url="http://api.test/v1/users?x=1", method="GET", headers=(), host=None) -> Target:
    request = tutils.treq(method=method.encode(), headers=[(k.encode(), v.encode()) for k, v in headers])
    request.url = url
    flow = tflow.tflow(req=request)
    origin = dict(headers).get("Origin")
    requested = dict(headers).get("Access-Control-Request-Method")
    preflight = cors.is_preflight(method, origin, requested)
    cors_request = cors.CorsRequest(origin, requested if preflight else method, preflight)
    return Target(request.host, request.path.partition("?")[0], cors_request, flow)


PREFLIGHT_PUT = (("Origin", "http://localhost:3000"), ("Access-Control-Request-Method", "PUT"))


@pytest.mark.parametrize(
    "match, kwargs, matches",
    [
        ("{}", {}, True),
        ("{host: API.test}", {}, True),
        ("{host: [other.test, '*.test']}", {}, True),
        ("{host: other.test}", {}, False),
        ("{path: '/v1/*'}", {}, True),
        ("{path: '/v1/users'}", {}, True),  # the query is not part of the path
        ("{path: '/V1/*'}", {}, False),  # paths are case-sensitive
        ("{method: put}", {"method": "OPTIONS", "headers": PREFLIGHT_PUT}, True),  # what it announces
        ("{method: OPTIONS}", {"method": "OPTIONS", "headers": PREFLIGHT_PUT}, False),
        ("{method: [GET, POST]}", {}, True),
        ("{origin: 'http://localhost:*'}", {"headers": (("Origin", "http://localhost:3000"),)}, True),
        ("{origin: 'http://localhost:*'}", {}, False),  # no Origin at all
        ("{origin: 'null'}", {"headers": (("Origin", "null"),)}, True),
        ("{preflight: true}", {"method": "OPTIONS", "headers": PREFLIGHT_PUT}, True),
        ("{preflight: true}", {"method": "OPTIONS"}, False),
        ("{preflight: false}", {"method": "OPTIONS", "headers": PREFLIGHT_PUT}, False),
        ("{filter: '~m GET & ~u users'}", {}, True),
        ("{filter: '~m PUT'}", {}, False),
        ("{host: api.test, path: '/v2/*'}", {}, False),  # every key given must match
    ],
)
def test_matching(match, kwargs, matches):
    (rule,) = parse_rules(f"rules:\n  - name: x\n    match: {match}\n    strip: all\n")
    assert rule.match.matches(target(**kwargs)) is matches


def test_the_first_matching_rule_wins_across_indexed_and_unindexed_rules():
    rule_set = RuleSet(
        parse_rules(
            "rules:\n"
            "  - {name: other host, match: {host: other.test}, strip: all}\n"
            "  - {name: wildcard v2, match: {host: '*.test', path: '/v2/*'}, strip: all}\n"
            "  - {name: exact v1, match: {host: api.test, path: '/v1/*'}, strip: all}\n"
            "  - {name: any host, strip: all}\n"
            "  - {name: exact any path, match: {host: api.test}, strip: all}\n"
        )
    )
    assert rule_set.first_match(target("http://api.test/v1/x")).name == "exact v1"
    assert rule_set.first_match(target("http://API.test/v2/x")).name == "wildcard v2"
    assert rule_set.first_match(target("http://api.test/v3/x")).name == "any host"
    assert rule_set.first_match(target("http://else.test/v3/x")).name == "any host"


def test_only_a_hosts_rewrite_rules_concern_its_flows_without_origin():
    """allow and break act on CORS requests only: a flow without Origin is read no
    further unless a rewrite for its host may apply."""
    rule_set = RuleSet(parse_rules(
        "rules:\n"
        "  - {name: allowed, match: {host: api.test}, allow: {}}\n"
        "  - {name: services, match: {host: '*.svc.test'}, strip: all}\n"
        "  - {name: broken, match: {host: broken.test}, break: missing-allow-origin-header}\n"
    ))
    assert not rule_set.acts_without_origin("api.test")
    assert not rule_set.acts_without_origin("broken.test")
    assert rule_set.acts_without_origin("a.svc.test")
    assert rule_set.acts_without_origin("A.SVC.test")
    assert not RuleSet(parse_rules("rules: [{name: open, allow: {}}]")).acts_without_origin("a.svc.test")
    assert RuleSet(parse_rules("rules: [{name: any, set: {X-A: '1'}}]")).acts_without_origin("api.test")


def test_no_rule_matches_in_an_empty_set():
    assert RuleSet(()).first_match(target()) is None


def test_files_apply_in_order_and_are_summarised(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.yaml").write_text("rules:\n  - {name: first, match: {path: '/v1/*'}, strip: all}\n")
    (tmp_path / "b.yaml").write_text("rules:\n  - {name: second, allow: {}}\n  - {name: third, allow: {}}\n")
    rule_set = load_files(["a.yaml", "b.yaml"])
    assert [rule.name for rule in rule_set.rules] == ["first", "second", "third"]
    assert rule_set.first_match(target()).name == "first"
    assert rule_set.summary() == "3 rules from a.yaml (1), b.yaml (2)"
