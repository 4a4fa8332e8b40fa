"""The mitmproxy side: the ``cors_rules`` option, the hooks that apply the rules,
hot reloading of the rule files, and the log.

Rules are matched when they act, as mitmproxy's own addons evaluate filters: a
preflight is answered when its request arrives; responses are rewritten when their
headers arrive (so streamed bodies work), with the response available to filters.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import gc
import logging
import os
import time
from collections.abc import Hashable, Iterator, Sequence
from typing import Any, NamedTuple

from mitmproxy import ctx, http
from mitmproxy.net.http import status_codes

from mitmcors import actions, cors, exposure, shapes, verdicts
from mitmcors.actions import Outcome, Plan, preflight_answer
from mitmcors.flows import CHANGED_BY, HTTP2_OR_LATER, RequestView, byte_fields, carries_origin, decoded, fetched_url, flow_hook, maker, note_written, printable, refuse, request_view, text_fields
from mitmcors.rules import Break, Rule, RuleError, RuleSet, Target, load_files, loading
from mitmcors.shapes import RawFields, Remembered, as_text

logger = logging.getLogger(__name__)

RELOAD_INTERVAL = 0.5  # seconds between looks at the rule files' modification stamps

# flow.metadata key: the proxy answered a preflight itself.
ANSWERED = "cors_answered"

PreflightKey = tuple[str, str, str]  # origin, URL, the method it asks for


class RecentPreflights:
    """What became of the last preflights, so a preflight fault that did not show on the
    request that followed is explained by what really happened to its preflight."""

    LIMIT = 256

    def __init__(self) -> None:
        self._seen: collections.OrderedDict[PreflightKey, tuple[float, str | None]] = collections.OrderedDict()

    def remember(self, key: PreflightKey, what: str | None) -> None:
        """A preflight seen (what: None) or changed by a rule (what: what the rule did, or why it may not show)."""
        self._seen[key] = (time.monotonic(), what)
        self._seen.move_to_end(key)
        if len(self._seen) > self.LIMIT:
            self._seen.popitem(last=False)

    def why_unfaulted(self, scenario: str, key: PreflightKey, needs_preflight: bool) -> str:
        """Why the actual request came although its preflight should have been faulted."""
        earlier = self._seen.get(key)
        if earlier is None:
            if needs_preflight:
                return (f"{scenario} faults the preflight, and none came for this request among the last "
                        f"{self.LIMIT} preflights: the browser likely used a cached one")
            return f"{scenario} faults the preflight, and this request needs none"
        seen_at, what = earlier
        ago = f"{scenario} faults the preflight; this request's came {(time.monotonic() - seen_at) * 1000:.0f} ms earlier"
        return f"{ago} and reached the backend untouched" if what is None else f"{ago}, but {what}"


Stamps = tuple[tuple[int, int, int] | None, ...]
Source = tuple[tuple[str, ...], Stamps]  # the rule files and their modification stamps


class Decision(NamedTuple):
    """The rule that acts on a response and its plan, remembered for the responses alike
    (``CorsRules._decision``), and a slot where the verdicts keep their verdict on what the
    plan writes, the same for them all (``flows.Written``)."""

    rule: Rule
    plan: Plan
    verdict: list[Any]


class Answer(NamedTuple):
    """A rule's own answer to a preflight, as the response to send a copy of."""

    outcome: Outcome
    response: http.Response  # never sent itself: each preflight gets a copy (``_copied``)
    unsafe: tuple[actions.UnsafeLine, ...]  # lines with a control character: never sent


_UNKNOWN = object()  # not yet worked out (an answer may be None)


class CorsRules:
    """Applies the YAML rules of ``cors_rules`` to every flow."""

    def __init__(self) -> None:
        self.rules = RuleSet(())
        self._active: Source = ((), ())
        self._attempted: Source = ((), ())
        self._running = False
        self._watcher: asyncio.Task[None] | None = None
        self._fired: collections.Counter[str] = collections.Counter()  # bounded by the rules
        self._exposure_warned = False
        self._preflights = RecentPreflights()  # kept only while the log shows rule lines
        self._faults_preflights = False  # some rule breaks a preflight: then the log may explain why it did not show
        self._plans: Remembered[Hashable, Plan] = Remembered()  # for the active rules
        self._answers: Remembered[Hashable, Answer | None] = Remembered()  # to preflights, for the active rules
        self._decisions: Remembered[Hashable, Decision | None] = Remembered()  # for the active rules

    def load(self, loader) -> None:
        loader.add_option(
            "cors_rules", Sequence[str], [],
            "YAML file of CORS rules; give the option several times for several files, "
            "applied in that order (the first matching rule wins). Files are watched and "
            "reloaded when they change; a broken edit keeps the last good rules.",
        )

    def configure(self, updated: set[str]) -> None:
        if "cors_rules" not in updated:
            return
        if "" in ctx.options.cors_rules:  # `--set cors_rules=`
            refuse(self._running, "cors_rules: empty file name; give the path of a YAML rule file")
            return
        source = _source(ctx.options.cors_rules)
        if source == self._active or (source == self._attempted and not self._running):
            return  # nothing changed, or the same failure was already reported
        try:
            self._load(source)
        except RuleError as e:
            if self._running:
                self._attempted = self._active  # the option is rolled back to it
            refuse(self._running, str(e))

    def running(self) -> None:
        self._running = True
        self._watcher = asyncio.get_running_loop().create_task(self._watch())
        self._warn_if_exposed()

    def done(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        if self._fired:
            fired = ", ".join(f"{name!r} {count}" for name, count in self._fired.most_common())
            logger.info("cors: rules fired: %s", fired)

    def reload(self) -> None:
        """Reload the rule files now; a broken file keeps the last good rules."""
        self._reload_keeping_last_good(_source(ctx.options.cors_rules))

    def _load(self, source: Source) -> None:
        self._attempted = source
        self._activate(_load_out_of_collection(source[0]), source)

    def _activate(self, rules: RuleSet, source: Source) -> None:
        self.rules = rules
        self._plans, self._answers, self._decisions = Remembered(), Remembered(), Remembered()
        self._active = source
        self._faults_preflights = any(isinstance(rule.action, Break) and rule.action.scenario.on_preflight for rule in rules.rules)
        for warning in rules.warnings:
            logger.warning("cors: %s", warning)
        if source[0]:
            logger.info("cors: %s active", rules.summary())
        if self._running:
            self._warn_if_exposed()

    def _warn_if_exposed(self) -> None:
        """Once per run, as soon as a rule echoes any origin with credentials beyond loopback."""
        text = None if self._exposure_warned else exposure.warning(self.rules, ctx.options.listen_host, ctx.options.mode)
        if text:
            logger.warning("%s", text)
            self._exposure_warned = True

    def _reload_keeping_last_good(self, source: Source) -> None:
        try:
            self._load(source)
        except RuleError as e:
            self._keep_last_good(e)

    def _keep_last_good(self, error: RuleError) -> None:
        logger.error("cors: %s; keeping the %s active", error, self.rules.summary())

    async def _watch(self) -> None:
        """Reload changed files, compiling them a slice at a time so traffic keeps flowing."""
        while True:
            await asyncio.sleep(RELOAD_INTERVAL)
            source = _source(ctx.options.cors_rules)
            if source == self._attempted:
                continue
            self._attempted = source
            try:
                rules = await _load_between_flows(source[0])
            except RuleError as e:
                if self._attempted is source:  # else a newer load has said how it went
                    self._keep_last_good(e)
                continue
            except Exception:  # a bug must not end hot reloading for the session
                logger.exception("cors: internal error reloading %s; keeping the %s active", source[0], self.rules.summary())
                continue
            unused = rules
            if self._attempted is source:  # no newer load (cors.reload, a :set) meanwhile
                unused = self.rules
                self._activate(rules, source)
            del rules
            for _ in unused.releasing():  # the rules no longer active, freed between flows
                await asyncio.sleep(0)

    @flow_hook
    def request(self, flow: http.HTTPFlow) -> None:
        """Answer a preflight at the proxy when the matching rule says so.

        A rule whose filter needs the response cannot decide yet: when it stands
        before the match, the preflight goes to the backend and is rewritten later.
        """
        if flow.request.data.method.upper() != b"OPTIONS" or flow.response or flow.error or not flow.live:
            return  # (the method as sent: spared decoding on every flow)
        target = _target(flow, request_view(flow).cors)
        if not target.cors.preflight:
            return
        if self._faults_preflights and logger.isEnabledFor(logging.INFO):
            self._preflights.remember(_preflight_key(flow, target.cors), None)
        rule = self.rules.first_match(target, response_known=False)
        answer = rule and self._answer(rule, flow, target.cors)
        if not answer or answer.unsafe and _writes_unsafe(rule, flow, answer.unsafe, (), answer.response.data.headers.fields):
            return
        outcome = answer.outcome
        flow.metadata[ANSWERED] = True
        flow.response = _copied(answer.response)
        self._changed(flow, rule)
        if logger.isEnabledFor(logging.INFO):
            what = f"{outcome.what} with {flow.response.status_code}"
            self._log_change(rule, flow, target.cors, outcome, what, (), flow.response.headers.fields)

    def _answer(self, rule: Rule, flow: http.HTTPFlow, seen: cors.CorsRequest) -> Answer | None:
        """The rule's own answer to the preflight, if it gives one: worked out once per
        rule and preflight (a break scenario's also per URL: it may redirect to it)."""
        url = _url_for(rule, flow)
        key = (rule.order, seen, url)
        known = self._answers.get(key, _UNKNOWN)
        if known is _UNKNOWN:
            outcome = preflight_answer(rule.action, seen, url)
            answer = outcome and Answer(
                outcome, _answered(outcome.status or 204, tuple(byte_fields(outcome.fields))), actions.unsafe_lines(outcome.fields),
            )
            known = self._answers.put(key, answer)
        return known

    @flow_hook
    def responseheaders(self, flow: http.HTTPFlow) -> None:
        """Rewrite the backend's response headers, and its status, by the first matching rule."""
        if flow.error or not flow.live or not flow.response or ANSWERED in flow.metadata or not self.rules.rules:
            return
        if not carries_origin(flow) and not self.rules.acts_without_origin(flow.request.host):
            return  # spared reading the request: most of what a browser sends carries no Origin
        view = request_view(flow)
        seen = view.cors
        response = flow.response
        headers = response.data.headers  # (not the property: this runs on every flow)
        raw = headers.fields
        decision = self._decision(flow, view, raw, response)
        if decision is None:
            return
        rule, plan = decision.rule, decision.plan
        fields, outcome = plan.fields(raw), plan.outcome
        if outcome.status is None and _unchanged(raw, fields) or plan.unsafe and _writes_unsafe(rule, flow, plan.unsafe, raw, fields):
            return
        what = outcome.what
        headers.fields = fields  # in place: no new Headers to build
        note_written(flow, fields, (view, plan.shape, decision.verdict))
        if outcome.status is not None:
            what += f" ({response.status_code} -> {outcome.status})"
            _give_status(response, outcome.status)
        self._changed(flow, rule)
        if logger.isEnabledFor(logging.INFO):
            self._log_change(rule, flow, seen, outcome, what, raw, fields)

    def _decision(self, flow: http.HTTPFlow, view: RequestView, raw: RawFields, response: http.Response) -> Decision | None:
        """The first matching rule and its plan for this response, remembered by all that
        decides them (the request's view, host and path, the status, the HTTP version, the
        response's shape) unless something else may: a filter on a rule for the host (it
        may read anything of the flow), or a plan that serves this response only."""
        data = flow.request.data
        shape = shapes.shape(raw)
        key = (view, data.host, data.path.partition(b"?")[0], response.data.status_code, response.data.http_version, shape)
        known = self._decisions.get(key, _UNKNOWN)
        if known is not _UNKNOWN:
            return known
        target = _target(flow, view.cors)
        rule = self.rules.first_match(target)
        found = None if rule is None else Decision(rule, self._plan(rule, flow, target.cors, raw, response, shape), [None])
        if shape is None or found is not None and not found.plan.general or not self.rules.decided_by_request(target.host):
            return found
        return self._decisions.put(key, found)

    def _plan(
        self, rule: Rule, flow: http.HTTPFlow, seen: cors.CorsRequest, raw: RawFields, response: http.Response,
        shape: shapes.Shape | None,
    ) -> Plan:
        """The rule's outcome for this response, worked out once per shape of exchange
        (what the action reads of the request, the status and the response's ``shape``)."""
        if isinstance(rule.action, Break):
            shape = None
        lowercase = response.data.http_version in HTTP2_OR_LATER  # they allow only lowercase names
        key = (rule.order, seen, response.status_code, lowercase, shape)
        known = self._plans.get(key) if shape is not None else None
        if known is not None:
            return known
        found = actions.plan(rule.action, seen, _url_for(rule, flow), raw, response.status_code, lowercase)
        return self._plans.put(key, found) if shape is not None and found.general else found

    def _changed(self, flow: http.HTTPFlow, rule: Rule) -> None:
        flow.metadata[CHANGED_BY] = rule.name
        self._fired[rule.name] += 1

    def _log_change(
        self, rule: Rule, flow: http.HTTPFlow, seen: cors.CorsRequest, outcome: Outcome, what: str,
        before: RawFields, after: RawFields,
    ) -> None:
        """One line per changed flow: the rule, what it did, the header difference, and
        why the flow may not show what the rule intends. Called only when it will be shown."""
        caveat = self._caveat(flow, seen, outcome, rule, what)
        changes = _changes(decoded(before), decoded(after))
        request = flow.request
        origin = request.headers.get("origin", "no origin")
        logger.info(
            "cors: rule %r %s for %s %s (origin %s): %s%s",
            rule.name, what, printable(request.method), printable(fetched_url(flow)), printable(origin),
            printable("; ".join(changes) or "headers unchanged"), f" [may not show: {printable(caveat)}]" if caveat else "",
        )

    def _caveat(self, flow: http.HTTPFlow, seen: cors.CorsRequest, outcome: Outcome, rule: Rule, what: str) -> str | None:
        """Why the flow may not show the rule's fault; a preflight's fate is remembered for
        the request that follows it."""
        key = _preflight_key(flow, seen)
        if seen.preflight:
            self._preflights.remember(key, outcome.caveat or f"rule {rule.name!r} {what}")
            return outcome.caveat
        if outcome.faults_preflight is None:
            return outcome.caveat
        needs = verdicts.needs_preflight(flow.request.method, text_fields(flow.request.headers))
        return self._preflights.why_unfaulted(outcome.faults_preflight, key, needs)


BODY_HEADERS = (
    "transfer-encoding", "content-encoding", "content-length", "content-type", "content-language",
    "content-range", "content-disposition", "content-location", "content-md5", "digest", "etag", "last-modified",
)
"""What describes a body (its framing, type, version): dropped with the body a new status replaces."""


SLICE = 0.002  # seconds a reload holds the event loop at a time, and then leaves it to traffic


async def _load_between_flows(paths: Sequence[str]) -> RuleSet:
    """``load_files`` on the event loop, SLICE at a time, traffic in between, its rules
    then kept out of the cycle collector's walks (``_frozen_after``).

    A thread did not spare the loop: it must hold the GIL to compile, and Python lets
    it keep the GIL for 5 ms each time the loop wakes up to a ready socket, several
    times a response, or for as long as the system leaves the thread waiting for a core
    while it holds it: a reload of 10,000 rules stalled a steady client by 40 to 180 ms.
    Here the loop never waits more than a slice and the step that ends it (at most 5 ms
    at 10,000 rules), and the reload takes twice its CPU time.
    """
    with _frozen_after():
        steps = loading(paths)
        try:
            while True:
                until = time.perf_counter() + SLICE
                try:
                    while time.perf_counter() < until:
                        next(steps)
                except StopIteration as done:
                    return done.value
                await asyncio.sleep(SLICE)  # not 0: a response takes a dozen turns of the loop
        finally:
            steps.close()  # a load cancelled midway: let it restore the collector's threshold


def _load_out_of_collection(paths: Sequence[str]) -> RuleSet:
    """``load_files`` at once (start-up, a :set, cors.reload), its rules then kept out of
    the cycle collector's walks (``_frozen_after``)."""
    with _frozen_after():
        return load_files(paths)


THAW_GROWTH = 2
"""How many times the frozen objects may grow before a load thaws them all (see _frozen_after)."""
_frozen_after_thaw = 0  # gc.get_freeze_count() after the first freeze, and after each thaw's


@contextlib.contextmanager
def _frozen_after() -> Iterator[None]:
    """A load whose rules the cycle collector then never walks.

    A rule set is four objects a rule that live until the next reload and form no
    reference cycles, yet the collector walks them all in every full collection: one
    came soon after each load, 60 to 80 ms on the event loop at 10,000 rules.
    ``gc.freeze()`` moves every object alive to a generation it never walks; reference
    counting still frees them. So garbage is collected first (a cheap walk once the
    first load froze mitmproxy's own objects, at start-up), and after the load the young
    generations, where what traffic threw away meanwhile is (the rules moved on as they
    loaded). What was alive at a freeze and dies later in a reference cycle (a
    connection's layers, flows a UI let go) escapes the collector while frozen: once the
    frozen objects have grown THAW_GROWTH times, a load thaws them, and its first
    collection walks everything once (a stall like the one avoided, that one time).
    """
    global _frozen_after_thaw
    thaw = _frozen_after_thaw > 0 and gc.get_freeze_count() > THAW_GROWTH * _frozen_after_thaw
    if thaw:
        gc.unfreeze()
    gc.collect()
    yield
    gc.collect(1)
    gc.freeze()
    if thaw or not _frozen_after_thaw:
        _frozen_after_thaw = gc.get_freeze_count()


def _answered(status: int, fields: RawFields) -> http.Response:
    """The proxy's own empty response; built directly, since ``Response.make`` would
    convert and check each header line again and set a body. Built once per answer:
    each preflight gets a copy (``_copied``)."""
    now = time.time()
    if status != 204:  # a 204 has no body to measure
        fields = (*fields, (b"content-length", b"0"))
    reason = status_codes.RESPONSES.get(status, "").encode()
    return http.Response(b"HTTP/1.1", status, reason, http.Headers(fields), b"", None, now, now)


def _copied(answer: http.Response) -> http.Response:
    """A fresh copy of an answer's response, stamped now. Copied, not built: building
    one has mitmproxy check the type of every field (20 µs, most of what answering a
    preflight cost), which the answer's own went through once."""
    data = copy.copy(answer.data)
    data.headers = http.Headers(answer.data.headers.fields)  # its own: a later hook may edit them
    data.timestamp_start = data.timestamp_end = time.time()
    response = copy.copy(answer)
    response.data = data
    return response


def _give_status(response: http.Response, status: int) -> None:
    """Give a response a new status (204, a redirect, an error) with an empty body, the
    status's own reason phrase, and none of the headers that described the old body.

    Done before its headers are sent, since the status line leaves with them: mitmproxy
    streams a body larger than ``stream_large_bodies``, even one it was told to buffer.
    So the response is streamed on purpose, and the backend's body dropped as it comes.
    """
    for name in BODY_HEADERS:
        response.headers.pop(name, None)
    if status != 204:
        response.headers["content-length"] = "0"
    response.status_code = status
    response.reason = status_codes.RESPONSES.get(status, "")
    response.raw_content = b""
    response.stream = _drop


def _drop(chunk: bytes) -> list[bytes]:
    """A ``stream`` that sends nothing on (an empty list: an empty chunk would end a chunked body)."""
    return []


def _source(paths: Sequence[str]) -> Source:
    """The rule files and their modification stamps: a change in either means reload."""
    return tuple(paths), tuple(_stamp(path) for path in paths)


def _stamp(path: str) -> tuple[int, int, int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size, status.st_ino


def _url_for(rule: Rule, flow: http.HTTPFlow) -> str:
    """The URL the browser fetched, for the one action that names it (a break scenario
    may redirect to it); the others are spared working it out."""
    return fetched_url(flow) if isinstance(rule.action, Break) else ""


_new_target = maker(Target)


def _target(flow: http.HTTPFlow, seen: cors.CorsRequest) -> Target:
    """What the rules match on."""
    data = flow.request.data  # (not the properties: this runs on every flow a rule may concern)
    return _new_target((data.host, as_text(data.path.partition(b"?")[0]), seen, flow))


def _changes(before: cors.Fields, after: cors.Fields) -> list[str]:
    """The header lines removed and added, compared as HTTP does: names ignore case
    (HTTP/2 lowercases them) and a repeated line counts. Empty when nothing changed."""
    old = collections.Counter((name.lower(), value) for name, value in before)
    new = collections.Counter((name.lower(), value) for name, value in after)
    removed = [f"-{_shown(name)}: {value}" for name, value in (old - new).elements()]
    return removed + [f"+{_shown(name)}: {value}" for name, value in (new - old).elements()]


def _unchanged(before: RawFields, after: RawFields) -> bool:
    """Whether a rewrite changes nothing HTTP tells apart: the same lines, maybe in
    another order or with names in another case."""
    if after == before:
        return True
    return len(after) == len(before) and _counted(before) == _counted(after)


def _counted(fields: RawFields) -> collections.Counter[tuple[bytes, bytes]]:
    return collections.Counter((name.lower(), value) for name, value in fields)


def _writes_unsafe(
    rule: Rule, flow: http.HTTPFlow, unsafe: Sequence[actions.UnsafeLine], before: RawFields, after: RawFields,
) -> bool:
    """Whether the rule would write a header line with a control character (CR, LF, NUL, ...)
    more times than the response had it (most often: at all), as when it echoes a hostile
    Origin or preflight header: then the flow is left as it came."""
    for name, value, bad in unsafe:
        if after.count((name, value)) > before.count((name, value)):
            request = flow.request
            logger.warning(
                "cors: rule %r left %s %s (origin %s) as it came: it would write %s into %s",
                rule.name, printable(request.method), printable(fetched_url(flow)),
                printable(request.headers.get("origin", "no origin")), printable(bad),
                _shown(as_text(name)),
            )
            return True
    return False


def _preflight_key(flow: http.HTTPFlow, seen: cors.CorsRequest) -> PreflightKey:
    """The preflight a request goes with: same origin, URL and (asked-for) method."""
    return seen.origin or "", fetched_url(flow), seen.method


def _shown(name: str) -> str:
    """'access-control-allow-origin' -> 'Access-Control-Allow-Origin', for the log."""
    return "-".join(part.capitalize() for part in name.split("-"))
