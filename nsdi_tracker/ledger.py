"""What a measured round changes: confirmed transitions, their events, what must be stored.

Pure: takes the round, the persisted tracks and the last stored observation fingerprints, and
returns a plan that the store writes in one transaction. Only what changed is in the plan, so
a round in which nothing changed writes one `rounds` row and nothing else.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from nsdi_tracker.config import SinkSpec
from nsdi_tracker.confirm import NATIONAL, Change, Policy, Track, step
from nsdi_tracker.events import (
    Summary,
    event_id,
    event_json,
    fingerprint,
    health_json,
    latency_histogram,
    scope_evidence,
)
from nsdi_tracker.model import Observation

if TYPE_CHECKING:
    from nsdi_tracker.measure import RoundReport

TrackKey = tuple[str, str]  # (domain, scope)
ObsKey = tuple[str, str, str]  # (domain, resolver, qtype)


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
    outcomes: dict[str, int]
    health: dict[str, Any]
    negative_name: str


@dataclass(frozen=True, slots=True)
class RoundPlan:
    round: RoundRecord
    tracks: dict[TrackKey, Track]  # only the tracks that changed
    transitions: tuple[TransitionRecord, ...]
    observations: tuple[tuple[Observation, str], ...]  # (observation, fingerprint) to store


def round_status(report: RoundReport) -> str:
    if not report.connectivity:
        return RoundStatus.OFFLINE
    if all(h.controls_passed for h in report.health.values()):
        return RoundStatus.OK
    return RoundStatus.PARTIAL


def plan_round(
    report: RoundReport,
    tracks: Mapping[TrackKey, Track],
    latest: Mapping[ObsKey, str],
    policy: Policy,
    sinks: Sequence[SinkSpec],
) -> RoundPlan:
    roles = {r.name: r.role for r in report.resolvers}
    at = report.finished
    changed: dict[TrackKey, Track] = {}
    transitions: list[TransitionRecord] = []
    to_store: list[tuple[Observation, str]] = []
    for result in report.domains:
        domain = result.entry.domain
        seen = {NATIONAL: result.national, **{n: j.verdict for n, j in result.judgements.items()}}
        for scope, verdict in seen.items():
            old = tracks.get((domain, scope), Track())
            new, change = step(old, verdict, at, policy)
            if new != old:
                changed[(domain, scope)] = new
            if change is None:
                continue
            summary, evidence = scope_evidence(result, scope, roles)
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

    latencies: dict[str, list[float]] = {name: [] for name in report.health}
    for observed in (report.controls, report.negative, *(d.observations for d in report.domains)):
        for name, observations in observed.items():
            latencies.setdefault(name, []).extend(
                o.latency_ms for o in observations if o.latency_ms is not None
            )
    outcomes: Counter[str] = Counter()
    for counters in report.counters.values():
        outcomes.update({str(k): v for k, v in counters.by_outcome.items()})
    record = RoundRecord(
        started=report.started,
        finished=report.finished,
        status=round_status(report),
        domains=len(report.domains),
        queries=sum(c.queries for c in report.counters.values()),
        outcomes=dict(sorted(outcomes.items())),
        health={
            name: {
                "role": str(roles[name]),
                **health_json(h, report.counters[name], latency_histogram(latencies[name])),
            }
            for name, h in report.health.items()
        },
        negative_name=report.negative_name,
    )
    return RoundPlan(record, changed, tuple(transitions), tuple(to_store))
