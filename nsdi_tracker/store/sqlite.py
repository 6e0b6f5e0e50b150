"""The SQLite database: schema, migrations and every SQL statement of the project.

WAL mode, foreign keys on, synchronous FULL, and each round written in one transaction, so a
crash or a kill leaves either the whole round or none of it. Timestamps are ISO-8601 UTC text
and address lists JSON arrays, so `datasette` or `sqlite-utils` browse the file as it is.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import orjson
from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from nsdi_tracker.core.clock import iso, parse_iso
from nsdi_tracker.core.errors import StoreError, WriterLost
from nsdi_tracker.core.evidence import evidence
from nsdi_tracker.core.model import NATIONAL, RoundStatus
from nsdi_tracker.settings.resolvers import ResolverSpec
from nsdi_tracker.store.records import (
    BatchPlan,
    HealthPlan,
    ObsKey,
    RoundRecord,
    StoredTrack,
    TrackKey,
    TransitionRecord,
)

MIGRATION_SET = "nsdi-tracker"
migrations = Migrations(MIGRATION_SET)
_KNOWN: list[str] = []  # every migration this version knows, to refuse a newer database


Migration = Callable[[Database], None]


def migration(*, transactional: bool = True) -> Callable[[Migration], Migration]:
    """Register a schema migration, in order; `_KNOWN` lets a newer database be refused."""

    def register(fn: Migration) -> Migration:
        _KNOWN.append(fn.__name__)
        migrations(transactional=transactional)(fn)
        return fn

    return register


# The change log's columns, in order: the CSV header and the stable part of the JSON export.
CHANGELOG_COLUMNS = (
    "event_id", "confirmed_at", "first_seen", "domain", "label", "category", "scope", "role",
    "type", "from", "to", "rounds", "reason", "rcode", "nxdomain", "flags", "addresses",
    "authority", "reference_consensus", "reference_addresses",
)  # fmt: skip


# A streamed round's changes wait here (this connection's temporary database) until the round
# is committed; names, not ids, so a name new this round needs no id before the commit.
_STAGING = [
    "DROP TABLE IF EXISTS temp.s_watched",
    "CREATE TEMP TABLE s_watched (name TEXT PRIMARY KEY, label TEXT, category TEXT)",
    "DROP TABLE IF EXISTS temp.s_states",
    """CREATE TEMP TABLE s_states (domain TEXT, scope TEXT, verdict TEXT, since TEXT,
        candidate TEXT, candidate_count INTEGER, candidate_since TEXT)""",
    "DROP TABLE IF EXISTS temp.s_transitions",
    """CREATE TEMP TABLE s_transitions (event_id TEXT, domain TEXT, scope TEXT, type TEXT,
        from_verdict TEXT, to_verdict TEXT, first_seen TEXT, confirmed_at TEXT, rounds INTEGER,
        reason TEXT, rcode TEXT, nxdomain TEXT, flags TEXT, addresses TEXT, authority TEXT,
        reference_consensus TEXT, reference_addresses TEXT, event TEXT)""",
    "DROP TABLE IF EXISTS temp.s_deliveries",
    "CREATE TEMP TABLE s_deliveries (event_id TEXT, sink TEXT)",
    "DROP TABLE IF EXISTS temp.s_observations",
    """CREATE TEMP TABLE s_observations (domain TEXT, resolver TEXT, qtype TEXT, outcome TEXT,
        rcode TEXT, addresses TEXT, fingerprint TEXT, evidence TEXT)""",
]
_STAGING_CLEAR = [
    f"DELETE FROM temp.{table}"
    for table in ("s_watched", "s_states", "s_transitions", "s_deliveries", "s_observations")
]
# The staged round into the database, in the commit's transaction (`:round`, `:at`).
_COMMIT = [
    """INSERT INTO states (domain_id, scope, verdict, since, candidate, candidate_count,
        candidate_since, round_id)
    SELECT d.id, s.scope, s.verdict, s.since, s.candidate, s.candidate_count, s.candidate_since,
        :round FROM temp.s_states s JOIN domains d ON d.name = s.domain WHERE true
    ON CONFLICT (domain_id, scope) DO UPDATE SET verdict = excluded.verdict,
        since = excluded.since, candidate = excluded.candidate,
        candidate_count = excluded.candidate_count, candidate_since = excluded.candidate_since,
        round_id = excluded.round_id""",
    """INSERT INTO transitions (event_id, round_id, domain_id, scope, type, from_verdict,
        to_verdict, first_seen, confirmed_at, rounds, reason, rcode, nxdomain, flags, addresses,
        authority, reference_consensus, reference_addresses, event)
    SELECT s.event_id, :round, d.id, s.scope, s.type, s.from_verdict, s.to_verdict,
        s.first_seen, s.confirmed_at, s.rounds, s.reason, s.rcode, s.nxdomain, s.flags,
        s.addresses, s.authority, s.reference_consensus, s.reference_addresses, s.event
    FROM temp.s_transitions s JOIN domains d ON d.name = s.domain ORDER BY s.rowid""",
    """INSERT INTO deliveries (transition_id, sink, status, created, next_attempt)
    SELECT t.id, s.sink, 'pending', :at, :at
    FROM temp.s_deliveries s JOIN transitions t ON t.event_id = s.event_id ORDER BY s.rowid""",
    """INSERT INTO observations (round_id, domain_id, resolver_id, qtype, observed_at, outcome,
        rcode, addresses, fingerprint, evidence)
    SELECT :round, d.id, r.id, s.qtype, :at, s.outcome, s.rcode, s.addresses, s.fingerprint,
        s.evidence
    FROM temp.s_observations s JOIN domains d ON d.name = s.domain
    JOIN resolvers r ON r.name = s.resolver ORDER BY s.rowid""",
    """UPDATE rounds SET headline = (
        SELECT json_group_object(COALESCE(v, 'new'), n) FROM (
            SELECT s.verdict AS v, COUNT(*) AS n FROM domains d
            LEFT JOIN states s ON s.domain_id = d.id AND s.scope = 'national'
            WHERE d.watched = 1 GROUP BY s.verdict))
    WHERE id = :round""",
    """INSERT INTO latest (domain_id, resolver_id, qtype, fingerprint, observation_id)
    SELECT domain_id, resolver_id, qtype, fingerprint, id FROM observations
    WHERE round_id = :round
    ON CONFLICT DO UPDATE SET fingerprint = excluded.fingerprint,
        observation_id = excluded.observation_id""",
]


@migration()
def m001_initial(db: Database) -> None:
    for statement in _SCHEMA_1:
        db.execute(statement)


_SCHEMA_1 = [
    """CREATE TABLE resolvers (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL,
        transport TEXT NOT NULL,
        address TEXT NOT NULL,
        first_seen TEXT NOT NULL
    )""",
    """CREATE TABLE domains (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        label TEXT,
        category TEXT,
        watched INTEGER NOT NULL DEFAULT 1,  -- on the current watchlists
        first_seen TEXT NOT NULL
    )""",
    """CREATE TABLE rounds (
        id INTEGER PRIMARY KEY,
        started TEXT NOT NULL,
        finished TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('ok', 'partial', 'offline')),
        domains INTEGER NOT NULL,
        queries INTEGER NOT NULL,
        transitions INTEGER NOT NULL,
        outcomes TEXT NOT NULL,     -- JSON: answers by outcome
        health TEXT NOT NULL,       -- JSON: per resolver controls and counters
        negative_name TEXT NOT NULL
    )""",
    "CREATE INDEX rounds_finished ON rounds (finished)",
    """CREATE TABLE states (
        domain_id INTEGER NOT NULL REFERENCES domains (id),
        scope TEXT NOT NULL,        -- 'national' (the headline) or a resolver name
        verdict TEXT,               -- confirmed; NULL until the first one is
        since TEXT,
        candidate TEXT,             -- a different verdict waiting for confirmation
        candidate_count INTEGER NOT NULL DEFAULT 0,
        candidate_since TEXT,
        round_id INTEGER NOT NULL REFERENCES rounds (id),  -- the round that last changed it
        PRIMARY KEY (domain_id, scope)
    ) WITHOUT ROWID""",
    """CREATE TABLE transitions (
        id INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL UNIQUE,
        round_id INTEGER NOT NULL REFERENCES rounds (id),
        domain_id INTEGER NOT NULL REFERENCES domains (id),
        scope TEXT NOT NULL,
        type TEXT NOT NULL,
        from_verdict TEXT,
        to_verdict TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        confirmed_at TEXT NOT NULL,
        rounds INTEGER NOT NULL,
        reason TEXT NOT NULL,
        rcode TEXT NOT NULL,
        nxdomain TEXT NOT NULL,
        flags TEXT NOT NULL,               -- JSON array
        addresses TEXT NOT NULL,           -- JSON array
        authority TEXT NOT NULL,
        reference_consensus TEXT NOT NULL,
        reference_addresses TEXT NOT NULL, -- JSON array
        event TEXT NOT NULL                -- JSON: the event as delivered, with its evidence
    )""",
    "CREATE INDEX transitions_confirmed ON transitions (confirmed_at)",
    "CREATE INDEX transitions_domain ON transitions (domain_id, confirmed_at)",
    """CREATE TABLE observations (
        id INTEGER PRIMARY KEY,
        round_id INTEGER NOT NULL REFERENCES rounds (id),
        domain_id INTEGER NOT NULL REFERENCES domains (id),
        resolver_id INTEGER NOT NULL REFERENCES resolvers (id),
        qtype TEXT NOT NULL,
        observed_at TEXT NOT NULL,
        outcome TEXT NOT NULL,
        rcode TEXT,
        addresses TEXT NOT NULL,           -- JSON array
        fingerprint TEXT NOT NULL,
        evidence TEXT NOT NULL             -- JSON
    )""",
    "CREATE INDEX observations_round ON observations (round_id)",
    "CREATE INDEX observations_domain ON observations (domain_id, resolver_id, qtype)",
    # The last stored observation per (domain, resolver, type): a reply equal to it is not stored.
    """CREATE TABLE latest (
        domain_id INTEGER NOT NULL REFERENCES domains (id),
        resolver_id INTEGER NOT NULL REFERENCES resolvers (id),
        qtype TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        observation_id INTEGER NOT NULL REFERENCES observations (id),
        PRIMARY KEY (domain_id, resolver_id, qtype)
    ) WITHOUT ROWID""",
    "CREATE INDEX latest_observation ON latest (observation_id)",
    """CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY,
        transition_id INTEGER NOT NULL REFERENCES transitions (id),
        sink TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        created TEXT NOT NULL,
        next_attempt TEXT NOT NULL,
        last_attempt TEXT,
        last_error TEXT,
        delivered TEXT,
        UNIQUE (transition_id, sink)
    )""",
    "CREATE INDEX deliveries_due ON deliveries (status, next_attempt)",
    """CREATE VIEW current_status AS
        SELECT d.name AS domain, d.label, d.category, s.scope,
               COALESCE(r.role, 'headline') AS role,
               s.verdict, s.since, s.candidate AS pending, s.candidate_count AS pending_rounds,
               s.candidate_since AS pending_since, d.watched
        FROM states s
        JOIN domains d ON d.id = s.domain_id
        LEFT JOIN resolvers r ON r.name = s.scope""",
    """CREATE VIEW changelog AS
        SELECT t.event_id, t.confirmed_at, t.first_seen, d.name AS domain, d.label, d.category,
               t.scope, COALESCE(r.role, 'headline') AS role, t.type,
               t.from_verdict AS "from", t.to_verdict AS "to", t.rounds, t.reason, t.rcode,
               t.nxdomain, t.flags, t.addresses, t.authority, t.reference_consensus,
               t.reference_addresses, t.id AS transition_id
        FROM transitions t
        JOIN domains d ON d.id = t.domain_id
        LEFT JOIN resolvers r ON r.name = t.scope""",
]


@migration(transactional=False)
def m002_timed_out_rounds(db: Database) -> None:
    """Rounds may end in 'timeout': the daemon cut off a round that overran round_timeout.

    SQLite cannot alter a CHECK constraint, so the table is rebuilt, with foreign keys off
    (the tables that point at rounds keep pointing at the new one) inside one transaction.
    """
    (sql,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'rounds'").fetchone()
    if "'timeout'" in sql:  # rebuilt, but killed before the migration was recorded
        return
    db.execute("PRAGMA foreign_keys = OFF")
    try:
        with db.atomic():
            db.execute(_ROUNDS_2.replace("CREATE TABLE rounds", "CREATE TABLE rounds_new"))
            db.execute("INSERT INTO rounds_new SELECT * FROM rounds")
            db.execute("DROP TABLE rounds")
            db.execute("ALTER TABLE rounds_new RENAME TO rounds")
            db.execute("CREATE INDEX rounds_finished ON rounds (finished)")
            if db.execute("PRAGMA foreign_key_check").fetchone() is not None:
                raise StoreError("m002: foreign keys broken by the rounds rebuild; rolled back")
    finally:
        db.execute("PRAGMA foreign_keys = ON")


_ROUNDS_2 = """CREATE TABLE rounds (
        id INTEGER PRIMARY KEY,
        started TEXT NOT NULL,
        finished TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('ok', 'partial', 'offline', 'timeout')),
        domains INTEGER NOT NULL,
        queries INTEGER NOT NULL,
        transitions INTEGER NOT NULL,
        outcomes TEXT NOT NULL,     -- JSON: answers by outcome
        health TEXT NOT NULL,       -- JSON: per resolver controls and counters
        negative_name TEXT NOT NULL
    )"""


@migration()
def m003_screen_indexes(db: Database) -> None:
    """What a dashboard frame of a million-name database reads without scanning it: the
    states worth a look, the changes that are not baselines, the watched names in screen
    order, and each round's headline counts."""
    db.execute("ALTER TABLE rounds ADD COLUMN headline TEXT")  # JSON: verdict -> domains
    db.execute(
        "CREATE INDEX states_notable ON states (domain_id) "
        "WHERE verdict IS NOT 'present' OR candidate IS NOT NULL"
    )
    db.execute(
        "CREATE INDEX transitions_changes ON transitions (round_id) WHERE type != 'baseline'"
    )
    db.execute(
        "CREATE INDEX domains_shown ON domains (COALESCE(category, '~'), name) WHERE watched = 1"
    )


@migration(transactional=False)
def m004_resolver_health(db: Database) -> None:
    """A resolver's health is tracked once, not per name: `resolver_states` holds each
    resolver's confirmed up/down (and `national`'s: down when every national resolver is),
    and its transitions are change-log rows without a domain, so `transitions.domain_id` may
    be NULL. SQLite cannot drop a NOT NULL, so `transitions` is rebuilt with its ids (the
    outbox points at them) and every recorded row as it was, foreign keys off, in one
    transaction; the change-log view is made anew to keep the domainless rows."""
    (sql,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'transitions'").fetchone()
    db.execute("PRAGMA foreign_keys = OFF")
    try:
        with db.atomic():
            db.execute("DROP VIEW IF EXISTS changelog")
            if "domain_id INTEGER NOT NULL" in sql:  # not yet rebuilt (a kill can come later)
                db.execute(_TRANSITIONS_4.replace("TABLE transitions", "TABLE transitions_new"))
                db.execute("INSERT INTO transitions_new SELECT * FROM transitions")
                db.execute("DROP TABLE transitions")
                db.execute("ALTER TABLE transitions_new RENAME TO transitions")
                db.execute("CREATE INDEX transitions_confirmed ON transitions (confirmed_at)")
                db.execute(
                    "CREATE INDEX transitions_domain ON transitions (domain_id, confirmed_at)"
                )
                db.execute(
                    "CREATE INDEX transitions_changes ON transitions (round_id) "
                    "WHERE type != 'baseline'"
                )
            db.execute(_CHANGELOG_4)
            db.execute(
                """CREATE TABLE IF NOT EXISTS resolver_states (
                    scope TEXT PRIMARY KEY,  -- a resolver's name, or 'national'
                    state TEXT,              -- confirmed 'up' or 'down'; NULL until one is
                    since TEXT,
                    candidate TEXT,
                    candidate_count INTEGER NOT NULL DEFAULT 0,
                    candidate_since TEXT,
                    round_id INTEGER NOT NULL REFERENCES rounds (id)
                ) WITHOUT ROWID"""
            )
            db.execute(
                """CREATE VIEW IF NOT EXISTS resolver_status AS
                SELECT s.scope AS resolver, COALESCE(r.role, 'headline') AS role, s.state,
                       s.since, s.candidate AS pending, s.candidate_count AS pending_rounds,
                       s.candidate_since AS pending_since
                FROM resolver_states s LEFT JOIN resolvers r ON r.name = s.scope"""
            )
            if db.execute("PRAGMA foreign_key_check").fetchone() is not None:
                raise StoreError(
                    "m004: foreign keys broken by the transitions rebuild; rolled back"
                )
    finally:
        db.execute("PRAGMA foreign_keys = ON")


def _m001(prefix: str) -> str:
    """One statement of the frozen version-1 schema, found by how it starts."""
    (statement,) = [q for q in _SCHEMA_1 if q.startswith(prefix)]
    return statement


def _changed(statement: str, old: str, new: str) -> str:
    assert old in statement, old  # m001 is frozen: this holds for good
    return statement.replace(old, new)


# Version 1's transitions and change-log view, but a row may have no domain.
_TRANSITIONS_4 = _changed(
    _m001("CREATE TABLE transitions"),
    "domain_id INTEGER NOT NULL REFERENCES domains (id),",
    "domain_id INTEGER REFERENCES domains (id),  -- NULL: a resolver's own health",
)
_CHANGELOG_4 = _changed(
    _m001("CREATE VIEW changelog"), "JOIN domains d ON", "LEFT JOIN domains d ON"
)


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    sink: str
    attempts: int
    created: datetime
    event: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ChangelogFilter:
    since: datetime | None = None
    until: datetime | None = None
    domain: str | None = None
    scope: str | None = None
    type: str | None = None

    def where(self, prefix: str = "", after: int = 0) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, op, value in (
            ("transition_id", ">", after or None),
            ("confirmed_at", ">=", self.since and iso(self.since)),
            ("confirmed_at", "<", self.until and iso(self.until)),
            ("domain", "=", self.domain),
            ("scope", "=", self.scope),
            ("type", "=", self.type),
        ):
            if value is not None:
                clauses.append(f"{prefix}{column} {op} ?")
                params.append(value)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


class Store:
    """One open database. Not thread-safe: one owner, the event loop's thread."""

    PRUNE_EVERY = timedelta(hours=1)

    def __init__(self, db: Database, path: Path, lock: TextIO | None = None) -> None:
        self.db = db
        self.path = path
        self._lock = lock
        self._pruned_at: datetime | None = None
        self._identity: tuple[int, int] | None = None  # the file's (device, inode) at open
        self._rescued: Path | None = None

    def prune_due(self, now: datetime) -> bool:
        """Pruning scans the old rows: once an hour is enough."""
        if self._pruned_at is not None and now - self._pruned_at < self.PRUNE_EVERY:
            return False
        self._pruned_at = now
        return True

    @classmethod
    def open(cls, path: Path) -> Store:
        """Open for writing, creating the file and upgrading its schema as needed."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            lock = _writer_lock(path)
        except OSError as exc:
            raise StoreError(f"{path}: cannot open database: {_unwritable(path) or exc}") from None
        try:
            conn = _writer_connection(path)
        except StoreError:
            lock.close()
            raise
        store = cls(Database(conn), path, lock)
        try:
            store._refuse_newer()
            migrations.apply(store.db)
            store._identity = _identity(path)
        except StoreError:
            store.close()
            raise
        except sqlite3.DatabaseError as exc:
            store.close()
            raise StoreError(f"{path}: not a usable nsdi-tracker database: {exc}") from None
        return store

    def guard(self, *, reconnect: bool = False) -> list[str]:
        """Before a round writes: is this still the database at its path, does this process
        still hold its writer lock, and (after a failed write, `reconnect`) can a fresh
        connection write, so that a fixed permission or a remounted file system is picked up
        without a restart? Raises StoreError (WriterLost when another writer took over);
        returns what it repaired, for the log."""
        self._check_identity()
        notes = self._check_lock()
        if reconnect:
            conn = _writer_connection(self.path)
            self.db.conn.close()
            self.db = Database(conn)
            notes.append("database connection opened again after a failed write")
        return notes

    def _check_identity(self) -> None:
        if self._identity is None:
            return
        try:
            now: tuple[int, int] | None = _identity(self.path)
        except FileNotFoundError:
            now = None
        if now == self._identity:
            return
        what = "deleted" if now is None else "replaced by another file"
        if self._rescued is None:
            self._rescued = self._rescue()
        saved = (
            f"what it held is saved in {self._rescued}"
            if self._rescued.exists()
            else "and what it held could not be saved"
        )
        raise StoreError(
            f"{self.path}: the database file was {what} while the tracker ran; nothing more "
            f"is recorded ({saved}; restart the tracker to go on)"
        )

    def _rescue(self) -> Path:
        """Copy the still-open, unlinked database beside its old path, once."""
        stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
        target = self.path.with_name(f"{self.path.name}.rescued-{stamp}")
        with contextlib.suppress(OSError, StoreError, sqlite3.Error):
            target.parent.mkdir(parents=True, exist_ok=True)
            self.backup(target)
        return target

    def _check_lock(self) -> list[str]:
        if self._lock is None:
            return []
        lock_path = self.path.with_name(self.path.name + ".lock")
        held = os.fstat(self._lock.fileno())
        try:
            st = lock_path.stat()
            if (st.st_dev, st.st_ino) == (held.st_dev, held.st_ino):
                return []
        except FileNotFoundError:
            pass
        try:
            fresh = _writer_lock(self.path)
        except StoreError as exc:
            raise WriterLost(
                f"{exc}: it took the database after this one's lock file {lock_path} was "
                "deleted or replaced; this one stops writing"
            ) from None
        except OSError as exc:
            raise StoreError(f"{lock_path}: cannot take the writer lock again: {exc}") from None
        self._lock.close()
        self._lock = fresh
        return [f"the writer lock {lock_path} was deleted or replaced; taken again"]

    @classmethod
    def open_readonly(cls, path: Path) -> Store:
        """Open an existing database for reading only; never writes, never blocks the writer."""
        if not path.is_file():
            raise StoreError(f"{path}: no database here yet (`nsdi-tracker run` creates it)")
        try:
            conn = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
            )
            conn.execute("PRAGMA busy_timeout = 10000")
            store = cls(Database(conn), path)
            store._refuse_newer()
            if migrations.pending(store.db):
                raise StoreError(
                    f"{path}: the database schema is older than this version; "
                    "run `nsdi-tracker run --once` (or the daemon) once to upgrade it"
                )
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path}: not a usable nsdi-tracker database: {exc}") from None
        return store

    def _refuse_newer(self) -> None:
        known = set(_KNOWN)
        applied = {m.name for m in migrations.applied(self.db)}
        newer = sorted(applied - known)
        if newer:
            raise StoreError(
                f"{self.path}: written by a newer nsdi-tracker (unknown schema migration "
                f"{newer[0]!r}); upgrade nsdi-tracker to read it"
            )

    def close(self) -> None:
        self.db.conn.close()
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading what the next round needs -------------------------------------------------

    def lookup(
        self, domains: Sequence[str]
    ) -> tuple[dict[TrackKey, StoredTrack], dict[ObsKey, str]]:
        """The tracks and last stored fingerprints of a batch of names."""
        names = _json(list(domains))
        tracks = {
            (name, scope): StoredTrack(verdict, since, cand, count, cand_since)
            for name, scope, verdict, since, cand, count, cand_since in self.db.execute(
                "SELECT d.name, s.scope, s.verdict, s.since, s.candidate, s.candidate_count, "
                "s.candidate_since FROM domains d JOIN states s ON s.domain_id = d.id "
                "WHERE d.name IN (SELECT value FROM json_each(?))",
                (names,),
            )
        }
        latest = {
            (d, r, q): fp
            for d, r, q, fp in self.db.execute(
                "SELECT d.name, r.name, l.qtype, l.fingerprint FROM domains d "
                "JOIN latest l ON l.domain_id = d.id JOIN resolvers r ON r.id = l.resolver_id "
                "WHERE d.name IN (SELECT value FROM json_each(?))",
                (names,),
            )
        }
        return tracks, latest

    def lookup_health(self) -> dict[str, StoredTrack]:
        """Every resolver's (and `national`'s) health track."""
        return {
            scope: StoredTrack(state, since, cand, count, cand_since)
            for scope, state, since, cand, count, cand_since in self.db.execute(
                "SELECT scope, state, since, candidate, candidate_count, candidate_since "
                "FROM resolver_states"
            )
        }

    # -- writing a round ---------------------------------------------------------------------

    def begin_round(self) -> int:
        """Empty staging tables for a streamed round, and the id the round will have (this
        process holds the writer lock, so nobody else takes it). The tables are temporary
        (this connection's own): staging takes no lock on the database, and a round that never
        commits leaves nothing behind."""
        for statement in _STAGING:
            self.db.execute(statement)
        self.db.conn.commit()
        (top,) = self.db.execute("SELECT COALESCE(MAX(id), 0) FROM rounds").fetchone()
        return int(top) + 1

    def stage(self, plan: BatchPlan) -> None:
        """Add one batch's changes to the staging tables."""
        conn = self.db.conn
        with conn:
            conn.executemany("INSERT OR IGNORE INTO temp.s_watched VALUES (?, ?, ?)", plan.watched)
            conn.executemany(
                "INSERT INTO temp.s_states VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    (
                        domain, scope, _opt(t.verdict), _opt_time(t.since), _opt(t.candidate),
                        t.count, _opt_time(t.candidate_since),
                    )
                    for (domain, scope), t in plan.tracks.items()
                ),
            )  # fmt: skip
            conn.executemany(
                "INSERT INTO temp.s_transitions VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (_transition_columns(tr) for tr in plan.transitions),
            )
            conn.executemany(
                "INSERT INTO temp.s_deliveries VALUES (?, ?)",
                ((tr.event_id, sink) for tr in plan.transitions for sink in tr.sinks),
            )
            conn.executemany(
                "INSERT INTO temp.s_observations VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (
                        obs.qname, obs.resolver, obs.qtype, str(obs.outcome), obs.rcode,
                        _json(list(obs.addresses)), fp, _json(evidence(obs)),
                    )
                    for obs, fp in plan.observations
                ),
            )  # fmt: skip

    def commit_round(
        self,
        round_id: int,
        record: RoundRecord,
        resolvers: Sequence[ResolverSpec],
        health: HealthPlan | None = None,
    ) -> None:
        """Write the staged round (states, transitions, outbox, observations) and the
        resolvers' health atomically, as round `round_id` (from begin_round: a clash fails
        and rolls back). A resolver's transitions come first in the change log: they explain
        the round."""
        r = record
        at = iso(r.finished)
        with self.db.atomic():
            self._sync_resolvers(resolvers, at)
            self._sync_domains(at)
            self.db.execute(
                "INSERT INTO rounds (id, started, finished, status, domains, queries, "
                "transitions, outcomes, health, negative_name) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    round_id, iso(r.started), at, r.status, r.domains, r.queries, r.transitions,
                    _json(r.outcomes), _json(r.health), r.negative_name,
                ),
            )  # fmt: skip
            if health is not None:
                self._write_health(round_id, health, at)
            for statement in _COMMIT:
                self.db.execute(statement, {"round": round_id, "at": at})
        for statement in _STAGING_CLEAR:
            self.db.execute(statement)
        self.db.conn.commit()

    def _write_health(self, round_id: int, plan: HealthPlan, at: str) -> None:
        conn = self.db.conn
        # A resolver taken out of the config is no longer down (or up): its verdicts, kept
        # with the domains' other states, are no longer shown as held.
        conn.executemany("DELETE FROM resolver_states WHERE scope = ?", ((s,) for s in plan.gone))
        conn.executemany(
            "INSERT INTO resolver_states (scope, state, since, candidate, candidate_count, "
            "candidate_since, round_id) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (scope) DO UPDATE SET state = excluded.state, since = excluded.since, "
            "candidate = excluded.candidate, candidate_count = excluded.candidate_count, "
            "candidate_since = excluded.candidate_since, round_id = excluded.round_id",
            (
                (
                    scope, _opt(t.verdict), _opt_time(t.since), _opt(t.candidate), t.count,
                    _opt_time(t.candidate_since), round_id,
                )
                for scope, t in plan.tracks.items()
            ),
        )  # fmt: skip
        conn.executemany(
            "INSERT INTO transitions (event_id, round_id, domain_id, scope, type, from_verdict, "
            "to_verdict, first_seen, confirmed_at, rounds, reason, rcode, nxdomain, flags, "
            "addresses, authority, reference_consensus, reference_addresses, event) "
            "VALUES (?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ((tr.event_id, round_id, *_transition_columns(tr)[2:]) for tr in plan.transitions),
        )
        conn.executemany(
            "INSERT INTO deliveries (transition_id, sink, status, created, next_attempt) "
            "SELECT id, ?, 'pending', ?, ? FROM transitions WHERE event_id = ?",
            ((sink, at, at, tr.event_id) for tr in plan.transitions for sink in tr.sinks),
        )

    def record_timeout(
        self, started: datetime, finished: datetime, *, domains: int, queries: int
    ) -> int:
        """A round the daemon cut off: nothing it measured is kept, but that it ran is."""
        with self.db.atomic():
            return self._insert(
                "INSERT INTO rounds (started, finished, status, domains, queries, transitions, "
                "outcomes, health, negative_name) "
                "VALUES (?, ?, ?, ?, ?, 0, '{}', '{}', '')",
                (iso(started), iso(finished), RoundStatus.TIMEOUT.value, domains, queries),
            )

    def _insert(self, sql: str, params: Sequence[Any]) -> int:
        cursor = self.db.execute(sql, params)
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def _sync_resolvers(self, resolvers: Sequence[ResolverSpec], at: str) -> None:
        """Add the configured resolvers the database does not know; update changed ones (the
        staged rows name their resolver, and the commit joins on the name)."""
        have = {
            name: (role, transport, address)
            for name, role, transport, address in self.db.execute(
                "SELECT name, role, transport, address FROM resolvers"
            )
        }
        for spec in resolvers:
            now = (str(spec.role), str(spec.transport), spec.address)
            if spec.name not in have:
                self.db.execute(
                    "INSERT INTO resolvers (name, role, transport, address, first_seen) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (spec.name, *now, at),
                )
            elif have[spec.name] != now:
                self.db.execute(
                    "UPDATE resolvers SET role = ?, transport = ?, address = ? WHERE name = ?",
                    (*now, spec.name),
                )

    def _sync_domains(self, at: str) -> None:
        """Insert the round's new names, update changed labels, flag what left or rejoined
        the watchlists: set-wise from the staged names, so a million names cost no Python."""
        self.db.execute(
            "INSERT INTO domains (name, label, category, watched, first_seen) "
            "SELECT name, label, category, 1, ? FROM temp.s_watched WHERE true "
            "ON CONFLICT (name) DO UPDATE SET label = excluded.label, "
            "category = excluded.category, watched = 1 "
            "WHERE label IS NOT excluded.label OR category IS NOT excluded.category "
            "OR watched != 1",
            (at,),
        )
        self.db.execute(
            "UPDATE domains SET watched = 0 WHERE watched = 1 "
            "AND name NOT IN (SELECT name FROM temp.s_watched)"
        )

    def prune(self, before: datetime) -> int:
        """Delete raw observations older than `before`, except the latest of each series
        (the baseline the next reply is compared with). Transitions are never pruned."""
        row = self.db.execute(
            "SELECT MIN(id) FROM rounds WHERE finished >= ?", (iso(before),)
        ).fetchone()
        if row is None or row[0] is None:
            return 0
        with self.db.atomic():
            cursor = self.db.execute(
                "DELETE FROM observations WHERE round_id < ? AND NOT EXISTS "
                "(SELECT 1 FROM latest l WHERE l.observation_id = observations.id)",
                (row[0],),
            )
        return cursor.rowcount

    # -- the outbox --------------------------------------------------------------------------

    def due(self, now: datetime, sinks: Iterable[str], limit: int = 100) -> list[Delivery]:
        names = sorted(set(sinks))
        if not names:
            return []
        marks = ", ".join("?" * len(names))
        rows = self.db.execute(
            "SELECT dl.id, dl.sink, dl.attempts, dl.created, t.event FROM deliveries dl "
            "JOIN transitions t ON t.id = dl.transition_id "
            f"WHERE dl.status = 'pending' AND dl.next_attempt <= ? AND dl.sink IN ({marks}) "
            "ORDER BY dl.id LIMIT ?",
            (iso(now), *names, limit),
        )
        return [Delivery(i, s, a, parse_iso(c), json.loads(e)) for i, s, a, c, e in rows]

    def next_due(self, sinks: Iterable[str]) -> datetime | None:
        names = sorted(set(sinks))
        if not names:
            return None
        marks = ", ".join("?" * len(names))
        row = self.db.execute(
            "SELECT MIN(next_attempt) FROM deliveries "
            f"WHERE status = 'pending' AND sink IN ({marks})",
            names,
        ).fetchone()
        return parse_iso(row[0]) if row and row[0] else None

    def mark_delivered(self, delivery_id: int, at: datetime) -> None:
        self._update_delivery(
            "status = 'delivered', attempts = attempts + 1, last_attempt = ?, delivered = ?, "
            "last_error = NULL",
            (iso(at), iso(at)),
            delivery_id,
        )

    def mark_retry(self, delivery_id: int, at: datetime, next_at: datetime, error: str) -> None:
        self._update_delivery(
            "attempts = attempts + 1, last_attempt = ?, next_attempt = ?, last_error = ?",
            (iso(at), iso(next_at), error),
            delivery_id,
        )

    def mark_failed(self, delivery_id: int, at: datetime, error: str) -> None:
        self._update_delivery(
            "status = 'failed', attempts = attempts + 1, last_attempt = ?, last_error = ?",
            (iso(at), error),
            delivery_id,
        )

    def _update_delivery(self, assignments: str, params: Sequence[Any], delivery_id: int) -> None:
        with self.db.atomic():
            self.db.execute(
                f"UPDATE deliveries SET {assignments} WHERE id = ?", (*params, delivery_id)
            )

    def backlog(self) -> dict[str, int]:
        counts = dict(self.db.execute("SELECT status, COUNT(*) FROM deliveries GROUP BY status"))
        return {s: counts.get(s, 0) for s in ("pending", "delivered", "failed")}

    # -- what people read --------------------------------------------------------------------

    def last_round(self, statuses: Sequence[str] = ()) -> dict[str, Any] | None:
        """The latest round, or the latest with one of `statuses`."""
        where = f" WHERE status IN ({', '.join('?' * len(statuses))})" if statuses else ""
        cursor = self.db.execute(
            f"SELECT * FROM rounds{where} ORDER BY id DESC LIMIT 1", tuple(statuses)
        )
        row = cursor.fetchone()
        return _decode(_row_dict(cursor, row)) if row else None

    def status(
        self,
        *,
        include_unwatched: bool = False,
        domain: str | None = None,
        domains: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        clauses = ([] if include_unwatched or domain else ["watched = 1"]) + (
            ["domain = ?"] if domain else []
        )
        params: list[Any] = [domain] if domain else []
        if domains is not None:
            clauses.append("domain IN (SELECT value FROM json_each(?))")
            params.append(_json(list(domains)))
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        cursor = self.db.execute(
            f"SELECT * FROM current_status{where} ORDER BY domain, scope != ?, scope",
            (*params, NATIONAL),
        )
        rows = [_row_dict(cursor, row) for row in cursor]
        down = self.down_since()
        for row in rows:  # a verdict on a resolver that is down is held, not measured
            row["held_since"] = down.get(row["scope"])
        return rows

    def down_since(self) -> dict[str, str]:
        """Since when each resolver that is down (and `national`, if every national one is)
        has been: the verdicts in those scopes are held from before."""
        return dict(
            self.db.execute("SELECT scope, since FROM resolver_states WHERE state = 'down'")
        )

    def resolver_up(self) -> dict[str, bool]:
        """Each resolver's (and `national`'s) confirmed health: True up, False down."""
        return {
            scope: state == "up"
            for scope, state in self.db.execute(
                "SELECT scope, state FROM resolver_states WHERE state IS NOT NULL"
            )
        }

    def resolver_status(self) -> list[dict[str, Any]]:
        """Each resolver's confirmed health (up or down), its pending change, `national`
        first."""
        cursor = self.db.execute(
            "SELECT * FROM resolver_status ORDER BY resolver != ?, resolver", (NATIONAL,)
        )
        return [_row_dict(cursor, row) for row in cursor]

    def verdict_series(self, *, thin: bool) -> list[tuple[str, str, str]]:
        """(domain, scope, verdict) of every confirmed verdict of the watched domains, by
        name; `thin`: only those worth a series of their own, not `present` or `absent` (for
        metrics of huge watchlists: a top-million list holds hundreds of thousands of names
        that exist nowhere)."""
        skip = " AND s.verdict NOT IN ('present', 'absent')" if thin else ""
        return list(
            self.db.execute(
                "SELECT d.name, s.scope, s.verdict FROM states s "
                "JOIN domains d ON d.id = s.domain_id "
                f"WHERE d.watched = 1 AND s.verdict IS NOT NULL{skip} ORDER BY d.name, s.scope"
            )
        )

    def headline_totals(self) -> dict[str | None, int]:
        """Watched domains by confirmed headline verdict (None: no verdict yet), as the last
        committed round counted them (or counted now, for a database from before that)."""
        row = self.db.execute(
            "SELECT headline FROM rounds WHERE headline IS NOT NULL ORDER BY id DESC LIMIT 1"
        ).fetchone()
        if row is not None:
            return {(None if v == "new" else v): n for v, n in json.loads(row[0]).items()}
        return dict(
            self.db.execute(
                "SELECT s.verdict, COUNT(*) FROM domains d LEFT JOIN states s "
                "ON s.domain_id = d.id AND s.scope = ? WHERE d.watched = 1 GROUP BY s.verdict",
                (NATIONAL,),
            ).fetchall()
        )

    def first_domains(self, limit: int, since_round: int, rank: Sequence[str]) -> list[str]:
        """The `limit` watched domains a screen shows first, chosen through indexes so a
        frame of a million-name database reads a screenful: those worth a look (a headline
        that is not `present`, a pending change in any scope, a headline change other than a
        baseline after round `since_round`) by headline verdict in `rank` order, pending
        first, then category and name; then the others by category and name."""
        order = " ".join(f"WHEN ? THEN {i}" for i in range(len(rank)))
        worth = [
            name
            for (name,) in self.db.execute(
                "WITH worth (id) AS ("
                "  SELECT domain_id FROM states INDEXED BY states_notable"
                "  WHERE verdict IS NOT 'present' OR candidate IS NOT NULL"
                "  UNION SELECT domain_id FROM transitions INDEXED BY transitions_changes"
                "  WHERE type != 'baseline' AND round_id > ? AND scope = ?) "
                "SELECT d.name FROM worth w JOIN domains d ON d.id = w.id "
                "LEFT JOIN states s ON s.domain_id = d.id AND s.scope = ? "
                f"WHERE d.watched = 1 ORDER BY CASE s.verdict {order} ELSE {len(rank)} END, "
                "s.candidate IS NULL, COALESCE(d.category, '~'), d.name LIMIT ?",
                (since_round, NATIONAL, NATIONAL, *rank, limit),
            )
        ]
        if len(worth) >= limit:
            return worth
        taken = set(worth)
        rest = self.db.execute(
            "SELECT name FROM domains INDEXED BY domains_shown WHERE watched = 1 "
            "ORDER BY COALESCE(category, '~'), name LIMIT ?",
            (limit + len(worth),),
        )
        return worth + [n for (n,) in rest if n not in taken][: limit - len(worth)]

    @contextlib.contextmanager
    def read_transaction(self) -> Iterator[None]:
        """Several reads that see one state of the database (and then let go of it, so
        that a reader never holds back the writer's checkpoints)."""
        self.db.conn.execute("BEGIN")
        try:
            yield
        finally:
            self.db.conn.execute("ROLLBACK")

    def recent_rounds(self, n: int) -> list[dict[str, Any]]:
        """The last `n` rounds, oldest first, without their health."""
        cursor = self.db.execute(
            "SELECT id, started, finished, status FROM rounds ORDER BY id DESC LIMIT ?", (n,)
        )
        return [_row_dict(cursor, row) for row in reversed(cursor.fetchall())]

    def round_health_since(self, since: datetime) -> list[dict[str, Any]]:
        """Each round's per-resolver health since `since` (decoded), oldest first."""
        cursor = self.db.execute(
            "SELECT id, status, health FROM rounds WHERE finished >= ? ORDER BY id",
            (iso(since),),
        )
        return [_decode(_row_dict(cursor, row)) for row in cursor]

    def national_changes_since(
        self, round_id: int, domains: Sequence[str] | None = None
    ) -> list[tuple[str, int, str | None, str]]:
        """(domain, round, from, to) of headline transitions from round `round_id` on, for
        watched domains (or these `domains`), oldest first: with the current verdicts, the
        headline of every round since (as confirmed then)."""
        only = "" if domains is None else " AND d.name IN (SELECT value FROM json_each(?))"
        return list(
            self.db.execute(
                "SELECT d.name, t.round_id, t.from_verdict, t.to_verdict FROM transitions t "
                "JOIN domains d ON d.id = t.domain_id "
                f"WHERE t.scope = ? AND t.round_id >= ? AND d.watched = 1{only} ORDER BY t.id",
                (NATIONAL, round_id, *([] if domains is None else [_json(list(domains))])),
            )
        )

    def recent_transitions(self, n: int) -> list[dict[str, Any]]:
        """The last `n` confirmed transitions, newest first, baselines left out; a resolver's
        own have no domain (None)."""
        cursor = self.db.execute(  # ids grow with rounds: the changes index gives the order
            'SELECT t.confirmed_at, d.name AS domain, t.scope, t.type, t.from_verdict AS "from", '
            't.to_verdict AS "to" FROM transitions t INDEXED BY transitions_changes '
            "LEFT JOIN domains d ON d.id = t.domain_id "
            "WHERE t.type != 'baseline' ORDER BY t.round_id DESC, t.id DESC LIMIT ?",
            (n,),
        )
        return [_row_dict(cursor, row) for row in cursor]

    def history(self, domain: str) -> list[dict[str, Any]]:
        """A domain's transitions with their evidence, oldest first, and the resolvers' own
        (an outage explains a gap) from the domain's first on."""
        cursor = self.db.execute(
            "WITH d (id) AS (SELECT id FROM domains WHERE name = ?), "
            "ids (id) AS ("
            "  SELECT id FROM transitions WHERE domain_id = (SELECT id FROM d)"
            "  UNION ALL SELECT id FROM transitions WHERE domain_id IS NULL AND confirmed_at >= "
            "  (SELECT MIN(confirmed_at) FROM transitions WHERE domain_id = (SELECT id FROM d))) "
            "SELECT c.*, json_extract(t.event, '$.evidence') AS evidence "
            "FROM changelog c JOIN transitions t ON t.id = c.transition_id "
            "WHERE c.transition_id IN (SELECT id FROM ids) "
            "ORDER BY c.confirmed_at, c.transition_id",
            (domain,),
        )
        return [_decode(_row_dict(cursor, row)) for row in cursor]

    def has_domain(self, domain: str) -> bool:
        row = self.db.execute("SELECT 1 FROM domains WHERE name = ?", (domain,)).fetchone()
        return row is not None

    def changelog(
        self,
        flt: ChangelogFilter = ChangelogFilter(),
        *,
        with_event: bool = False,
        after: int = 0,
        limit: int = -1,
    ) -> Iterator[dict[str, Any]]:
        """Stream the change log oldest first, one row at a time (constant memory). Pages:
        each row's `transition_id` is the `after` that continues past it."""
        where, params = flt.where("c.", after)
        columns = ", ".join(f'c."{c}"' for c in CHANGELOG_COLUMNS)
        extra = ", t.event" if with_event else ""
        cursor = self.db.execute(
            f"SELECT {columns}, c.transition_id{extra} FROM changelog c "
            f"JOIN transitions t ON t.id = c.transition_id{where}"
            " ORDER BY c.transition_id LIMIT ?",
            (*params, limit),
        )
        for row in cursor:
            yield _decode(_row_dict(cursor, row))

    def changelog_csv(self, flt: ChangelogFilter = ChangelogFilter()) -> Iterator[str]:
        """The change log as CSV lines (RFC 4180, CRLF; what csv.writer writes), oldest first,
        formatted by SQLite in one printf per row: one string per row reaches Python, so an
        export streams at well over a hundred thousand rows a second."""
        where, params = flt.where()
        fields = [
            _SPACED.format(c) if c in LIST_COLUMNS  # no commas left: nothing to quote
            else _csv_field(f'"{c}"') if c in _FREE_TEXT
            else f'"{c}"'  # ids, times, names, verdicts, numbers: never quoted; NULL: empty
            for c in CHANGELOG_COLUMNS
        ]  # fmt: skip
        template = ",".join(["%s"] * len(fields)) + "\r\n"
        for (text,) in self.db.execute(
            f"SELECT printf('{template}', {', '.join(fields)}) FROM changelog{where} "
            "ORDER BY transition_id",
            params,
        ):
            yield text

    def backup(self, destination: Path) -> int:
        """A consistent copy through SQLite's online backup, written beside `destination`
        and renamed into place; the writer is not blocked. Returns the copy's size."""
        clash = self._own_file(destination)
        if clash is not None:
            raise StoreError(f"{destination}: is {clash}; a backup must go to another file")
        tmp = destination.with_name(f".{destination.name}.partial")
        try:
            tmp.unlink(missing_ok=True)
            target = sqlite3.connect(tmp)
            try:
                self.db.conn.backup(target)
            finally:
                target.close()
            os.replace(tmp, destination)
        except (OSError, sqlite3.Error) as exc:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"{destination}: cannot write the backup: {exc}") from None
        return destination.stat().st_size

    def _own_file(self, target: Path) -> str | None:
        """What `target` is of this database's own files (the database under any name or
        link, its WAL, shared memory, rollback journal or writer lock), or None."""
        own = {
            f"{self.path.name}{suffix}": what
            for suffix, what in (
                ("", "the database itself"),
                ("-wal", "the database's write-ahead log"),
                ("-shm", "the database's shared-memory file"),
                ("-journal", "the database's rollback journal"),
                (".lock", "the database's writer lock"),
            )
        }
        folder = self.path.resolve().parent
        # By name: a WAL or journal that does not exist yet must not be created by a backup.
        where = target.resolve()
        if where.parent == folder and where.name in own:
            return own[where.name]
        # By file: a hard link (or any other name) of one of them.
        with contextlib.suppress(OSError):
            seen = target.stat()
            for name, what in own.items():
                with contextlib.suppress(OSError):
                    st = (folder / name).stat()
                    if (st.st_dev, st.st_ino) == (seen.st_dev, seen.st_ino):
                        return what
        return None

    def integrity(self) -> str:
        return str(self.db.execute("PRAGMA integrity_check").fetchone()[0])


def _writer_connection(path: Path) -> sqlite3.Connection:
    """A writing connection, set up, that has shown it can write (SQLite falls back to
    reading only, silently, when the file or its folder cannot be written)."""
    try:
        # Used by one thread at a time, not always the one that opened it: the daemon
        # writes from a worker thread so that a large commit never stalls the event loop.
        conn = sqlite3.connect(path, check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"{path}: cannot open database: {exc}") from None
    try:
        conn.execute("PRAGMA busy_timeout = 10000")
        Database(conn).enable_wal()
        conn.execute("PRAGMA synchronous = FULL")
        # A first sweep of a million names commits gigabytes through the WAL; after the
        # checkpoint the file shrinks back to this instead of keeping that size for good.
        conn.execute("PRAGMA journal_size_limit = 67108864")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("CREATE TABLE _nsdi_write_probe (x INTEGER)")
        finally:
            conn.rollback()
    except sqlite3.OperationalError as exc:
        conn.close()
        why = _unwritable(path) or str(exc)
        raise StoreError(f"{path}: cannot write the database: {why}") from None
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(f"{path}: not a usable nsdi-tracker database: {exc}") from None
    return conn


def _identity(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_dev, st.st_ino


def _unwritable(path: Path) -> str | None:
    """Why this user cannot write the database (the file, its WAL and shared memory, which
    SQLite creates with the file's mode, or its folder), or None."""
    wal, shm = (path.with_name(path.name + suffix) for suffix in ("-wal", "-shm"))
    for target in (path, wal, shm, path.parent):
        if target.exists() and not os.access(target, os.W_OK):
            kind = "folder" if target.is_dir() else "file"
            return f"the {kind} {target} is not writable by this user"
    return None


def _writer_lock(path: Path) -> TextIO:
    """One writer per database: two overlapping runs would both confirm the same change.

    An advisory lock on `<db>.lock`, released by the kernel when the process dies, so a
    killed tracker never leaves a stale lock behind. Readers do not take it.
    """
    lock = open(path.with_name(path.name + ".lock"), "a+", encoding="utf-8")  # noqa: SIM115
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        raise StoreError(
            f"{path}: another nsdi-tracker is writing to this database ({holder})"
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"pid {os.getpid()}\n")
    lock.flush()
    return lock


def _transition_columns(tr: TransitionRecord) -> tuple[Any, ...]:
    """A transition's columns in the staging table's order (event_id, domain, scope, ...)."""
    return (
        tr.event_id, tr.domain, tr.scope, str(tr.change.type), _opt(tr.change.old),
        str(tr.change.new), iso(tr.change.first_seen), iso(tr.change.confirmed_at),
        tr.change.rounds, tr.summary.reason, tr.summary.rcode, tr.summary.nxdomain,
        _json(list(tr.summary.flags)), _json(list(tr.summary.addresses)), tr.summary.authority,
        tr.summary.reference_consensus, _json(list(tr.summary.reference_addresses)),
        _json(tr.event),
    )  # fmt: skip


def _row_dict(cursor: sqlite3.Cursor, row: Sequence[Any]) -> dict[str, Any]:
    return {d[0]: v for d, v in zip(cursor.description, row, strict=True)}


LIST_COLUMNS = ("flags", "addresses", "reference_addresses")  # JSON arrays in the database
# A compact JSON array of plain strings ('["a","b"]': addresses or flags, no commas, quotes
# or brackets inside) as 'a b': the brackets and outer quotes cut off, the inner ones spaced.
_SPACED = (
    "(CASE WHEN length({0}) < 3 THEN '' "
    "ELSE replace(substr({0}, 3, length({0}) - 4), '\",\"', ' ') END)"
)


# Change-log columns whose text comes from outside (watchlists, replies) or is prose.
_FREE_TEXT = frozenset({"label", "category", "reason", "authority"})


def _csv_field(column: str) -> str:
    """SQL for one text column as csv.writer's QUOTE_MINIMAL writes it: NULL empty, quoted
    (quotes doubled) when it holds a comma, a quote, CR or LF."""
    c = column
    return (
        f"(CASE WHEN instr({c}, ',') OR instr({c}, '\"') OR instr({c}, char(10)) "
        f"OR instr({c}, char(13)) THEN '\"' || replace({c}, '\"', '\"\"') || '\"' "
        f"ELSE IFNULL({c}, '') END)"
    )


_JSON_COLUMNS = (*LIST_COLUMNS, "evidence", "event", "outcomes", "health")


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    for key in _JSON_COLUMNS:
        if isinstance(row.get(key), str):
            row[key] = json.loads(row[key])
    return row


def _json(value: Any) -> str:
    """Compact JSON, as json.dumps(ensure_ascii=False, separators=(",", ":")) writes it."""
    return orjson.dumps(value).decode()


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


def _opt_time(value: datetime | None) -> str | None:
    return None if value is None else iso(value)
