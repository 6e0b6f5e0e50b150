"""Change events: evidence of a transition and the event JSON sinks receive. Pure, no I/O.

The event JSON is a public format (documented in the README) with a `version` field; its `id`
is derived from what it reports, so a redelivery, a replay or a restart gives the same id.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, overload

from nsdi_tracker.core.clock import iso
from nsdi_tracker.core.evidence import evidence
from nsdi_tracker.core.model import (
    EVENT_VERSION,
    NATIONAL,
    EventType,
    Flags,
    Observation,
    Role,
    new_record,
)
from nsdi_tracker.judge.confirm import Change
from nsdi_tracker.judge.fleet import SCOPE as FLEET
from nsdi_tracker.store.records import Summary

if TYPE_CHECKING:
    from nsdi_tracker.dns.probe import Counters
    from nsdi_tracker.judge.classify import Health
    from nsdi_tracker.rounds.measure import RoundInfo
    from nsdi_tracker.rounds.stream import DomainResult

_NAMESPACE_BYTES: Final = uuid.UUID("6f6e7364-692d-7472-6163-6b6572000001").bytes


def health_json(
    health: Health, counters: Counters, latency: Sequence[int] | None = None
) -> dict[str, Any]:
    """A resolver's showing in one round: controls, what it was sent and answered, and a
    latency histogram over LATENCY_EDGES_MS (when the caller has one)."""
    extra = {} if latency is None else {"latency_hist": list(latency)}
    return {
        "up": health.up,
        "controls_ok": health.controls_ok,
        "controls_total": health.controls_total,
        "controls_passed": health.controls_passed,
        "rewrites_nxdomain": health.rewrites_nxdomain,
        "queries": counters.queries,
        "ignored_replies": counters.ignored,
        "outcomes": {str(k): v for k, v in counters.by_outcome.items()},
        **extra,
    }


def scope_resolvers(result: DomainResult, scope: str, roles: Mapping[str, Role]) -> list[str]:
    if scope == NATIONAL:
        return [n for n in result.judgements if roles[n] is Role.NATIONAL]
    return [scope]


@overload
def scope_evidence(
    result: DomainResult, scope: str, roles: Mapping[str, Role]
) -> tuple[Summary, dict[str, Any]]: ...


@overload
def scope_evidence(
    result: DomainResult, scope: str, roles: Mapping[str, Role], *, full: bool
) -> tuple[Summary, dict[str, Any] | None]: ...


def scope_evidence(
    result: DomainResult, scope: str, roles: Mapping[str, Role], *, full: bool = True
) -> tuple[Summary, dict[str, Any] | None]:
    """The evidence for a verdict of `scope` on this round: summary columns and (unless not
    `full`) the full JSON."""
    names = scope_resolvers(result, scope, roles)
    observations = [o for n in names for o in result.observations[n]]
    # The headline's columns speak for the resolvers that made it, not one that was down.
    counted = [n for n in names if n not in result.down] or names
    reasons = [result.judgements[n].reason for n in counted]
    labels = sorted({str(j.nx_label) for n in names if (j := result.judgements[n]).nx_label})
    ref = result.reference
    # new_record: Summary's fields in their order (a first round makes one a scope a name)
    summary: Summary = new_record(
        Summary,
        (
            reasons[0] if len(reasons) == 1 else "; ".join(dict.fromkeys(reasons)),
            "/".join(sorted({o.rcode or str(o.outcome).upper() for o in observations})),
            "/".join(labels),
            _flags(observations),
            tuple(sorted({a for o in observations for a in o.addresses})),
            _authority(observations),
            str(ref.consensus),
            tuple(sorted(ref.addresses)),
        ),
    )
    if not full:
        return summary, None
    whole = {
        "resolvers": {
            n: {
                "verdict": str(result.judgements[n].verdict),
                "reason": result.judgements[n].reason,
                "nxdomain": _label(result.judgements[n].nx_label),
                **{o.qtype: evidence(o) for o in result.observations[n]},
            }
            for n in names
        },
        "reference": {
            "consensus": str(ref.consensus),
            "addresses": sorted(ref.addresses),
            "answered": list(ref.answered),
            "ignored": list(ref.ignored),
        },
    }
    return summary, whole


def health_evidence(info: RoundInfo, scope: str) -> tuple[Summary, dict[str, Any]]:
    """The evidence for a resolver's health (or, for `national`, every national resolver's)
    in this round: summary columns and each resolver's controls."""
    roles = {r.name: r.role for r in info.resolvers}
    if scope == NATIONAL:
        names = [n for n in info.health if roles[n] is Role.NATIONAL]
        down = [info.health[n] for n in names if not info.health[n].up]
        if len(down) == len(names):
            reason = "every national resolver is down: " + "; ".join(
                f"{h.name} {h.problem}" for h in down
            )
        else:
            reason = "up: " + ", ".join(n for n in names if info.health[n].up)
    else:
        names = [scope]
        h = info.health[scope]
        reason = h.problem or f"passes its controls ({h.controls_ok}/{h.controls_total})"
    observations = [o for n in names for o in (*info.controls[n], *info.negative[n])]
    # What the positive controls got (the negative control's NXDOMAIN is as it should be).
    asked = [o for n in names for o in info.controls[n]] or observations
    summary = Summary(
        reason=reason,
        rcode="/".join(sorted({o.rcode or str(o.outcome).upper() for o in asked})),
        nxdomain="",
        flags=_flags(observations),
        addresses=(),
        authority=_authority(observations),
        reference_consensus="",
        reference_addresses=(),
    )
    whole = {
        "resolvers": {
            n: {
                "state": "up" if info.health[n].up else "down",
                "reason": info.health[n].problem or None,
                **health_json(info.health[n], info.counters[n]),
                "controls": {o.qname: evidence(o) for o in info.controls[n]},
                "negative_control": {o.qname: evidence(o) for o in info.negative[n]},
            }
            for n in names
        }
    }
    return summary, whole


# Flags' fields with their places, in the order a summary lists them (by name)
_FLAG_PLACES: Final[tuple[tuple[str, int], ...]] = tuple(
    sorted((name, i) for i, name in enumerate(Flags._fields))
)


def _flags(observations: Sequence[Observation]) -> tuple[str, ...]:
    """The flags any of the replies had, sorted by name."""
    return tuple(n for n, i in _FLAG_PLACES if any(o.flags[i] for o in observations))


def _label(label: object) -> str | None:
    return str(label) if label else None


def _authority(observations: Iterable[Observation]) -> str:
    parts: dict[str, None] = {}
    for o in observations:
        if o.authority.soa:
            parts[f"SOA {o.authority.soa_zone or '?'}"] = None
        if o.authority.nsec:
            parts["NSEC"] = None
    return " ".join(parts) or "none"


RESOLVER_LEVEL: Final = "*"  # the domain of a resolver's own transitions, where one is written


def event_id(domain: str | None, scope: str, change: Change[Any]) -> str:
    """Stable: the same confirmed change always gets the same id. A resolver's own
    transitions (no domain) are keyed as domain `*`."""
    key = f"{domain or RESOLVER_LEVEL}|{scope}|{change.old}|{change.new}|{iso(change.first_seen)}"
    return uuid5_text(_NAMESPACE_BYTES, key)


def uuid5_text(namespace: bytes, name: str) -> str:
    """str(uuid.uuid5(UUID(bytes=namespace), name)), spelt out: a first round names a
    baseline per scope of every name, and the uuid module's objects cost several times more."""
    x = hashlib.sha1(namespace + name.encode()).hexdigest()
    # the 13th hex digit is the version (5), the 17th's two top bits the RFC 4122 variant
    return f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT[x[16]]}{x[17:20]}-{x[20:32]}"


_VARIANT: Final = {f"{n:x}": f"{8 | (n & 3):x}" for n in range(16)}


def event_json(
    *,
    event_id: str,
    change: Change[Any],
    domain: str | None,
    label: str | None,
    category: str | None,
    scope: str,
    summary: Summary,
    evidence: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The event as sinks receive it (version 1). A baseline's evidence is null; a resolver's
    own transition has no domain (null) and the resolver, or `national`, as its scope."""
    return {
        "version": EVENT_VERSION,
        "id": event_id,
        "type": str(change.type),
        "first_verdict": change.first,
        "domain": domain,
        "label": label,
        "category": category,
        "scope": scope,
        "from": str(change.old) if change.old else None,
        "to": str(change.new),
        "first_seen": iso(change.first_seen),
        "confirmed_at": iso(change.confirmed_at),
        "rounds": change.rounds,
        "summary": {
            "reason": summary.reason,
            "rcode": summary.rcode,
            "nxdomain": summary.nxdomain or None,
            "flags": list(summary.flags),
            "addresses": list(summary.addresses),
            "authority": summary.authority,
            "reference_consensus": summary.reference_consensus,
            "reference_addresses": list(summary.reference_addresses),
        },
        "evidence": None if evidence is None else dict(evidence),
    }


# A notification's title for each kind of domain event; a resolver's own events are titled in
# headline_text. Every EventType is in one of the two (the architecture test checks).
DOMAIN_TITLES: Mapping[EventType, str] = {
    EventType.REMOVED: "{name} removed from {who}",
    EventType.RESTORED: "{name} restored in {who}",
    EventType.TAMPERED: "{name} tampered with by {who}",
    EventType.UNREACHABLE: "{who} unreachable for {name}",
    EventType.RECOVERED: "{who} answers again for {name}",
    EventType.BASELINE: "{name}: first verdict on {who} is {new}",
    EventType.CHANGED: "{name} on {who}: {old} -> {new}",
    EventType.FILTERED: "{name} filtered by {who}",
}
RESOLVER_EVENTS: Final = (EventType.RESOLVER_DOWN, EventType.RESOLVER_UP)


def headline_text(event: Mapping[str, Any]) -> tuple[str, str]:
    """A title and a body for people (notifications)."""
    if event["scope"] == FLEET:
        return _fleet_text(event)
    national = event["scope"] == NATIONAL
    who = "the national DNS" if national else event["scope"]
    if event["domain"] is None:  # a resolver's own health
        title = {
            (EventType.RESOLVER_DOWN, True): "every national resolver is down",
            (EventType.RESOLVER_DOWN, False): f"{who} is down",
            (EventType.RESOLVER_UP, True): "the national resolvers answer again",
            (EventType.RESOLVER_UP, False): f"{who} is up again",
        }.get((event["type"], national), f"{who}: {event['to']}")
        s = event["summary"]
        held = "the verdicts on it are held until it is back\n" if event["to"] == "down" else ""
        body = (
            f"{event['from'] or 'none'} -> {event['to']} (first seen {event['first_seen']}, "
            f"confirmed {event['confirmed_at']} after {event['rounds']} rounds)\n"
            f"controls: {s['rcode']}\n{s['reason']}\n{held}event {event['id']}"
        )
        return title, body
    name = event["domain"] + (f" ({event['label']})" if event.get("label") else "")
    if event.get("first_verdict") and event["type"] != EventType.BASELINE:
        title = f"{name}: already {event['to']} on {who} when first checked"
    else:
        title = DOMAIN_TITLES[EventType(event["type"])].format(
            name=name, who=who, old=event["from"], new=event["to"]
        )
    s = event["summary"]
    body = (
        f"{event['from'] or 'none'} -> {event['to']} (first seen {event['first_seen']}, "
        f"confirmed {event['confirmed_at']} after {event['rounds']} rounds)\n"
        f"reply: {s['rcode']} {' '.join(s['addresses'])} {s['nxdomain'] or ''}\n"
        f"references: {s['reference_consensus']} {' '.join(s['reference_addresses'])}\n"
        f"{s['reason']}\nevent {event['id']}"
    )
    return title, body


def _fleet_text(event: Mapping[str, Any]) -> tuple[str, str]:
    """A fleet event's title and body: which probes and networks see what."""
    name, probes = event["domain"], event["probes"] or {"blocked": [], "resolving": [], "stale": []}
    nets = ", ".join(event["networks"])
    title = {
        EventType.REMOVED: f"{name} removed from the national DNS, seen in {nets}",
        EventType.FILTERED: f"{name} filtered by ISPs in {nets}, resolving elsewhere",
        EventType.RESTORED: f"{name} resolves again across the fleet",
        EventType.BASELINE: f"{name}: first fleet verdict is {event['to']}",
    }.get(EventType(event["type"]), f"{name} at fleet level: {event['from']} -> {event['to']}")
    body = (
        f"{event['from'] or 'none'} -> {event['to']} (first seen {event['first_seen']}, "
        f"confirmed {event['confirmed_at']} after {event['rounds']} evaluations)\n"
        f"blocked at: {', '.join(probes['blocked']) or 'none'}\n"
        f"resolving at: {', '.join(probes['resolving']) or 'none'}\n"
        + (f"stale (not counted): {', '.join(probes['stale'])}\n" if probes["stale"] else "")
        + f"{event['summary']['reason']}\nevent {event['id']}"
    )
    return title, body
