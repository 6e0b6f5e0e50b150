"""The database file: opening it (the writer with its lock, readers read-only), checking
before each round that it is still the file at its path and that this process still holds
the lock, backups that refuse the live files, and the integrity check.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Self, TextIO

from sqlite_utils import Database

from nsdi_tracker.core.errors import StoreError, WriterLost
from nsdi_tracker.store.sqlite.schema import _KNOWN, migrations


class Files:
    """Opening, guarding and copying the database file (a part of Store)."""

    db: Database
    path: Path
    _lock: TextIO | None
    _identity: tuple[int, int] | None
    _rescued: Path | None

    def __init__(self, db: Database, path: Path, lock: TextIO | None = None) -> None:
        self.db = db
        self.path = path
        self._lock = lock
        self._identity = None  # the file's (device, inode) at open
        self._rescued = None

    @classmethod
    def open(cls, path: Path) -> Self:
        """Open for writing, creating the file and upgrading its schema as needed; another
        program's database is refused before anything (WAL mode, a lock file) touches it."""
        _refuse_foreign(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            lock = _writer_lock(path)
        except OSError as exc:
            raise StoreError(f"{path}: cannot open database: {_unwritable(path) or exc}") from None
        try:
            conn = _writer_connection(path)
        except StoreError:
            lock.close()
            raise
        store = cls(Database(conn), path, lock)
        try:
            store._refuse_newer()
            migrations.apply(store.db)
            store._identity = _identity(path)
        except StoreError:
            store.close()
            raise
        except sqlite3.DatabaseError as exc:
            store.close()
            raise StoreError(f"{path}: not a usable nsdi-tracker database: {exc}") from None
        return store

    def guard(self, *, reconnect: bool = False) -> list[str]:
        """Before a round writes: is this still the database at its path, does this process
        still hold its writer lock, and (after a failed write, `reconnect`) can a fresh
        connection write, so that a fixed permission or a remounted file system is picked up
        without a restart? Raises StoreError (WriterLost when another writer took over);
        returns what it repaired, for the log."""
        self._check_identity()
        notes = self._check_lock()
        if reconnect:
            conn = _writer_connection(self.path)
            self.db.conn.close()
            self.db = Database(conn)
            notes.append("database connection opened again after a failed write")
        return notes

    def _check_identity(self) -> None:
        if self._identity is None:
            return
        try:
            now: tuple[int, int] | None = _identity(self.path)
        except FileNotFoundError:
            now = None
        if now == self._identity:
            return
        what = "deleted" if now is None else "replaced by another file"
        if self._rescued is None:
            self._rescued = self._rescue()
        saved = (
            f"what it held is saved in {self._rescued}"
            if self._rescued.exists()
            else "and what it held could not be saved"
        )
        raise StoreError(
            f"{self.path}: the database file was {what} while the tracker ran; nothing more "
            f"is recorded ({saved}; restart the tracker to go on)"
        )

    def _rescue(self) -> Path:
        """Copy the still-open, unlinked database beside its old path, once."""
        stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
        target = self.path.with_name(f"{self.path.name}.rescued-{stamp}")
        with contextlib.suppress(OSError, StoreError, sqlite3.Error):
            target.parent.mkdir(parents=True, exist_ok=True)
            self.backup(target)
        return target

    def _check_lock(self) -> list[str]:
        if self._lock is None:
            return []
        lock_path = self.path.with_name(self.path.name + ".lock")
        held = os.fstat(self._lock.fileno())
        try:
            st = lock_path.stat()
            if (st.st_dev, st.st_ino) == (held.st_dev, held.st_ino):
                return []
        except FileNotFoundError:
            pass
        try:
            fresh = _writer_lock(self.path)
        except StoreError as exc:
            raise WriterLost(
                f"{exc}: it took the database after this one's lock file {lock_path} was "
                "deleted or replaced; this one stops writing"
            ) from None
        except OSError as exc:
            raise StoreError(f"{lock_path}: cannot take the writer lock again: {exc}") from None
        self._lock.close()
        self._lock = fresh
        return [f"the writer lock {lock_path} was deleted or replaced; taken again"]

    @classmethod
    def open_readonly(cls, path: Path) -> Self:
        """Open an existing database for reading only; never writes, never blocks the writer.
        Refuses another program's database, a newer schema and an older one."""
        if not path.is_file():
            raise StoreError(f"{path}: no database here yet (`nsdi-tracker run` creates it)")
        try:
            conn = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: cannot open database: {exc}") from None
        store = cls(Database(conn), path)
        try:
            conn.execute("PRAGMA busy_timeout = 10000")
            _foreign(store.db, path)
            store._refuse_newer()
            if migrations.pending(store.db):
                raise StoreError(
                    f"{path}: the database schema is older than this version; "
                    "run `nsdi-tracker run --once` (or the daemon) once to upgrade it"
                )
        except StoreError:
            store.close()
            raise
        except sqlite3.DatabaseError as exc:
            store.close()
            raise StoreError(f"{path}: not a usable nsdi-tracker database: {exc}") from None
        return store

    def _refuse_newer(self) -> None:
        known = set(_KNOWN)
        applied = {m.name for m in migrations.applied(self.db)}
        newer = sorted(applied - known)
        if newer:
            raise StoreError(
                f"{self.path}: written by a newer nsdi-tracker (unknown schema migration "
                f"{newer[0]!r}); upgrade nsdi-tracker to read it"
            )

    def close(self) -> None:
        self.db.conn.close()
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def backup(self, destination: Path) -> int:
        """A consistent copy through SQLite's online backup, written beside `destination`
        and renamed into place; the writer is not blocked. Returns the copy's size."""
        clash = self._own_file(destination)
        if clash is not None:
            raise StoreError(f"{destination}: is {clash}; a backup must go to another file")
        tmp = destination.with_name(f".{destination.name}.partial")
        try:
            tmp.unlink(missing_ok=True)
            target = sqlite3.connect(tmp)
            try:
                self.db.conn.backup(target)
            finally:
                target.close()
            os.replace(tmp, destination)
        except (OSError, sqlite3.Error) as exc:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"{destination}: cannot write the backup: {exc}") from None
        return destination.stat().st_size

    def _own_file(self, target: Path) -> str | None:
        """What `target` is of this database's own files (the database under any name or
        link, its WAL, shared memory, rollback journal or writer lock), or None."""
        own = {
            f"{self.path.name}{suffix}": what
            for suffix, what in (
                ("", "the database itself"),
                ("-wal", "the database's write-ahead log"),
                ("-shm", "the database's shared-memory file"),
                ("-journal", "the database's rollback journal"),
                (".lock", "the database's writer lock"),
            )
        }
        folder = self.path.resolve().parent
        # By name: a WAL or journal that does not exist yet must not be created by a backup.
        where = target.resolve()
        if where.parent == folder and where.name in own:
            return own[where.name]
        # By file: a hard link (or any other name) of one of them.
        with contextlib.suppress(OSError):
            seen = target.stat()
            for name, what in own.items():
                with contextlib.suppress(OSError):
                    st = (folder / name).stat()
                    if (st.st_dev, st.st_ino) == (seen.st_dev, seen.st_ino):
                        return what
        return None

    def integrity(self) -> str:
        return str(self.db.execute("PRAGMA integrity_check").fetchone()[0])


def _refuse_foreign(path: Path) -> None:
    """Before a writer opens `path`: refuse it if it is another program's database. Read
    through a read-only connection, so the refusal changes nothing; what that connection
    cannot read (modes, a folder), the writer's own open diagnoses."""
    if not path.is_file():
        return
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return
    try:
        conn.execute("PRAGMA busy_timeout = 10000")
        _foreign(Database(conn), path)
    except sqlite3.Error:
        return
    finally:
        conn.close()


def _foreign(db: Database, path: Path) -> None:
    """Raise StoreError if `db` holds tables but no record of this tracker's migrations."""
    tables = [
        name
        for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
        if name != migrations.migrations_table
    ]
    if not tables or migrations.applied(db):
        return
    shown = ", ".join(sorted(tables)[:3]) + (", ..." if len(tables) > 3 else "")
    raise StoreError(
        f"{path}: not an nsdi-tracker database (it holds other tables: {shown}, and no "
        "nsdi-tracker schema record); left untouched: give another database path"
    )


def _writer_connection(path: Path) -> sqlite3.Connection:
    """A writing connection, set up, that has shown it can write (SQLite falls back to
    reading only, silently, when the file or its folder cannot be written)."""
    try:
        # Used by one thread at a time, not always the one that opened it: the daemon
        # writes from a worker thread so that a large commit never stalls the event loop.
        conn = sqlite3.connect(path, check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"{path}: cannot open database: {exc}") from None
    try:
        conn.execute("PRAGMA busy_timeout = 10000")
        Database(conn).enable_wal()
        conn.execute("PRAGMA synchronous = FULL")
        # A first sweep of a million names commits gigabytes through the WAL; after the
        # checkpoint the file shrinks back to this instead of keeping that size for good.
        conn.execute("PRAGMA journal_size_limit = 67108864")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("CREATE TABLE _nsdi_write_probe (x INTEGER)")
        finally:
            conn.rollback()
    except sqlite3.OperationalError as exc:
        conn.close()
        why = _unwritable(path) or str(exc)
        raise StoreError(f"{path}: cannot write the database: {why}") from None
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(f"{path}: not a usable nsdi-tracker database: {exc}") from None
    return conn


def _identity(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_dev, st.st_ino


def _unwritable(path: Path) -> str | None:
    """Why this user cannot write the database (the file, its WAL and shared memory, which
    SQLite creates with the file's mode, or its folder), or None."""
    wal, shm = (path.with_name(path.name + suffix) for suffix in ("-wal", "-shm"))
    for target in (path, wal, shm, path.parent):
        if target.exists() and not os.access(target, os.W_OK):
            kind = "folder" if target.is_dir() else "file"
            return f"the {kind} {target} is not writable by this user"
    return None


def _writer_lock(path: Path) -> TextIO:
    """One writer per database: two overlapping runs would both confirm the same change.

    An advisory lock on `<db>.lock`, released by the kernel when the process dies, so a
    killed tracker never leaves a stale lock behind. Readers do not take it.
    """
    lock = open(path.with_name(path.name + ".lock"), "a+", encoding="utf-8")  # noqa: SIM115
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        raise StoreError(
            f"{path}: another nsdi-tracker is writing to this database ({holder})"
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"pid {os.getpid()}\n")
    lock.flush()
    return lock
