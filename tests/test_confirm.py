"""Confirmation: consecutive sightings, neutral unknown rounds, flaps, event names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nsdi_tracker.core.model import EventType, ResolverState, Verdict
from nsdi_tracker.judge.confirm import Change, Policy, Track, event_type, settled, step

T0 = datetime(2026, 2, 10, tzinfo=UTC)
P, R, U = Verdict.PRESENT, Verdict.REMOVED, Verdict.UNKNOWN
verdicts = st.sampled_from(list(Verdict))
policies = st.builds(
    Policy,
    default=st.integers(1, 4),
    per_verdict=st.dictionaries(st.sampled_from([P, R, Verdict.UNREACHABLE]), st.integers(1, 4)),
)


EMPTY = Track()


def replay(seq: list[Verdict], policy: Policy, track: Track = EMPTY) -> tuple[Track, list[Change]]:
    changes = []
    for i, v in enumerate(seq):
        track, change = step(track, v, T0 + timedelta(minutes=5 * i), policy)
        if change:
            changes.append(change)
    return track, changes


def test_removal_needs_two_rounds_by_default() -> None:
    """present, present, removed: nothing yet; a second removed confirms from its first sighting."""
    track, changes = replay([P, P, R], Policy())
    assert [c.type for c in changes] == [EventType.BASELINE]
    assert track.verdict is P and track.candidate is R and track.count == 1
    track, change = step(track, R, T0 + timedelta(minutes=15), Policy())
    assert change is not None and change.type is EventType.REMOVED
    assert change.first_seen == T0 + timedelta(minutes=10) and change.rounds == 2
    assert track == Track(R, T0 + timedelta(minutes=10))


def test_flap_back_records_nothing_but_was_visible() -> None:
    """present, removed (pending), present: no transition, and the pending state is cleared."""
    base, _ = replay([P, P], Policy())
    pending, change = step(base, R, T0 + timedelta(hours=1), Policy())
    assert change is None and pending.candidate is R
    back, change = step(pending, P, T0 + timedelta(hours=2), Policy())
    assert change is None and back == base


def test_unknown_neither_counts_nor_resets() -> None:
    """removed, unknown, removed confirms; unknown, unknown alone never does."""
    base, _ = replay([P, P], Policy())
    _, changes = replay([R, U, U, R], Policy(), base)
    assert [c.type for c in changes] == [EventType.REMOVED]
    assert replay([U] * 10, Policy()) == (Track(), [])


def test_per_verdict_policy() -> None:
    """A restore may confirm in one round while a removal needs three."""
    policy = Policy(3, {P: 1})
    base = Track(R, T0)
    _, changes = replay([P], policy, base)
    assert [c.type for c in changes] == [EventType.RESTORED]
    _, changes = replay([R, R], policy, Track(P, T0))
    assert changes == []


@pytest.mark.parametrize(
    ("old", "new", "kind"),
    [
        (None, P, EventType.BASELINE),
        (None, Verdict.DIFFERS, EventType.BASELINE),
        (None, Verdict.ABSENT, EventType.BASELINE),
        (None, Verdict.UNREACHABLE, EventType.BASELINE),
        # An alarming first verdict is news: a name already gone when it is first watched.
        (None, R, EventType.REMOVED),
        (None, Verdict.TAMPERED, EventType.TAMPERED),
        (None, Verdict.PARTIAL, EventType.CHANGED),
        (None, ResolverState.UP, EventType.BASELINE),
        (None, ResolverState.DOWN, EventType.RESOLVER_DOWN),
        (ResolverState.UP, ResolverState.DOWN, EventType.RESOLVER_DOWN),
        (ResolverState.DOWN, ResolverState.UP, EventType.RESOLVER_UP),
        (P, R, EventType.REMOVED),
        (Verdict.PARTIAL, R, EventType.REMOVED),
        (R, P, EventType.RESTORED),
        (Verdict.TAMPERED, Verdict.DIFFERS, EventType.RESTORED),
        (P, Verdict.TAMPERED, EventType.TAMPERED),
        (P, Verdict.UNREACHABLE, EventType.UNREACHABLE),
        (Verdict.UNREACHABLE, P, EventType.RECOVERED),
        (P, Verdict.DIFFERS, EventType.CHANGED),
        (P, Verdict.PARTIAL, EventType.CHANGED),
    ],
)
def test_event_types(
    old: Verdict | ResolverState | None, new: Verdict | ResolverState, kind: EventType
) -> None:
    """Each confirmed change gets its most specific name."""
    assert event_type(old, new) is kind


@given(st.lists(verdicts, max_size=40), policies)
def test_no_transition_without_enough_consecutive_sightings(
    seq: list[Verdict], policy: Policy
) -> None:
    """Every change is preceded by need(new) sightings of it, ignoring unknown rounds only."""
    track = Track()
    for i, v in enumerate(seq):
        track, change = step(track, v, T0 + timedelta(minutes=i), policy)
        if change is None:
            continue
        assert change.new is v and change.new is not Verdict.UNKNOWN
        assert change.old is not v
        known = [x for x in seq[: i + 1] if x is not Verdict.UNKNOWN]
        need = policy.need(v)
        assert known[-need:] == [v] * need
        assert change.rounds == need


@given(st.lists(verdicts, max_size=40), policies)
def test_replay_is_deterministic(seq: list[Verdict], policy: Policy) -> None:
    """Replaying the same rounds gives the same transitions and the same final state."""
    assert replay(seq, policy) == replay(seq, policy)


@given(st.lists(verdicts, max_size=30), policies, st.data())
def test_unknown_rounds_are_neutral(
    seq: list[Verdict], policy: Policy, data: st.DataObject
) -> None:
    """Inserting unknown rounds anywhere changes no transition's verdicts or round count."""
    longer = list(seq)
    for _ in range(data.draw(st.integers(0, 5))):
        longer.insert(data.draw(st.integers(0, len(longer))), U)
    a = [(c.old, c.new, c.rounds, c.type) for c in replay(seq, policy)[1]]
    b = [(c.old, c.new, c.rounds, c.type) for c in replay(longer, policy)[1]]
    assert a == b


@given(st.lists(verdicts, max_size=40), policies)
def test_state_survives_a_restart(seq: list[Verdict], policy: Policy) -> None:
    """Stopping after any round and resuming from the stored track changes nothing."""
    whole = replay(seq, policy)
    for cut in range(len(seq) + 1):
        first, c1 = replay(seq[:cut], policy)
        track, c2 = first, []
        for i, v in enumerate(seq[cut:], start=cut):
            track, change = step(track, v, T0 + timedelta(minutes=5 * i), policy)
            if change:
                c2.append(change)
        assert (track, c1 + c2) == whole


@given(st.lists(verdicts, max_size=12), verdicts, policies)
def test_settled_is_what_step_leaves_alone(
    seq: list[Verdict], seen: Verdict, policy: Policy
) -> None:
    """`settled` says exactly when one more sighting would leave the track as it is."""
    track, _ = replay(seq, policy)
    at = T0 + timedelta(days=1)
    assert settled(track, seen) == (step(track, seen, at, policy) == (track, None))
