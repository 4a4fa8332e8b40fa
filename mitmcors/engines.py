"""What each browser engine prints for each of Chromium's CORS error kinds.

The kinds are Chromium's (``corserrors.KINDS``; the break scenarios are their kebab-case
names). Firefox and WebKit word each failure their own way, and some print one line for
several kinds: the data says which, so a verdict can be worded for each engine and a console
line traced back to the kinds that print it (``kinds_printing``). The texts were read off
Debian's Firefox ESR 153 and WebKitGTK 2.50 by the end-to-end tests, which keep them honest;
Chromium's come from corserrors. Lines are those of ``fetch()``. Pure: no mitmproxy import.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

from mitmcors import cors, urls
from mitmcors.corserrors import KINDS, Kind

# What each placeholder of a template stands for in a console line, and its default in one.
_PLACEHOLDERS = {"url": ".+?", "origin": r"\S+", "value": ".*?", "status": r"\d+|\(null\)",
                 "redirected": r"(?: \(redirected from '.+?'\))?"}
_DEFAULTS = {"redirected": ""}
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


class Engine(NamedTuple):
    name: str
    title: str
    page_error: str  # what the page's fetch() rejects with, whatever the kind


ENGINES: dict[str, Engine] = {engine.name: engine for engine in (
    Engine("chromium", "Chromium", "TypeError: Failed to fetch"),
    Engine("firefox", "Firefox", "TypeError: NetworkError when attempting to fetch resource."),
    Engine("webkit", "WebKit", "TypeError: Load failed"),
)}


class Message(NamedTuple):
    """One console line as a template (``{url}``, ``{origin}``, ``{value}``, ``{status}``,
    Chromium's ``{redirected}``), with its pattern compiled once."""

    engine: str
    prefix: str  # shared by a family of messages, e.g. Firefox's "Cross-Origin Request Blocked: ..."
    says: str  # the part that names the fault
    code: str | None  # Firefox's reason code, as MDN names its pages (CORSMissingAllowOrigin)
    pattern: re.Pattern[str]

    def format(self, **values: str) -> str:
        """The whole line; placeholders not given read '…'."""
        return _fill(self.prefix + self.says, values)

    def short(self) -> str:
        """What names the fault, with Firefox's reason code: a table cell."""
        says = _fill(self.says, {})
        return f"`{self.code}`: {says}" if self.code else says

    def match(self, line: str) -> re.Match[str] | None:
        """The line's values by placeholder name, if this message is the line."""
        return self.pattern.fullmatch(line)


class Said(NamedTuple):
    """What one engine prints for one kind: one line that names the fault (the first of
    ``messages``, or another where ``when`` says), then any of ``follow_ups``."""

    kind: str
    engine: str
    messages: tuple[Message, ...]
    follow_ups: tuple[Message, ...] = ()
    when: str = ""


def _fill(template: str, values: Mapping[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), _DEFAULTS.get(m.group(1), "…")), template)


def _compile(template: str) -> re.Pattern[str]:
    parts = _PLACEHOLDER.split(template)  # literal, name, literal, name, ...
    return re.compile("".join(
        re.escape(part) if i % 2 == 0 else f"(?P<{part}>{_PLACEHOLDERS[part]})" for i, part in enumerate(parts)
    ))


def _message(engine: str, says: str, prefix: str = "", code: str | None = None) -> Message:
    return Message(engine, prefix, says, code, _compile(prefix + says))


# Chromium: corserrors' texts behind its own prefix (which names the chain's first URL after a
# redirect); a network error shows only as net::ERR_*.
CHROMIUM_BLOCKED = "Access to fetch at '{url}'{redirected} from origin '{origin}' has been blocked by CORS policy: "
CHROMIUM_FAILED = "Failed to load resource: "
_CHROMIUM_NET_FAILED = _message("chromium", "net::ERR_FAILED", CHROMIUM_FAILED)


def _chromium(kind: Kind) -> Said:
    if kind.network_error:
        return Said(kind.name, "chromium", (_message("chromium", kind.says, CHROMIUM_FAILED),))
    return Said(kind.name, "chromium", (_message("chromium", kind.says, CHROMIUM_BLOCKED),), (_CHROMIUM_NET_FAILED,))


# Firefox: a reason code per text (dom/locales security.properties), behind one prefix that
# names the URL (a redirect's target, where it got that far).
FIREFOX_BLOCKED = "Cross-Origin Request Blocked: The Same Origin Policy disallows reading the remote resource at {url}. "


def _firefox(code: str, reason: str, status: bool = False, url: str = "{url}") -> Message:
    says = f"(Reason: {reason})." + (" Status code: {status}." if status else "")
    return _message("firefox", says, FIREFOX_BLOCKED.replace("{url}", url), code)


FIREFOX: dict[str, Message] = {message.code or "": message for message in (
    _firefox("CORSMissingAllowOrigin", "CORS header ‘Access-Control-Allow-Origin’ missing", status=True),
    _firefox("CORSAllowOriginNotMatchingOrigin", "CORS header ‘Access-Control-Allow-Origin’ does not match ‘{value}’"),
    _firefox("CORSMultipleAllowOriginNotAllowed", "Multiple CORS header ‘Access-Control-Allow-Origin’ not allowed"),
    # The one message that quotes the URL.
    _firefox("CORSNotSupportingCredentials",
             "Credential is not supported if the CORS header ‘Access-Control-Allow-Origin’ is ‘*’", url="‘{url}’"),
    _firefox("CORSMissingAllowCredentials", "expected ‘true’ in CORS header ‘Access-Control-Allow-Credentials’"),
    _firefox("CORSPreflightDidNotSucceed", "CORS preflight response did not succeed", status=True),
    _firefox("CORSExternalRedirectNotAllowed", "CORS request external redirect not allowed"),
    _firefox("CORSMethodNotFound", "Did not find method in CORS header ‘Access-Control-Allow-Methods’"),
    _firefox("CORSMissingAllowHeaderFromPreflight",
             "header ‘{value}’ is not allowed according to header ‘Access-Control-Allow-Headers’ from CORS preflight response"),
    _firefox("CORSInvalidAllowMethod", "invalid token ‘{value}’ in CORS header ‘Access-Control-Allow-Methods’"),
    _firefox("CORSInvalidAllowHeader", "invalid token ‘{value}’ in CORS header ‘Access-Control-Allow-Headers’"),
    _firefox("CORSRequestNotHttp", "CORS request not http"),  # lowercase, unlike MDN's title
    _firefox("CORSDidNotSucceed", "CORS request did not succeed", status=True),
)}
_FIREFOX_FILE = _message("firefox", "Security Error: Content at {url} may not load or link to {value}.")

# WebKit: no prefix and no codes; "Fetch API cannot load" follows nearly every failure.
WEBKIT: dict[str, Message] = {name: _message("webkit", says) for name, says in {
    "origin": "Origin {origin} is not allowed by Access-Control-Allow-Origin. Status code: {status}",
    "multiple": "Access-Control-Allow-Origin cannot contain more than one origin.",
    "wildcard": "Cannot use wildcard in Access-Control-Allow-Origin when credentials flag is true.",
    "credentials": 'Credentials flag is true, but Access-Control-Allow-Credentials is not "true".',
    "preflight": "Preflight response is not successful. Status code: {status}",
    "method": "Method {value} is not allowed by Access-Control-Allow-Methods.",
    "header": "Request header field {value} is not allowed by Access-Control-Allow-Headers.",
    "methods": "Header Access-Control-Allow-Methods has an invalid value: {value}",
    "headers": "Header Access-Control-Allow-Headers has an invalid value: {value}",
    "redirect-credentials": "Cross-origin redirection to {url} denied by Cross-Origin Resource Sharing policy: "
                            "redirection URL {value} has credentials",
    "redirect-scheme": "Cross-origin redirection to {url} denied by Cross-Origin Resource Sharing policy: "
                       "not allowed to follow a cross-origin CORS redirection with non CORS scheme",
    "ftp": "FTP URLs are disabled",
    "redirects": "Load cannot follow more than 20 redirections",
    "port": "Not allowed to use restricted network port {value}: {url}",
    "cannot-load": "Fetch API cannot load {url} due to access control checks.",
}.items()}

# Kind -> (Firefox's, WebKit's) names of the messages that may name it, first the one its break
# scenario shows. A preflight twin ("Preflight" + an origin kind) prints what its kind prints.
_ORIGIN_KINDS = {
    "MissingAllowOriginHeader": (("CORSMissingAllowOrigin",), ("origin",)),
    "AllowOriginMismatch": (("CORSAllowOriginNotMatchingOrigin",), ("origin",)),
    "MultipleAllowOriginValues": (("CORSMultipleAllowOriginNotAllowed", "CORSAllowOriginNotMatchingOrigin"), ("multiple", "origin")),
    "InvalidAllowOriginValue": (("CORSAllowOriginNotMatchingOrigin",), ("origin",)),
    "WildcardOriginNotAllowed": (("CORSNotSupportingCredentials",), ("wildcard",)),
    "InvalidAllowCredentials": (("CORSMissingAllowCredentials",), ("credentials",)),
}
_OTHER_KINDS = {
    "PreflightInvalidStatus": (("CORSPreflightDidNotSucceed",), ("preflight",)),
    "PreflightDisallowedRedirect": (("CORSExternalRedirectNotAllowed",), ("preflight",)),
    "MethodDisallowedByPreflightResponse": (("CORSMethodNotFound",), ("method",)),
    "HeaderDisallowedByPreflightResponse": (("CORSMissingAllowHeaderFromPreflight",), ("header",)),
    "InvalidAllowMethodsPreflightResponse": (("CORSInvalidAllowMethod",), ("methods",)),
    "InvalidAllowHeadersPreflightResponse": (("CORSInvalidAllowHeader",), ("headers",)),
    "RedirectContainsCredentials": (("CORSDidNotSucceed",), ("redirect-credentials",)),
    "CorsDisabledScheme": (("CORSRequestNotHttp",), ("redirect-scheme", "ftp")),
    "TooManyRedirects": (("CORSDidNotSucceed",), ("redirects",)),
    "InvalidRedirect": (("CORSDidNotSucceed",), ("redirect-scheme",)),
    "UnsafeRedirect": (("CORSDidNotSucceed", "CORSRequestNotHttp", "file"), ("redirect-scheme",)),
    "UnknownUrlScheme": (("CORSDidNotSucceed",), ("redirect-scheme",)),
    "UnsafePort": (("CORSDidNotSucceed",), ("port",)),
}
_WHEN = {  # which of several messages a response gets, for those kinds that have several
    ("firefox", "MultipleAllowOriginValues"):
        "for two header lines; one line listing several origins gets `CORSAllowOriginNotMatchingOrigin`",
    ("firefox", "UnsafeRedirect"): "for data:; about: gets `CORSRequestNotHttp`, file: a security error",
    ("webkit", "CorsDisabledScheme"): "for mailto: and the like; ftp: gets 'FTP URLs are disabled'",
    ("webkit", "MultipleAllowOriginValues"): "for a comma or two header lines; origins apart by spaces only get "
                                             "'Origin … is not allowed'",
    ("webkit", "PreflightMultipleAllowOriginValues"): "for a comma or two header lines; origins apart by spaces only "
                                                      "get 'Origin … is not allowed'",
}
# WebKit words a failed CORS check on a redirect's response as a refused redirection, naming
# the redirect's target, then the check's own line.
WEBKIT_REDIRECTION = "Cross-origin redirection to {url} denied by Cross-Origin Resource Sharing policy: "
_WEBKIT_REDIRECTED = {name: _message("webkit", WEBKIT[name].says, WEBKIT_REDIRECTION)
                      for name in ("origin", "multiple", "wildcard", "credentials")}
# The generic line Firefox adds after a failed preflight or redirect; after a preflight's
# redirect, the line between names the status or, if the redirect left the origin, a mismatch.
_FIREFOX_FOLLOW_UPS = {
    "PreflightDisallowedRedirect": ("CORSPreflightDidNotSucceed", "CORSAllowOriginNotMatchingOrigin", "CORSDidNotSucceed"),
}


def _firefox_said(kind: str, names: tuple[str, ...], preflight_or_redirect: bool) -> Said:
    messages = tuple(_FIREFOX_FILE if name == "file" else FIREFOX[name] for name in names)
    follow_ups = _FIREFOX_FOLLOW_UPS.get(kind, ("CORSDidNotSucceed",) if preflight_or_redirect else ())
    return Said(kind, "firefox", messages, tuple(FIREFOX[name] for name in follow_ups),
                _WHEN.get(("firefox", kind), ""))


def _webkit_said(kind: str, names: tuple[str, ...]) -> Said:
    redirected = tuple(_WEBKIT_REDIRECTED[name] for name in names) if kind in _ORIGIN_KINDS else ()
    return Said(kind, "webkit", tuple(WEBKIT[name] for name in names) + redirected, (WEBKIT["cannot-load"],),
                _WHEN.get(("webkit", kind), ""))


def _build() -> dict[str, dict[str, Said]]:
    kinds = {**_ORIGIN_KINDS, **{"Preflight" + kind: names for kind, names in _ORIGIN_KINDS.items()}, **_OTHER_KINDS}
    return {
        "chromium": {name: _chromium(kind) for name, kind in KINDS.items()},
        "firefox": {kind: _firefox_said(kind, names, kind not in _ORIGIN_KINDS) for kind, (names, _) in kinds.items()},
        "webkit": {kind: _webkit_said(kind, names) for kind, (_, names) in kinds.items()},
    }


SAID: dict[str, dict[str, Said]] = _build()
"""SAID[engine][kind]: what that engine prints for that kind."""


def _printers(engine: str) -> dict[str, tuple[Message, tuple[str, ...]]]:
    """Each distinct message of an engine, by its template, with the kinds that print it."""
    index: dict[str, tuple[Message, tuple[str, ...]]] = {}
    for said in SAID[engine].values():
        for message in said.messages:
            known, kinds = index.get(message.pattern.pattern, (message, ()))
            index[message.pattern.pattern] = (known, (*kinds, said.kind))
    return index


_PRINTERS = {engine: _printers(engine) for engine in ENGINES}


def kinds_printing(line: str, engine: str) -> tuple[str, ...]:
    """The kinds whose fault an engine names with this console line (not a follow-up).

    >>> kinds_printing("Access-Control-Allow-Origin cannot contain more than one origin.", "webkit")
    ('MultipleAllowOriginValues', 'PreflightMultipleAllowOriginValues')
    """
    return _unique(kind for message, kinds in _PRINTERS[engine].values() if message.match(line) for kind in kinds)


def same_line_as(kind: str, engine: str) -> tuple[str, ...]:
    """The other kinds an engine names with a line this kind may print: it cannot tell them apart."""
    shared = _unique(printer for message in SAID[engine][kind].messages
                     for printer in _PRINTERS[engine][message.pattern.pattern][1])
    return tuple(other for other in shared if other != kind)


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _first_bad_item(value: str) -> str:
    """The first item of a comma list that is no token (the list itself if none is)."""
    return next((item for item in (part.strip(" \t") for part in value.split(",")) if item and not cors.is_token(item)), value)


def _port(url: str) -> str:
    """The URL's port, as WebKit names a refused one (the URL itself if it has none)."""
    parsed = urls.parse(url)
    return str(parsed.port) if parsed and parsed.port is not None else url


# What an engine shows of a failure's value, where that is not the whole value Chromium's kind carries.
_SHOWN_VALUE: dict[tuple[str, str], Callable[[str], str]] = {
    # Firefox names the one bad item of a list where Chromium and WebKit quote the whole header.
    ("firefox", "InvalidAllowMethodsPreflightResponse"): _first_bad_item,
    ("firefox", "InvalidAllowHeadersPreflightResponse"): _first_bad_item,
    # WebKit names the refused port, then the URL.
    ("webkit", "UnsafePort"): _port,
}


def console_line(engine: str, kind: str, value: str, *, url: str, origin: str, status: int,
                 one_line: bool = True, redirected_to: str | None = None) -> tuple[str, str | None]:
    """What Firefox or WebKit prints for a failure Chromium names ``kind`` with ``value``,
    and Firefox's reason code. ``one_line``: Allow-Origin came in one header line (Firefox
    says "does not match" for a list there, and "Multiple" only for several lines);
    ``redirected_to``: the response was a redirect to there (WebKit names it).

    >>> console_line("webkit", "MethodDisallowedByPreflightResponse", "PUT", url="", origin="", status=204)
    ('Method PUT is not allowed by Access-Control-Allow-Methods.', None)
    """
    message = _chosen(engine, kind, value, one_line, redirected_to is not None)
    value = _SHOWN_VALUE.get((engine, kind), str)(value)
    if redirected_to is not None and (engine == "webkit" or message.code == "CORSRequestNotHttp"):
        url = redirected_to
    # Firefox's "did not succeed" comes when no response was read: its status is "(null)".
    shown_status = "(null)" if message.code == "CORSDidNotSucceed" else str(status)
    return message.format(url=url, origin=origin, value=value, status=shown_status), message.code


def _one_line_gets_the_second(value: str, one_line: bool) -> int:
    return 1 if one_line else 0


def _spaces_only_get_the_second(value: str, one_line: bool) -> int:
    return 0 if "," in value else 1


# Which of a kind's messages a failure gets, by its value (the text of ``_WHEN``).
_WHICH: dict[tuple[str, str], Callable[[str, bool], int]] = {
    ("firefox", "MultipleAllowOriginValues"): _one_line_gets_the_second,
    ("firefox", "PreflightMultipleAllowOriginValues"): _one_line_gets_the_second,
    ("firefox", "UnsafeRedirect"): lambda value, _: {"about": 1, "file": 2}.get(value.partition(":")[0], 0),
    ("webkit", "MultipleAllowOriginValues"): _spaces_only_get_the_second,
    ("webkit", "PreflightMultipleAllowOriginValues"): _spaces_only_get_the_second,
    ("webkit", "CorsDisabledScheme"): lambda value, _: 1 if value.startswith("ftp:") else 0,
}


def _chosen(engine: str, kind: str, value: str, one_line: bool, redirect: bool) -> Message:
    """Which of a kind's messages the engine prints for this response; after a redirect,
    WebKit's variant that names it."""
    messages = SAID[engine][kind].messages
    which = _WHICH.get((engine, kind))
    base = messages[which(value, one_line) if which else 0]
    if not redirect or engine != "webkit":
        return base
    return next((m for m in messages if m.prefix == WEBKIT_REDIRECTION and m.says == base.says), base)
