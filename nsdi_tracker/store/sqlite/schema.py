"""The schema: every migration, in order, registered with sqlite-utils.

A migration is never edited once released; a change is a new one. `_KNOWN` lets an older
version refuse a database a newer one has migrated.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from nsdi_tracker.core.errors import StoreError
from nsdi_tracker.store.sqlite.pragmas import foreign_keys_off

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


@contextlib.contextmanager
def _rebuilding(db: Database, migration: str, table: str) -> Iterator[None]:
    """A table rebuild (SQLite cannot alter a constraint): foreign keys off, so the tables
    that point at it keep pointing at the new one; the work in one transaction, whose keys are
    all checked before it commits."""
    with foreign_keys_off(db), db.atomic():
        yield
        if db.execute("PRAGMA foreign_key_check").fetchone() is not None:
            raise StoreError(
                f"{migration}: foreign keys broken by the {table} rebuild; rolled back"
            )


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
    with _rebuilding(db, "m002", "rounds"):
        db.execute(_ROUNDS_2.replace("CREATE TABLE rounds", "CREATE TABLE rounds_new"))
        db.execute("INSERT INTO rounds_new SELECT * FROM rounds")
        db.execute("DROP TABLE rounds")
        db.execute("ALTER TABLE rounds_new RENAME TO rounds")
        db.execute("CREATE INDEX rounds_finished ON rounds (finished)")


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
    with _rebuilding(db, "m004", "transitions"):
        db.execute("DROP VIEW IF EXISTS changelog")
        if "domain_id INTEGER NOT NULL" in sql:  # not yet rebuilt (a kill can come later)
            db.execute(_TRANSITIONS_4.replace("TABLE transitions", "TABLE transitions_new"))
            db.execute("INSERT INTO transitions_new SELECT * FROM transitions")
            db.execute("DROP TABLE transitions")
            db.execute("ALTER TABLE transitions_new RENAME TO transitions")
            db.execute("CREATE INDEX transitions_confirmed ON transitions (confirmed_at)")
            db.execute("CREATE INDEX transitions_domain ON transitions (domain_id, confirmed_at)")
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


@migration()
def m005_round_interval(db: Database) -> None:
    """Each round keeps the interval the daemon ran it on (NULL for `run --once`), so that
    a reader without the config (`status --db`, `serve --db`, the page) can tell a stopped
    daemon from a quiet one."""
    db.execute("ALTER TABLE rounds ADD COLUMN interval REAL")


@migration(transactional=False)
def m006_round_summaries(db: Database) -> None:
    """A fleet's probe sends each round's summary to its collector through the outbox: the
    summaries wait in `summaries` (zlib-compressed JSON, emptied once delivered or given up),
    and a delivery points at a transition or at a summary. SQLite cannot drop a NOT NULL, so
    `deliveries` is rebuilt with its ids and every row as it was, in one transaction."""
    (sql,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'deliveries'").fetchone()
    with _rebuilding(db, "m006", "deliveries"):
        db.execute(
            """CREATE TABLE IF NOT EXISTS summaries (
                    id INTEGER PRIMARY KEY,
                    round_id INTEGER NOT NULL UNIQUE REFERENCES rounds (id),
                    submission_id TEXT NOT NULL UNIQUE,
                    body BLOB  -- zlib(JSON); NULL once delivered or given up
                )"""
        )
        if "transition_id INTEGER NOT NULL" in sql:  # not yet rebuilt
            db.execute(_DELIVERIES_6.replace("TABLE deliveries", "TABLE deliveries_new"))
            db.execute(
                "INSERT INTO deliveries_new (id, transition_id, sink, status, attempts, "
                "created, next_attempt, last_attempt, last_error, delivered) "
                "SELECT id, transition_id, sink, status, attempts, created, next_attempt, "
                "last_attempt, last_error, delivered FROM deliveries"
            )
            db.execute("DROP TABLE deliveries")
            db.execute("ALTER TABLE deliveries_new RENAME TO deliveries")
            db.execute("CREATE INDEX deliveries_due ON deliveries (status, next_attempt)")


@migration()
def m007_name_digests(db: Database) -> None:
    """Each watched name keeps its digest (rounds.digest): a round whose replies for it say
    the same skips it. NULL: none kept (its tracks were moving, or it left the watchlists)."""
    db.execute("ALTER TABLE domains ADD COLUMN digest INTEGER")


# An observation's evidence with every value at its default: core.evidence.DEFAULT_EVIDENCE
# as this version writes it (a test holds the two together: a change to the evidence's fields
# is a new migration that puts a new `replies` view in place).
EVIDENCE_DEFAULTS_8 = (
    '{"outcome":"answer","rcode":null,"flags":[],"addresses":[],"cname_chain":[],'
    '"min_ttl":null,"authority":{"soa":false,"soa_zone":null,"nsec":false},"nxdomain":null,'
    '"ede":[],"transport":"udp","attempts":1,"latency_ms":null,"error":null,'
    '"ignored_replies":0,"reasked":false}'
)


@migration()
def m008_reply_evidence(db: Database) -> None:
    """From here on an observation stores in `evidence` only what its columns (outcome, rcode,
    addresses) and the defaults do not say (core.evidence.stored_evidence): a first round of
    200,000 names leaves 406 MB instead of 599 MB. The `replies` view shows each stored reply
    with its whole evidence, as the event JSON and the raw archive carry it; a row stored
    before keeps its whole evidence and is shown as it is."""
    db.execute(
        f"""CREATE VIEW replies AS
        SELECT o.id AS observation_id, o.round_id, o.observed_at, d.name AS domain,
               r.name AS resolver, r.role, o.qtype, o.outcome, o.rcode, o.addresses,
               o.fingerprint,
               CASE WHEN json_extract(o.evidence, '$.outcome') IS NULL
                    THEN json_set(json_patch('{EVIDENCE_DEFAULTS_8}', o.evidence),
                        '$.outcome', o.outcome, '$.rcode', o.rcode,
                        '$.addresses', json(o.addresses))
                    ELSE o.evidence END AS evidence
        FROM observations o
        JOIN domains d ON d.id = o.domain_id
        JOIN resolvers r ON r.id = o.resolver_id"""
    )


_DELIVERIES_6 = """CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    transition_id INTEGER REFERENCES transitions (id),
    summary_id INTEGER REFERENCES summaries (id),
    sink TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL,
    next_attempt TEXT NOT NULL,
    last_attempt TEXT,
    last_error TEXT,
    delivered TEXT,
    CHECK ((transition_id IS NULL) != (summary_id IS NULL)),
    UNIQUE (transition_id, sink),
    UNIQUE (summary_id, sink)
)"""


def _m001(prefix: str) -> str:
    """One statement of the frozen version-1 schema, found by how it starts."""
    (statement,) = [q for q in _SCHEMA_1 if q.startswith(prefix)]
    return statement


def _changed(statement: str, old: str, new: str) -> str:
    assert old in statement, old  # m001 is frozen: this holds for good
    return statement.replace(old, new)


_TRANSITIONS_4 = _changed(
    _m001("CREATE TABLE transitions"),
    "domain_id INTEGER NOT NULL REFERENCES domains (id),",
    "domain_id INTEGER REFERENCES domains (id),  -- NULL: a resolver's own health",
)


_CHANGELOG_4 = _changed(
    _m001("CREATE VIEW changelog"), "JOIN domains d ON", "LEFT JOIN domains d ON"
)
