"""Settings of a connection changed for one piece of work, and given back after it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlite_utils import Database


@contextlib.contextmanager
def foreign_keys_off(db: Database) -> Iterator[None]:
    """SQLite's foreign-key checks off, and back as they were after (it ignores the pragma
    inside a transaction: enter this before one)."""
    (checks,) = db.execute("PRAGMA foreign_keys").fetchone()
    db.execute("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        db.execute(f"PRAGMA foreign_keys = {int(checks)}")
