"""A fleet's evaluation, what the collector does between the probes' rounds: every name's
fleet verdict advanced one step (judge.fleet.fleet_step), and the event of each confirmed
change, naming the probes and networks that made it. Pure, no I/O.

A fleet event is the probes' event format (version 1) with scope `fleet`, no reply summary
of its own, and three more fields: `networks` (where the name is blocked), `probes`
(blocked, resolving, stale) and, as evidence, each probe's latest verdicts on the name.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nsdi_tracker.core.clock import iso
from nsdi_tracker.core.model import EVENT_VERSION
from nsdi_tracker.judge.fleet import (
    SCOPE,
    Counted,
    FleetChange,
    FleetTrack,
    Sighting,
    fleet_step,
    judge,
)

_NAMESPACE = uuid.UUID("6f6e7364-692d-7472-6163-6b6572000002")


@dataclass(frozen=True, slots=True)
class Confirmed:
    domain: str
    change: FleetChange


def advance(
    tracks: Mapping[str, FleetTrack],
    counted: Iterable[Counted],
    at: datetime,
    *,
    min_probes: int,
    min_networks: int,
    need: int,
) -> tuple[dict[str, FleetTrack], list[Confirmed]]:
    """One evaluation: the tracks that changed (new ones included), and the confirmed
    changes. A name no probe reports keeps its track as it is."""
    changed: dict[str, FleetTrack] = {}
    confirmed: list[Confirmed] = []
    for c in counted:
        seen = c.verdict(min_probes, min_networks)
        old = tracks.get(c.domain, FleetTrack())
        new, change = fleet_step(old, seen, c.networks, at, need)
        if new != old:
            changed[c.domain] = new
        if change is not None:
            confirmed.append(Confirmed(c.domain, change))
    return changed, confirmed


def fleet_event_id(domain: str, change: FleetChange) -> str:
    """Stable: two collectors confirming the same change give it the same id."""
    key = (
        f"{domain}|{SCOPE}|{change.old}|{change.new}|{','.join(change.networks)}|"
        f"{iso(change.first_seen)}"
    )
    return str(uuid.uuid5(_NAMESPACE, key))


def fleet_event(
    domain: str,
    change: FleetChange,
    sightings: Sequence[Mapping[str, Any]] | None,
    *,
    min_probes: int,
    min_networks: int,
) -> dict[str, Any]:
    """The event as sinks receive it. `sightings`: each probe's latest verdicts on the name
    (probe, isp, asn, region, national, resolvers, round_id, finished, fresh); None for a
    baseline, whose `probes` and `evidence` are then null."""
    out: dict[str, Any] = {
        "version": EVENT_VERSION,
        "id": fleet_event_id(domain, change),
        "type": str(change.type),
        "first_verdict": change.old is None,
        "domain": domain,
        "label": None,
        "category": None,
        "scope": SCOPE,
        "from": str(change.old) if change.old else None,
        "to": str(change.new),
        "first_seen": iso(change.first_seen),
        "confirmed_at": iso(change.confirmed_at),
        "rounds": change.evaluations,
        "networks": list(change.networks),
        "probes": None,
        "summary": {"reason": f"first fleet verdict: {change.new}"},
        "evidence": None,
    }
    if sightings is None:
        return out
    judged = judge(
        (Sighting(s["probe"], s["asn"], s["national"], stale=not s["fresh"]) for s in sightings),
        min_probes,
        min_networks,
    )
    networks = list(judged.networks)
    blocked, resolving = len(judged.blocked_at), len(judged.resolving_at)
    out["networks"] = networks
    out["probes"] = {
        "blocked": list(judged.blocked_at),
        "resolving": list(judged.resolving_at),
        "stale": list(judged.stale),
    }
    out["summary"] = {
        "reason": f"blocked at {blocked} probe{'s' * (blocked != 1)} in {len(networks)} "
        f"network{'s' * (len(networks) != 1)}{' (' + ', '.join(networks) + ')' if networks else ''}"
        f"; resolving at {resolving}; rule: {min_probes} probes in {min_networks} networks"
    }
    out["evidence"] = {
        "rules": {"min_probes": min_probes, "min_networks": min_networks},
        "probes": [_sighting(s) for s in sightings],
    }
    return out


def _sighting(s: Mapping[str, Any]) -> dict[str, Any]:
    """One probe's latest verdicts, as an event's evidence."""
    return {
        "probe": s["probe"],
        "isp": s["isp"],
        "asn": s["asn"],
        "region": s["region"],
        "national": s["national"],
        "resolvers": s["resolvers"],
        "round": s["round_id"],
        "finished": iso(s["finished"]),
        "stale": not s["fresh"],
    }
