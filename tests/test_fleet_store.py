"""The collector's PostgreSQL (a real server started by the tests): migrations applied once
however many collectors start, each submission stored whole or not at all, idempotent on its
id, a replayed signature refused, and `latest` never moved back by a late round."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from nsdi_tracker.core.submission import RoundSummary, Transition
from nsdi_tracker.store.postgres.fleet import FleetStore, Replayed

T0 = datetime(2026, 2, 10, 18, 0, tzinfo=UTC)
LATER = T0 + timedelta(minutes=10)
RESOLVERS = {"nsdi-a": {"role": "national", "up": True}, "ref": {"role": "reference", "up": True}}


def summary(round_id: int, finished: datetime, verdict: str, n: int = 3) -> RoundSummary:
    domains = [(f"d{i}.example", verdict, {"nsdi-a": verdict}) for i in range(n)]
    return RoundSummary(str(uuid.uuid4()), "msk-1", round_id, finished - timedelta(seconds=20),
                        finished, "ok", 300.0, RESOLVERS, domains)  # fmt: skip


async def test_two_collectors_migrate_once_and_store_rounds(pg: str) -> None:
    a, b = await asyncio.gather(FleetStore.open(pg), FleetStore.open(pg))
    try:
        with psycopg.connect(pg) as conn:
            assert conn.execute("SELECT name FROM schema_migrations ORDER BY 1").fetchall() == [
                ("m001_fleet",),
                ("m002_fleet_events",),
            ]
        ids = await a.register([{"name": "msk-1", "isp": "Rostelecom", "asn": 12389}])
        probe = ids["msk-1"]
        first = summary(7, T0, "present")
        assert await a.add_round(probe, first, "sig-1", T0)
        assert await b.add_round(probe, first, "sig-2", T0) is False  # already stored
        with pytest.raises(Replayed):
            await b.add_round(probe, summary(8, LATER, "removed"), "sig-1", T0)
        assert (await a.counts())["verdicts"] == 3  # the refused one wrote nothing
        newer, older = (
            summary(9, LATER + timedelta(minutes=5), "removed"),
            summary(8, LATER, "present"),
        )
        assert await b.add_round(probe, newer, "sig-3", T0)
        assert await a.add_round(probe, older, "sig-4", T0)  # arrives late: kept, not latest
        with psycopg.connect(pg) as conn:
            latest = conn.execute("SELECT DISTINCT round_id, national FROM latest").fetchall()
            parts = conn.execute(
                "SELECT inhrelid::regclass::text FROM pg_inherits "
                "WHERE inhparent = 'verdicts'::regclass"
            ).fetchall()
        assert latest == [(9, "removed")]
        assert parts == [("verdicts_2026_02",)]
        assert (await a.counts()) == {"probes": 1, "rounds": 3, "verdicts": 9, "latest": 3,
                                      "transitions": 0, "fleet_transitions": 0}  # fmt: skip
    finally:
        await asyncio.gather(a.close(), b.close())


async def test_transitions_are_stored_once(pg: str) -> None:
    store = await FleetStore.open(pg)
    try:
        probe = (await store.register([{"name": "msk-1"}]))["msk-1"]
        event_id = str(uuid.uuid4())
        event = {"id": event_id, "type": "removed", "domain": "youtube.com",
                 "scope": "national", "from": "present", "to": "removed",
                 "confirmed_at": "2026-02-10T18:05:00Z"}  # fmt: skip
        t = Transition(event_id, "msk-1", "youtube.com", "national", "removed", "present",
                       "removed", T0, event)  # fmt: skip
        assert await store.add_transition(probe, t, "s1", T0)
        assert await store.add_transition(probe, t, "s2", T0) is False
        assert (await store.counts())["transitions"] == 1
        assert await store.forget_signatures(T0 + timedelta(minutes=1)) == 2
    finally:
        await store.close()
