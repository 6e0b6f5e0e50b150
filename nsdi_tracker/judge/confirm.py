"""Confirmation: when a change of verdict becomes a transition. Pure functions, no I/O.

A verdict replaces the confirmed one only after it has been seen in `need(verdict)` consecutive
rounds. `unknown` rounds (our own connectivity failed, or the evidence was inconclusive) neither
count nor reset; seeing the confirmed verdict again drops the pending candidate, so a flap that
returns before confirmation leaves no transition behind. A resolver's own health (up or down)
is confirmed by the same rule, once per resolver.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from nsdi_tracker.core.model import EventType, ResolverState, Verdict

DEFAULT_CONFIRM = 2


V = TypeVar("V", Verdict, ResolverState)

# What a verdict says of the name, for naming a change; every verdict is in exactly one (the
# architecture test checks), so a new verdict must be placed here.
RESOLVES = frozenset({Verdict.PRESENT, Verdict.DIFFERS})
BLOCKED = frozenset({Verdict.REMOVED, Verdict.TAMPERED, Verdict.PARTIAL})
UNSETTLED = frozenset({Verdict.UNREACHABLE, Verdict.ABSENT, Verdict.UNKNOWN})
# First verdicts that are news: a name that is already gone or forged when it is first watched
# (added during an event, say) must be announced; any other first verdict is a baseline.
FIRST_NEWS = frozenset({Verdict.REMOVED, Verdict.TAMPERED, Verdict.PARTIAL})


def event_type(old: V | None, new: V) -> EventType:
    """Name a confirmed change, most specific first."""
    if isinstance(new, ResolverState):
        if new is ResolverState.DOWN:
            return EventType.RESOLVER_DOWN  # a first verdict too: a resolver dead from the start
        return EventType.BASELINE if old is None else EventType.RESOLVER_UP
    if old is None and new not in FIRST_NEWS:
        return EventType.BASELINE
    if new is Verdict.REMOVED:
        return EventType.REMOVED
    if new is Verdict.TAMPERED:
        return EventType.TAMPERED
    if new is Verdict.UNREACHABLE:
        return EventType.UNREACHABLE
    if new in RESOLVES and old in BLOCKED:
        return EventType.RESTORED
    if old is Verdict.UNREACHABLE:
        return EventType.RECOVERED
    return EventType.CHANGED


@dataclass(frozen=True, slots=True)
class Policy:
    """How many consecutive rounds each new verdict needs before it is confirmed."""

    default: int = DEFAULT_CONFIRM
    # per new verdict, or resolver state (`down`, `up`)
    per_verdict: Mapping[Verdict | ResolverState, int] = field(default_factory=dict)

    def need(self, verdict: Verdict | ResolverState) -> int:
        return self.per_verdict.get(verdict, self.default)


@dataclass(frozen=True, slots=True)
class Track(Generic[V]):
    """The persisted state of one (domain, scope), or of one resolver's health: confirmed
    verdict and pending candidate."""

    verdict: V | None = None  # None until the first verdict is confirmed
    since: datetime | None = None  # when the confirmed verdict was first seen
    candidate: V | None = None
    count: int = 0  # consecutive rounds the candidate has been seen
    candidate_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class Change(Generic[V]):
    """A confirmed transition."""

    type: EventType
    old: V | None
    new: V
    first_seen: datetime
    confirmed_at: datetime
    rounds: int

    @property
    def first(self) -> bool:
        """The first confirmed verdict: not a change, though it may be news (FIRST_NEWS)."""
        return self.old is None


def step(
    track: Track[V], seen: V, at: datetime, policy: Policy
) -> tuple[Track[V], Change[V] | None]:
    """Advance one round. Returns the new track (equal to the old one when nothing changed)."""
    if seen is Verdict.UNKNOWN:
        return track, None
    if seen is track.verdict:
        if track.candidate is None:
            return track, None
        return Track(track.verdict, track.since), None
    if seen is track.candidate:
        count, first = track.count + 1, track.candidate_since or at
    else:
        count, first = 1, at
    if count >= policy.need(seen):
        change = Change(event_type(track.verdict, seen), track.verdict, seen, first, at, count)
        return Track(seen, first), change
    return Track(track.verdict, track.since, seen, count, first), None


def settled(track: Track[V], seen: V) -> bool:
    """Whether seeing `seen` once more would leave `track` as it is (step would return it
    unchanged, with no change): what a name's digest may be kept on (rounds.digest)."""
    return seen is Verdict.UNKNOWN or (seen is track.verdict and track.candidate is None)
