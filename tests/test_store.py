"""The database: schema and migrations, write cost that follows change, pruning, refusals."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli, write_config
from sqlite_utils import Database

from nsdi_tracker.core.errors import StoreError
from nsdi_tracker.store.sqlite import Store, migrations
from nsdi_tracker.store.sqlite.schema import _SCHEMA_1


def counts(path: Path) -> dict[str, int]:
    db = sqlite3.connect(path)
    try:
        tables = ("rounds", "states", "transitions", "observations", "latest", "deliveries")
        return {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}
    finally:
        db.close()


def test_fresh_database_has_schema_wal_and_views(tmp_path: Path) -> None:
    """Opening creates the folder, the tables, both views, WAL mode and foreign keys."""
    path = tmp_path / "sub" / "t.db"
    with Store.open(path) as store:
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        names = set(store.db.table_names()) | set(store.db.view_names())
        assert {"resolvers", "domains", "rounds", "states", "transitions", "observations",
                "latest", "deliveries", "current_status", "changelog", "resolver_states",
                "resolver_status", "replies"} <= names  # fmt: skip
        assert [m.name for m in migrations.applied(store.db)] == [
            "m001_initial",
            "m002_timed_out_rounds",
            "m003_screen_indexes",
            "m004_resolver_health",
            "m005_round_interval",
            "m006_round_summaries",
            "m007_name_digests",
            "m008_reply_evidence",
        ]
        with pytest.raises(sqlite3.IntegrityError):
            store.db.execute("INSERT INTO states (domain_id, scope, round_id) VALUES (99, 'x', 99)")


def test_older_database_is_upgraded(tmp_path: Path) -> None:
    """A database left before a migration gets it applied on open, exactly once."""
    path = tmp_path / "old.db"
    db = Database(path)
    migrations.apply(db, stop_before="m001_initial")
    assert "rounds" not in db.table_names()
    db.conn.close()
    Store.open(path).close()
    with Store.open(path) as store:
        assert "rounds" in store.db.table_names()
        assert len(migrations.applied(store.db)) == 8


V1_ROUNDS = (
    "id, started, finished, status, domains, queries, transitions, outcomes, health, negative_name"
)


def back_to_schema_1(db: Database) -> None:
    """Put the file's rounds back to schema 1: the old CHECK and columns, m002, m003, m005
    and m006 not recorded (foreign keys left off)."""
    db.execute("PRAGMA foreign_keys = OFF")
    with db.atomic():
        db.execute(f"CREATE TABLE r1 AS SELECT {V1_ROUNDS} FROM rounds")
        db.execute("DROP TABLE rounds")
        db.execute(_SCHEMA_1[2])
        db.execute(_SCHEMA_1[3])
        db.execute("INSERT INTO rounds SELECT * FROM r1")
        db.execute("DROP TABLE r1")
        for index in ("states_notable", "transitions_changes", "domains_shown"):
            db.execute(f"DROP INDEX {index}")
        db.execute(
            "DELETE FROM _sqlite_migrations WHERE name IN "
            "('m002_timed_out_rounds', 'm003_screen_indexes', 'm005_round_interval', "
            "'m006_round_summaries')"
        )


async def test_version_1_database_keeps_its_rounds_through_m002(tmp_path: Path, harness) -> None:
    """m002 rebuilds `rounds` for the timeout status: every row and every reference to it
    survives, foreign keys still hold, and a timed-out round can then be recorded."""
    h = await harness(["kept.example"])
    with Store.open(h.db) as store:
        await h.round(store)
        await h.round(store)
        before = store.db.execute(f"SELECT {V1_ROUNDS} FROM rounds ORDER BY id").fetchall()
        back_to_schema_1(store.db)
    with Store.open(h.db) as store:
        rows = store.db.execute(f"SELECT {V1_ROUNDS} FROM rounds ORDER BY id").fetchall()
        assert rows == before
        assert store.db.execute("PRAGMA foreign_key_check").fetchall() == []
        assert store.integrity() == "ok"
        assert store.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        with pytest.raises(sqlite3.IntegrityError):
            store.db.execute("DELETE FROM rounds")  # states and transitions point at them
        now = datetime.now(UTC)
        store.record_timeout(now - timedelta(seconds=3), now, domains=1, queries=7)
        assert store.last_round()["status"] == "timeout"


ROUNDS_SQL = "SELECT sql FROM sqlite_master WHERE name = 'rounds'"


async def test_rebuild_that_breaks_a_key_rolls_back(tmp_path: Path, harness) -> None:
    """A table rebuild checks every foreign key before it commits: a file with a dangling
    one is refused with the migration's name, and keeps its rounds as they were."""
    h = await harness(["kept.example"])
    with Store.open(h.db) as store:
        await h.round(store)
        back_to_schema_1(store.db)
        store.db.execute("UPDATE states SET round_id = 999")  # no such round
        store.db.conn.commit()
        (sql,) = store.db.execute(ROUNDS_SQL).fetchone()
    with pytest.raises(StoreError, match="m002: foreign keys broken by the rounds rebuild"):
        Store.open(h.db)
    db = sqlite3.connect(h.db)
    try:
        assert db.execute(ROUNDS_SQL).fetchone() == (sql,)
        assert db.execute("SELECT COUNT(*) FROM rounds").fetchone() == (1,)
    finally:
        db.close()


async def test_newer_database_is_refused(tmp_path: Path) -> None:
    """A migration this version does not know means a newer tracker wrote the file: refuse it."""
    path = tmp_path / "t.db"
    Store.open(path).close()
    db = Database(path)
    db["_sqlite_migrations"].insert(
        {"migration_set": "nsdi-tracker", "name": "m999_future", "applied_at": "2027"}
    )
    db.conn.close()
    with pytest.raises(StoreError, match=r"newer nsdi-tracker.*m999_future"):
        Store.open(path)
    code, _, err = await run_cli("status", "--db", str(path))
    assert code == 2 and "newer nsdi-tracker" in err


async def test_foreign_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    """A database of another program (its own tables, no record of our migrations) is never
    extended: writing and reading refuse it with a message naming the file, and its bytes are
    unchanged."""
    path = tmp_path / "notes.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    db.execute("INSERT INTO notes (body) VALUES ('mine')")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match=r"notes\.db: not an nsdi-tracker database.*notes"):
        Store.open(path)
    resolvers = [
        {"name": "n", "address": "127.0.0.1:9", "role": "national"},
        {"name": "r", "address": "127.0.0.2:9", "role": "reference"},
    ]
    config = write_config(tmp_path, resolvers)
    for args in (("run", "--once", "--config", str(config)), ("status",)):
        code, out, err = await run_cli(*args, "--db", str(path))
        assert code == 2, (args, out, err)
        assert f"{path}: not an nsdi-tracker database" in err and "Traceback" not in err
    assert path.read_bytes() == before
    left = sorted(os.listdir(tmp_path))
    assert left == ["notes.db", "nsdi-tracker.toml"], left


async def test_missing_database_for_readers(tmp_path: Path) -> None:
    """status on a database that does not exist says so and creates nothing."""
    path = tmp_path / "none.db"
    code, _, err = await run_cli("status", "--db", str(path))
    assert code == 2 and "no database here yet" in err
    assert not path.exists()


async def test_unchanged_round_writes_one_row(harness: Any) -> None:
    """Once verdicts are confirmed, a round in which nothing changed adds only its rounds row."""
    h = await harness(["youtube.com", "meduza.io", "bbc.com"])
    with Store.open(h.db) as store:
        (cache,) = store.db.execute("PRAGMA cache_size").fetchone()
        await h.round(store)
        await h.round(store)
        before = counts(h.db)
        done = await h.round(store)
        assert done.changes.tracks == 0 and done.changes.transitions == 0
        # a commit's larger page cache is given back after it, and its foreign-key checks
        assert (
            store.db.execute("PRAGMA cache_size").fetchone()
            == (cache,)
            != (-Store.COMMIT_CACHE_KB,)
        )
        assert store.db.execute("PRAGMA foreign_keys").fetchone() == (1,)
    after = counts(h.db)
    assert after == {**before, "rounds": before["rounds"] + 1}


async def test_changed_reply_is_stored_once(harness: Any) -> None:
    """A new reply is stored for its (domain, resolver, type) and not again while it repeats."""
    h = await harness(["youtube.com", "meduza.io"])
    with Store.open(h.db) as store:
        await h.round(store)
        first = counts(h.db)["observations"]
        h.remove("youtube.com")
        done = await h.round(store)
        stored = set(
            store.db.execute(
                "SELECT d.name, r.name, o.qtype FROM observations o "
                "JOIN domains d ON d.id = o.domain_id JOIN resolvers r ON r.id = o.resolver_id "
                "WHERE o.round_id = ?",
                (done.round_id,),
            ).fetchall()
        )
        assert stored == {("youtube.com", "nsdi-a", "A"), ("youtube.com", "nsdi-a", "AAAA")}
        await h.round(store)
    assert counts(h.db)["observations"] == first + 2


async def test_pending_state_is_visible_in_the_view(harness: Any) -> None:
    """A candidate seen once shows as pending in current_status; nothing is confirmed yet."""
    h = await harness(["youtube.com"])
    with Store.open(h.db) as store:
        await h.round(store)
        await h.round(store)
        h.remove("youtube.com")
        await h.round(store)
        rows = {r["scope"]: r for r in store.status()}
    assert rows["national"]["verdict"] == "present"
    assert rows["national"]["pending"] == "removed" and rows["national"]["pending_rounds"] == 1
    assert rows["nsdi-a"]["role"] == "national" and rows["national"]["role"] == "headline"


async def test_prune_keeps_latest_and_transitions(harness: Any) -> None:
    """Raw rows older than retain_days go, except each series' latest; transitions stay."""
    h = await harness(["youtube.com"], extra="retain_days = 30")
    old = datetime.now(UTC) - timedelta(days=100)
    with Store.open(h.db) as store:
        await h.round(store, now=lambda: old)
        await h.round(store, now=lambda: old)
        h.remove("youtube.com")
        await h.round(store, now=lambda: old + timedelta(minutes=5))
        await h.round(store, now=lambda: old + timedelta(minutes=10))
        before = counts(h.db)
        h.restore("youtube.com")
        store._pruned_at = None
        done = await h.round(store)
    after = counts(h.db)
    # nsdi-a's old answers and its old NXDOMAINs are both superseded now and go; the references'
    # old answers are still the latest of their series and stay, as do the two new answers.
    assert done.pruned == 4
    assert after["observations"] == before["observations"] + 2 - 4
    assert after["transitions"] == before["transitions"]
    with Store.open_readonly(h.db) as store:
        kinds = [r["type"] for r in store.history("youtube.com")]
    assert kinds.count("removed") == 2  # national and nsdi-a


async def test_watchlist_change_keeps_history(harness: Any) -> None:
    """A name dropped from the watchlist leaves status (unless --all) but keeps its history."""
    h = await harness(["youtube.com", "meduza.io"])
    with Store.open(h.db) as store:
        await h.round(store)
        await h.round(store)
        (h.tmp_path / "watch.txt").write_text("meduza.io\n")
        await h.round(store)
        assert {r["domain"] for r in store.status()} == {"meduza.io"}
        assert {r["domain"] for r in store.status(include_unwatched=True)} == {
            "meduza.io",
            "youtube.com",
        }
        assert store.history("youtube.com")


async def test_offline_round_changes_nothing(harness: Any) -> None:
    """The references go dark while the national resolver says NXDOMAIN: the round is recorded
    as offline and no state moves, pending or confirmed."""
    from nsdi_tracker.sim import silent

    h = await harness(["youtube.com"])
    with Store.open(h.db) as store:
        await h.round(store)
        await h.round(store)
        h.ref.outage = silent()
        h.remove("youtube.com")
        for _ in range(2):  # enough to confirm a removal, were the round trusted
            done = await h.round(store)
            assert done.record.status == "offline"
            assert done.changes.tracks == 0 and done.changes.transitions == 0
        assert {r["verdict"] for r in store.status()} == {"present"}
        assert {r["pending"] for r in store.status()} == {None}


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    """A second writer is refused with a message naming the holder; readers are not; the lock
    goes with its holder, even a killed one."""
    import signal
    import subprocess
    import sys

    path = tmp_path / "t.db"
    with Store.open(path):
        with pytest.raises(StoreError, match=r"another nsdi-tracker is writing.*pid"):
            Store.open(path)
        Store.open_readonly(path).close()
    Store.open(path).close()  # released on close
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from nsdi_tracker.store.sqlite import Store; "
         f"s = Store.open(Path({str(path)!r})); print('ready', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
    with pytest.raises(StoreError, match=f"pid {holder.pid}"):
        Store.open(path)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    holder.stdout.close()
    Store.open(path).close()
