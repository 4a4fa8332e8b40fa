"""End to end: what each engine prints when a redirect of the request fails: the CorsError
kinds the verdicts know beyond the break scenarios, as mitmcors.engines words them.

The scripted backend answers each case with a 302 (with a correct Allow-Origin) to a
target that fails in its own way; mitmdump observes without rules and reports, and the
report's verdict on the redirect must be the kind, whichever engine followed it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support.drivers import Engine
from support.outcomes import assert_engine_reports, predicted_outcome
from support.servers import Behaviour, PageServer, ScriptedServer, running_mitmdump

pytestmark = [pytest.mark.browser, pytest.mark.integration]

# case: (the redirect's Location, "{api}" standing for the backend's host and port; the kind)
CASES = {
    "credentials": ("http://user:pass@{api}/credentials/x", "RedirectContainsCredentials"),
    "ftp": ("ftp://127.0.0.1/x", "CorsDisabledScheme"),
    "mailto": ("mailto:x@y.test", "CorsDisabledScheme"),
    "data": ("data:text/plain,x", "UnsafeRedirect"),
    "about": ("about:blank", "UnsafeRedirect"),
    "file": ("file:///etc/hosts", "UnsafeRedirect"),
    "ws": ("ws://127.0.0.1/x", "UnknownUrlScheme"),
    "port": ("http://127.0.0.1:1/x", "UnsafePort"),
    "invalid": ("http://[x/", "InvalidRedirect"),
    "loop": ("/loop/again", "TooManyRedirects"),
}


@dataclass
class Lab:
    backend: ScriptedServer
    page: PageServer
    proxy_port: int
    report: Path

    def reported(self, url: str) -> list[dict[str, Any]]:
        """The report's entries for a call that began at url: its hops, in order."""
        lines = [json.loads(line) for line in self.report.read_text().splitlines()]
        return [entry for entry in lines if url in (entry["url"], entry.get("redirected_from"))]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    report = Path(tmp_path_factory.mktemp("redirects")) / "report.jsonl"
    with ScriptedServer() as backend, PageServer() as page, \
            running_mitmdump([], ["--set", f"cors_report={report}"]) as proxy:
        host = backend.base_url.removeprefix("http://")
        for case, (location, _) in CASES.items():
            headers = (("Access-Control-Allow-Origin", "*"), ("Location", location.format(api=host)))
            backend.script(case, Behaviour(204, (), 302, headers))
        yield Lab(backend, page, proxy.port, report)


@pytest.mark.parametrize("case", CASES)
def test_each_engine_reports_the_failed_redirect_in_its_own_words(lab: Lab, engine: Engine, case: str) -> None:
    kind = CASES[case][1]
    url = lab.backend.url(f"/{case}/{uuid.uuid4().hex}")
    with engine.session(lab.proxy_port) as session:
        result = session.fetch(lab.page.url("/"), url)
    assert_engine_reports(result, engine.name, kind)
    assert predicted_outcome(lab.reported(url), False) == ("blocked", kind), lab.reported(url)
