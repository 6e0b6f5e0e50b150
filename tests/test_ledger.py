"""Planning a round: held verdicts while a resolver is down, its own health as one track,
the headline held only when every national resolver is down, alarming first verdicts."""

from __future__ import annotations

import tempfile
import uuid
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import replies

from nsdi_tracker.core.clock import iso
from nsdi_tracker.core.evidence import DEFAULT_EVIDENCE, evidence
from nsdi_tracker.core.model import (
    NATIONAL,
    Consensus,
    EventType,
    NxLabel,
    Observation,
    Outcome,
    Role,
    Transport,
    Verdict,
)
from nsdi_tracker.dns.probe import Counters
from nsdi_tracker.judge import classify
from nsdi_tracker.judge.classify import Health, Judgement, ReferenceView
from nsdi_tracker.judge.confirm import Change, Policy
from nsdi_tracker.rounds import tracker
from nsdi_tracker.rounds.events import event_id, event_json, scope_evidence, uuid5_text
from nsdi_tracker.rounds.ledger import plan_batch, plan_health, round_record
from nsdi_tracker.rounds.measure import RoundInfo
from nsdi_tracker.rounds.stream import DomainResult
from nsdi_tracker.rounds.tracker import Changes
from nsdi_tracker.settings.resolvers import ResolverSpec
from nsdi_tracker.settings.sinks import SinkSpec
from nsdi_tracker.settings.watchlist import Entry
from nsdi_tracker.store.records import (
    BatchPlan,
    HealthPlan,
    StoredTrack,
    Summary,
    TransitionRecord,
)
from nsdi_tracker.store.sqlite import Store
from nsdi_tracker.store.sqlite.schema import EVIDENCE_DEFAULTS_8
from nsdi_tracker.store.sqlite.staging import json_text

T0 = datetime(2026, 2, 10, 9, tzinfo=UTC)
P, R, U = Verdict.PRESENT, Verdict.REMOVED, Verdict.UNREACHABLE
ROLES = {"nsdi-a": Role.NATIONAL, "nsdi-b": Role.NATIONAL, "ref": Role.REFERENCE}
SINK = SinkSpec(name="log", type="log", scopes=frozenset({"*"}))


def spec(name: str) -> ResolverSpec:
    return ResolverSpec(name, ROLES[name], Transport.UDP, "127.0.0.1", "127.0.0.1", 53)


def control(name: str, ok: bool) -> Observation:
    return Observation(name, "ya.ru", "A", Outcome.ANSWER if ok else Outcome.TIMEOUT, "udp")


def info(down: set[str], *, connectivity: bool = True, at: datetime = T0) -> RoundInfo:
    controls = {n: (control(n, n not in down),) for n in ROLES}
    return RoundInfo(
        started=at, finished=at, resolvers=tuple(spec(n) for n in ROLES),
        health={n: classify.health(n, ROLES[n], controls[n]) for n in ROLES},
        connectivity=connectivity, controls=controls, negative_name="x.example.com",
        negative={n: () for n in ROLES}, counters={n: Counters() for n in ROLES},
        latency={n: [] for n in ROLES}, domains=1,
    )  # fmt: skip


def result(
    verdicts: Mapping[str, Verdict], down: frozenset[str] = frozenset(), name: str = "youtube.com"
) -> DomainResult:
    judged = {n: Judgement(v, "test") for n, v in verdicts.items()}
    national = classify.headline(list(verdicts.values()))
    return DomainResult(
        Entry(name), national, ReferenceView(Consensus.EXISTS, frozenset({"1.2.3.4"})),
        judged, {n: () for n in ROLES}, frozenset(down),
    )  # fmt: skip


def stored(verdict: Verdict | str) -> StoredTrack:
    return StoredTrack(str(verdict), iso(T0 - timedelta(days=1)), None, 0, None)


def test_a_down_resolver_holds_the_names_verdicts() -> None:
    """While nsdi-b is down its per-name tracks do not move (no unreachable, no candidate),
    and the headline follows nsdi-a alone: nothing changes for a name removed on both."""
    tracks = {("youtube.com", s): stored(R) for s in ("national", "nsdi-a", "nsdi-b")}
    plan = plan_batch(
        [result({"nsdi-a": R, "nsdi-b": U}, frozenset({"nsdi-b"}))],
        ROLES,
        tracks,
        {},
        T0,
        Policy(1),
        [SINK],
    )
    assert plan.tracks == {} and plan.transitions == ()


def test_the_headline_is_held_only_when_every_national_resolver_is_down() -> None:
    """Both national resolvers down: no per-name track moves, the headline included; the
    same verdicts from a healthy resolver that cannot answer this one name are news."""
    tracks = {("youtube.com", s): stored(P) for s in ("national", "nsdi-a", "nsdi-b")}
    both = result({"nsdi-a": U, "nsdi-b": U}, frozenset({"nsdi-a", "nsdi-b"}))
    assert both.national is U
    plan = plan_batch([both], ROLES, tracks, {}, T0, Policy(1), [SINK])
    assert plan.tracks == {} and plan.transitions == ()
    healthy = result({"nsdi-a": U, "nsdi-b": U})  # SERVFAIL for this name alone
    plan = plan_batch([healthy], ROLES, tracks, {}, T0, Policy(1), [SINK])
    assert sorted((t.scope, t.change.type) for t in plan.transitions) == [
        ("national", EventType.UNREACHABLE),
        ("nsdi-a", EventType.UNREACHABLE),
        ("nsdi-b", EventType.UNREACHABLE),
    ]


def test_back_from_an_outage_a_different_verdict_is_a_normal_transition() -> None:
    """A name held `present` on nsdi-b that is `removed` once it is back: candidate first
    seen then, confirmed by the next round as a plain `removed` from `present`."""
    tracks = {("youtube.com", s): stored(P) for s in ("national", "nsdi-a", "nsdi-b")}
    back = T0 + timedelta(minutes=30)
    plan = plan_batch([result({"nsdi-a": P, "nsdi-b": R})], ROLES, tracks, {}, back, Policy(), [])
    assert plan.tracks[("youtube.com", "nsdi-b")].candidate is R and not plan.transitions
    pending = StoredTrack("present", iso(T0), "removed", 1, iso(back))
    tracks[("youtube.com", "nsdi-b")] = pending
    later = back + timedelta(minutes=5)
    plan = plan_batch([result({"nsdi-a": P, "nsdi-b": R})], ROLES, tracks, {}, later, Policy(), [])
    (t,) = [t for t in plan.transitions if t.scope == "nsdi-b"]
    assert (t.change.type, t.change.old, t.change.first_seen) == (EventType.REMOVED, P, back)


@pytest.mark.parametrize(
    ("first", "kind", "sent"),
    [
        (R, EventType.REMOVED, ("log",)),
        (Verdict.TAMPERED, EventType.TAMPERED, ("log",)),
        (P, EventType.BASELINE, ()),
        (Verdict.ABSENT, EventType.BASELINE, ()),
    ],
)
def test_an_alarming_first_verdict_is_news(
    first: Verdict, kind: EventType, sent: tuple[str, ...]
) -> None:
    """A newly watched name already removed (or tampered) is announced, marked as a first
    verdict; present, differs and absent first verdicts stay silent baselines."""
    sink = SinkSpec(name="log", type="log")  # the defaults: national scope, all but baseline
    new = result({"nsdi-a": first, "nsdi-b": first})
    plan = plan_batch([new], ROLES, {}, {}, T0, Policy(1), [sink])
    (t,) = [t for t in plan.transitions if t.scope == NATIONAL]
    assert t.change.type is kind and t.sinks == sent
    if kind is EventType.BASELINE:
        assert t.event is None  # the store composes a baseline's event when it is read
    else:  # announced with its evidence
        assert t.event is not None and t.event["evidence"] is not None
        assert t.event["first_verdict"] is True and t.event["from"] is None


@given(
    st.lists(
        st.tuples(st.sampled_from(list(Verdict)), st.sampled_from(list(Verdict)), st.booleans()),
        min_size=1,
        max_size=12,
    ),
    st.integers(1, 3),
)
def test_a_batch_plans_each_name_as_if_alone(
    names: list[tuple[Verdict, Verdict, bool]], confirm: int
) -> None:
    """A batch of names, first seen or already tracked, plans each as a batch of its own
    would (first sightings share their step within a batch)."""
    results = [
        result({"nsdi-a": a, "nsdi-b": b}, name=f"n{i}.example")
        for i, (a, b, _) in enumerate(names)
    ]
    tracks = {
        (f"n{i}.example", scope): stored(P)
        for i, (_, _, known) in enumerate(names)
        if known
        for scope in (NATIONAL, "nsdi-a", "nsdi-b")
    }
    policy = Policy(confirm)
    whole = plan_batch(results, ROLES, tracks, {}, T0, policy, [SINK])
    alone = [plan_batch([r], ROLES, tracks, {}, T0, policy, [SINK]) for r in results]
    assert whole.tracks == {k: v for plan in alone for k, v in plan.tracks.items()}
    assert [(t.event_id, t.change, t.event) for t in whole.transitions] == [
        (t.event_id, t.change, t.event) for plan in alone for t in plan.transitions
    ]
    assert whole.watched == tuple(w for plan in alone for w in plan.watched)


def test_resolver_health_is_one_confirmed_track() -> None:
    """nsdi-b failing its controls: pending for a round, then one resolver_down with the
    controls as evidence; back: one resolver_up. A first `up` writes no row; an offline
    round moves nothing."""
    first = plan_health(info(set()), {}, T0, Policy(), [SINK])
    assert first.transitions == () and {s: t.candidate for s, t in first.tracks.items()} == {
        "nsdi-a": "up", "nsdi-b": "up", "ref": "up", NATIONAL: "up",
    }  # fmt: skip
    up = {s: stored("up") for s in (*ROLES, NATIONAL)}
    one = plan_health(info({"nsdi-b"}), up, T0, Policy(), [SINK])
    assert one.transitions == () and one.tracks["nsdi-b"].candidate == "down"
    pending = dict(up, **{"nsdi-b": StoredTrack("up", iso(T0), "down", 1, iso(T0))})
    at = T0 + timedelta(minutes=5)
    two = plan_health(info({"nsdi-b"}, at=at), pending, at, Policy(), [SINK])
    (t,) = two.transitions
    assert (t.domain, t.scope, t.change.type, t.change.first_seen) == (
        None, "nsdi-b", EventType.RESOLVER_DOWN, T0,
    )  # fmt: skip
    assert t.sinks == ("log",) and t.event["domain"] is None
    assert "failed the positive controls (0/1)" in t.summary.reason
    assert t.event["evidence"]["resolvers"]["nsdi-b"]["controls"]["ya.ru"]["outcome"] == "timeout"
    down = dict(up, **{"nsdi-b": stored("down")})
    assert plan_health(info({"nsdi-b"}, connectivity=False), down, T0, Policy(), []).tracks == {}
    back = plan_health(info(set()), down, T0, Policy(1), [SINK])
    assert [tr.change.type for tr in back.transitions] == [EventType.RESOLVER_UP]
    retired = dict(down, old=stored("down"))  # a resolver taken out of the config
    assert plan_health(info(set()), retired, T0, Policy(1), []).gone == ("old",)


def test_every_national_resolver_down_is_one_national_transition() -> None:
    """Both national resolvers down: each gets its resolver_down, and the headline one more
    (scope national), which the default sinks (national scope) receive."""
    up = {s: stored("up") for s in (*ROLES, NATIONAL)}
    plan = plan_health(info({"nsdi-a", "nsdi-b"}), up, T0, Policy(1), [SinkSpec("log", "log")])
    kinds = {t.scope: (t.change.type, t.sinks) for t in plan.transitions}
    assert kinds == {
        "nsdi-a": (EventType.RESOLVER_DOWN, ()),
        "nsdi-b": (EventType.RESOLVER_DOWN, ()),
        NATIONAL: (EventType.RESOLVER_DOWN, ("log",)),
    }
    national = next(t for t in plan.transitions if t.scope == NATIONAL)
    assert national.summary.reason.startswith("every national resolver is down")


def test_a_resolver_answering_nothing_is_down_even_without_controls() -> None:
    """With no controls configured, a resolver whose negative control got no usable reply
    is down; one that answered it (NXDOMAIN) is up."""
    silent = Observation("nsdi-a", "x.example.com", "A", Outcome.TIMEOUT, "udp")
    answered = silent._replace(outcome=Outcome.NXDOMAIN)
    assert not classify.health("nsdi-a", Role.NATIONAL, (), (silent,)).up
    assert classify.health("nsdi-a", Role.NATIONAL, (), (answered,)).up
    h: Health = classify.health("nsdi-a", Role.NATIONAL, (), (silent,))
    view = classify.NameView(Outcome.NXDOMAIN)
    ref = ReferenceView(Consensus.EXISTS, frozenset({"1.2.3.4"}))
    assert classify.judge(view, ref, h).verdict is U  # never a removal


@given(st.binary(min_size=16, max_size=16), st.text())
def test_uuid5_text_is_uuid5(namespace: bytes, name: str) -> None:
    """The spelt-out UUIDv5 is the uuid module's, for any namespace and any name."""
    assert uuid5_text(namespace, name) == str(uuid.uuid5(uuid.UUID(bytes=namespace), name))


def test_event_ids_keep_their_scheme() -> None:
    """An event's id is derived as it always was: the same change, the same id, for good."""
    seen = datetime(2026, 2, 10, 3, 0, tzinfo=UTC)
    change = Change(EventType.REMOVED, Verdict.PRESENT, Verdict.REMOVED, seen, seen, 2)
    namespace = uuid.UUID("6f6e7364-692d-7472-6163-6b6572000001")
    key = f"youtube.com|national|present|removed|{iso(seen)}"
    assert event_id("youtube.com", "national", change) == str(uuid.uuid5(namespace, key))


_NOT_IN_A_SUMMARY = ("attempts", "latency_ms", "cname_chain", "min_ttl", "ede", "error", "ignored")
NATIONAL_OBS = replies(
    transport=st.just("udp"),
    **{k: st.just(v) for k, v in Observation._field_defaults.items() if k in _NOT_IN_A_SUMMARY},
)
NAMES_TEXT = st.one_of(st.none(), st.text(max_size=8))  # quotes, backslashes, any script


@settings(max_examples=25, deadline=None)
@given(
    verdicts=st.lists(st.sampled_from(list(Verdict)), min_size=2, max_size=2),
    observations=st.lists(NATIONAL_OBS, min_size=2, max_size=2),
    label=NAMES_TEXT,
    category=NAMES_TEXT,
    nx=st.sampled_from([None, *NxLabel]),
    reason=st.text(max_size=8),
)
def test_every_event_reads_back_as_event_json_writes_it(
    verdicts: list[Verdict],
    observations: list[Observation],
    label: str | None,
    category: str | None,
    nx: NxLabel | None,
    reason: str,
) -> None:
    """A domain's baseline is stored without its event and composed by SQL when read; the
    outbox and the change log must give what rounds.events.event_json gives for the same
    transition (and any other event as it was planned), whatever the label, summary or
    verdicts. Fails when the composed JSON misses or misspells a field."""
    entry = Entry("youtube.com", label, category)
    judged = {"nsdi-a": Judgement(verdicts[0], reason, nx), "nsdi-b": Judgement(verdicts[1], "b")}
    ref = ReferenceView(Consensus.EXISTS, frozenset({"1.2.3.4"}))
    seen = {"nsdi-a": tuple(observations), "nsdi-b": (), "ref": ()}
    new = DomainResult(entry, classify.headline(verdicts), ref, judged, seen)
    every = SinkSpec(name="all", type="log", events=frozenset(EventType), scopes=frozenset("*"))
    plan = plan_batch([new], ROLES, {}, {}, T0, Policy(1), [every])
    with tempfile.TemporaryDirectory() as folder, Store.open(Path(folder) / "t.db") as store:
        round_id = store.begin_round()
        store.stage(plan)
        store.commit_round(round_id, round_record(info(set()), 0), [spec(n) for n in ROLES])
        delivered = {d.event["id"]: d.event for d in store.due(T0 + timedelta(days=1), ["all"])}
        logged = {r["event_id"]: r["event"] for r in store.changelog(with_event=True)}
    for t in plan.transitions:
        expected = t.event or event_json(
            event_id=t.event_id, change=t.change, domain=t.domain, label=label,
            category=category, scope=t.scope, summary=t.summary, evidence=None,
        )  # fmt: skip
        assert delivered[t.event_id] == expected == logged[t.event_id]


TEXT = st.text(max_size=6)  # quotes, backslashes, control characters, any script
ANY_REPLY = replies(
    transport=st.sampled_from(["udp", "tcp", "udp+tcp", "dot", "doh"]),
    attempts=st.integers(1, 4),
    latency_ms=st.one_of(st.none(), st.floats(0, 1e6, allow_nan=False), st.just(1e-7)),
    cname_chain=st.lists(TEXT, max_size=2).map(tuple),
    min_ttl=st.one_of(st.none(), st.integers(0, 2**31 - 1)),
    ede=st.lists(st.tuples(st.integers(0, 65535), TEXT), max_size=2).map(tuple),
    error=st.one_of(st.none(), TEXT),
    ignored=st.integers(0, 3),
    reasked=st.booleans(),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(ANY_REPLY, min_size=1, max_size=4))
def test_every_stored_reply_reads_back_with_its_whole_evidence(
    observations: list[Observation],
) -> None:
    """A stored reply keeps only what its columns and the defaults do not say; the `replies`
    view must give back, byte for byte, the evidence JSON as json_text(evidence(o)) writes it
    (what an event and the raw archive carry), whatever the reply. Fails when a field is left
    out of the stored form or comes back at the wrong place."""
    judged = {"nsdi-a": Judgement(P, "a"), "nsdi-b": Judgement(P, "b")}
    ref = ReferenceView(Consensus.EXISTS, frozenset({"1.2.3.4"}))
    seen = {"nsdi-a": tuple(observations), "nsdi-b": (), "ref": ()}
    new = DomainResult(Entry("youtube.com"), P, ref, judged, seen)
    plan = plan_batch([new], ROLES, {}, {}, T0, Policy(1), [])
    with tempfile.TemporaryDirectory() as folder, Store.open(Path(folder) / "t.db") as store:
        round_id = store.begin_round()
        store.stage(plan)
        store.commit_round(round_id, round_record(info(set()), 0), [spec(n) for n in ROLES])
        read = [e for (e,) in store.db.execute("SELECT evidence FROM replies ORDER BY 1")]
    assert read == sorted(json_text(evidence(o)) for o, _ in plan.observations)
    assert len(read) == len(observations)


def test_the_reply_view_knows_the_evidence_defaults() -> None:
    """m008's `replies` view puts back the defaults core.evidence has today: if the evidence's
    fields change, this fails until a new migration gives the view the new defaults."""
    assert json_text(DEFAULT_EVIDENCE) == EVIDENCE_DEFAULTS_8


@given(st.lists(NATIONAL_OBS, min_size=1, max_size=3))
def test_a_summary_lists_the_flags_any_reply_had(observations: list[Observation]) -> None:
    """The flags of a scope's summary: those any of its replies had, sorted by name."""
    judged = {"nsdi-a": Judgement(P, "a")}
    ref = ReferenceView(Consensus.EXISTS, frozenset({"1.2.3.4"}))
    seen = {"nsdi-a": tuple(observations)}
    summary, _ = scope_evidence(
        DomainResult(Entry("youtube.com"), P, ref, judged, seen), "nsdi-a", ROLES, full=False
    )
    assert summary.flags == tuple(sorted({f for o in observations for f in o.flags.names()}))


@given(
    batches=st.lists(st.lists(st.booleans(), max_size=8), max_size=5),
    health=st.lists(st.booleans(), max_size=3),
    queued_kept=st.integers(0, 12),
)
def test_a_rounds_changes_count_every_transition_and_keep_the_first(
    batches: list[list[bool]], health: list[bool], queued_kept: int
) -> None:
    """Changes.add: every transition counted by type and scope, the ids of those with a
    sink kept up to QUEUED_KEPT in order, the resolvers' own shown first and SHOWN in all."""
    change = Change(EventType.BASELINE, None, P, T0, T0, 1)
    summary = Summary("r", "NOERROR", "", (), (), "none", "exists", ())

    def record(k: int, domain: str | None, sent: bool) -> TransitionRecord:
        scope = NATIONAL if k % 2 else "nsdi-a"
        return TransitionRecord(domain, scope, change, f"{domain}-{k}", summary, None,
                                ("log",) if sent else ())  # fmt: skip

    plans = [
        BatchPlan({}, tuple(record(k, f"d{b}.example", s) for k, s in enumerate(batch)), (), ())
        for b, batch in enumerate(batches)
    ]
    own = HealthPlan({}, tuple(record(k, None, s) for k, s in enumerate(health)))
    changes = Changes()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tracker, "QUEUED_KEPT", queued_kept)
        for plan in plans:
            changes.add(plan)
        changes.add(own)
    every = [t for p in plans for t in p.transitions]
    assert changes.transitions == len(every) + len(own.transitions)
    assert changes.by_type == Counter(("baseline", t.scope) for t in [*every, *own.transitions])
    assert changes.delivering == sum(1 for t in [*every, *own.transitions] if t.sinks)
    assert (
        changes.queued == [t.event_id for t in [*every, *own.transitions] if t.sinks][:queued_kept]
    )
    words = [f"baseline {t.domain or '*'} ({t.scope})" for t in [*own.transitions, *every]]
    assert changes.shown == words[: tracker.SHOWN]
