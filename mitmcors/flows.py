"""What both addons need of mitmproxy's flows: reading a request as CORS sees it,
header fields as text, a guard for hooks, and the clean way to refuse an option.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

from mitmproxy import ctx, exceptions, http
from mitmproxy.net.http import url
from mitmproxy.proxy import mode_specs

from mitmcors import cors, shapes, verdicts
from mitmcors.oneline import one_line
from mitmcors.shapes import RawFields, Shape, as_bytes, as_text

logger = logging.getLogger(__name__)

# flow.metadata key: the rule that changed a flow (the verdicts name it).
CHANGED_BY = "cors_rule"

Addon = TypeVar("Addon")
Built = TypeVar("Built", bound=tuple)


def refuse(running: bool, message: str) -> None:
    """Refuse a bad option value in the one clean way each phase allows.

    At run time an OptionsError makes mitmproxy refuse the change (``:set`` in the
    console) and roll the option back. At startup an OptionsError raised from a script
    would be printed with a traceback; an error logged instead makes mitmproxy refuse
    to start, showing just this line.
    """
    if running:
        raise exceptions.OptionsError(message)
    logger.error("%s", message)


def log_only_what_is_shown() -> None:
    """Let the package's log lines cost nothing when nobody will see them.

    mitmproxy hands every log record to each addon (and formats it) whatever the
    verbosity, so the package's logger is set to the lowest level shown: everything in
    mitmweb and the console UI (their event log), the terminal's level in mitmdump
    (``-q`` shows errors only), everything when neither is known.
    """
    options = ctx.options
    if ctx.master.addons.get("eventstore") is not None or "termlog_verbosity" not in options:
        level = logging.DEBUG
    else:
        level = logging.getLevelName(options.termlog_verbosity.upper())
    logging.getLogger(__package__).setLevel(level if isinstance(level, int) else logging.DEBUG)


def flows_are_kept() -> bool:
    """Whether a flow's mark and comment can reach anyone: mitmweb and the console UI
    show them, and a saved capture (``-w``) keeps them; plain mitmdump drops them. When
    mitmproxy's own addons cannot be seen (a test harness), assume they are kept."""
    options = ctx.options
    if "termlog_verbosity" not in options:
        return True
    return ctx.master.addons.get("view") is not None or bool(getattr(options, "save_stream_file", None))


def flow_hook(hook: Callable[[Addon, http.HTTPFlow], None]) -> Callable[[Addon, http.HTTPFlow], None]:
    """Never let one odd flow take the proxy down: log the fault, leave the flow as it came.

    Hooks compute everything first and assign to the flow last, so a fault midway
    leaves nothing half-changed.
    """

    @functools.wraps(hook)
    def guarded(self: Addon, flow: http.HTTPFlow) -> None:
        try:
            hook(self, flow)
        except Exception:
            logger.error(
                "cors: internal error in %s for %s %s; the flow is left as it came",
                hook.__name__, printable(flow.request.method), printable(flow.request.pretty_url), exc_info=True,
            )

    return guarded


def maker(named: type[Built]) -> Callable[[tuple[Any, ...]], Built]:
    """``named``'s constructor from the tuple of its fields, all in C: a NamedTuple's own
    ``__new__`` is Python code, a share of a flow that builds three of them. Unchecked:
    the tuple must hold every field, in order (the tests build each of the three)."""
    return functools.partial(tuple.__new__, named)


class RequestView(NamedTuple):
    """A request as both halves read it, once per flow: its CORS side and, when it
    carries an Origin, the origin of the URL the browser fetched (``url_origin``), and
    whether the browser runs the CORS check on its response."""

    cors: cors.CorsRequest
    url_origin: str | None
    checked: bool


_new_view = maker(RequestView)
_new_cors_request = maker(cors.CorsRequest)

# What a hook learns of a flow for the hooks after it, kept on the flow object itself:
# not in ``flow.metadata``, which mitmproxy saves and shows, nor in a weak dictionary,
# which costs more than reading the request. A copy of the flow (a replay) has neither.
VIEW = "_mitmcors_view"  # the request's view, and the request fields it was read from
WRITTEN = "_mitmcors_written"  # the response header lines a rule wrote, and what for (a Written)


def request_view(flow: http.HTTPFlow) -> RequestView:
    """The flow's request as CORS sees it, read once for all the hooks of both halves
    (reading it is most of what a flow no rule concerns costs). A request changed since
    (an intercepted flow, edited) is read again. Requests alike in all that reading
    reads (a page's fetches send the same header lines again and again) share one reading."""
    data = flow.request.data
    stamp = (data.headers.fields, data.method, data.scheme, data.host, data.port, data.authority)  # what it reads
    known = getattr(flow, VIEW, None)
    if known is None or known[0] != stamp:
        known = (stamp, _read_alike(flow, stamp))
        setattr(flow, VIEW, known)
    return known[1]


_ORIGIN_LENGTH = len(b"origin")


def carries_origin(flow: http.HTTPFlow) -> bool:
    """Whether the request has an Origin line: what a flow without one needs to know of
    its request, found by the names' lengths (reading it, ``request_view``, hashes every
    line). The same answer as ``request_view(flow).cors.origin is not None``."""
    for name, _ in flow.request.data.headers.fields:
        if len(name) == _ORIGIN_LENGTH and name.lower() == b"origin":
            return True
    return False


VIEWS_REMEMBERED = 128
"""Readings of requests kept for the requests alike: each holds its request's header lines."""
_views: shapes.Remembered[tuple[Any, ...], RequestView] = shapes.Remembered(VIEWS_REMEMBERED)


def _read_alike(flow: http.HTTPFlow, stamp: tuple[Any, ...]) -> RequestView:
    """``_read``, or the reading of an earlier request alike in everything it reads: the
    request's ``stamp``, its HTTP version, and what reverse mode reads of the client's
    connection (hashing a request's lines costs less than reading the ones CORS reads)."""
    client = flow.client_conn
    key = (stamp, flow.request.data.http_version, client.proxy_mode.type_name, client.tls_established, client.sockname)
    view = _views.get(key)
    return _views.put(key, _read(flow)) if view is None else view


class Written(NamedTuple):
    """What a rule wrote a response's header lines for: the view of the request, read for
    this response moments ago and not read again, the lines' shape when known, and a slot
    for the verdict on them. The rules hand the same slot to every response they write the
    same lines for, but for the values the shape leaves out."""

    view: RequestView
    shape: Shape | None
    verdict: list[Any]


_new_written = maker(Written)


def note_written(flow: http.HTTPFlow, fields: RawFields, written: tuple[RequestView, Shape | None, list[Any]]) -> None:
    """The response header lines a rule wrote, and what it wrote them for (a ``Written``)."""
    setattr(flow, WRITTEN, (fields, _new_written(written)))


def written_by_rule(flow: http.HTTPFlow, fields: RawFields) -> Written | None:
    """What a rule wrote these header lines for, if they are the very lines it wrote."""
    written = getattr(flow, WRITTEN, None)
    if written is None or written[0] is not fields:
        return None
    return written[1]


def _read(flow: http.HTTPFlow) -> RequestView:
    request = flow.request
    data = request.data
    wanted = _wanted_headers(data.headers.fields)
    seen = _cors_request(data.method.decode("utf-8", "surrogateescape").upper(), wanted)  # request.method
    if seen.origin is None:
        return _new_view((seen, None, False))
    authority = request.authority if data.http_version in HTTP2_OR_LATER else ""  # their Host
    origin = _url_origin(flow, authority or wanted.get(b"host"), seen.origin, wanted.get(b"sec-fetch-site"))
    return _new_view((seen, origin, verdicts.is_cross_origin(seen.origin, origin, seen.mode)))


HTTP2_OR_LATER = frozenset({b"HTTP/2.0", b"HTTP/3"})
"""As mitmproxy spells them: versions with lowercase header names and an :authority for Host."""


def _wanted_headers(fields: RawFields) -> dict[bytes, str]:
    """The request's header lines that CORS reads, in one pass (each lookup in
    mitmproxy's Headers is a pass of its own), as text by lowercase name; a repeated
    one's lines joined with ', ', as mitmproxy reads them."""
    wanted: dict[bytes, str] = {}
    for name, value in fields:
        lowered = name.lower()
        if lowered in _CORS_REQUEST_HEADERS:
            text = value.decode("utf-8", "surrogateescape")
            wanted[lowered] = f"{wanted[lowered]}, {text}" if lowered in wanted else text
    return wanted


def _cors_request(method: str, wanted: dict[bytes, str]) -> cors.CorsRequest:
    origin, requested_method = wanted.get(b"origin"), wanted.get(_REQUEST_METHOD)
    cookie, mode = b"cookie" in wanted, wanted.get(b"sec-fetch-mode")
    if not cors.is_preflight(method, origin, requested_method):
        return _new_cors_request((origin, method, False, (), False, cookie, mode))
    return cors.CorsRequest(
        origin,
        requested_method or method,
        True,
        cors.requested_header_names(wanted.get(_REQUEST_HEADERS)),
        (wanted.get(_REQUEST_PRIVATE_NETWORK) or "").lower() == "true",
        cookie,
        mode,
    )


_REQUEST_METHOD = cors.REQUEST_METHOD.lower().encode()
_REQUEST_HEADERS = cors.REQUEST_HEADERS.lower().encode()
_REQUEST_PRIVATE_NETWORK = cors.REQUEST_PRIVATE_NETWORK.lower().encode()
_CORS_REQUEST_HEADERS = frozenset({
    b"origin", b"cookie", b"sec-fetch-mode", _REQUEST_METHOD, _REQUEST_HEADERS, _REQUEST_PRIVATE_NETWORK,
    b"host", b"sec-fetch-site",  # for the origin of the URL fetched
})


REVERSE = mode_specs.ReverseMode.type_name


def url_origin(flow: http.HTTPFlow) -> str:
    """The origin of the URL the browser fetched, serialised as browsers do (no default port)."""
    request = flow.request
    return _url_origin(flow, request.host_header, request.headers.get("origin"), request.headers.get("sec-fetch-site"))


def _url_origin(flow: http.HTTPFlow, host: str | None, origin: str | None, fetch_site: str | None) -> str:
    """``url_origin``, given the request's Host (HTTP/2's authority), Origin and Sec-Fetch-Site.

    In reverse mode mitmproxy points the request at the backend before any hook runs, but
    the browser fetched the proxy itself: over the client connection's scheme, at the Host
    it sent. That Host survives only with ``keep_host_header``; otherwise the browser's
    own word (Sec-Fetch-Site: same-origin) or the address it connected to stands in for it.
    """
    request = flow.request
    if flow.client_conn.proxy_mode.type_name != REVERSE:  # (an ABC's isinstance costs more than the rest)
        scheme = request.data.scheme.decode("utf-8", "surrogateescape")
        return f"{scheme}://{(host or url.hostport(scheme, request.host, request.port)).lower()}"
    backend = url.hostport(request.scheme, request.host, request.port)
    scheme = "https" if flow.client_conn.tls_established else "http"
    if host is None or host == backend:  # rewritten to the backend's
        if origin and fetch_site == "same-origin":
            return origin
        address, port = flow.client_conn.sockname[:2]
        host = url.hostport(scheme, f"[{address}]" if ":" in address else address, port)
    return f"{scheme}://{host.lower()}"


def fetched_url(flow: http.HTTPFlow, origin: str | None = None) -> str:
    """The URL the browser fetched: in reverse mode the proxy's own, not the backend's.
    ``origin`` is its ``url_origin``, when already known (a cross-origin request's view has it)."""
    return (origin or request_view(flow).url_origin or url_origin(flow)) + flow.request.path


def text_fields(headers: http.Headers) -> cors.Fields:
    """Header bytes as text, losslessly (mitmproxy's own convention), to reason on them."""
    return decoded(headers.fields)


def decoded(fields: RawFields) -> cors.Fields:
    """Header lines as they came, as text, losslessly."""
    return [(as_text(name), as_text(value)) for name, value in fields]


def byte_fields(fields: cors.Fields) -> list[tuple[bytes, bytes]]:
    return [(as_bytes(name), as_bytes(value)) for name, value in fields]


def readable(value: Any) -> Any:
    """Text safe to print, save and parse: bytes that are not UTF-8 become ``\\xNN``.

    Header values are decoded with surrogate escapes, which a terminal, a JSON parser
    or mitmproxy's flow file would each choke on. Lists and dicts are cleaned through.
    """
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if isinstance(value, list):
        return [readable(item) for item in value]
    if isinstance(value, dict):
        return {key: readable(item) for key, item in value.items()}
    return value


def printable(text: str) -> str:
    """Text from the network made safe for one log line or a flow's comment: on top of
    ``readable``, nothing an Origin or a header holds can break the line."""
    return one_line(readable(text))
