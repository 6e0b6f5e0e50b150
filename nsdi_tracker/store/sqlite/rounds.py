"""A round's writes: what the planner needs to look up, the staged batches, and the one
transaction that commits them (or records a round that was cut off); pruning old rows.
"""

from __future__ import annotations

import contextlib
import uuid
import zlib
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from nsdi_tracker.core.clock import iso
from nsdi_tracker.core.model import NATIONAL, RoundStatus
from nsdi_tracker.settings.resolvers import ResolverSpec
from nsdi_tracker.store.records import (
    BatchPlan,
    HealthPlan,
    ObsKey,
    RoundRecord,
    StoredTrack,
    TrackKey,
)
from nsdi_tracker.store.sqlite.pragmas import foreign_keys_off, pragma
from nsdi_tracker.store.sqlite.staging import (
    TRACK_VALUES,
    delivery_rows,
    json_text,
    observation_rows,
    state_rows,
    track_columns,
    transition_row,
    transition_rows,
)

_STAGING = [
    "DROP TABLE IF EXISTS temp.s_watched",
    """CREATE TEMP TABLE s_watched (name TEXT PRIMARY KEY, label TEXT, category TEXT,
        digest INTEGER)""",
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


# A round's summary for a fleet's collector: every watched domain's confirmed national verdict
# and its verdict on each resolver of the round, and each resolver's role and health.
_SUMMARY = """SELECT json_object(
    'id', r.id, 'started', r.started, 'finished', r.finished, 'status', r.status,
    'interval', r.interval,
    'resolvers', (SELECT json_group_object(h.key, json_object(
        'role', json_extract(h.value, '$.role'),
        'up', json(CASE WHEN json_extract(h.value, '$.up') THEN 'true' ELSE 'false' END)))
        FROM json_each(r.health) h),
    'domains', (SELECT json_group_array(json_array(d.name, n.verdict, (
        SELECT json_group_object(s.scope, s.verdict) FROM states s
        WHERE s.domain_id = d.id AND s.verdict IS NOT NULL
        AND s.scope IN (SELECT key FROM json_each(r.health)))))
        FROM domains d LEFT JOIN states n ON n.domain_id = d.id AND n.scope = :national
        WHERE d.watched = 1))
FROM rounds r WHERE r.id = :round"""

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


class Rounds:
    """Writing rounds (a part of Store)."""

    PRUNE_EVERY = timedelta(hours=1)
    COMMIT_CACHE_KB = 32_768  # SQLite's page cache while a round commits
    db: Database
    path: Path
    _pruned_at: datetime | None = None

    def prune_due(self, now: datetime) -> bool:
        """Pruning scans the old rows: once an hour is enough."""
        if self._pruned_at is not None and now - self._pruned_at < self.PRUNE_EVERY:
            return False
        self._pruned_at = now
        return True

    def lookup(
        self, domains: Sequence[str]
    ) -> tuple[dict[TrackKey, StoredTrack], dict[ObsKey, str]]:
        """The tracks and last stored fingerprints of a batch of names."""
        names = json_text(list(domains))
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

    def begin_round(self) -> int:
        """Empty staging tables for a streamed round, and the id the round will have (this
        process holds the writer lock, so nobody else takes it). The tables are temporary
        (this connection's own): staging takes no lock on the database, and a round that never
        commits leaves nothing behind. A committed round's staged rows stay until the next
        round drops them, so `run --once` exits without freeing their pages one by one (a
        first round's, 200,000 names, took about 2% of its time to delete)."""
        for statement in _STAGING:
            self.db.execute(statement)
        self.db.conn.commit()
        (top,) = self.db.execute("SELECT COALESCE(MAX(id), 0) FROM rounds").fetchone()
        return int(top) + 1

    def stage(self, plan: BatchPlan) -> None:
        """Add one batch's changes to the staging tables."""
        conn = self.db.conn
        with conn:
            conn.executemany(
                "INSERT OR IGNORE INTO temp.s_watched VALUES (?, ?, ?, ?)", plan.watched
            )
            conn.executemany(
                f"INSERT INTO temp.s_states VALUES (?, ?, {TRACK_VALUES})",
                state_rows(plan.tracks),
            )
            conn.executemany(
                "INSERT INTO temp.s_transitions VALUES "
                "(?, ?, ?, ?, NULLIF(?, ''), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                transition_rows(plan.transitions),
            )
            conn.executemany(
                "INSERT INTO temp.s_deliveries VALUES (?, ?)",
                delivery_rows(plan.transitions),
            )
            conn.executemany(
                "INSERT INTO temp.s_observations VALUES (?, ?, ?, ?, NULLIF(?, ''), ?, ?, ?)",
                observation_rows(plan.observations),
            )

    def commit_round(
        self,
        round_id: int,
        record: RoundRecord,
        resolvers: Sequence[ResolverSpec],
        health: HealthPlan | None = None,
        summary_sink: str | None = None,
        gone: Sequence[str] = (),
    ) -> None:
        """Write the staged round (states, transitions, outbox, observations) and the
        resolvers' health atomically, as round `round_id` (from begin_round: a clash fails
        and rolls back). A resolver's transitions come first in the change log: they explain
        the round. With `summary_sink` (a fleet's probe), the round's summary is queued for
        that sink in the same transaction. `gone`: the watched names no longer on the
        watchlists (the staged names are those the round planned; the rest it skipped)."""
        r = record
        at = iso(r.finished)
        with self._committing(), self.db.atomic():
            self._sync_resolvers(resolvers, at)
            self._sync_domains(at, gone)
            self.db.execute(
                "INSERT INTO rounds (id, started, finished, status, domains, queries, "
                "transitions, outcomes, health, negative_name, interval) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    round_id, iso(r.started), at, r.status, r.domains, r.queries, r.transitions,
                    json_text(r.outcomes), json_text(r.health), r.negative_name, r.interval,
                ),
            )  # fmt: skip
            if health is not None:
                self._write_health(round_id, health, at)
            for statement in _COMMIT:
                self.db.execute(statement, {"round": round_id, "at": at})
            if summary_sink is not None:
                self._queue_summary(round_id, summary_sink, at)

    @contextlib.contextmanager
    def _committing(self) -> Iterator[None]:
        """A round's commit as the bulk write it is, both settings given back after it:

        - a larger page cache. The commit writes every index of the round's rows, one of them
          (transitions' event ids, random) all over: with SQLite's default 2 MB its pages went
          out to the WAL and came back many times over (200,000 new names: a million page
          writes and nearly as many reads).
        - no foreign-key checks. Every row the commit writes takes its domain, resolver,
          round and transition ids from a join on those tables, or from the round row it
          writes first, in the same transaction: the checks could not fail, and they were
          three look-ups a stored reply and two thirds of the time `latest` took. SQLite ignores
          the pragma inside a transaction, so a commit inside another keeps its checks.
        """
        with pragma(self.db, "cache_size", -self.COMMIT_CACHE_KB), foreign_keys_off(self.db):
            yield

    def _queue_summary(self, round_id: int, sink: str, at: str) -> None:
        """The round as a fleet's collector takes it (core.submission's round), written by
        SQLite from the confirmed states in one statement, compressed, and queued."""
        (text,) = self.db.execute(_SUMMARY, {"round": round_id, "national": NATIONAL}).fetchone()
        cursor = self.db.execute(
            "INSERT INTO summaries (round_id, submission_id, body) VALUES (?, ?, ?)",
            (round_id, str(uuid.uuid4()), zlib.compress(text.encode(), 6)),
        )
        self.db.execute(
            "INSERT INTO deliveries (summary_id, sink, status, created, next_attempt) "
            "VALUES (?, ?, 'pending', ?, ?)",
            (cursor.lastrowid, sink, at, at),
        )

    def _write_health(self, round_id: int, plan: HealthPlan, at: str) -> None:
        conn = self.db.conn
        # A resolver taken out of the config is no longer down (or up): its verdicts, kept
        # with the domains' other states, are no longer shown as held.
        conn.executemany("DELETE FROM resolver_states WHERE scope = ?", ((s,) for s in plan.gone))
        conn.executemany(
            "INSERT INTO resolver_states (scope, state, since, candidate, candidate_count, "
            f"candidate_since, round_id) VALUES (?, {TRACK_VALUES}, ?) "
            "ON CONFLICT (scope) DO UPDATE SET state = excluded.state, since = excluded.since, "
            "candidate = excluded.candidate, candidate_count = excluded.candidate_count, "
            "candidate_since = excluded.candidate_since, round_id = excluded.round_id",
            ((scope, *track_columns(t), round_id) for scope, t in plan.tracks.items()),
        )
        conn.executemany(
            "INSERT INTO transitions (event_id, round_id, domain_id, scope, type, from_verdict, "
            "to_verdict, first_seen, confirmed_at, rounds, reason, rcode, nxdomain, flags, "
            "addresses, authority, reference_consensus, reference_addresses, event) "
            "VALUES (?, ?, NULL, ?, ?, NULLIF(?, ''), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ((tr.event_id, round_id, *transition_row(tr)[2:]) for tr in plan.transitions),
        )
        conn.executemany(
            "INSERT INTO deliveries (transition_id, sink, status, created, next_attempt) "
            "SELECT id, ?, 'pending', ?, ? FROM transitions WHERE event_id = ?",
            ((sink, at, at, tr.event_id) for tr in plan.transitions for sink in tr.sinks),
        )

    def record_timeout(
        self,
        started: datetime,
        finished: datetime,
        *,
        domains: int,
        queries: int,
        interval: float | None = None,
    ) -> int:
        """A round the daemon cut off: nothing it measured is kept, but that it ran is."""
        with self.db.atomic():
            return self._insert(
                "INSERT INTO rounds (started, finished, status, domains, queries, transitions, "
                "outcomes, health, negative_name, interval) "
                "VALUES (?, ?, ?, ?, ?, 0, '{}', '{}', '', ?)",
                (
                    iso(started), iso(finished), RoundStatus.TIMEOUT.value, domains, queries,
                    interval,
                ),
            )  # fmt: skip

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

    def _sync_domains(self, at: str, gone: Sequence[str]) -> None:
        """Insert the round's new names, update changed labels and digests, flag what
        rejoined the watchlists (set-wise from the staged names, so a million names cost no
        Python) and what left them."""
        self.db.execute(
            "INSERT INTO domains (name, label, category, watched, first_seen, digest) "
            "SELECT name, label, category, 1, ?, digest FROM temp.s_watched WHERE true "
            "ON CONFLICT (name) DO UPDATE SET label = excluded.label, "
            "category = excluded.category, watched = 1, digest = excluded.digest "
            "WHERE label IS NOT excluded.label OR category IS NOT excluded.category "
            "OR watched != 1 OR digest IS NOT excluded.digest",
            (at,),
        )
        self.db.conn.executemany(
            "UPDATE domains SET watched = 0, digest = NULL WHERE name = ?", ((n,) for n in gone)
        )

    def digests(self) -> Iterator[tuple[str, int | None]]:
        """Every watched name with its kept digest (None: none), in one pass."""
        yield from self.db.execute("SELECT name, digest FROM domains WHERE watched = 1")

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
