"""The fleet's evaluation in PostgreSQL: the fleet-wide counts it judges, the probes'
sightings its events cite, and one transaction that reads the fleet's state and writes what
changed (FleetStore.evaluation opens it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import orjson
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from nsdi_tracker.judge.fleet import Counted, FleetTrack, FleetVerdict

EVALUATOR: Final = 727_010  # pg_try_advisory_xact_lock key: one evaluating collector at a time

# Whether a probe is fresh: it finished a round within k of its intervals (as judge.fleet)
FRESH = (
    "(last_finished IS NOT NULL AND interval IS NOT NULL AND "
    "%(now)s - last_finished <= make_interval(secs => interval * %(k)s))"
)


async def _fresh(
    conn: AsyncConnection[Any], now: datetime, stale_intervals: float
) -> tuple[dict[int, tuple[str, str]], list[int]]:
    """The fresh probes (id -> (name, network)) and the ids of the stale ones."""
    cursor = await conn.execute(
        f"SELECT id, name, COALESCE('AS' || asn, 'probe ' || name), {FRESH} FROM probes",
        {"now": now, "k": stale_intervals},
    )
    rows = await cursor.fetchall()
    return {pid: (name, net) for pid, name, net, ok in rows if ok}, [
        pid for pid, *_, ok in rows if not ok
    ]


async def count(
    conn: AsyncConnection[Any], now: datetime, stale_intervals: float
) -> tuple[list[Counted], dict[str, list[str]]]:
    """Per domain, over the fresh probes' rows of `latest`: how many see it blocked, the
    networks among them, how many see it resolve; and the probes that see it blocked.
    PostgreSQL counts (booleans, no join); the blocked rows, few, are then read through their
    partial index. 100 probes x 10,000 domains: 10,000 rows back."""
    fresh, stale_ids = await _fresh(conn, now, stale_intervals)
    # The stale probes are few (usually none): leaving their rows out is cheaper per row
    # than keeping the fresh ones in.
    stale = {"stale": stale_ids}
    only = "WHERE probe_id <> ALL(%(stale)s)" if stale["stale"] else ""
    cursor = await conn.execute(
        "SELECT domain, COUNT(*) FILTER (WHERE blocked), COUNT(*) FILTER (WHERE resolving) "
        f"FROM latest {only} GROUP BY domain ORDER BY domain",
        stale,
    )
    counts = await cursor.fetchall()
    cursor = await conn.execute("SELECT domain, probe_id FROM latest WHERE blocked")
    nets: dict[str, set[str]] = {}
    where: dict[str, list[str]] = {}
    for domain, pid in await cursor.fetchall():
        if pid in fresh:
            nets.setdefault(domain, set()).add(fresh[pid][1])
            where.setdefault(domain, []).append(fresh[pid][0])
    return [
        Counted(domain, blocked, tuple(sorted(nets.get(domain, ()))), resolving)
        for domain, blocked, resolving in counts
    ], {d: sorted(names) for d, names in where.items()}


async def sightings(
    conn: AsyncConnection[Any], domains: Sequence[str], now: datetime, stale_intervals: float
) -> dict[str, list[dict[str, Any]]]:
    """Every probe's latest verdicts on each of `domains`, with its network and freshness."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT l.domain, p.name AS probe, p.isp, p.asn, p.region, l.national, "
            f"l.resolvers, l.round_id, l.finished, {FRESH} AS fresh FROM latest l "
            "JOIN probes p ON p.id = l.probe_id WHERE l.domain = ANY(%(domains)s) "
            "ORDER BY l.domain, p.name",
            {"now": now, "k": stale_intervals, "domains": list(domains)},
        )
        out: dict[str, list[dict[str, Any]]] = {}
        for row in await cur.fetchall():
            out.setdefault(row.pop("domain"), []).append(row)
        return out


@dataclass(frozen=True, slots=True)
class FleetEvent:
    """A confirmed fleet transition to store, and the sinks that want it."""

    event: Mapping[str, Any]
    first_seen: datetime
    confirmed_at: datetime
    sinks: Sequence[str]


class Evaluation:
    """The reads and writes of one evaluation, on its transaction (FleetStore.evaluation)."""

    def __init__(self, conn: AsyncConnection[Any], now: datetime, stale_intervals: float) -> None:
        self.conn = conn
        self.now = now
        self.k = stale_intervals
        self._seen: tuple[int, list[int]] | None = None

    async def news(self) -> bool:
        """Whether anything came in since the last evaluation: a round stored, or a probe
        gone stale or back."""
        fresh = sorted((await _fresh(self.conn, self.now, self.k))[0])
        cursor = await self.conn.execute("SELECT COALESCE(SUM(rounds), 0) FROM probes")
        row = await cursor.fetchone()
        self._seen = (int(row[0]) if row else 0, fresh)
        cursor = await self.conn.execute("SELECT rounds, fresh FROM fleet_evaluation")
        last = await cursor.fetchone()
        return last is None or (int(last[0]), sorted(last[1])) != self._seen

    async def tracks(self) -> dict[str, FleetTrack]:
        cursor = await self.conn.execute(
            "SELECT domain, verdict, networks, since, candidate, candidate_networks, count, "
            "candidate_since FROM fleet_state"
        )
        return {
            domain: FleetTrack(
                _verdict(verdict), tuple(networks), since, _verdict(candidate),
                tuple(candidate_networks), count, candidate_since,
            )
            for domain, verdict, networks, since, candidate, candidate_networks, count,
            candidate_since in await cursor.fetchall()
        }  # fmt: skip

    async def counted(self) -> list[Counted]:
        return (await count(self.conn, self.now, self.k))[0]

    async def sightings(self, domains: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        return await sightings(self.conn, domains, self.now, self.k)

    async def write(self, tracks: Mapping[str, FleetTrack], events: Sequence[FleetEvent]) -> int:
        """The tracks that changed, the confirmed transitions and their deliveries (an event
        stored before, by a collector that crashed after its commit, is not queued again);
        and what this evaluation saw. Returns the deliveries queued."""
        async with self.conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO fleet_state (domain, verdict, networks, since, candidate, "
                "candidate_networks, count, candidate_since) VALUES (%s, %s, %s, %s, %s, %s, "
                "%s, %s) ON CONFLICT (domain) DO UPDATE SET verdict = EXCLUDED.verdict, "
                "networks = EXCLUDED.networks, since = EXCLUDED.since, "
                "candidate = EXCLUDED.candidate, candidate_networks = "
                "EXCLUDED.candidate_networks, count = EXCLUDED.count, "
                "candidate_since = EXCLUDED.candidate_since",
                [
                    (d, t.verdict, list(t.networks), t.since, t.candidate,
                     list(t.candidate_networks), t.count, t.candidate_since)
                    for d, t in tracks.items()
                ],
            )  # fmt: skip
        # Only this evaluation writes (the advisory lock): what is not stored yet is new.
        cursor = await self.conn.execute(
            "SELECT event_id::text FROM fleet_transitions WHERE event_id = ANY(%s::uuid[])",
            ([e.event["id"] for e in events],),
        )
        stored = {row[0] for row in await cursor.fetchall()}
        new = [e for e in events if e.event["id"] not in stored]
        async with self.conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO fleet_transitions (event_id, domain, type, from_verdict, "
                "to_verdict, networks, first_seen, confirmed_at, event) VALUES (%s, %s, %s, "
                "%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                [
                    (ev["id"], ev["domain"], ev["type"], ev["from"], ev["to"], ev["networks"],
                     e.first_seen, e.confirmed_at, orjson.dumps(ev).decode())
                    for e in new
                    for ev in (e.event,)
                ],
            )  # fmt: skip
            now = self.now
            deliveries = [(e.event["id"], sink, now, now) for e in new for sink in e.sinks]
            await cur.executemany(
                "INSERT INTO fleet_deliveries (event_id, sink, created, next_attempt) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                deliveries,
            )
        queued = len(deliveries)
        if self._seen is not None:
            await self.conn.execute(
                "INSERT INTO fleet_evaluation (at, rounds, fresh) VALUES (%s, %s, %s) "
                "ON CONFLICT (one) DO UPDATE SET at = EXCLUDED.at, rounds = EXCLUDED.rounds, "
                "fresh = EXCLUDED.fresh",
                (self.now, *self._seen),
            )
        return queued


def _verdict(text: str | None) -> FleetVerdict | None:
    return None if text is None else FleetVerdict(text)
