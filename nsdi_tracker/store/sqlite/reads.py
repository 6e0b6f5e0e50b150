"""The read models: the current verdicts, rounds, resolver health and transitions, as
`status`, `history`, the dashboard and the status server show them.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from nsdi_tracker.core.clock import iso
from nsdi_tracker.core.model import NATIONAL
from nsdi_tracker.judge.confirm import BLOCKED
from nsdi_tracker.store.sqlite.rows import (
    STORED_EVENT,
    _decode,
    _row_dict,
)
from nsdi_tracker.store.sqlite.staging import json_text


class Reads:
    """Reading what was measured (a part of Store)."""

    db: Database
    path: Path

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
            params.append(json_text(list(domains)))
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        cursor = self.db.execute(
            f"SELECT * FROM current_status{where} ORDER BY domain, scope != ?, scope",
            (*params, NATIONAL),
        )
        rows = [_row_dict(cursor, row) for row in cursor]
        down = self.down_since()
        labels = self._nxdomain_labels([r["domain"] for r in rows if r["verdict"] in BLOCKED])
        for row in rows:  # a verdict on a resolver that is down is held, not measured
            row["held_since"] = down.get(row["scope"])
            row["nxdomain"] = labels.get((row["domain"], row["scope"], row["verdict"]))
        return rows

    def _nxdomain_labels(self, domains: Sequence[str]) -> dict[tuple[str, str, str], str]:
        """How the NXDOMAIN looked (ordinary, bare, forged, rewritten) when each of these
        domains' removals was confirmed, by (domain, scope, verdict): the latest one wins."""
        if not domains:
            return {}
        cursor = self.db.execute(
            "SELECT d.name, t.scope, t.to_verdict, t.nxdomain FROM transitions t "
            "JOIN domains d ON d.id = t.domain_id "
            "WHERE d.name IN (SELECT value FROM json_each(?)) AND t.nxdomain != '' "
            "ORDER BY t.id",
            (json_text(sorted(set(domains))),),
        )
        return {(name, scope, verdict): label for name, scope, verdict, label in cursor}

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
                (NATIONAL, round_id, *([] if domains is None else [json_text(list(domains))])),
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
            f"SELECT c.*, json_extract({STORED_EVENT}, '$.evidence') AS evidence "
            "FROM changelog c JOIN transitions t ON t.id = c.transition_id "
            "WHERE c.transition_id IN (SELECT id FROM ids) "
            "ORDER BY c.confirmed_at, c.transition_id",
            (domain,),
        )
        return [_decode(_row_dict(cursor, row)) for row in cursor]

    def has_scope(self, scope: str) -> bool:
        """Whether `scope` is `national` or a resolver this database has measured."""
        if scope == NATIONAL:
            return True
        row = self.db.execute("SELECT 1 FROM resolvers WHERE name = ?", (scope,)).fetchone()
        return row is not None

    def has_domain(self, domain: str) -> bool:
        row = self.db.execute("SELECT 1 FROM domains WHERE name = ?", (domain,)).fetchone()
        return row is not None
