"""The fleet's verdict on a domain, from every probe's latest national headline. Pure.

One vantage point cannot tell a removal from the national system (every operator, every
region) from one ISP's filtering. A fleet can:

- `removed`: at least `min_probes` probes in at least `min_networks` distinct networks (ASNs)
  say the national system blocks the name (removed, tampered or partial), and no fresh probe
  sees it resolve;
- `filtered`: blocked at some networks and resolving at others: an ISP's doing, not the
  national system's; the blocked networks are listed;
- `pending`: blocked wherever it is seen, but by too few probes or networks to say more;
- `present`: every probe that sees the name sees it resolve;
- `unknown`: no fresh probe has a settled verdict (unreachable, absent, unknown, or none).

A probe silent for `stale_intervals` of its interval is `stale`: its last verdicts are shown
as such and never counted either way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from nsdi_tracker.core.model import EventType, Verdict
from nsdi_tracker.judge.confirm import BLOCKED, RESOLVES


class FleetVerdict(StrEnum):
    REMOVED = "removed"
    FILTERED = "filtered"
    PENDING = "pending"
    PRESENT = "present"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Sighting:
    """One probe's latest national headline for a domain."""

    probe: str
    asn: int | None  # None: the probe did not say; it counts as a network of its own
    verdict: str | None
    stale: bool = False


@dataclass(frozen=True, slots=True)
class Judged:
    verdict: FleetVerdict
    blocked_at: tuple[str, ...]  # probes that see it blocked (fresh ones)
    resolving_at: tuple[str, ...]
    networks: tuple[str, ...]  # the blocked networks, "AS12389" (or the probe's name)
    stale: tuple[str, ...]


def network(s: Sighting) -> str:
    return f"AS{s.asn}" if s.asn is not None else f"probe {s.probe}"


def judge(sightings: Iterable[Sighting], min_probes: int, min_networks: int) -> Judged:
    seen = list(sightings)
    fresh = [s for s in seen if not s.stale]
    blocked = [s for s in fresh if s.verdict is not None and Verdict(s.verdict) in BLOCKED]
    resolving = [s for s in fresh if s.verdict is not None and Verdict(s.verdict) in RESOLVES]
    networks = tuple(sorted({network(s) for s in blocked}))
    return Judged(
        decide(len(blocked), len(networks), len(resolving), min_probes, min_networks),
        tuple(sorted(s.probe for s in blocked)),
        tuple(sorted(s.probe for s in resolving)),
        networks,
        tuple(sorted(s.probe for s in seen if s.stale)),
    )


def decide(
    blocked: int, networks: int, resolving: int, min_probes: int, min_networks: int
) -> FleetVerdict:
    """The rule on counts of fresh probes: those that see the name blocked, the distinct
    networks among them, and those that see it resolve (what a fleet-wide query counts)."""
    if blocked and resolving:
        return FleetVerdict.FILTERED
    if blocked:
        enough = blocked >= min_probes and networks >= min_networks
        return FleetVerdict.REMOVED if enough else FleetVerdict.PENDING
    return FleetVerdict.PRESENT if resolving else FleetVerdict.UNKNOWN


def is_stale(
    last_finished: datetime | None, interval: float | None, now: datetime, stale_intervals: float
) -> bool:
    """A probe that has not finished a round in `stale_intervals` of its interval (or that
    never reported one) is stale."""
    if last_finished is None or not interval:
        return True
    return (now - last_finished).total_seconds() > stale_intervals * interval


# Fleet-level transitions. The fleet's verdict on a name is confirmed like a probe's: a new
# verdict replaces the confirmed one after `need` consecutive evaluations (the collector
# evaluates when rounds have come in since the last time, or a probe went stale or came
# back). `pending` and `unknown` neither count nor reset, as a probe's `unknown` does: a
# removal that has reached one network so far, or a fleet gone quiet, announces nothing.
# A filtered name whose blocked networks change is a new verdict: "now also at AS8359".

SCOPE = "fleet"  # the scope of a fleet-level event, beside a probe's `national` and resolvers
SETTLED = frozenset({FleetVerdict.REMOVED, FleetVerdict.FILTERED, FleetVerdict.PRESENT})


@dataclass(frozen=True, slots=True)
class Counted:
    """What a fleet-wide count says of one name: fresh probes that see it blocked, the
    distinct networks among them, and fresh probes that see it resolve."""

    domain: str
    blocked: int
    networks: tuple[str, ...]
    resolving: int

    def verdict(self, min_probes: int, min_networks: int) -> FleetVerdict:
        return decide(self.blocked, len(self.networks), self.resolving, min_probes, min_networks)


@dataclass(frozen=True, slots=True)
class FleetTrack:
    """The persisted state of one name at fleet level: the confirmed verdict (with the
    blocked networks where it is `filtered`) and the pending candidate."""

    verdict: FleetVerdict | None = None
    networks: tuple[str, ...] = ()
    since: datetime | None = None
    candidate: FleetVerdict | None = None
    candidate_networks: tuple[str, ...] = ()
    count: int = 0
    candidate_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class FleetChange:
    type: EventType
    old: FleetVerdict | None
    new: FleetVerdict
    old_networks: tuple[str, ...]
    networks: tuple[str, ...]
    first_seen: datetime
    confirmed_at: datetime
    evaluations: int


def fleet_event_type(old: FleetVerdict | None, new: FleetVerdict) -> EventType:
    if new is FleetVerdict.REMOVED:
        return EventType.REMOVED  # a first verdict too: already gone when first judged
    if new is FleetVerdict.FILTERED:
        return EventType.FILTERED
    return EventType.BASELINE if old is None else EventType.RESTORED


def fleet_step(
    track: FleetTrack, seen: FleetVerdict, networks: tuple[str, ...], at: datetime, need: int
) -> tuple[FleetTrack, FleetChange | None]:
    """Advance one evaluation; the track is returned unchanged when nothing changed."""
    if seen not in SETTLED:
        return track, None
    nets = networks if seen is FleetVerdict.FILTERED else ()
    if (seen, nets) == (track.verdict, track.networks):
        if track.candidate is None:
            return track, None
        return FleetTrack(track.verdict, track.networks, track.since), None
    if (seen, nets) == (track.candidate, track.candidate_networks):
        count, first = track.count + 1, track.candidate_since or at
    else:
        count, first = 1, at
    if count >= need:
        change = FleetChange(
            fleet_event_type(track.verdict, seen), track.verdict, seen, track.networks, nets,
            first, at, count,
        )  # fmt: skip
        return FleetTrack(seen, nets, first), change
    return FleetTrack(track.verdict, track.networks, track.since, seen, nets, count, first), None
