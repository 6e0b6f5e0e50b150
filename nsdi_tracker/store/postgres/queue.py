"""The fleet events' delivery queue in PostgreSQL: the collector's outbox (delivery.outbox)
works through it as it works through the SQLite queue on a probe (a DeliveryQueue, called on
its own thread: psycopg's blocking connection).

Several collectors may serve one database. A sink's events are sent by one of them at a time,
in order: the one that holds the sink's lease (`fleet_sink_leases`), renewed with every
delivery and taken over by another collector once it has lapsed (a collector that died). A
collector killed between a send and its record sends that event again: at least once, as on
a probe, with the same event id.

Errors come out as StoreError naming only the kind of failure: a psycopg message can quote
the connection (host, user) and the outbox logs what it is given.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Final

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from nsdi_tracker.core.errors import StoreError
from nsdi_tracker.store.records import Delivery

LEASE: Final = 60.0  # seconds a sink's sender keeps it without a delivery

# A sink's oldest pending delivery's next attempt: its newer ones are due only once it is.
_HEAD = (
    "SELECT h.next_attempt FROM fleet_deliveries h WHERE h.sink = %s AND h.state = 'pending' "
    "ORDER BY h.id LIMIT 1"
)


class FleetQueue:
    def __init__(self, dsn: str, *, holder: str | None = None, lease: float = LEASE) -> None:
        self.holder = holder or uuid.uuid4().hex  # this collector, in the leases
        self.lease = timedelta(seconds=lease)
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            dsn, min_size=0, max_size=1, open=False, timeout=10.0
        )

    def open(self) -> None:
        self._pool.open(wait=False)

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self._pool.connection() as conn:
                yield conn
        except (psycopg.Error, PoolTimeout) as exc:
            raise StoreError(f"the collector's database: {type(exc).__name__}") from None

    def _holds(self, conn: psycopg.Connection[Any], sink: str, now: datetime) -> bool:
        """Take or renew the sink's lease; False while another collector's is running."""
        row = conn.execute(
            "INSERT INTO fleet_sink_leases (sink, holder, until) VALUES (%s, %s, %s) "
            "ON CONFLICT (sink) DO UPDATE SET holder = EXCLUDED.holder, until = EXCLUDED.until "
            "WHERE fleet_sink_leases.holder = EXCLUDED.holder OR fleet_sink_leases.until < %s "
            "RETURNING 1",
            (sink, self.holder, now + self.lease, now),
        ).fetchone()
        return row is not None

    def due(self, now: datetime, sinks: Iterable[str], limit: int = 100) -> list[Delivery]:
        out: list[Delivery] = []
        with self._conn() as conn:
            for sink in sinks:
                if not self._holds(conn, sink, now):
                    continue
                # A sink's events go in order: while its oldest pending one waits for its
                # retry, the newer ones wait too (a collector that took the sink over from
                # one that saw it fail would otherwise send them first).
                rows = conn.execute(
                    "SELECT d.id, d.sink, d.attempts, d.created, t.event FROM fleet_deliveries d "
                    "JOIN fleet_transitions t USING (event_id) WHERE d.sink = %s AND "
                    f"d.state = 'pending' AND ({_HEAD}) <= %s ORDER BY d.id LIMIT %s",
                    (sink, sink, now, limit),
                ).fetchall()
                out += [Delivery(i, s, a, c, e) for i, s, a, c, e in rows]
        return out

    def next_due(self, sinks: Iterable[str]) -> datetime | None:
        """When this collector should look again: the earliest of the sinks' oldest pending
        deliveries' times, or the end of another collector's lease on the sink."""
        names = list(sinks)
        with self._conn() as conn:
            row = conn.execute(
                "SELECT MIN(next_attempt) FROM (SELECT DISTINCT ON (sink) next_attempt "
                "FROM fleet_deliveries WHERE state = 'pending' AND sink = ANY(%s) "
                "ORDER BY sink, id) heads",
                (names,),
            ).fetchone()
            first = row[0] if row else None
            if first is None:
                return None
            row = conn.execute(
                "SELECT MAX(until) FROM fleet_sink_leases WHERE sink = ANY(%s) AND holder <> %s",
                (names, self.holder),
            ).fetchone()
        other: datetime | None = row[0] if row else None
        when: datetime = first if other is None else max(first, other)
        return when

    def _mark(self, sql: str, params: tuple[Any, ...], delivery_id: int, at: datetime) -> None:
        with self._conn() as conn, conn.transaction():
            row = conn.execute(sql + " RETURNING sink", (*params, delivery_id)).fetchone()
            if row is not None:  # still sending: the lease runs on
                conn.execute(
                    "UPDATE fleet_sink_leases SET until = %s WHERE sink = %s AND holder = %s",
                    (at + self.lease, row[0], self.holder),
                )

    def mark_delivered(self, delivery_id: int, at: datetime) -> None:
        self._mark(
            "UPDATE fleet_deliveries SET state = 'delivered', done_at = %s, "
            "attempts = attempts + 1, last_error = NULL WHERE id = %s",
            (at,), delivery_id, at,
        )  # fmt: skip

    def mark_retry(self, delivery_id: int, at: datetime, next_at: datetime, error: str) -> None:
        self._mark(
            "UPDATE fleet_deliveries SET attempts = attempts + 1, next_attempt = %s, "
            "last_error = %s WHERE id = %s",
            (next_at, error), delivery_id, at,
        )  # fmt: skip

    def mark_failed(self, delivery_id: int, at: datetime, error: str) -> None:
        self._mark(
            "UPDATE fleet_deliveries SET state = 'failed', done_at = %s, "
            "attempts = attempts + 1, last_error = %s WHERE id = %s",
            (at, error), delivery_id, at,
        )  # fmt: skip

    def backlog(self) -> dict[str, int]:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT sink, COUNT(*) FROM fleet_deliveries WHERE state = 'pending' GROUP BY sink"
            ).fetchall()
        return {sink: int(n) for sink, n in rows}

    def deliveries(self) -> list[dict[str, Any]]:
        """Every delivery with its state, for the tests and /healthz."""
        with self._conn() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                "SELECT d.id, d.event_id::text, d.sink, d.state, d.attempts, d.last_error, "
                "t.domain, t.type FROM fleet_deliveries d JOIN fleet_transitions t "
                "USING (event_id) ORDER BY d.id"
            )
            return cur.fetchall()
