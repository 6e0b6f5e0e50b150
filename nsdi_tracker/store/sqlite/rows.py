"""Values as the database holds them: JSON text, ISO times, dict rows."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from nsdi_tracker.core.clock import iso
from nsdi_tracker.store.records import (
    TransitionRecord,
)

LIST_COLUMNS = ("flags", "addresses", "reference_addresses")  # JSON arrays in the database


_JSON_COLUMNS = (*LIST_COLUMNS, "evidence", "event", "outcomes", "health", "headline")


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
