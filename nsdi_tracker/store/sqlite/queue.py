"""The delivery queue: events waiting for a sink, due when their backoff has passed."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlite_utils import Database

from nsdi_tracker.core.clock import iso, parse_iso
from nsdi_tracker.store.records import Delivery
from nsdi_tracker.store.sqlite.rows import EVENT


class Queue:
    """The outbox's queue (a part of Store)."""

    db: Database
    path: Path

    def due(self, now: datetime, sinks: Iterable[str], limit: int = 100) -> list[Delivery]:
        """The pending deliveries of the sinks whose oldest pending one is due, in the order
        they were queued. A sink's deliveries go in order: while its oldest waits for its
        retry, the newer ones wait too (a process that did not see it fail, a `run --once`
        after another, would otherwise send them first)."""
        at = iso(now)
        names = [n for n, when in self._heads(sinks).items() if when <= at]
        if not names:
            return []
        marks = ", ".join("?" * len(names))
        rows = self.db.execute(
            f"SELECT dl.id, dl.sink, dl.attempts, dl.created, {EVENT}, su.submission_id, "
            "su.body FROM deliveries dl LEFT JOIN transitions t ON t.id = dl.transition_id "
            "LEFT JOIN domains d ON d.id = t.domain_id "
            "LEFT JOIN summaries su ON su.id = dl.summary_id "
            f"WHERE dl.status = 'pending' AND dl.sink IN ({marks}) ORDER BY dl.id LIMIT ?",
            (*names, limit),
        )
        return [
            Delivery(i, s, a, parse_iso(c), _event(event, ident, body))
            for i, s, a, c, event, ident, body in rows
        ]

    def next_due(self, sinks: Iterable[str]) -> datetime | None:
        """When one of the sinks next has something due: the earliest of their oldest
        pending deliveries' times."""
        heads = self._heads(sinks)
        return parse_iso(min(heads.values())) if heads else None

    def _heads(self, sinks: Iterable[str]) -> dict[str, str]:
        """Each sink's oldest pending delivery's next attempt (sinks with none left out)."""
        heads: dict[str, str] = {}
        for name in sorted(set(sinks)):
            row = self.db.execute(
                "SELECT next_attempt FROM deliveries WHERE status = 'pending' AND sink = ? "
                "ORDER BY id LIMIT 1",
                (name,),
            ).fetchone()
            if row is not None:
                heads[name] = row[0]
        return heads

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
            # A round's summary is needed until it is delivered or given up: then its bytes
            # (a few hundred kB for a big watchlist) go, and the row stays as its record.
            self.db.execute(
                "UPDATE summaries SET body = NULL WHERE id = (SELECT summary_id FROM deliveries "
                "WHERE id = ? AND status != 'pending')",
                (delivery_id,),
            )

    def backlog(self) -> dict[str, int]:
        counts = dict(self.db.execute("SELECT status, COUNT(*) FROM deliveries GROUP BY status"))
        return {s: counts.get(s, 0) for s in ("pending", "delivered", "failed")}


def _event(event: str | None, ident: str | None, body: bytes | None) -> dict[str, Any]:
    """A delivery's JSON: a transition's event, or a round's summary (kind "round")."""
    if event is not None:
        loaded: dict[str, Any] = json.loads(event)
        return loaded
    summary = orjson.loads(zlib.decompress(body)) if body is not None else None
    return {"kind": "round", "id": ident, "round": summary}
