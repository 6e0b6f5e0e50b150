"""Rows as read: JSON columns decoded, dict rows (the JSON written: staging.json_text)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

LIST_COLUMNS = ("flags", "addresses", "reference_addresses")  # JSON arrays in the database


_JSON_COLUMNS = (*LIST_COLUMNS, "evidence", "event", "outcomes", "health", "headline")


def _row_dict(cursor: sqlite3.Cursor, row: Sequence[Any]) -> dict[str, Any]:
    return {d[0]: v for d, v in zip(cursor.description, row, strict=True)}


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    for key in _JSON_COLUMNS:
        if isinstance(row.get(key), str):
            row[key] = json.loads(row[key])
    return row
