"""Rows as read: JSON columns decoded, dict rows (the JSON written: staging.json_text)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from nsdi_tracker.core.model import EVENT_VERSION

LIST_COLUMNS = ("flags", "addresses", "reference_addresses")  # JSON arrays in the database


_JSON_COLUMNS = (*LIST_COLUMNS, "evidence", "event", "outcomes", "health", "headline")

# A domain's baseline is stored without its event (an empty text): a first round makes one a
# scope of every name, and each of its fields is a column of the transition (`t`) or of its
# domain (`d`). Readers compose it with EVENT, as rounds.events.event_json writes it (a test
# holds the two together); its label and category are the domain's current ones. Every other
# event is stored as it was delivered. STORED_EVENT: the stored JSON, or NULL.
EVENT = f"""(CASE WHEN t.event = '' THEN json_object(
    'version', {EVENT_VERSION}, 'id', t.event_id, 'type', t.type, 'first_verdict', json('true'),
    'domain', d.name, 'label', d.label, 'category', d.category, 'scope', t.scope,
    'from', t.from_verdict, 'to', t.to_verdict, 'first_seen', t.first_seen,
    'confirmed_at', t.confirmed_at, 'rounds', t.rounds,
    'summary', json_object('reason', t.reason, 'rcode', t.rcode,
        'nxdomain', NULLIF(t.nxdomain, ''), 'flags', json(t.flags),
        'addresses', json(t.addresses), 'authority', t.authority,
        'reference_consensus', t.reference_consensus,
        'reference_addresses', json(t.reference_addresses)),
    'evidence', NULL) ELSE t.event END)"""
STORED_EVENT = "NULLIF(t.event, '')"


def _row_dict(cursor: sqlite3.Cursor, row: Sequence[Any]) -> dict[str, Any]:
    return {d[0]: v for d, v in zip(cursor.description, row, strict=True)}


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    for key in _JSON_COLUMNS:
        if isinstance(row.get(key), str):
            row[key] = json.loads(row[key])
    return row
