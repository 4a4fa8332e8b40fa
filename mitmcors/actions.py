"""What each action does to an exchange: the proxy's answer to a preflight, or the
rewrite of a backend's response.

Pure, like the CORS model: the glue passes plain header lists and status codes, and
applies the outcome to the flow in one step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Union

from mitmcors import cors, shapes
from mitmcors.rules import Action, Allow, Break, Rewrite
from mitmcors.cors import Fields
from mitmcors.scenarios import Answer
from mitmcors.shapes import RawFields, as_bytes, as_text


@dataclass(frozen=True)
class Outcome:
    """The new headers, maybe a new status, and words for the log."""

    what: str
    fields: Fields
    status: int | None = None  # None: keep the response's own
    caveat: str | None = None  # why this flow may not show what the rule intends
    faults_preflight: str | None = None  # the scenario, when its fault belongs to this request's preflight


def preflight_answer(action: Action, request: cors.CorsRequest, url: str) -> Outcome | None:
    """The proxy's own reply to a preflight, for the actions that answer preflights."""
    if isinstance(action, Allow) and action.preflight == "answer":
        return Outcome("answered the preflight", cors.allow_response(action.policy, request, []))
    if isinstance(action, Break):
        return _broken(action, request, url, [], 204)
    return None


def response_rewrite(action: Action, request: cors.CorsRequest, url: str, fields: Fields, status: int) -> Outcome:
    """The backend's response as the action makes it."""
    if isinstance(action, Rewrite):
        return Outcome("rewrote the response", action.apply(fields))
    if isinstance(action, Allow):
        after = cors.allow_response(action.policy, request, fields)
        return Outcome("rewrote the response", after, _ok_status(request, after, status))
    return _broken(action, request, url, fields, status)


def _ok_status(request: cors.CorsRequest, fields: Fields, status: int) -> int | None:
    """A preflight that is granted access must also have an ok (2xx) status."""
    granted = any(name == cors.ALLOW_ORIGIN for name, _ in fields)
    return 204 if request.preflight and granted and not 200 <= status < 300 else None


def _broken(action: Break, request: cors.CorsRequest, url: str, fields: Fields, status: int) -> Outcome:
    """The correct answer for this request, with the scenario's one fault where it belongs."""
    scenario = action.scenario
    if request.origin is None:  # not a CORS request: nothing to break
        return Outcome("left the response", fields)
    correct = cors.allow_response(action.policy, request, fields)
    repaired = _ok_status(request, correct, status)
    if scenario.on_preflight == request.preflight:
        faulted = scenario.inject(Answer(request, url, correct), action.options)
        part = "preflight" if request.preflight else "response"
        return Outcome(f"broke the {part} ({scenario.name})", faulted.fields,
                       faulted.status or repaired, faulted.caveat)
    if request.preflight:
        return Outcome(f"answered the preflight for {scenario.name}", correct, repaired)
    return Outcome("made the response correct", correct, repaired, faults_preflight=scenario.name)


Line = tuple[bytes, bytes]
Piece = Union[slice, tuple[Line, ...]]  # a run of the response's own lines, or new lines


class Plan(NamedTuple):
    """An outcome as the header lines to write, in pieces: runs of the response's own
    lines (slices of it) and new lines. ``general`` when it serves every response of the
    same shape; then ``shape`` is the shape of what it writes."""

    outcome: Outcome
    pieces: tuple[Piece, ...]
    unsafe: tuple[UnsafeLine, ...]  # the new lines with a control character
    general: bool
    shape: shapes.Shape | None

    def fields(self, raw: RawFields) -> RawFields:
        """The header lines to write in place of ``raw``, a response of the planned shape."""
        lines: RawFields = ()
        for piece in self.pieces:
            lines += raw[piece] if piece.__class__ is slice else piece  # type: ignore[operator]
        return lines


def plan(action: Action, request: cors.CorsRequest, url: str, raw: RawFields, status: int, lowercase: bool) -> Plan:
    """``response_rewrite`` on raw header lines, as a plan (``lowercase`` the names of the
    new lines, as HTTP/2 and HTTP/3 want them).

    Allow and Rewrite read only the names of the response's lines and the values of
    some (``shapes.value_read``): they are shown every other value as a stand-in, a
    unique placeholder, so that a line kept shows as its stand-in and the plan holds for
    every response of that shape. Should an action ever put a stand-in into a new value or
    under another name (or a kept name be lowercased), or be a Break (which may read
    more), the plan is worked out on the real values and serves this response only.
    """
    if not isinstance(action, Break):
        general = _planned(action, request, url, raw, status, lowercase, stand_ins=True)
        if general.general:
            return general
    return _planned(action, request, url, raw, status, lowercase, stand_ins=False)


def _planned(
    action: Action, request: cors.CorsRequest, url: str, raw: RawFields, status: int, lowercase: bool, stand_ins: bool
) -> Plan:
    before: Fields = []
    standing: dict[int, int] = {}  # stand-in by identity (no value from the network can pass for one): its line
    for index, (name, value) in enumerate(raw):
        if stand_ins and not shapes.value_read(name):
            stand_in = f"{_STAND_IN}{index}"
            standing[id(stand_in)] = index
            before.append((as_text(name), stand_in))
        else:
            before.append((as_text(name), as_text(value)))
    outcome = response_rewrite(action, request, url, before, status)
    written: list[int | Line] = []  # a line of the response's own by its index, or a new one
    new: Fields = []
    for name, value in outcome.fields:
        index = standing.get(id(value))
        if index is not None and value is before[index][1] and name == before[index][0] and not (lowercase and not name.islower()):
            written.append(index)
            continue
        new.append((name.lower() if lowercase else name, value))
        written.append((as_bytes(new[-1][0]), as_bytes(value)))
    general = stand_ins and not any(_STAND_IN in value for _, value in new)
    found = Plan(outcome, _pieces(written), unsafe_lines(new), general, None)
    return found._replace(shape=shapes.shape(found.fields(raw))) if general else found


def _pieces(written: list[int | Line]) -> tuple[Piece, ...]:
    """Lines to write as pieces: consecutive lines of the response's own as one slice,
    consecutive new lines as one tuple."""
    pieces: list[Piece] = []
    for item in written:
        last = pieces[-1] if pieces else None
        if isinstance(item, int):
            if isinstance(last, slice) and last.stop == item:
                pieces[-1] = slice(last.start, item + 1)
            else:
                pieces.append(slice(item, item + 1))
        elif isinstance(last, tuple):
            pieces[-1] = (*last, item)
        else:
            pieces.append((item,))
    return tuple(pieces)


UnsafeLine = tuple[bytes, bytes, str]  # a header line, and the control character in its value


def unsafe_lines(fields: Fields) -> tuple[UnsafeLine, ...]:
    """The lines with a control character in their value (CR, LF, NUL, ...), as bytes."""
    found = []
    for name, value in fields:
        bad = cors.unsafe_value_character(value)
        if bad is not None:
            found.append((as_bytes(name), as_bytes(value), bad))
    return tuple(found)


_STAND_IN = "\x00stand-in:"  # what no value of the response's own gets mistaken for
