"""The differential tests' matrix: seeded calls and backends, and the scripted servers
that play them (see tests/e2e/test_browser_differential.py)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from support.calls import Call
from support.servers import Behaviour, ScriptedServer

ORIGIN = "{origin}"  # the page's origin, filled in per hop
ACAO = "Access-Control-Allow-Origin"

CALLS = [
    Call(), Call(credentials="include"), Call(credentials="omit"), Call(api="xhr"), Call(api="xhr", credentials="include"),
    Call(headers=(("X-Test", "1"),)), Call(headers=(("Authorization", "Bearer t"),), credentials="include"),
    Call(headers=(("X-Zeta", "1"), ("X-Alpha", "1"))), Call(api="xhr", method="PUT", headers=(("X-Test", "1"),), body="json"),
    Call(method="POST", headers=(("Content-Type", "text/plain;charset=UTF-8"),), body="text"),
    Call(method="POST", headers=(("Content-Type", "application/json"),), body="json"),
    Call(method="POST", body="formdata"), Call(method="POST", body="urlsearchparams"), Call(method="POST", body="blob_json"),
    Call(method="POST", body="blob_plain"), Call(method="POST", body="blob_untyped"),
    Call(method="PUT", headers=(("Content-Type", "application/json"), ("X-Test", "1")), body="json"),
    Call(method="PUT", credentials="include", body="json"), Call(method="DELETE", credentials="include", headers=(("X-Test", "1"),)),
    Call(method="PATCH", body="json"), Call(method="patch", body="json"), Call(method="delete"),
    Call(cache="no-store"), Call(cache="reload"), Call(cache="no-cache"), Call(cache="force-cache"),
    Call(method="PUT", cache="no-store"), Call(method="PUT", cache="no-cache"),
    Call(mode="no-cors"), Call(mode="no-cors", method="POST", body="text"),
    Call(headers=(("Range", "bytes=0-10"),)), Call(headers=(("Range", "bytes=10-5"),)), Call(headers=(("Range", "BYTES=0-10"),)),
    Call(headers=(("Range", "bytes=-5"),)), Call(headers=(("Accept", "a" * 128),)), Call(headers=(("Accept", "a" * 129),)),
    Call(headers=(("Content-Language", "en @x"),)), Call(headers=(("DPR", "1" * 128), ("Width", "2" * 128), ("Viewport-Width", "3" * 128),
         ("Device-Memory", "4" * 128), ("RTT", "5" * 128), ("Downlink", "6" * 128), ("Accept", "a" * 128), ("Content-Language", "b" * 30))),
]

ALLOW_ORIGIN = [
    [], [ORIGIN], [ORIGIN], ["*"], ["null"], ["http://other.test"], [ORIGIN, ORIGIN], [f"{ORIGIN} http://other.test"],
    ["foo"], [""], [ORIGIN + "/"], ["HTTP://127.0.0.1"], ["http://127.0.0.1:99999"], ["http://"], ["https://:443"],
    ["http://256.256.256.256"], ["file:"], ["mailto:"], ["http://[::1"],
]
ALLOW_CREDENTIALS = [None, "true", "true", "TRUE"]
PREFLIGHT_STATUS = [(204, None), (204, None), (200, None), (403, None), (300, None), (301, "/elsewhere"), (302, ""), (307, "/elsewhere")]
ALLOW_METHODS = [None, "reflect", "reflect", "GET, POST", "*", "GET PUT", "lower", " PUT ,, DELETE, PATCH", "x@y"]
ALLOW_HEADERS = [None, "reflect", "reflect", "first", "*", "x-test;", "UPPER", ",, reflect", "x-test x-other"]
MAX_AGE = [None, None, "0", "-1", "10", "abc", "5, 10", "+5", "99999"]
EXPOSE = [None, "X-Total", "x-total, x@y", "*", "X-TOTAL", ",x-total,", "x-total x-other"]
STATUS = [200, 200, 200, 500, 300]
REDIRECT_STATUS = [301, 302, 303, 307, 308]
SERVERS = ("page", "api", "second api", "third site")
HOP_TARGETS = ["api", "second api", "third site", "page", "relative", "credentials", "itself", "elsewhere"]
# Where an "elsewhere" hop leads: each fails in its own way, past the CORS check.
ELSEWHERE = ["ftp://127.0.0.1/x", "data:text/plain,x", "ws://127.0.0.1/x", "http://127.0.0.1:1/x", "http://[x/",
             "mailto:x@y.test", "about:blank"]


@dataclass(frozen=True)
class Hop:
    """One server's part in a case: where it lives and how it answers."""

    server: str
    behaviour: Behaviour


@dataclass(frozen=True)
class Case:
    name: str
    call: Call
    hops: tuple[Hop, ...]
    twice: bool
    elsewhere: str = ""

    def describe(self) -> str:
        hops = " -> ".join(f"{hop.server} {hop.behaviour}" for hop in self.hops)
        return f"{self.name} {self.call} twice={self.twice} elsewhere={self.elsewhere}\n  {hops}"


def cors_headers(rng: random.Random, requested: list[str], method: str, preflight: bool) -> list[tuple[str, str]]:
    headers = [(ACAO, value) for value in rng.choice(ALLOW_ORIGIN)]
    credentials = rng.choice(ALLOW_CREDENTIALS)
    if credentials is not None:
        headers.append(("Access-Control-Allow-Credentials", credentials))
    if preflight:
        headers += _preflight_grants(rng, requested, method)
    else:
        expose = rng.choice(EXPOSE)
        headers += [] if expose is None else [("Access-Control-Expose-Headers", expose)]
    return headers


def _preflight_grants(rng: random.Random, requested: list[str], method: str) -> list[tuple[str, str]]:
    asked = ",".join(requested) or "x-none"
    grants = []
    methods = rng.choice(ALLOW_METHODS)
    if methods is not None:
        grants.append(("Access-Control-Allow-Methods", {"reflect": method, "lower": method.lower()}.get(methods, methods)))
    headers = rng.choice(ALLOW_HEADERS)
    if headers is not None:
        value = {"reflect": asked, "first": asked.split(",")[0], "UPPER": asked.upper()}.get(headers, headers)
        grants.append(("Access-Control-Allow-Headers", value.replace("reflect", asked)))
    max_age = rng.choice(MAX_AGE)
    return grants + ([] if max_age is None else [("Access-Control-Max-Age", max_age)])


def behaviour(rng: random.Random, call: Call, location: str | None) -> Behaviour:
    requested = sorted(name.lower() for name, _ in call.headers)
    preflight_status, preflight_location = rng.choice(PREFLIGHT_STATUS)
    preflight = cors_headers(rng, requested, call.method, True)
    if preflight_location is not None:
        preflight.append(("Location", preflight_location))
    response = cors_headers(rng, requested, call.method, False)
    status = rng.choice(STATUS)
    if location is not None:
        status = rng.choice(REDIRECT_STATUS)
        response.append(("Location", location))
    return Behaviour(preflight_status, tuple(preflight), status, tuple(response))


def generate(seed: int, size: int) -> list[Case]:
    """The seeded matrix; hop locations are templates filled in per run (ports vary)."""
    rng = random.Random(seed)
    cases = []
    for index in range(size):
        call = CALLS[index % len(CALLS)] if index < len(CALLS) else rng.choice(CALLS)
        if call.api == "fetch" and call.mode == "cors" and rng.random() < 0.15:
            call = replace(call, credentials=rng.choice(["omit", "same-origin", "include"]))
        targets = rng.choice([[], [], [], [rng.choice(HOP_TARGETS)], [rng.choice(HOP_TARGETS), rng.choice(HOP_TARGETS[:4])]])
        if call.mode == "no-cors":  # never reported (no CORS check): a network error there is out of scope
            targets = [target for target in targets if target not in ("credentials", "elsewhere", "itself")]
        servers = ["api", *(target if target in SERVERS else "api" for target in targets)]
        hops = tuple(
            Hop(server, behaviour(rng, call, targets[position] if position < len(targets) else None))
            for position, server in enumerate(servers)
        )
        twice = not targets and rng.random() < 0.3
        cases.append(Case(f"case{index:03d}", call, hops, twice, rng.choice(ELSEWHERE)))
    return cases


@dataclass
class Backends:
    """The page, two APIs and a third site, scripted per case, and the report of the
    observing mitmdump in front of them."""

    servers: dict[str, ScriptedServer]
    report: Path

    @property
    def page_url(self) -> str:
        return self.servers["page"].url("/")

    def base(self, server: str) -> str:
        url = self.servers[server].base_url
        return url.replace("127.0.0.1", "localhost") if server == "third site" else url

    def script(self, case: Case, run: str) -> str:
        """Register every hop on its server; the URL of the first hop."""
        urls = [f"{self.base(hop.server)}/{case.name}-{position}-{run}/x" for position, hop in enumerate(case.hops)]
        for position, hop in enumerate(case.hops):
            next_url = urls[position + 1] if position + 1 < len(urls) else ""
            filled = _filled(hop.behaviour, self.base("page"), urls[position], next_url, case.elsewhere)
            self.servers[hop.server].script(f"{case.name}-{position}-{run}", filled)
        return urls[0]

    def entries(self, run: str) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.report.read_text().splitlines()]
        return [entry for entry in lines if f"-{run}/" in entry["url"]]

    def preflights(self, run: str) -> int:
        """How many preflights reached the first hop of a run."""
        return len([r for r in self.servers["api"].requests if f"-0-{run}/" in r.path and r.method == "OPTIONS"])


def _filled(behaviour: Behaviour, page_origin: str, url: str, next_url: str, elsewhere: str) -> Behaviour:
    def fill(fields: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        return tuple((name, _location(value, url, next_url, elsewhere) if name == "Location" else value.replace(ORIGIN, page_origin))
                     for name, value in fields)

    return replace(behaviour, preflight_headers=fill(behaviour.preflight_headers), headers=fill(behaviour.headers))


def _location(target: str, url: str, next_url: str, elsewhere: str) -> str:
    """A hop's Location: its target made a URL of this run."""
    special = {
        "relative": "/" + next_url.split("/", 3)[-1], "credentials": next_url.replace("://", "://user:pass@"),
        "itself": url, "elsewhere": elsewhere,
    }
    return special.get(target, next_url if target in SERVERS else target)
