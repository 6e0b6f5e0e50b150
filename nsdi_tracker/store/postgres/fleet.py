"""What the collector writes to PostgreSQL, each submission in one transaction: all of it or
none. Idempotent on the submission's id (a round's, or a transition's event id): a probe that
sends again after a lost answer gets 'already stored', and nothing is written twice. The
signature is recorded in the same transaction, so a replayed request is refused.

A round's per-domain verdicts go in with COPY, and `latest` (each probe's newest verdicts,
what the fleet's status reads) is brought up to date from them in one statement.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import orjson
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from nsdi_tracker.core.errors import StoreError
from nsdi_tracker.core.submission import RoundSummary, Transition
from nsdi_tracker.judge.fleet import Counted
from nsdi_tracker.store.postgres.evaluation import EVALUATOR, FRESH, Evaluation, count, sightings
from nsdi_tracker.store.postgres.schema import migrate, partition


class Replayed(StoreError):
    """The same signed request was taken before."""


class FleetStore:
    """The collector's PostgreSQL, through a connection pool."""

    def __init__(self, pool: AsyncConnectionPool[AsyncConnection[Any]]) -> None:
        self.pool = pool

    @classmethod
    async def open(cls, dsn: str, *, size: int = 4, timeout: float = 10.0) -> FleetStore:
        pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
            dsn, min_size=1, max_size=size, open=False, timeout=timeout
        )
        try:
            await pool.open(wait=True, timeout=timeout)
            async with pool.connection() as conn:
                await migrate(conn)
        except Exception:
            await pool.close()
            raise
        return cls(pool)

    async def close(self) -> None:
        await self.pool.close()

    async def register(self, probes: Iterable[Mapping[str, Any]]) -> dict[str, int]:
        """Each configured probe's row (name, isp, asn, region), kept up to date; their ids."""
        ids: dict[str, int] = {}
        async with self.pool.connection() as conn, conn.transaction():
            for p in probes:
                cursor = await conn.execute(
                    "INSERT INTO probes (name, isp, asn, region) VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT (name) DO UPDATE SET isp = EXCLUDED.isp, asn = EXCLUDED.asn, "
                    "region = EXCLUDED.region RETURNING id",
                    (p["name"], p.get("isp"), p.get("asn"), p.get("region")),
                )
                row = await cursor.fetchone()
                assert row is not None
                ids[p["name"]] = int(row[0])
        return ids

    async def add_round(
        self, probe_id: int, r: RoundSummary, signature: str, expires: datetime
    ) -> bool:
        """Store a round and its verdicts; False if this round was stored before."""
        async with self.pool.connection() as conn, conn.transaction():
            await _take(conn, signature, expires)
            cursor = await conn.execute(
                "INSERT INTO rounds (probe_id, round_id, submission_id, started, finished, "
                "status, interval, domains, resolvers) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, "
                "%s) ON CONFLICT DO NOTHING RETURNING 1",
                (probe_id, r.round_id, r.id, r.started, r.finished, r.status, r.interval,
                 len(r.domains), orjson.dumps(r.resolvers).decode()),
            )  # fmt: skip
            if await cursor.fetchone() is None:
                return False
            await partition(conn, r.finished)
            async with (
                conn.cursor() as cur,
                cur.copy(
                    "COPY verdicts (probe_id, round_id, finished, domain, national, resolvers) "
                    "FROM STDIN"
                ) as copy,
            ):
                for domain, national, scopes in r.domains:
                    await copy.write_row(
                        (probe_id, r.round_id, r.finished, domain, national,
                         orjson.dumps(scopes).decode())
                    )  # fmt: skip
            await conn.execute(
                "INSERT INTO latest (domain, probe_id, round_id, finished, national, resolvers) "
                "SELECT domain, probe_id, round_id, finished, national, resolvers FROM verdicts "
                "WHERE probe_id = %s AND round_id = %s AND finished = %s "
                "ON CONFLICT (domain, probe_id) DO UPDATE SET round_id = EXCLUDED.round_id, "
                "finished = EXCLUDED.finished, national = EXCLUDED.national, "
                "resolvers = EXCLUDED.resolvers WHERE latest.round_id < EXCLUDED.round_id",
                (probe_id, r.round_id, r.finished),
            )
            await conn.execute(
                "UPDATE probes SET last_seen = now(), interval = COALESCE(%s, interval), "
                "last_finished = GREATEST(last_finished, %s), rounds = rounds + 1 WHERE id = %s",
                (r.interval, r.finished, probe_id),
            )
            return True

    async def add_transition(
        self, probe_id: int, t: Transition, signature: str, expires: datetime
    ) -> bool:
        """Store a confirmed transition; False if its event was stored before."""
        async with self.pool.connection() as conn, conn.transaction():
            await _take(conn, signature, expires)
            cursor = await conn.execute(
                "INSERT INTO transitions (event_id, probe_id, domain, scope, type, from_verdict, "
                "to_verdict, confirmed_at, event) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT DO NOTHING RETURNING 1",
                (t.id, probe_id, t.domain, t.scope, t.type, t.from_verdict, t.to_verdict,
                 t.confirmed_at, orjson.dumps(t.event).decode()),
            )  # fmt: skip
            stored = await cursor.fetchone() is not None
            await conn.execute("UPDATE probes SET last_seen = now() WHERE id = %s", (probe_id,))
            return stored

    async def probes(self, now: datetime, stale_intervals: float) -> list[dict[str, Any]]:
        """Every probe with its network, its last round and whether it is stale."""
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "SELECT name, isp, asn, region, interval, last_finished, last_seen, "
                f"{FRESH} AS fresh FROM probes ORDER BY isp NULLS LAST, name",
                {"now": now, "k": stale_intervals},
            )
            return await cur.fetchall()

    async def fleet_counts(
        self, now: datetime, stale_intervals: float
    ) -> tuple[list[Counted], dict[str, list[str]]]:
        """Per domain, the fresh probes' count (see `count`), and which probes see it blocked."""
        async with self.pool.connection() as conn:
            return await count(conn, now, stale_intervals)

    async def fleet_states(self, domain: str | None = None) -> dict[str, dict[str, Any]]:
        """Each name's (or one name's) confirmed fleet verdict, since when, and a pending
        candidate with the evaluations it has held."""
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "SELECT domain, verdict, networks, since, candidate, count FROM fleet_state"
                + ("" if domain is None else " WHERE domain = %(domain)s"),
                {"domain": domain},
            )
            return {r.pop("domain"): r for r in await cur.fetchall()}

    async def fleet_transitions(
        self,
        *,
        domain: str | None = None,
        types: Sequence[str] = (),
        since: datetime | None = None,
        limit: int | None = 100,
    ) -> AsyncIterator[dict[str, Any]]:
        """The fleet's own confirmed transitions, newest first, each with its event."""
        where, params = _where(
            (("domain =", "domain", domain), ("confirmed_at >=", "since", since)), "type", types
        )
        async for row in self._stream(
            "fleet_transitions",
            "SELECT event_id::text, confirmed_at, first_seen, domain, type, "
            'from_verdict AS "from", to_verdict AS "to", networks, '
            "COALESCE(ARRAY(SELECT jsonb_array_elements_text(event -> 'probes' -> "
            "'blocked')), '{}') AS blocked_at, COALESCE(ARRAY(SELECT "
            "jsonb_array_elements_text(event -> 'probes' -> 'resolving')), '{}') AS "
            f"resolving_at, event FROM fleet_transitions WHERE {where} "
            "ORDER BY confirmed_at DESC, event_id LIMIT %(limit)s",
            {**params, "limit": limit},
        ):
            yield row

    async def _stream(
        self, name: str, sql: str, params: Mapping[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        """Rows through a server-side cursor (a CSV asks for all of them)."""
        async with (
            self.pool.connection() as conn,
            conn.cursor(name=name, row_factory=dict_row) as cur,
        ):
            await cur.execute(sql.encode(), params)
            async for row in cur:
                yield row

    @asynccontextmanager
    async def evaluation(
        self, now: datetime, stale_intervals: float
    ) -> AsyncIterator[Evaluation | None]:
        """One evaluation of the fleet: a REPEATABLE READ transaction (every read sees the
        same moment) holding the evaluator's advisory lock, or None when another collector
        holds it (it is doing the work). Its writes commit together when the block ends."""
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            # tried, not waited for: the snapshot is taken here, after any holder's commit
            cursor = await conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (EVALUATOR,))
            row = await cursor.fetchone()
            yield Evaluation(conn, now, stale_intervals) if row and row[0] else None

    async def domain_sightings(
        self, domain: str, now: datetime, stale_intervals: float
    ) -> list[dict[str, Any]]:
        """Every probe's latest verdicts on one domain, with its network and freshness."""
        async with self.pool.connection() as conn:
            return (await sightings(conn, [domain], now, stale_intervals)).get(domain, [])

    async def transitions(
        self,
        *,
        domain: str | None = None,
        probe: str | None = None,
        types: Sequence[str] = (),
        since: datetime | None = None,
        limit: int | None = 100,
    ) -> AsyncIterator[dict[str, Any]]:
        """The probes' confirmed transitions, newest first, filtered."""
        where, params = _where(
            (("t.domain =", "domain", domain), ("p.name =", "probe", probe),
             ("t.confirmed_at >=", "since", since)), "t.type", types,
        )  # fmt: skip
        async for row in self._stream(
            "transitions",
            "SELECT t.event_id::text, p.name AS probe, p.isp, p.asn, t.confirmed_at, "
            't.domain, t.scope, t.type, t.from_verdict AS "from", t.to_verdict AS "to" '
            "FROM transitions t JOIN probes p ON p.id = t.probe_id "
            f"WHERE {where} ORDER BY t.confirmed_at DESC, t.event_id LIMIT %(limit)s",
            {**params, "limit": limit},
        ):
            yield row

    async def forget_signatures(self, now: datetime) -> int:
        """Drop the signatures whose window has passed (a replay of them is refused by its
        timestamp anyway)."""
        async with self.pool.connection() as conn:
            cursor = await conn.execute("DELETE FROM signatures WHERE expires < %s", (now,))
            return cursor.rowcount

    async def counts(self) -> dict[str, int]:
        """Rows per table, for /healthz and the tests."""
        async with self.pool.connection() as conn:
            out = {}
            for table in ("probes", "rounds", "verdicts", "latest", "transitions",
                          "fleet_transitions"):  # fmt: skip
                cursor = await conn.execute(f"SELECT COUNT(*) FROM {table}".encode())
                row = await cursor.fetchone()
                out[table] = int(row[0]) if row else 0
            return out


async def _take(conn: AsyncConnection[Any], signature: str, expires: datetime) -> None:
    cursor = await conn.execute(
        "INSERT INTO signatures (signature, expires) VALUES (%s, %s) "
        "ON CONFLICT DO NOTHING RETURNING 1",
        (signature, expires + timedelta(seconds=1)),
    )
    if await cursor.fetchone() is None:
        raise Replayed("this signed submission was taken before (a replay)")


def _where(
    tests: Iterable[tuple[str, str, object]], type_column: str, types: Sequence[str]
) -> tuple[str, dict[str, Any]]:
    """A WHERE clause of the tests whose value is given, and the event types (any of them)."""
    clauses, params = ["TRUE"], dict[str, Any]()
    for test, key, value in tests:
        if value is not None:
            clauses.append(f"{test} %({key})s")
            params[key] = value
    if types:
        clauses.append(f"{type_column} = ANY(%(types)s)")
        params["types"] = [str(t) for t in types]
    return " AND ".join(clauses), params
