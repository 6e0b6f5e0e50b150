"""What a probe submits to a fleet's collector, version 1: a round's compact summary, or one
confirmed transition. `parse` checks a body against it and names the first field that is
wrong (the collector answers 400 with that), so nothing half-understood is stored.

A round: {"schema": 1, "kind": "round", "id": <uuid>, "probe": <name>, "round": {"id",
"started", "finished", "status", "interval", "resolvers": {name: {"role", "up"}}, "domains":
[[domain, national verdict or null, {resolver: verdict}], ...]}}. A transition: {"schema": 1,
"kind": "transition", "id": <the event's uuid>, "probe": <name>, "event": <the event JSON>}.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import orjson

from nsdi_tracker.core.clock import parse_iso
from nsdi_tracker.core.model import EventType, ResolverState, Role, RoundStatus, Verdict

SCHEMA: Final = 1
_VERDICTS: Final = frozenset(Verdict)
_SCOPE_VERDICTS: Final = frozenset({*Verdict, *ResolverState})
_STATUSES: Final = frozenset(RoundStatus)
_ROLES: Final = frozenset(Role)
_TYPES: Final = frozenset(EventType)

DomainRow = tuple[str, str | None, dict[str, str]]


class Invalid(ValueError):
    """The body is not a version-1 submission; the message names the field."""


@dataclass(frozen=True, slots=True)
class RoundSummary:
    id: str
    probe: str
    round_id: int
    started: datetime
    finished: datetime
    status: str
    interval: float | None
    resolvers: dict[str, dict[str, Any]]
    domains: list[DomainRow]


@dataclass(frozen=True, slots=True)
class Transition:
    id: str
    probe: str
    domain: str | None
    scope: str
    type: str
    from_verdict: str | None
    to_verdict: str
    confirmed_at: datetime
    event: dict[str, Any]


def parse(body: bytes) -> RoundSummary | Transition:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Invalid(f"body: not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise Invalid("body: must be a JSON object")
    if doc.get("schema") != SCHEMA:
        raise Invalid(
            f"schema: {doc.get('schema')!r} is not a version this collector takes ({SCHEMA})"
        )
    ident = _uuid(doc.get("id"), "id")
    probe = _text(doc.get("probe"), "probe")
    kind = doc.get("kind")
    if kind == "round":
        return _round(ident, probe, _object(doc.get("round"), "round"))
    if kind == "transition":
        return _transition(ident, probe, _object(doc.get("event"), "event"))
    raise Invalid(f"kind: {kind!r} is not 'round' or 'transition'")


def _round(ident: str, probe: str, r: Mapping[str, Any]) -> RoundSummary:
    round_id = r.get("id")
    if not isinstance(round_id, int) or isinstance(round_id, bool) or round_id < 1:
        raise Invalid("round.id: must be a whole number from 1")
    status = r.get("status")
    if status not in _STATUSES:
        raise Invalid(f"round.status: {status!r} is not one of {', '.join(sorted(_STATUSES))}")
    interval = r.get("interval")
    if interval is not None and (not isinstance(interval, int | float) or interval <= 0):
        raise Invalid("round.interval: must be a positive number of seconds or null")
    resolvers = _object(r.get("resolvers"), "round.resolvers")
    for name, health in resolvers.items():
        where = f"round.resolvers.{name}"
        _object(health, where)
        if health.get("role") not in _ROLES:
            raise Invalid(f"{where}.role: {health.get('role')!r} is not a role")
        if not isinstance(health.get("up"), bool):
            raise Invalid(f"{where}.up: must be true or false")
    return RoundSummary(
        ident, probe, round_id, _when(r.get("started"), "round.started"),
        _when(r.get("finished"), "round.finished"), str(status),
        None if interval is None else float(interval), dict(resolvers),
        _domains(r.get("domains"), resolvers),
    )  # fmt: skip


def _domains(rows: object, resolvers: Mapping[str, Any]) -> list[DomainRow]:
    if not isinstance(rows, list):
        raise Invalid("round.domains: must be an array of [domain, verdict, {resolver: verdict}]")
    out: list[DomainRow] = []
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != 3:
            raise Invalid(f"round.domains[{i}]: must be [domain, verdict, {{resolver: verdict}}]")
        domain, national, scopes = row
        if not isinstance(domain, str) or not 0 < len(domain) <= 253:
            raise Invalid(f"round.domains[{i}][0]: must be a domain name")
        if national is not None and national not in _VERDICTS:
            raise Invalid(f"round.domains[{i}][1]: {national!r} is not a verdict")
        if not isinstance(scopes, dict):
            raise Invalid(f"round.domains[{i}][2]: must be an object of resolver verdicts")
        for name, verdict in scopes.items():
            if name not in resolvers or verdict not in _VERDICTS:
                raise Invalid(f"round.domains[{i}][2].{name}: {verdict!r} on an unknown "
                              "resolver, or not a verdict")  # fmt: skip
        out.append((domain, national, scopes))
    return out


def _transition(ident: str, probe: str, e: Mapping[str, Any]) -> Transition:
    if e.get("id") != ident:
        raise Invalid("event.id: must equal the submission's id")
    kind = e.get("type")
    if kind not in _TYPES:
        raise Invalid(f"event.type: {kind!r} is not an event type")
    domain = e.get("domain")
    if domain is not None and not isinstance(domain, str):
        raise Invalid("event.domain: must be a name or null")
    to = e.get("to")
    if to not in _SCOPE_VERDICTS:
        raise Invalid(f"event.to: {to!r} is not a verdict")
    before = e.get("from")
    if before is not None and before not in _SCOPE_VERDICTS:
        raise Invalid(f"event.from: {before!r} is not a verdict")
    return Transition(
        ident, probe, domain, _text(e.get("scope"), "event.scope"), str(kind),
        before, str(to), _when(e.get("confirmed_at"), "event.confirmed_at"), dict(e),
    )  # fmt: skip


def round_body(probe: str, ident: str, summary: Mapping[str, Any]) -> bytes:
    return orjson.dumps(
        {"schema": SCHEMA, "kind": "round", "id": ident, "probe": probe, "round": summary}
    )


def transition_body(probe: str, event: Mapping[str, Any]) -> bytes:
    return orjson.dumps(
        {"schema": SCHEMA, "kind": "transition", "id": event["id"], "probe": probe,
         "event": event}
    )  # fmt: skip


def _object(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(f"{where}: must be an object")
    return value


def _text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 253:
        raise Invalid(f"{where}: must be a non-empty string")
    return value


def _uuid(value: object, where: str) -> str:
    try:
        return str(uuid.UUID(str(value))) if isinstance(value, str) else _bad(where)
    except ValueError:
        return _bad(where)


def _bad(where: str) -> str:
    raise Invalid(f"{where}: must be a UUID")


def _when(value: object, where: str) -> datetime:
    if not isinstance(value, str):
        raise Invalid(f"{where}: must be an ISO 8601 time")
    try:
        return parse_iso(value)  # without a zone: UTC, as everywhere in the tracker
    except ValueError:
        raise Invalid(f"{where}: {value!r} is not an ISO 8601 time") from None
