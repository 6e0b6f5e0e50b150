"""What a measured round changes: confirmed transitions, their events, what must be stored.

Pure: takes a batch of judged names with their persisted tracks and last stored observation
fingerprints, and returns what the store stages for the round's one transaction. Only what
changed is in a plan, so a round in which nothing changed writes one `rounds` row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from nsdi_tracker.config import SinkSpec
from nsdi_tracker.confirm import NATIONAL, Change, EventType, Policy, Track, step
from nsdi_tracker.events import (
    Summary,
    event_id,
    event_json,
    fingerprint,
    health_json,
    parse_iso,
    scope_evidence,
)
from nsdi_tracker.model import Observation, Role, Verdict

if TYPE_CHECKING:
    from nsdi_tracker.measure import DomainResult, RoundInfo

TrackKey = tuple[str, str]  # (domain, scope)
ObsKey = tuple[str, str, str]  # (domain, resolver, qtype)


class StoredTrack(NamedTuple):
    """A track as the database holds it (text), parsed only when it is about to change."""

    verdict: str | None
    since: str | None
    candidate: str | None
    candidate_count: int
    candidate_since: str | None

    def track(self) -> Track:
        return Track(
            Verdict(self.verdict) if self.verdict else None,
            parse_iso(self.since) if self.since else None,
            Verdict(self.candidate) if self.candidate else None,
            self.candidate_count,
            parse_iso(self.candidate_since) if self.candidate_since else None,
        )


class RoundStatus:
    OK = "ok"  # every resolver passed its controls
    PARTIAL = "partial"  # some resolver failed its controls this round
    OFFLINE = "offline"  # no reference passed: our own connectivity is in doubt


@dataclass(frozen=True, slots=True)
class TransitionRecord:
    domain: str
    scope: str
    change: Change
    event_id: str
    summary: Summary
    event: dict[str, Any]  # its "evidence" holds every reply of the confirming round
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


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """What one batch of judged names changes."""

    tracks: dict[TrackKey, Track]  # only the tracks that changed
    transitions: tuple[TransitionRecord, ...]
    observations: tuple[tuple[Observation, str], ...]  # (observation, fingerprint) to store
    watched: tuple[tuple[str, str | None, str | None], ...]  # (domain, label, category)


def round_status(info: RoundInfo) -> str:
    if not info.connectivity:
        return RoundStatus.OFFLINE
    if all(h.controls_passed for h in info.health.values()):
        return RoundStatus.OK
    return RoundStatus.PARTIAL


def plan_batch(
    results: Sequence[DomainResult],
    roles: Mapping[str, Role],
    tracks: Mapping[TrackKey, StoredTrack],
    latest: Mapping[ObsKey, str],
    at: datetime,
    policy: Policy,
    sinks: Sequence[SinkSpec],
) -> BatchPlan:
    changed: dict[TrackKey, Track] = {}
    transitions: list[TransitionRecord] = []
    to_store: list[tuple[Observation, str]] = []
    for result in results:
        domain = result.entry.domain
        seen = {NATIONAL: result.national, **{n: j.verdict for n, j in result.judgements.items()}}
        for scope, verdict in seen.items():
            stored = tracks.get((domain, scope))
            if stored is not None and stored.verdict == verdict and stored.candidate is None:
                continue  # the common case: confirmed, nothing pending, seen again
            old = stored.track() if stored is not None else Track()
            new, change = step(old, verdict, at, policy)
            if new != old:
                changed[(domain, scope)] = new
            if change is None:
                continue
            # A baseline is not a change, and a first sweep makes millions: its summary says
            # what was seen; the replies themselves are in the observations stored this round.
            summary, evidence = scope_evidence(
                result, scope, roles, full=change.type is not EventType.BASELINE
            )
            eid = event_id(domain, scope, change)
            event = event_json(
                event_id=eid,
                change=change,
                domain=domain,
                label=result.entry.label,
                category=result.entry.category,
                scope=scope,
                summary=summary,
                evidence=evidence,
            )
            wanted = tuple(s.name for s in sinks if s.wants(str(change.type), scope))
            transitions.append(TransitionRecord(domain, scope, change, eid, summary, event, wanted))
        for observations in result.observations.values():
            for obs in observations:
                fp = fingerprint(obs)
                if latest.get((domain, obs.resolver, obs.qtype)) != fp:
                    to_store.append((obs, fp))
    watched = tuple((r.entry.domain, r.entry.label, r.entry.category) for r in results)
    return BatchPlan(changed, tuple(transitions), tuple(to_store), watched)


def round_record(info: RoundInfo, transitions: int) -> RoundRecord:
    roles = {r.name: r.role for r in info.resolvers}
    outcomes: Counter[str] = Counter()
    for counters in info.counters.values():
        outcomes.update({str(k): v for k, v in counters.by_outcome.items()})
    return RoundRecord(
        started=info.started,
        finished=info.finished,
        status=round_status(info),
        domains=info.domains,
        queries=sum(c.queries for c in info.counters.values()),
        transitions=transitions,
        outcomes=dict(sorted(outcomes.items())),
        health={
            name: {
                "role": str(roles[name]),
                **health_json(h, info.counters[name], info.latency[name]),
            }
            for name, h in info.health.items()
        },
        negative_name=info.negative_name,
    )
