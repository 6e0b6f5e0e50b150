"""The reads behind the web page: a page of domains by filter, one transition, the spans
without a measured round, and the resolvers' recent rounds. Each reads through an index or a
bounded scan, so a page of a 100,000-name database answers well inside half a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from nsdi_tracker.core.model import MEASURED, NATIONAL
from nsdi_tracker.store.records import NEW
from nsdi_tracker.store.sqlite.changelog import CHANGELOG_COLUMNS
from nsdi_tracker.store.sqlite.rows import STORED_EVENT, _decode, _row_dict

GAP_INTERVALS = 1.5  # no measured round for this many intervals: a gap in the timelines


def _like(text: str) -> str:
    """A LIKE pattern that finds `text` anywhere, its own % and _ taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class Browse:
    """What the web page reads (a part of Store)."""

    db: Database
    path: Path

    def domain_page(
        self,
        rank: Sequence[str],
        *,
        verdicts: Sequence[str] = (),
        category: str | None = None,
        search: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[int, list[str]]:
        """How many watched domains match, and a page of their names: headline verdict in
        `rank` order (no verdict last), a pending change first, then category and name.
        `verdicts` may hold NEW for names without a verdict."""
        clauses, params = ["d.watched = 1"], []
        if verdicts:
            named = [v for v in verdicts if v != NEW]
            either = [f"s.verdict IN ({', '.join('?' * len(named))})"] if named else []
            either += ["s.verdict IS NULL"] if NEW in verdicts else []
            clauses.append(f"({' OR '.join(either)})")
            params.extend(named)
        if category is not None:
            clauses.append("COALESCE(d.category, '') = ?")
            params.append(category)
        if search:
            clauses.append("(d.name LIKE ? ESCAPE '\\' OR d.label LIKE ? ESCAPE '\\')")
            params.extend([_like(search)] * 2)
        source = (
            "FROM domains d LEFT JOIN states s ON s.domain_id = d.id AND s.scope = ? "
            f"WHERE {' AND '.join(clauses)}"
        )
        if verdicts:
            (total,) = self.db.execute(f"SELECT COUNT(*) {source}", (NATIONAL, *params)).fetchone()
        else:  # no verdict asked: the domains alone say how many, without the join
            (total,) = self.db.execute(
                f"SELECT COUNT(*) FROM domains d WHERE {' AND '.join(clauses)}", params
            ).fetchone()
        order = " ".join(f"WHEN ? THEN {i}" for i in range(len(rank)))
        names = [
            name
            for (name,) in self.db.execute(
                f"SELECT d.name {source} ORDER BY CASE s.verdict {order} ELSE {len(rank)} END, "
                "s.candidate IS NULL, COALESCE(d.category, '~'), d.name LIMIT ? OFFSET ?",
                (NATIONAL, *params, *rank, limit, offset),
            )
        ]
        return total, names

    def categories(self) -> list[tuple[str, int]]:
        """The watched domains' categories ('' for none) with how many each holds."""
        rows = self.db.execute(  # the expression of domains_shown: an index-only scan
            "SELECT COALESCE(category, '~'), COUNT(*) FROM domains WHERE watched = 1 "
            "GROUP BY COALESCE(category, '~') ORDER BY 1"
        )
        return sorted(("" if c == "~" else c, n) for c, n in rows)

    def domain_info(self, name: str) -> dict[str, Any] | None:
        cursor = self.db.execute(
            "SELECT name, label, category, watched, first_seen FROM domains WHERE name = ?",
            (name,),
        )
        row = cursor.fetchone()
        return _row_dict(cursor, row) if row else None

    def transition(self, event_id: str) -> dict[str, Any] | None:
        """One change-log row by its event id, with its evidence (None: no such event)."""
        columns = ", ".join(f'c."{c}"' for c in CHANGELOG_COLUMNS)
        cursor = self.db.execute(
            f"SELECT {columns}, c.transition_id, "
            f"json_extract({STORED_EVENT}, '$.evidence') AS evidence "
            "FROM transitions t JOIN changelog c ON c.transition_id = t.id "
            "WHERE t.event_id = ?",
            (event_id,),
        )
        row = cursor.fetchone()
        return _decode(_row_dict(cursor, row)) if row else None

    def round_gaps(self, since: str, fallback_interval: float) -> list[tuple[str, str]]:
        """(from, to) of the spans since `since` in which no round measured for more than
        GAP_INTERVALS of its interval (the daemon stopped, the network was down, rounds were
        cut off); `fallback_interval` stands in for rounds that kept none (`run --once`)."""
        measured = ", ".join(f"'{s}'" for s in MEASURED)
        return list(
            self.db.execute(
                "SELECT prev, started FROM ("
                "  SELECT started, LAG(finished) OVER (ORDER BY id) AS prev,"
                "  COALESCE(interval, ?) AS every FROM rounds"
                f"  WHERE status IN ({measured}) AND finished >= ?) "
                "WHERE prev IS NOT NULL "
                "AND (julianday(started) - julianday(prev)) * 86400 > ? * every",
                (fallback_interval, since, GAP_INTERVALS),
            )
        )

    def round_health(self, limit: int) -> list[dict[str, Any]]:
        """The last `limit` rounds with each resolver's showing (decoded), oldest first."""
        cursor = self.db.execute(
            "SELECT id, started, finished, status, health FROM rounds ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [_decode(_row_dict(cursor, row)) for row in reversed(cursor.fetchall())]
