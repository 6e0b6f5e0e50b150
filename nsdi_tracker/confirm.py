"""Confirmation: when a change of verdict becomes a transition. Pure functions, no I/O.

A verdict replaces the confirmed one only after it has been seen in `need(verdict)` consecutive
rounds. `unknown` rounds (our own connectivity failed, or the evidence was inconclusive) neither
count nor reset; seeing the confirmed verdict again drops the pending candidate, so a flap that
returns before confirmation leaves no transition behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from nsdi_tracker.model import Verdict

NATIONAL = "national"  # the scope of the headline verdict; other scopes are resolver names
DEFAULT_CONFIRM = 2


class EventType(StrEnum):
    BASELINE = "baseline"  # the first confirmed verdict of a (domain, scope): not a change
    REMOVED = "removed"
    RESTORED = "restored"
    TAMPERED = "tampered"
    UNREACHABLE = "unreachable"
    RECOVERED = "recovered"
    CHANGED = "changed"


_RESOLVES = (Verdict.PRESENT, Verdict.DIFFERS)
_BLOCKED = (Verdict.REMOVED, Verdict.TAMPERED, Verdict.PARTIAL)


def event_type(old: Verdict | None, new: Verdict) -> EventType:
    """Name a confirmed change, most specific first."""
    if old is None:
        return EventType.BASELINE
    if new is Verdict.REMOVED:
        return EventType.REMOVED
    if new is Verdict.TAMPERED:
        return EventType.TAMPERED
    if new is Verdict.UNREACHABLE:
        return EventType.UNREACHABLE
    if new in _RESOLVES and old in _BLOCKED:
        return EventType.RESTORED
    if old is Verdict.UNREACHABLE:
        return EventType.RECOVERED
    return EventType.CHANGED


@dataclass(frozen=True, slots=True)
class Policy:
    """How many consecutive rounds each new verdict needs before it is confirmed."""

    default: int = DEFAULT_CONFIRM
    per_verdict: Mapping[Verdict, int] = field(default_factory=dict)

    def need(self, verdict: Verdict) -> int:
        return self.per_verdict.get(verdict, self.default)


@dataclass(frozen=True, slots=True)
class Track:
    """The persisted state of one (domain, scope): confirmed verdict and pending candidate."""

    verdict: Verdict | None = None  # None until the first verdict is confirmed
    since: datetime | None = None  # when the confirmed verdict was first seen
    candidate: Verdict | None = None
    count: int = 0  # consecutive rounds the candidate has been seen
    candidate_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """A confirmed transition."""

    type: EventType
    old: Verdict | None
    new: Verdict
    first_seen: datetime
    confirmed_at: datetime
    rounds: int


def step(track: Track, seen: Verdict, at: datetime, policy: Policy) -> tuple[Track, Change | None]:
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
