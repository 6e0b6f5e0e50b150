"""The fleet's verdict: a national removal needs enough probes in enough networks; a removal
seen in some networks while others resolve the name is an ISP's filtering; stale probes are
never counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nsdi_tracker.judge.fleet import FleetVerdict, Sighting, is_stale, judge

MSK = Sighting("msk-1", 12389, "removed")
SPB = Sighting("spb-1", 8359, "removed")
MSK2 = Sighting("msk-2", 12389, "removed")  # another probe in the same network as msk-1
EKB_OK = Sighting("ekb-1", 31133, "present")


@pytest.mark.parametrize(
    ("sightings", "verdict", "networks"),
    [
        ([MSK, SPB], FleetVerdict.REMOVED, ("AS12389", "AS8359")),
        ([MSK, MSK2], FleetVerdict.PENDING, ("AS12389",)),  # two probes, one network
        ([MSK], FleetVerdict.PENDING, ("AS12389",)),
        ([MSK, SPB, EKB_OK], FleetVerdict.FILTERED, ("AS12389", "AS8359")),
        ([EKB_OK, Sighting("x", 1, "differs")], FleetVerdict.PRESENT, ()),
        ([Sighting("x", 1, "unreachable"), Sighting("y", 2, None)], FleetVerdict.UNKNOWN, ()),
        ([MSK, Sighting("spb-2", 8359, "tampered")], FleetVerdict.REMOVED, ("AS12389", "AS8359")),
        ([MSK, Sighting("anon", None, "removed")], FleetVerdict.REMOVED, ("AS12389", "probe anon")),
    ],
)
def test_fleet_verdicts(
    sightings: list[Sighting], verdict: FleetVerdict, networks: tuple[str, ...]
) -> None:
    judged = judge(sightings, min_probes=2, min_networks=2)
    assert judged.verdict is verdict and judged.networks == networks


def test_stale_probes_are_shown_never_counted() -> None:
    stale_ok = Sighting("ekb-1", 31133, "present", stale=True)
    judged = judge([MSK, SPB, stale_ok], 2, 2)
    assert judged.verdict is FleetVerdict.REMOVED  # the stale probe does not make it filtered
    assert judged.stale == ("ekb-1",) and judged.resolving_at == ()
    assert judge([Sighting("a", 1, "removed", stale=True)], 1, 1).verdict is FleetVerdict.UNKNOWN


def test_a_probe_is_stale_after_three_of_its_intervals() -> None:
    now = datetime(2026, 2, 10, 18, tzinfo=UTC)
    assert not is_stale(now - timedelta(minutes=14), 300, now, 3)
    assert is_stale(now - timedelta(minutes=16), 300, now, 3)
    assert is_stale(None, 300, now, 3) and is_stale(now, None, now, 3)


def test_a_fleet_verdict_is_confirmed_like_a_probes() -> None:
    """A new fleet verdict holds `need` evaluations before it is a transition; pending and
    unknown neither count nor reset; the old verdict seen again drops the candidate; a filtered
    name whose blocked networks change is a change of its own."""
    from nsdi_tracker.core.model import EventType
    from nsdi_tracker.judge.fleet import FleetTrack, fleet_step

    t0 = datetime(2026, 2, 10, 18, tzinfo=UTC)
    track, changes = FleetTrack(), []

    def see(verdict: FleetVerdict, networks: tuple[str, ...] = (), minute: int = 0) -> None:
        nonlocal track
        track, change = fleet_step(track, verdict, networks, t0 + timedelta(minutes=minute), 2)
        if change is not None:
            changes.append(
                (change.type, change.old, change.new, change.networks, change.evaluations)
            )

    see(FleetVerdict.PRESENT, minute=0)
    see(FleetVerdict.UNKNOWN, minute=1)  # neither counts nor resets
    see(FleetVerdict.PRESENT, minute=2)
    assert changes == [(EventType.BASELINE, None, FleetVerdict.PRESENT, (), 2)]
    assert track.since == t0  # from its first sighting
    see(FleetVerdict.REMOVED, ("AS1", "AS2"), 3)
    see(FleetVerdict.PRESENT, minute=4)  # back before confirmation: nothing left behind
    assert track == FleetTrack(FleetVerdict.PRESENT, (), t0)
    see(FleetVerdict.REMOVED, ("AS1", "AS2"), 5)
    see(FleetVerdict.PENDING, ("AS1",), 6)
    see(FleetVerdict.REMOVED, ("AS1", "AS2", "AS3"), 7)  # a removal's networks may grow
    assert changes[-1] == (EventType.REMOVED, FleetVerdict.PRESENT, FleetVerdict.REMOVED, (), 2)
    see(FleetVerdict.FILTERED, ("AS1",), 8)
    see(FleetVerdict.FILTERED, ("AS1", "AS2"), 9)  # other networks: counting starts again
    assert len(changes) == 2
    see(FleetVerdict.FILTERED, ("AS1", "AS2"), 10)
    was, now = FleetVerdict.REMOVED, FleetVerdict.FILTERED
    assert changes[-1] == (EventType.FILTERED, was, now, ("AS1", "AS2"), 2)
    see(FleetVerdict.FILTERED, ("AS2",), 11)
    see(FleetVerdict.FILTERED, ("AS2",), 12)
    assert changes[-1][0] is EventType.FILTERED and changes[-1][3] == ("AS2",)
    see(FleetVerdict.PRESENT, minute=13)
    see(FleetVerdict.PRESENT, minute=14)
    assert changes[-1][:3] == (EventType.RESTORED, FleetVerdict.FILTERED, FleetVerdict.PRESENT)
    assert len(changes) == 5
