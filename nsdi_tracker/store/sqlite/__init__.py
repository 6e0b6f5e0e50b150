"""The SQLite backend, the embedded default: schema and migrations, a round's writes, the
delivery queue, the read models, the change log, and the file with its writer lock."""

from __future__ import annotations

from nsdi_tracker.store.records import ChangelogFilter, Delivery
from nsdi_tracker.store.sqlite.changelog import CHANGELOG_COLUMNS
from nsdi_tracker.store.sqlite.rows import LIST_COLUMNS
from nsdi_tracker.store.sqlite.schema import MIGRATION_SET, migrations
from nsdi_tracker.store.sqlite.store import Store

__all__ = [
    "CHANGELOG_COLUMNS",
    "LIST_COLUMNS",
    "MIGRATION_SET",
    "ChangelogFilter",
    "Delivery",
    "Store",
    "migrations",
]
