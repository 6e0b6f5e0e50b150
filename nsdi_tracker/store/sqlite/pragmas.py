"""Settings of a connection changed for one piece of work, and given back after it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlite_utils import Database


@contextlib.contextmanager
def pragma(db: Database, name: str, value: int) -> Iterator[None]:
    """PRAGMA `name` (a numeric one) set to `value`, and back as it was after."""
    (kept,) = db.execute(f"PRAGMA {name}").fetchone()
    db.execute(f"PRAGMA {name} = {int(value)}")
    try:
        yield
    finally:
        db.execute(f"PRAGMA {name} = {int(kept)}")


def foreign_keys_off(db: Database) -> contextlib.AbstractContextManager[None]:
    """SQLite's foreign-key checks off, and back as they were after (it ignores the pragma
    inside a transaction: enter this before one)."""
    return pragma(db, "foreign_keys", 0)
