"""What a round hands the store: the rows it writes, as plain records. No I/O.

The round's planner (`ledger`) makes these and the store writes them; neither needs the
other's code, only these shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

from nsdi_tracker.core.clock import parse_iso
from nsdi_tracker.core.model import Observation, ResolverState, Verdict
from nsdi_tracker.judge.confirm import Change, Track

# The word for a name with no confirmed verdict yet, where a verdict is asked for (the page's
# filter, the domain_page read)
NEW = "new"


class Summary(NamedTuple):
    """The flat columns of a transition: what a spreadsheet of the change log shows.

    This and TransitionRecord are NamedTuples: a first round makes two of each a name, and a
    frozen dataclass's __init__ (object.__setattr__ a field) costs several times more."""

    reason: str
    rcode: str  # the distinct rcodes of the scope's replies, e.g. "NXDOMAIN" or "NOERROR"
    nxdomain: str  # how the NXDOMAIN looked: ordinary, bare, forged, rewritten (or empty)
    flags: tuple[str, ...]
    addresses: tuple[str, ...]
    authority: str  # e.g. "SOA youtube.com" or "SOA com. NSEC" or "none"
    reference_consensus: str
    reference_addresses: tuple[str, ...]


TrackKey = tuple[str, str]  # (domain, scope)
ObsKey = tuple[str, str, str]  # (domain, resolver, qtype)
V = TypeVar("V", Verdict, ResolverState)


class StoredTrack(NamedTuple):
    """A track as the database holds it (text), parsed only when it is about to change."""

    verdict: str | None
    since: str | None
    candidate: str | None
    candidate_count: int
    candidate_since: str | None

    def track(self) -> Track[Verdict]:
        return self.parse(Verdict)

    def parse(self, kind: type[V]) -> Track[V]:
        return Track(
            kind(self.verdict) if self.verdict else None,
            parse_iso(self.since) if self.since else None,
            kind(self.candidate) if self.candidate else None,
            self.candidate_count,
            parse_iso(self.candidate_since) if self.candidate_since else None,
        )


class TransitionRecord(NamedTuple):
    domain: str | None  # None: a resolver's own health (scope: the resolver, or national)
    scope: str
    change: Change[Any]
    event_id: str
    summary: Summary
    # its "evidence" holds every reply of the confirming round; None: a domain's baseline,
    # whose event the store composes from its columns when it is read (store.sqlite.rows)
    event: dict[str, Any] | None
    sinks: tuple[str, ...]  # the sinks whose filters take this event: one delivery each


@dataclass(frozen=True, slots=True)
class RoundRecord:
    started: datetime
    finished: datetime
    status: str
    domains: int
    queries: int
    transitions: int
    outcomes: dict[str, int]
    health: dict[str, Any]
    negative_name: str
    interval: float | None = None  # the daemon's schedule; None for `run --once`


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """What one batch of judged names changes."""

    tracks: dict[TrackKey, Track[Verdict]]  # only the tracks that changed
    transitions: tuple[TransitionRecord, ...]
    observations: tuple[tuple[Observation, str], ...]  # (observation, fingerprint) to store
    # (domain, label, category, digest): every name planned (rounds.digest: the digest is
    # kept while its tracks are settled; None: none)
    watched: tuple[tuple[str, str | None, str | None, int | None], ...]
    digests: tuple[tuple[int, int], ...] = ()  # (place in the watchlist, digest or 0)


@dataclass(frozen=True, slots=True)
class HealthPlan:
    """What one round changes in the resolvers' own health."""

    tracks: dict[str, Track[ResolverState]]  # by scope: only the tracks that changed
    transitions: tuple[TransitionRecord, ...]
    gone: tuple[str, ...] = ()  # resolvers no longer configured: their health is forgotten


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    sink: str
    attempts: int
    created: datetime
    event: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ChangelogFilter:
    """Which transitions of the change log: a time range, a domain, a scope, event types
    (any of them; none: every type)."""

    since: datetime | None = None
    until: datetime | None = None
    domain: str | None = None
    scope: str | None = None
    types: tuple[str, ...] = ()
