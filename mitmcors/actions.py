"""What each action does to an exchange: the proxy's answer to a preflight, or the
rewrite of a backend's response.

Pure, like the CORS model: the glue passes plain header lists and status codes, and
applies the outcome to the flow in one step.
"""

from __future__ import annotations

from dataclasses import dataclass

from mitmcors import cors
from mitmcors.rules import Action, Allow, Break, Rewrite
from mitmcors.cors import Fields
from mitmcors.scenarios import Answer


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
