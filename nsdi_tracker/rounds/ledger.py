"""What a measured round changes: confirmed transitions, their events, what must be stored.

Pure: takes a batch of judged names with their persisted tracks and last stored observation
fingerprints, and returns what the store stages for the round's one transaction. Only what
changed is in a plan, so a round in which nothing changed writes one `rounds` row.

A resolver's health is its own track (scope: the resolver; `national` for "some national
resolver is up"), planned once per round. While a resolver fails its controls, the names'
tracks on it do not move: their confirmed verdicts are held, and when it is back each name's
new verdict is compared with the held one. The headline is held only while every national
resolver is down.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from nsdi_tracker.core.evidence import fingerprint
from nsdi_tracker.core.model import (
    NATIONAL,
    EventType,
    Observation,
    ResolverState,
    Role,
    RoundStatus,
    Verdict,
)
from nsdi_tracker.judge.confirm import Change, Policy, Track, settled, step
from nsdi_tracker.rounds.events import (
    event_id,
    event_json,
    health_evidence,
    health_json,
    scope_evidence,
)
from nsdi_tracker.settings.sinks import SinkSpec
from nsdi_tracker.store.records import (
    BatchPlan,
    HealthPlan,
    ObsKey,
    RoundRecord,
    StoredTrack,
    Summary,
    TrackKey,
    TransitionRecord,
)

if TYPE_CHECKING:
    from nsdi_tracker.rounds.measure import RoundInfo
    from nsdi_tracker.rounds.stream import DomainResult
    from nsdi_tracker.settings.watchlist import Entry


def round_status(info: RoundInfo) -> str:
    if not info.connectivity:
        return RoundStatus.OFFLINE
    if all(h.up for h in info.health.values()):
        return RoundStatus.OK
    return RoundStatus.PARTIAL


def plan_health(
    info: RoundInfo,
    tracks: Mapping[str, StoredTrack],
    at: datetime,
    policy: Policy,
    sinks: Sequence[SinkSpec],
) -> HealthPlan:
    """Each resolver's health, and `national` (down only when every national resolver is),
    through the confirmation rule. An offline round (our own connectivity failed) moves
    nothing, as it moves no verdict. A first `up` is stored without a transition; a first
    `down` is a `resolver_down` like any other."""
    roles = {r.name: r.role for r in info.resolvers}
    gone = tuple(sorted(s for s in tracks if s not in roles and s != NATIONAL))
    if not info.connectivity:
        return HealthPlan({}, (), gone)
    seen = {n: ResolverState.UP if h.up else ResolverState.DOWN for n, h in info.health.items()}
    national = [seen[n] for n in seen if roles[n] is Role.NATIONAL]
    if national:
        seen[NATIONAL] = ResolverState.UP if ResolverState.UP in national else ResolverState.DOWN
    changed: dict[str, Track[ResolverState]] = {}
    transitions: list[TransitionRecord] = []
    for scope, state in seen.items():
        stored = tracks.get(scope)
        old: Track[ResolverState] = stored.parse(ResolverState) if stored else Track()
        new, change = step(old, state, at, policy)
        if new != old:
            changed[scope] = new
        if change is None or change.type is EventType.BASELINE:
            continue  # a resolver that works from the start is no news (resolvers.first_seen)
        summary, evidence = health_evidence(info, scope)
        transitions.append(_record(None, scope, change, summary, evidence, sinks))
    return HealthPlan(changed, tuple(transitions), gone)


def _record(
    entry: Entry | None,
    scope: str,
    change: Change[Any],
    summary: Summary,
    evidence: Mapping[str, Any] | None,
    sinks: Sequence[SinkSpec],
) -> TransitionRecord:
    """A confirmed change with its event and the sinks whose filters take it; no `entry`:
    a resolver's own health."""
    domain = entry.domain if entry else None
    eid = event_id(domain, scope, change)
    if entry is not None and change.type is EventType.BASELINE:
        event = None  # every field is a column: the store composes it when read
    else:
        event = event_json(
            event_id=eid, change=change, domain=domain, label=entry.label if entry else None,
            category=entry.category if entry else None, scope=scope, summary=summary,
            evidence=evidence,
        )  # fmt: skip
    wanted = tuple(s.name for s in sinks if s.wants(str(change.type), scope))
    return TransitionRecord(domain, scope, change, eid, summary, event, wanted)


_EMPTY: Final[Track[Verdict]] = Track()


class _Steps:
    """confirm.step for one batch (one time, one policy). A name seen for the first time
    shares the result of the first such name with the same verdict: a first sweep steps
    millions of empty tracks with a handful of verdicts (tracks and changes are immutable)."""

    def __init__(self, at: datetime, policy: Policy) -> None:
        self.at = at
        self.policy = policy
        self.first: dict[Verdict, tuple[Track[Verdict] | None, Change[Verdict] | None, bool]] = {}

    def step(
        self, stored: StoredTrack | None, verdict: Verdict
    ) -> tuple[Track[Verdict] | None, Change[Verdict] | None, bool]:
        """(the new track, None if it is the stored one; the change; whether the track is
        settled on this verdict)."""
        if stored is None:
            hit = self.first.get(verdict)
            if hit is None:
                new, change = step(_EMPTY, verdict, self.at, self.policy)
                hit = (None if new == _EMPTY else new, change, settled(new, verdict))
                self.first[verdict] = hit
            return hit
        old = stored.track()
        new, change = step(old, verdict, self.at, self.policy)
        return (None if new == old else new), change, settled(new, verdict)


def plan_batch(
    results: Sequence[DomainResult],
    roles: Mapping[str, Role],
    tracks: Mapping[TrackKey, StoredTrack],
    latest: Mapping[ObsKey, str],
    at: datetime,
    policy: Policy,
    sinks: Sequence[SinkSpec],
) -> BatchPlan:
    changed: dict[TrackKey, Track[Verdict]] = {}
    transitions: list[TransitionRecord] = []
    to_store: list[tuple[Observation, str]] = []
    kept: list[tuple[int, int]] = []  # (place in the watchlist, digest kept or 0)
    watched: list[tuple[str, str | None, str | None, int | None]] = []
    steps = _Steps(at, policy)
    for result in results:
        domain = result.entry.domain
        seen = {NATIONAL: result.national, **{n: j.verdict for n, j in result.judgements.items()}}
        if result.down:  # held: a resolver that is down says nothing about the name
            national = [n for n in result.judgements if roles[n] is Role.NATIONAL]
            held = result.down | {NATIONAL} if result.down.issuperset(national) else result.down
            seen = {s: v for s, v in seen.items() if s not in held}
        still = True  # the same verdicts again would move no track (see rounds.digest)
        for scope, verdict in seen.items():
            stored = tracks.get((domain, scope))
            if stored is not None and stored.verdict == verdict and stored.candidate is None:
                continue  # the common case: confirmed, nothing pending, seen again
            new, change, steady = steps.step(stored, verdict)
            if new is not None:
                changed[(domain, scope)] = new
            still = still and steady
            if change is None:
                continue
            # A baseline is not a change, and a first sweep makes millions: its summary says
            # what was seen; the replies themselves are in the observations stored this round.
            summary, evidence = scope_evidence(
                result, scope, roles, full=change.type is not EventType.BASELINE
            )
            transitions.append(_record(result.entry, scope, change, summary, evidence, sinks))
        for observations in result.observations.values():
            for obs in observations:
                fp = fingerprint(obs)
                if latest.get((domain, obs.resolver, obs.qtype)) != fp:
                    to_store.append((obs, fp))
        digest = result.digest if still else 0
        if result.place >= 0:
            kept.append((result.place, digest))
        watched.append((domain, result.entry.label, result.entry.category, digest or None))
    return BatchPlan(changed, tuple(transitions), tuple(to_store), tuple(watched), tuple(kept))


def round_record(info: RoundInfo, transitions: int, interval: float | None = None) -> RoundRecord:
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
        interval=interval,
    )
