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

from nsdi_tracker.core.model import Verdict
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
