"""The mitmproxy side of the verdicts: explain every cross-origin flow as it leaves.

With no rules the addon changes no byte of traffic and explains everything: one log
line per blocked or warned flow, blocked flows marked in mitmweb and the console with
the explanation as their comment, an optional JSON Lines report, and a summary at
shutdown. Works on saved captures too (``mitmdump -nr capture.flows``).
"""

from __future__ import annotations

import collections
import logging
from typing import Any, Hashable, NamedTuple

from mitmproxy import ctx, flow as mitmflow, http

from mitmcors import cors, engines, shapes, urls, verdicts
from mitmcors.chains import Chain, RedirectChains
from mitmcors.cors import Fields
from mitmcors.flows import (
    CHANGED_BY, RequestView, carries_origin, fetched_url, flow_hook, flows_are_kept, log_only_what_is_shown, printable, readable, refuse,
    decoded, request_view, text_fields, url_origin, written_by_rule,
)
from mitmcors.profiles import CHROMIUM, OTHER_PROFILES, Profile
from mitmcors.report import ReportFile
from mitmcors.shapes import RawFields, Remembered, Shape
from mitmcors.verdicts import Exchange, Failure, Verdict

logger = logging.getLogger(__name__)

BLOCKED_MARKER = ":no_entry:"
WARNED_MARKER = ":warning:"
BLOCKED_COMMENT = "cors: blocked "
"""How a blocked flow's comment begins, and no other's: ``~comment "^cors: blocked"`` finds them."""
WARNINGS_REMEMBERED = 4096
"""How many (rule, host, warnings) triples are remembered to log each once: past it, they log again."""


Elsewhere = tuple[tuple[Profile, Verdict], ...]


class Decided(NamedTuple):
    """Chromium's verdict, each other engine's, and those that differ from Chromium's."""

    verdict: Verdict
    elsewhere: dict[Profile, Verdict]
    differing: Elsewhere


class CorsVerdicts:
    """Judges every cross-origin response as a browser will, and reports it."""

    def __init__(self) -> None:
        self._report: ReportFile | None = None
        self._running = False
        self._seen = 0
        self._warned = 0
        self._warnings_logged: set[tuple[str | None, str, tuple[str, ...]]] = set()
        self._warnings_unlogged = 0
        self._blocked: collections.Counter[str] = collections.Counter()  # bounded by the kinds
        # Per other engine, how its blocks differ from Chromium's, by kind: counted only
        # for the flows it decided again.
        self._differences = {profile.name: collections.Counter[str]() for profile in OTHER_PROFILES}
        self._chains = RedirectChains()
        self._decisions: Remembered[Hashable, Decided] = Remembered()
        self._flows_kept = True  # until configure() says whether a flow's comment reaches anyone

    def load(self, loader) -> None:
        loader.add_option(
            "cors_report", str, "",
            "Write one JSON object per cross-origin flow to this file (JSON Lines; an older "
            "report there is truncated first, any other existing file is refused): url, "
            "method, origin, preflight, verdict, reason, message, fix, rule, warnings, "
            "with_credentials where the unknown credentials mode decides the verdict, and "
            "engines: Firefox's and WebKit's verdict and console line.",
        )

    def configure(self, updated: set[str]) -> None:
        if "termlog_verbosity" in updated:
            log_only_what_is_shown()
        if updated & {"termlog_verbosity", "save_stream_file"}:
            self._flows_kept = flows_are_kept()
        if "cors_report" not in updated:
            return
        path = ctx.options.cors_report
        try:
            report = ReportFile.open(path) if path else None
        except ValueError as e:
            refuse(self._running, str(e))
            return
        except OSError as e:
            refuse(self._running, f"cors_report: cannot write {path}: {e.strerror}")
            return
        self._close_report()
        self._report = report

    def running(self) -> None:
        self._running = True

    def done(self) -> None:
        self._close_report()
        if self._seen:
            logger.info("cors: %s", self.summary())

    @flow_hook
    def response(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None:
            self._judge_response(flow, flow.response)

    @flow_hook
    def error(self, flow: http.HTTPFlow) -> None:
        """A flow that ended in an error, which mitmproxy reports instead of its response.

        When the backend was not reached, the browser gets mitmproxy's error response, which
        has no Access-Control-Allow-Origin, and reports a CORS error instead of the cause.
        When the response was streamed, its headers had left before the error: the browser
        judged them, and may well be what went away (it stops reading a redirect it refuses).
        Otherwise errors on the client's side (it went away, reset its stream) or flows
        killed on purpose leave the browser nothing to judge.
        """
        error = flow.error
        if error is None or error.msg == mitmflow.Error.KILLED_MESSAGE:
            return
        response = flow.response
        if response is not None and response.stream:
            self._judge_response(flow, response)
        elif response is None and _server_side(error):
            self._judge(flow, request_view(flow), 502, (), None, error.msg)

    def _judge_response(self, flow: http.HTTPFlow, response: http.Response) -> None:
        raw, status = response.data.headers.fields, response.data.status_code
        redirect = status in verdicts.REDIRECT_STATUSES  # a same-origin fetch's redirect may begin a chain
        if not redirect and not carries_origin(flow):
            return  # judged by no browser (a rule may have written it all the same): the request spared reading
        written = written_by_rule(flow, raw)
        if written is None:
            self._judge(flow, request_view(flow), status, raw, None, None)
        else:
            self._judge(flow, written.view, status, raw, written.shape, None, written.verdict)

    def summary(self) -> str:
        blocked = sum(self._blocked.values())
        reasons = _reasons(self._blocked)
        flows = "flow" if self._seen == 1 else "flows"
        unlogged = f" ({self._warnings_unlogged} not logged: the same warning for the same rule and host)" if self._warnings_unlogged else ""
        return (
            f"{self._seen} cross-origin {flows} seen, {blocked} blocked"
            f"{f' ({reasons})' if reasons else ''}, {self._warned} with warnings{unlogged}{self._summary_elsewhere()}"
        )

    def _summary_elsewhere(self) -> str:
        """The other engines' blocks, for those that would count or name them differently."""
        summaries = []
        for name, differences in self._differences.items():
            counts = self._blocked.copy()
            counts.update(differences)
            counts = +counts  # the kinds the engine names no more
            if counts != self._blocked:
                summaries.append(f"; {engines.ENGINES[name].title}: {sum(counts.values())} blocked ({_reasons(counts)})")
        return "".join(summaries)

    def _judge(
        self, flow: http.HTTPFlow, view: RequestView, status: int, raw: RawFields, shape: Shape | None,
        connection_error: str | None, slot: list[Any] | None = None,
    ) -> None:
        """``shape``: the response's, when already known; ``slot``: where the verdict on
        the lines a rule wrote is kept for every response it writes them for."""
        seen = view.cors
        chain = self._chains.find(fetched_url(flow, view.url_origin), consume=not seen.preflight) if self._chains else None
        if status in verdicts.REDIRECT_STATUSES:
            self._remember_redirect(flow, seen, chain, status, decoded(raw))
        if not view.checked:
            return
        verdict, elsewhere, differing = self._decided(flow, view, status, raw, shape or shapes.shape(raw), chain, slot)
        self._count(verdict, differing)
        noteworthy = not verdict.allowed or verdict.warnings or verdict.with_credentials or connection_error
        shown = noteworthy and (self._flows_kept or logger.isEnabledFor(logging.INFO if verdict.allowed else logging.WARNING))
        if not shown and self._report is None:
            return  # nobody will read the explanation: spare the proxy writing it
        exchange = _exchange(flow, view, status, decoded(raw), chain)
        entry = report_entry(flow, exchange, verdict, connection_error, chain, elsewhere)
        if shown:
            _show(flow, entry, log=verdict.failure is not None or self._first_time_warned(flow, entry))
        if self._report is not None and not self._report.write(entry):
            self._report = None  # it said why: no more report lines, the proxying goes on

    def _decided(
        self, flow: http.HTTPFlow, view: RequestView, status: int, raw: RawFields, shape: Shape | None, chain: Chain | None,
        slot: list[Any] | None,
    ) -> Decided:
        """Chromium's verdict and the other engines', worked out once per shape of
        exchange: what the verdicts read of the request, the status and the response's
        shape, and the URL where a preflight or a redirect reads it. A rule's ``slot``
        stands for the view and the shape: where there is no URL nor chain to read (nor
        a status: only preflights and redirects read it), it keeps the verdict."""
        url = fetched_url(flow, view.url_origin) if view.cors.preflight or status in verdicts.REDIRECT_STATUSES else None
        alike = slot if url is None and chain is None else None
        if alike is not None and alike[0] is not None:
            return alike[0]
        key = (view, status, chain.redirects if chain else 0, url, shape)
        known = self._decisions.get(key) if shape is not None else None
        if known is None:
            exchange = _exchange(flow, view, status, decoded(raw), chain)
            verdict = verdicts.decide(exchange)
            elsewhere = {profile: verdicts.decide_as(profile, exchange, verdict) for profile in OTHER_PROFILES}
            known = Decided(verdict, elsewhere, tuple((profile, other) for profile, other in elsewhere.items() if other is not verdict))
            if shape is not None:
                self._decisions.put(key, known)
        if alike is not None:
            alike[0] = known
        return known

    def _remember_redirect(
        self, flow: http.HTTPFlow, seen: cors.CorsRequest, chain: Chain | None, status: int, fields: Fields
    ) -> None:
        """Follow a cors-mode request's redirect, same-origin ones too: a chain may
        begin at the page's own origin and cross over later."""
        if seen.preflight or status not in verdicts.REDIRECT_STATUSES or not seen.cors_mode:
            return
        location = verdicts.redirect_location(status, fields)
        if location is not None:
            self._chains.follow(chain, fetched_url(flow), seen.origin or url_origin(flow), location)

    def _first_time_warned(self, flow: http.HTTPFlow, entry: dict[str, Any]) -> bool:
        """Whether these warnings are new for this rule and host: a rule that warns on
        every flow to a host (a public API's wildcard) is logged once, and counted."""
        key = (entry["rule"], flow.request.host, tuple(entry["warnings"]))
        if key in self._warnings_logged:
            self._warnings_unlogged += 1
            return False
        if len(self._warnings_logged) < WARNINGS_REMEMBERED:
            self._warnings_logged.add(key)
        return True

    def _count(self, verdict: Verdict, differing: Elsewhere) -> None:
        self._seen += 1
        if verdict.failure is not None:
            self._blocked[verdict.failure.kind] += 1
        elif verdict.warnings or verdict.with_credentials:
            self._warned += 1
        for profile, other in differing:
            self._count_difference(self._differences[profile.name], verdict, other)

    @staticmethod
    def _count_difference(differences: collections.Counter[str], verdict: Verdict, other: Verdict) -> None:
        if other.failure is not None:
            differences[other.failure.kind] += 1
        if verdict.failure is not None:
            differences[verdict.failure.kind] -= 1

    def _close_report(self) -> None:
        if self._report is not None:
            self._report.close()
            self._report = None


def _reasons(counts: collections.Counter[str]) -> str:
    return ", ".join(f"{reason} {count}" for reason, count in counts.most_common())


def _server_side(error: mitmflow.Error) -> bool:
    return "client" not in error.msg.lower()


def _exchange(flow: http.HTTPFlow, view: RequestView, status: int, fields: Fields, chain: Chain | None) -> Exchange:
    """A flow the browser checks, as a CORS exchange."""
    seen, origin = view.cors, view.url_origin
    assert seen.origin is not None and origin is not None  # as in every view checked
    return Exchange(
        origin=seen.origin,
        method=seen.method,
        preflight=seen.preflight,
        status=status,
        response_headers=fields,
        request_headers=seen.header_names,
        credentialed=True if seen.carries_cookie else None,  # no cookie proves nothing
        url=fetched_url(flow, origin),
        redirects=chain.redirects if chain else 0,
    )


def report_entry(
    flow: http.HTTPFlow, exchange: Exchange, verdict: Verdict, connection_error: str | None = None,
    chain: Chain | None = None, elsewhere: dict[Profile, Verdict] | None = None,
) -> dict[str, Any]:
    """One line of the report: what a tester needs to know about one cross-origin flow.

    When the backend was not reached, the browser's CORS error hides the real cause,
    so the fix and a warning name it.
    """
    request = flow.request
    fix = verdict.failure.fix(exchange.origin) if verdict.failure else None
    warnings = list(verdict.warnings) + _credentials_warning(verdict)
    if connection_error is not None:
        fix = f"make the backend reachable (mitmproxy could not connect: {connection_error})"
        warnings.append("the CORS error only reflects mitmproxy's own error response; the real cause is the connection error")
    entry: dict[str, Any] = {
        "url": exchange.url,
        "method": request.method,
        "origin": exchange.origin,
        "preflight": exchange.preflight,
        "requested_method": exchange.method if exchange.preflight else None,
        "status": exchange.status,
        "verdict": "allowed" if verdict.allowed else "blocked",
        "reason": verdict.reason,
        "message": _message(exchange.url, exchange.origin, verdict.failure, chain),
        "fix": fix,
        "rule": flow.metadata.get(CHANGED_BY),
        "warnings": warnings,
        "unreadable_headers": list(verdict.hidden_headers),
        "redirected_from": chain.started_at if chain else None,
    }
    request_fields = text_fields(request.headers)
    if exchange.preflight:
        entry["preflight_cache_seconds"] = _preflight_cache_seconds(exchange, request_fields)
    else:
        entry["needs_preflight"] = verdicts.needs_preflight(request.method, request_fields)
    if verdict.with_credentials is not None:
        entry["with_credentials"] = _outcome(verdict.with_credentials)
    entry = readable(entry)
    if elsewhere:  # made readable where they are made: only their messages come from the network
        entry["engines"] = {
            profile.name: _engine_entry(profile, other, exchange, entry, request_fields)
            for profile, other in elsewhere.items()
        }
    return entry


def _outcome(verdict: Verdict) -> dict[str, Any]:
    return {"verdict": "allowed" if verdict.allowed else "blocked", "reason": verdict.reason}


def _engine_entry(
    profile: Profile, verdict: Verdict, exchange: Exchange, chromium: dict[str, Any], request_fields: Fields
) -> dict[str, Any]:
    """Another engine's outcome, in its own words (with Firefox's reason code), and where
    it caches a preflight or needs one differently from Chromium."""
    entry = _outcome(verdict)
    message, code = _engine_message(profile.name, verdict.failure, exchange)
    entry["message"] = None if message is None else readable(message)
    if code is not None:
        entry["code"] = code
    if exchange.preflight:
        seconds = _preflight_cache_seconds(exchange, request_fields, profile)
        if seconds != chromium["preflight_cache_seconds"]:
            entry["preflight_cache_seconds"] = seconds
    else:
        needed = verdicts.needs_preflight_as(profile, exchange.method, request_fields, chromium["needs_preflight"])
        if needed != chromium["needs_preflight"]:
            entry["needs_preflight"] = needed
    if verdict.with_credentials is not None:
        entry["with_credentials"] = _outcome(verdict.with_credentials)
    return entry


def _engine_message(engine: str, failure: Failure | None, exchange: Exchange) -> tuple[str | None, str | None]:
    """The engine's console line: it names the URL it fetched (WebKit, after a redirect, the
    redirect's target) and the Origin it sent."""
    if failure is None:
        return None, None
    one_line = sum(name.lower() == "access-control-allow-origin" for name, _ in exchange.response_headers) < 2
    return engines.console_line(engine, failure.kind, failure.value, url=exchange.url, origin=exchange.origin,
                                status=exchange.status, one_line=one_line, redirected_to=_redirect_target(exchange))


def _redirect_target(exchange: Exchange) -> str | None:
    """Where a redirect leads, as WebKit names it (without a user name or password)."""
    location = None if exchange.preflight else verdicts.redirect_location(exchange.status, exchange.response_headers)
    if location is None:
        return None
    target = urls.parse(location.strip(), exchange.url)
    return location if target is None else urls.without_credentials(target)


def _preflight_cache_seconds(exchange: Exchange, request_fields: Fields, profile: Profile = CHROMIUM) -> int:
    """How long the answer spares the same request a preflight: never, when the page's
    cache mode makes the browser skip its preflight cache, or the engine would not reuse it."""
    if verdicts.bypasses_preflight_cache(request_fields) or not verdicts.reuses_preflight(exchange, profile):
        return 0
    return verdicts.preflight_cache_seconds(exchange.response_headers, profile)


def _message(url: str, origin: str, failure: Failure | None, chain: Chain | None = None) -> str | None:
    """Chromium's console line for the failure, word for word (for fetch; an
    XMLHttpRequest's says "XMLHttpRequest" where this says "fetch").

    Within a redirect chain it names the page's origin (not the "null" the request
    carries) and the URL the chain began at; a disallowed scheme is named as the URL.
    """
    if failure is None:
        return None
    if failure.network_error:
        return f"Failed to load resource: {failure.message()}"
    at = failure.value if failure.kind == "CorsDisabledScheme" else url
    started_at = chain.started_at if chain else url
    redirected = f" (redirected from '{started_at}')" if started_at != at else ""
    origin = chain.origin if chain else origin
    return (
        f"Access to fetch at '{at}'{redirected} from origin '{origin}' has been blocked by CORS policy: "
        f"{failure.message()}"
    )


def _credentials_warning(verdict: Verdict) -> list[str]:
    other = verdict.with_credentials
    if other is None:
        return []
    outcome = f"blocks it ({other.reason})" if other.failure else "allows it"
    return [
        "the credentials mode is not on the wire and decides this verdict: with "
        f"credentials: 'include' the browser {outcome}"
    ]


def _show(flow: http.HTTPFlow, entry: dict[str, Any], log: bool = True) -> None:
    """The log line (unless told not to repeat it), and in mitmweb/console the flow's marker
    and comment, the same line; what came from the network (URL, origin, header values in
    the message, errors) made printable."""
    shaped = f" (shaped by rule {entry['rule']!r})" if entry["rule"] else ""
    where = f"{entry['method']} {entry['url']} (origin {entry['origin']}){shaped}"
    if entry["verdict"] == "blocked":
        text = f"{BLOCKED_COMMENT}{where}: {entry['reason']}: {entry['message']} Fix: {entry['fix']}."
        if entry["warnings"]:
            text += f" Note: {'; '.join(entry['warnings'])}."
        if log:
            logger.warning("%s", printable(text + _other_reasons(entry)))
        _annotate(flow, BLOCKED_MARKER, "\n".join(map(printable, [text, *_engine_lines(entry)])))
    elif entry["warnings"]:
        text = printable(f"cors: allowed with warnings {where}: {'; '.join(entry['warnings'])}")
        if log:
            logger.info("%s", text)
        _annotate(flow, WARNED_MARKER, text)


def _other_reasons(entry: dict[str, Any]) -> str:
    """For the log line: the engines that name another reason than Chromium's."""
    others = [f"{engines.ENGINES[name].title} reports {other['reason']}"
              for name, other in entry.get("engines", {}).items() if other["reason"] != entry["reason"]]
    return f" Elsewhere: {'; '.join(others)}." if others else ""


def _engine_lines(entry: dict[str, Any]) -> list[str]:
    """For the flow's comment: what each other engine that blocks prints, Firefox's code first."""
    return [
        f"{engines.ENGINES[name].title}: {other['reason']}: " + (f"{other['code']}: " if "code" in other else "") + other["message"]
        for name, other in entry.get("engines", {}).items() if other["message"] is not None
    ]


def _annotate(flow: http.HTTPFlow, marker: str, text: str) -> None:
    """Mark the flow (unless the tester already did) and add to its comment."""
    flow.marked = flow.marked or marker
    flow.comment = f"{flow.comment}\n{text}" if flow.comment else text
