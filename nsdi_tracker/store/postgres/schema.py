"""The collector's schema, as registered migrations: each applied once, in order, inside a
transaction that holds an advisory lock, so that several collectors starting against one
database apply each exactly once. A migration is never edited once released.

Per-domain verdicts are the big table: a row per probe, round and domain. It is partitioned
by month of the round's end (`verdicts_2026_12`), each partition made when its first row
comes; a month is dropped whole when it is no longer wanted (see the README's Fleet section).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import psycopg

from nsdi_tracker.core.errors import StoreError
from nsdi_tracker.core.model import Verdict
from nsdi_tracker.judge.confirm import BLOCKED, RESOLVES


def _quoted(verdicts: frozenset[Verdict]) -> str:
    return ", ".join(f"'{v}'" for v in sorted(verdicts))  # the vocabulary's own words


_LOCK: Final = 727_001  # pg_advisory_xact_lock key: one migrating collector at a time

_M001: Final = (
    """CREATE TABLE probes (
        id serial PRIMARY KEY,
        name text NOT NULL UNIQUE,
        isp text, asn bigint, region text,
        interval real,
        first_seen timestamptz NOT NULL DEFAULT now(),
        last_seen timestamptz,
        last_finished timestamptz
    )""",
    """CREATE TABLE rounds (
        probe_id integer NOT NULL REFERENCES probes (id),
        round_id bigint NOT NULL,
        submission_id uuid NOT NULL UNIQUE,
        started timestamptz NOT NULL,
        finished timestamptz NOT NULL,
        status text NOT NULL,
        interval real,
        domains integer NOT NULL,
        resolvers jsonb NOT NULL,
        received timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (probe_id, round_id)
    )""",
    """CREATE TABLE verdicts (
        probe_id integer NOT NULL,
        round_id bigint NOT NULL,
        finished timestamptz NOT NULL,
        domain text NOT NULL,
        national text,
        resolvers jsonb NOT NULL,
        PRIMARY KEY (probe_id, round_id, domain, finished)
    ) PARTITION BY RANGE (finished)""",
    # each probe's newest verdicts; `blocked` and `resolving` say what the national verdict
    # means (judge.confirm's sets), so the fleet's count over a million rows reads booleans
    f"""CREATE TABLE latest (
        domain text NOT NULL,
        probe_id integer NOT NULL,  -- a probe's id (probes are never deleted); no FK trigger
        round_id bigint NOT NULL,   -- per row: a round writes 10,000 of them
        finished timestamptz NOT NULL,
        national text,
        resolvers jsonb NOT NULL,
        blocked boolean GENERATED ALWAYS AS (national IN ({_quoted(BLOCKED)})) STORED,
        resolving boolean GENERATED ALWAYS AS (national IN ({_quoted(RESOLVES)})) STORED,
        PRIMARY KEY (domain, probe_id)
    )""",
    "CREATE INDEX latest_blocked ON latest (domain) WHERE blocked",
    """CREATE TABLE transitions (
        event_id uuid PRIMARY KEY,
        probe_id integer NOT NULL REFERENCES probes (id),
        domain text,
        scope text NOT NULL,
        type text NOT NULL,
        from_verdict text,
        to_verdict text NOT NULL,
        confirmed_at timestamptz NOT NULL,
        event jsonb NOT NULL,
        received timestamptz NOT NULL DEFAULT now()
    )""",
    "CREATE INDEX transitions_domain ON transitions (domain, confirmed_at)",
    "CREATE INDEX transitions_confirmed ON transitions (confirmed_at)",
    # the signatures taken within the clock window: the same submission sent again is a replay
    """CREATE TABLE signatures (
        signature text PRIMARY KEY,
        expires timestamptz NOT NULL
    )""",
    "CREATE INDEX signatures_expires ON signatures (expires)",
)

# The fleet's own verdicts and transitions, and their outbox.
_M002: Final = (
    # what each probe has stored: the evaluator's cue that something new came in
    "ALTER TABLE probes ADD COLUMN rounds bigint NOT NULL DEFAULT 0",
    """CREATE TABLE fleet_state (
        domain text PRIMARY KEY,
        verdict text,
        networks text[] NOT NULL DEFAULT '{}',
        since timestamptz,
        candidate text,
        candidate_networks text[] NOT NULL DEFAULT '{}',
        count integer NOT NULL DEFAULT 0,
        candidate_since timestamptz
    )""",
    # the one row of the last evaluation: what it had seen (rounds stored, fresh probes)
    """CREATE TABLE fleet_evaluation (
        one boolean PRIMARY KEY DEFAULT TRUE CHECK (one),
        at timestamptz NOT NULL,
        rounds bigint NOT NULL,
        fresh integer[] NOT NULL
    )""",
    """CREATE TABLE fleet_transitions (
        event_id uuid PRIMARY KEY,
        domain text NOT NULL,
        type text NOT NULL,
        from_verdict text,
        to_verdict text NOT NULL,
        networks text[] NOT NULL,
        first_seen timestamptz NOT NULL,
        confirmed_at timestamptz NOT NULL,
        event jsonb NOT NULL
    )""",
    "CREATE INDEX fleet_transitions_confirmed ON fleet_transitions (confirmed_at)",
    "CREATE INDEX fleet_transitions_domain ON fleet_transitions (domain, confirmed_at)",
    """CREATE TABLE fleet_deliveries (
        id bigserial PRIMARY KEY,
        event_id uuid NOT NULL REFERENCES fleet_transitions (event_id),
        sink text NOT NULL,
        created timestamptz NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        next_attempt timestamptz NOT NULL,
        state text NOT NULL DEFAULT 'pending',
        last_error text,
        done_at timestamptz,
        UNIQUE (event_id, sink)
    )""",
    "CREATE INDEX fleet_deliveries_due ON fleet_deliveries (sink, next_attempt, id) "
    "WHERE state = 'pending'",
    # which collector sends a sink's events for now: one at a time, in order
    """CREATE TABLE fleet_sink_leases (
        sink text PRIMARY KEY,
        holder text NOT NULL,
        until timestamptz NOT NULL
    )""",
)

MIGRATIONS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("m001_fleet", _M001),
    ("m002_fleet_events", _M002),
)


async def migrate(conn: psycopg.AsyncConnection[Any]) -> list[str]:
    """Apply what is missing; returns the names applied. Refuses a database a newer
    collector migrated."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cursor = await conn.execute("SELECT name FROM schema_migrations")
        applied = {name for (name,) in await cursor.fetchall()}
        newer = sorted(applied - {name for name, _ in MIGRATIONS})
        if newer:
            raise StoreError(
                f"the collector's database was migrated by a newer nsdi-tracker ({newer[0]})"
            )
        done = []
        for name, statements in MIGRATIONS:
            if name in applied:
                continue
            for statement in statements:
                await conn.execute(statement.encode())
            await conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (name,))
            done.append(name)
        return done


async def partition(conn: psycopg.AsyncConnection[Any], moment: datetime) -> str:
    """The month partition of `verdicts` that holds `moment`, made if missing (inside the
    caller's transaction; the advisory lock keeps two collectors from racing on it)."""
    first = moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    after = (
        first.replace(year=first.year + 1, month=1)
        if first.month == 12
        else (first.replace(month=first.month + 1))
    )
    name = f"verdicts_{first:%Y_%m}"
    cursor = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,))
    exists = await cursor.fetchone()
    if exists is None or not exists[0]:
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK + 1,))
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF verdicts "  # name: digits only
            f"FOR VALUES FROM ('{first.isoformat()}') TO ('{after.isoformat()}')".encode()
        )
    return name
